import { Ajv } from 'ajv';

/**
 * A tool's `parameters` are JSON Schema the model fills in; a schema that does not compile would fail
 * every call of the tool, so it is refused when saved. Ajv (the validator the MCP SDK uses too) checks
 * it against the draft-07 meta-schema and compiles it. `strict: false`: vendors' schemas carry keywords
 * Ajv does not know (OpenAI's `strict`), which are not errors.
 */

/** Where a schema is wrong and why, or undefined when it compiles. */
export function jsonSchemaProblem(schema: Record<string, unknown>): { path: string[]; message: string } | undefined {
  // One validator per check: Ajv caches compiled schemas by $id, and two tools may share one.
  const ajv = new Ajv({ strict: false, validateSchema: true });
  if (!ajv.validateSchema(schema)) {
    const e = ajv.errors?.[0];
    const path = (e?.instancePath ?? '').split('/').filter(Boolean);
    return { path, message: `is not valid JSON Schema: ${e?.instancePath || '(root)'} ${e?.message ?? 'invalid'}` };
  }
  try {
    ajv.compile(schema);
    return undefined;
  } catch (err) {
    return { path: [], message: `is not valid JSON Schema: ${err instanceof Error ? err.message : String(err)}`.slice(0, 300) };
  }
}

/**
 * Checks a model's arguments against a tool's `parameters` before the tool is called: a model that
 * leaves out a required field is told so (and usually asks the caller), rather than the tenant's
 * server getting a request it cannot serve. Returns the first problem, or undefined.
 */
export function argumentChecker(schema: Record<string, unknown>): (args: unknown) => string | undefined {
  const ajv = new Ajv({ strict: false });
  const validate = ajv.compile(schema);
  return (args) => (validate(args) ? undefined : `${validate.errors?.[0]?.instancePath || 'arguments'} ${validate.errors?.[0]?.message ?? 'do not match'}`);
}
