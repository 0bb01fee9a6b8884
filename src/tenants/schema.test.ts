import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { adminDialSchema, dialSchema, previewSchema } from '../http/routes/calls.js';
import { apiKeyInputSchema } from './ApiKeyStore.js';
import { dialplanSchema } from './dialplan.js';
import { devicePatchSchema, deviceSchema } from './DeviceStore.js';
import { callUrlSchema, numberSchema, tenantFields, tenantSchema, trunkAuthSchema, trunkSchema } from './schema.js';
import { toIssues } from './storeUtil.js';

/**
 * Every schema that parses what a client or an operator sends (API bodies, dialplans). A new body
 * schema belongs here; the OpenAPI walk in src/http/adminRoutes.test.ts catches a route whose documented
 * body is not strict.
 */
const inputSchemas: Record<string, z.ZodType> = {
  tenant: tenantSchema,
  tenantPatch: tenantFields.partial(),
  callUrl: callUrlSchema,
  number: numberSchema,
  trunk: trunkSchema,
  trunkAuthPatch: trunkAuthSchema.partial(),
  dialplan: dialplanSchema,
  apiKey: apiKeyInputSchema,
  greetingPreview: previewSchema,
  dial: dialSchema,
  adminDial: adminDialSchema,
  device: deviceSchema,
  devicePatch: devicePatchSchema,
};

/** Types with nothing inside to walk. */
const LEAVES = new Set(['string', 'number', 'int', 'boolean', 'bigint', 'date', 'enum', 'literal', 'null', 'undefined', 'never', 'unknown', 'any', 'custom', 'template_literal', 'nan']);

/**
 * Every z.object reachable from `schema`, with the path to it (`[]` for elements of arrays and records).
 * Unwraps optional/default/nullable/readonly/catch, arrays, unions, intersections, records, tuples,
 * pipes and lazies; an unknown kind fails the test so nothing new escapes the walk.
 */
function objectsIn(schema: z.ZodType, path: string, out: { path: string; schema: z.ZodObject }[] = [], seen = new Set<unknown>()): typeof out {
  if (seen.has(schema)) return out;
  seen.add(schema);
  const def = (schema as unknown as { _zod: { def: Record<string, unknown> & { type: string } } })._zod.def;
  const walk = (inner: unknown, at: string): void => void objectsIn(inner as z.ZodType, at, out, seen);
  switch (def.type) {
    case 'object':
      out.push({ path: path || '(root)', schema: schema as z.ZodObject });
      for (const [key, value] of Object.entries(def['shape'] as Record<string, unknown>)) walk(value, path ? `${path}.${key}` : key);
      return out;
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'catch':
    case 'nonoptional':
    case 'success':
      walk(def['innerType'], path);
      return out;
    case 'array':
      walk(def['element'], `${path}[]`);
      return out;
    case 'union':
      for (const option of def['options'] as unknown[]) walk(option, path);
      return out;
    case 'intersection':
      walk(def['left'], path);
      walk(def['right'], path);
      return out;
    case 'record':
      walk(def['keyType'], `${path}{key}`);
      walk(def['valueType'], `${path}{}`);
      return out;
    case 'tuple':
      for (const item of def['items'] as unknown[]) walk(item, `${path}[]`);
      if (def['rest']) walk(def['rest'], `${path}[]`);
      return out;
    case 'pipe':
      walk(def['in'], path);
      walk(def['out'], path);
      return out;
    case 'lazy':
      walk((def['getter'] as () => unknown)(), path);
      return out;
    default:
      if (!LEAVES.has(def.type)) throw new Error(`schema walk: unhandled zod type '${def.type}' at ${path || '(root)'}`);
      return out;
  }
}

describe('data model: every object refuses unknown keys', () => {
  it('finds the nested objects the probe typed into (turn, goodbye, providers.models, intents[], trunk auth, outbound)', () => {
    const paths = Object.entries(inputSchemas).flatMap(([name, schema]) => objectsIn(schema, '').map((o) => `${name}:${o.path}`));
    expect(paths).toEqual(
      expect.arrayContaining([
        'tenant:turn',
        'tenant:goodbye',
        'tenant:providers',
        'tenant:providers.models',
        'tenant:intents[]',
        'trunk:auth',
        'trunk:outbound',
        'dialplan:tenants[]',
        'dialplan:tenants[].callUrls[]',
        'dialplan:tenants[].numbers[]',
        'dialplan:trunks[].auth',
        'dial:(root)',
      ]),
    );
    expect(paths.length).toBeGreaterThanOrEqual(30);
  });

  it('refuses an unknown key in each of them, naming it at its own path (a typo is a 400, never dropped)', () => {
    const lenient: string[] = [];
    for (const [name, root] of Object.entries(inputSchemas)) {
      for (const { path, schema } of objectsIn(root, '')) {
        // The object on its own, with only an unknown key: whatever else it misses, the key must be named.
        const result = schema.safeParse({ zzUnknownField: 1 });
        const named = !result.success && toIssues(result.error).some((i) => i.path === 'zzUnknownField' && i.message === 'is not a known field');
        if (!named) lenient.push(`${name}:${path}`);
      }
    }
    expect(lenient).toEqual([]);
  });

  it('the walk itself notices a lenient object (so the test above can fail)', () => {
    const sneaky = z.strictObject({ inner: z.array(z.object({ a: z.string() }).optional()).default([]) });
    const lenient = objectsIn(sneaky, '').filter(({ schema }) => schema.safeParse({ zzUnknownField: 1 }).success || !toIssues(schema.safeParse({ zzUnknownField: 1 }).error!).some((i) => i.path === 'zzUnknownField'));
    expect(lenient.map((o) => o.path)).toEqual(['inner[]']);
    expect(() => objectsIn(z.map(z.string(), z.string()) as unknown as z.ZodType, '')).toThrow(/unhandled zod type 'map'/);
  });

  it("refuses the probe's nested typos in a whole tenant, with the typo's path", () => {
    const issues = (input: unknown) => {
      const r = tenantSchema.safeParse({ id: 'x', displayName: 'X', ...(input as object) });
      return r.success ? [] : toIssues(r.error);
    };
    expect(issues({ turn: { endpointingMS: 300, bargein: false } })).toEqual([
      { path: 'turn.endpointingMS', message: 'is not a known field' },
      { path: 'turn.bargein', message: 'is not a known field' },
    ]);
    expect(issues({ goodbye: { phrase: ['bye'] } })).toEqual([{ path: 'goodbye.phrase', message: 'is not a known field' }]);
    expect(issues({ providers: { model: { llm: 'x' } } })).toEqual([{ path: 'providers.model', message: 'is not a known field' }]);
    expect(issues({ intents: [{ name: 'a', reply: 'b', phrases: ['c'], dtmff: '1' }] })).toEqual([{ path: 'intents.0.dtmff', message: 'is not a known field' }]);
  });
});

describe('data model: names and texts refuse control and bidi characters', () => {
  const tenant = (fields: Record<string, unknown>) => tenantSchema.safeParse({ id: 'x', displayName: 'X', ...fields });
  const paths = (fields: Record<string, unknown>) => {
    const r = tenant(fields);
    return r.success ? [] : toIssues(r.error).map((i) => `${i.path}: ${i.message}`);
  };

  it('refuses C0, DEL, C1, bidi overrides/isolates and direction marks in name-like fields, naming the path', () => {
    for (const ch of ['\u0000', '\u0007', '\u001b', '\n', '\t', '\u007f', '\u0085', '\u009b', '\u202a', '\u202e', '\u2066', '\u2069', '\u200e', '\u200f', '\u061c', '\u2028']) {
      const hex = ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
      expect(paths({ displayName: `Joe${ch}s` }), `U+${hex}`).toEqual([expect.stringMatching(new RegExp(`^displayName: contains the (control|invisible formatting) character U\\+${hex}`))]);
    }
    expect(paths({ agentName: 'A\u202eva' })).toEqual([expect.stringMatching(/^agentName: contains the invisible formatting character U\+202E$/)]);
    expect(paths({ intents: [{ name: 'a\u0000', phrases: ['hi\u0007'], reply: 'ok' }] })).toEqual([
      expect.stringMatching(/^intents\.0\.name: contains the control character U\+0000/),
      expect.stringMatching(/^intents\.0\.phrases\.0: contains the control character U\+0007/),
    ]);
    expect(paths({ providers: { llm: 'scripted\u202e' } })).toHaveLength(1);
    expect(paths({ goodbye: { phrases: ['bye\u0000'] } })).toEqual([expect.stringMatching(/^goodbye\.phrases\.0: /)]);
    const url = callUrlSchema.safeParse({ tenantId: 'x', variables: { name: 'Sam\u202e' } });
    expect(url.success ? [] : toIssues(url.error).map((i) => i.path)).toEqual(['variables.name']);
    expect(apiKeyInputSchema.safeParse({ name: 'ci\u0000' }).success).toBe(false);
    expect(trunkSchema.safeParse({ name: 't', sourceCidrs: ['10.0.0.0/8'], auth: { username: 'u\r\nX-Evil: 1', password: 'long-enough' } }).success).toBe(false);
    expect(numberSchema.safeParse({ number: 'sip:a\u0000b@example.com', tenantId: 'x' }).success).toBe(false);
  });

  it('lets long texts keep line breaks, tabs and direction marks, and refuses the other controls there', () => {
    expect(tenant({ greeting: 'Hello,\n\tthanks for calling {{business}}.\r\n', systemPrompt: 'Line one\nLine two', fallbackReply: 'שלום\u200f (hello)' }).success).toBe(true);
    expect(paths({ greeting: 'Hi\u0007' })).toEqual([expect.stringMatching(/^greeting: contains the control character U\+0007 \(only tab and line breaks are allowed\)$/)]);
    expect(paths({ systemPrompt: 'ok\u202eevil' })).toEqual([expect.stringMatching(/^systemPrompt: contains the invisible formatting character U\+202E$/)]);
    expect(paths({ intents: [{ name: 'a', phrases: ['x'], reply: 'r\u0000' }] })).toEqual([expect.stringMatching(/^intents\.0\.reply: /)]);
    expect(paths({ goodbye: { reply: 'bye\u0085' } })).toEqual([expect.stringMatching(/^goodbye\.reply: /)]);
  });

  it('keeps ordinary names: accents, other scripts, emoji, apostrophes', () => {
    for (const displayName of ["Joe's Pizza", 'Zoë & Søn', '東京寿司', 'مطعم', 'Café 😀']) expect(tenant({ displayName }).success, displayName).toBe(true);
  });
});
