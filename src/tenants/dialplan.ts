import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument, isMap, isNode, isScalar, type Document } from 'yaml';
import { z } from 'zod';
import { callUrlSchema, numberSchema, refineTenant, tenantFields, trunkAllows, trunkSchema } from './schema.js';
import { UNKNOWN_FIELD, zodIssues } from './storeUtil.js';

/**
 * Dialplans: YAML files that declare tenants with their call URLs and numbers, and the trunks calls
 * arrive on. `checkDialplans` validates a set of files and reports every problem as file:line:column;
 * a set with any problem loads nothing (`loadDialplans` in dialplanLoad.ts).
 */
const dialplanTenantSchema = tenantFields
  .extend({
    callUrls: z.array(callUrlSchema.omit({ tenantId: true })).default([]),
    numbers: z.array(numberSchema.omit({ tenantId: true })).default([]),
  })
  .superRefine(refineTenant);

/** Strict at every level, as the schemas it is made of (schema.test.ts walks it): a typo is a problem, not a silent default. */
export const dialplanSchema = z.strictObject({
  tenants: z.array(dialplanTenantSchema).default([]),
  trunks: z.array(trunkSchema).default([]),
});

export type Dialplan = z.output<typeof dialplanSchema>;
export type DialplanTenant = Dialplan['tenants'][number];

export interface DialplanProblem {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** Where in the document, as a dotted path (`tenants.0.intents.2.reply`). */
  readonly path: string;
  readonly message: string;
}

export interface CheckedDialplan {
  readonly file: string;
  readonly dialplan: Dialplan;
  /** Line and column of a path in the file (for problems found across files). */
  readonly locate: (path: readonly PropertyKey[]) => { line: number; column: number };
}

export type DialplanCheck = { ok: true; dialplans: CheckedDialplan[] } | { ok: false; problems: DialplanProblem[] };

/** Formats a problem as compilers do, so editors jump to it. */
export function formatProblem(p: DialplanProblem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.path ? `${p.path}: ` : ''}${p.message}`;
}

/** Validates one file's text. */
export function checkDialplanText(
  text: string,
  file: string,
): { dialplan?: Dialplan; locate: CheckedDialplan['locate']; problems: DialplanProblem[] } {
  const lineCounter = new LineCounter();
  // The yaml library throws rather than reports for some input: a RangeError when nesting is deeper
  // than its recursive parser's stack, a ReferenceError from toJS() for an alias it could not resolve.
  // Either is a problem with the file, reported like the others.
  const unreadable = (err: unknown) => ({
    locate: () => ({ line: 1, column: 1 }),
    problems: [{ file, line: 1, column: 1, path: '', message: `the YAML could not be read: ${err instanceof Error ? err.message : String(err)}` }],
  });
  const depth = nestingBound(text);
  if (depth > MAX_NESTING) {
    return unreadable(new Error(`collections nest up to ${depth} levels deep (or that many brackets are open); at most ${MAX_NESTING} are read`));
  }
  let doc: Document;
  try {
    doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  } catch (err) {
    return unreadable(err);
  }
  const at = (offset: number): { line: number; column: number } => {
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
  const locate = (path: readonly PropertyKey[]) => at(offsetOf(doc, path));
  // An unknown field is pointed at by its key: its value may be a whole block further down.
  const locateKey = (path: readonly PropertyKey[]) => at(keyOffsetOf(doc, path) ?? offsetOf(doc, path));
  if (doc.errors.length > 0) {
    return { locate, problems: doc.errors.map((e) => ({ file, ...at(e.pos[0]), path: '', message: e.message.split('\n')[0]! })) };
  }
  let value: unknown;
  try {
    value = doc.toJS();
  } catch (err) {
    return unreadable(err);
  }
  const parsed = dialplanSchema.safeParse(value ?? {});
  if (parsed.success) return { dialplan: parsed.data, locate, problems: [] };
  return {
    locate,
    problems: zodIssues(parsed.error).map((issue) => ({
      file,
      ...(issue.message === UNKNOWN_FIELD ? locateKey : locate)(issue.path),
      path: issue.path.map(String).join('.'),
      message: issue.message,
    })),
  };
}

/**
 * Deepest nesting read. A dialplan nests about six levels; the yaml parser recurses per level, and at
 * a few hundred levels (2 KB of "- - - …" or "[[[…") V8 runs out of stack, sometimes while compiling
 * a regular expression, which aborts the process ("RegExpCompiler Allocation failed") instead of throwing.
 */
export const MAX_NESTING = 100;

/**
 * An upper bound on how deep the text's collections nest, without parsing it: indentation levels
 * open on a line, plus compact indicators at its start ("- - x", "? - x"), plus flow brackets open.
 * Brackets inside quoted strings count too, which can only overestimate.
 */
function nestingBound(text: string): number {
  let max = 0;
  let flow = 0;
  const indents: number[] = [];
  for (const line of text.split(/\r\n|\r|\n/)) {
    const content = line.trimStart();
    if (content === '' || content.startsWith('#')) continue;
    const indent = line.length - content.length;
    while (indents.length > 0 && indents[indents.length - 1]! >= indent) indents.pop();
    indents.push(indent);
    const compact = (/^(?:[-?:][ \t]+)*/.exec(content)?.[0].match(/[-?:]/g) ?? []).length;
    let deepestFlow = flow;
    for (const ch of content) {
      if (ch === '[' || ch === '{') deepestFlow = Math.max(deepestFlow, ++flow);
      else if ((ch === ']' || ch === '}') && flow > 0) flow--;
    }
    max = Math.max(max, indents.length + compact + deepestFlow);
  }
  return max;
}

/** Start offset of the key of the map entry `path` names, when there is one. */
function keyOffsetOf(doc: Document, path: readonly PropertyKey[]): number | undefined {
  const key = path.at(-1);
  const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1) as (string | number)[], true);
  if (!isMap(parent)) return undefined;
  const pair = parent.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === key);
  return isNode(pair?.key) && pair.key.range ? pair.key.range[0] : undefined;
}

/** Start offset of the deepest node the path reaches (the parent's when the key itself is missing). */
function offsetOf(doc: Document, path: readonly PropertyKey[]): number {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n) as (string | number)[], true);
    if (isNode(node) && node.range) return node.range[0];
  }
  return 0;
}

/**
 * Validates a set of files together: each on its own, then across them (a tenant id, number, call URL
 * slug or trunk declared twice; a number on a trunk nobody declares).
 */
export async function checkDialplans(files: readonly string[]): Promise<DialplanCheck> {
  const problems: DialplanProblem[] = [];
  const checked: CheckedDialplan[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      problems.push({ file, line: 0, column: 0, path: '', message: `cannot read: ${(err as Error).message}` });
      continue;
    }
    const result = checkDialplanText(text, file);
    problems.push(...result.problems);
    if (result.dialplan) checked.push({ file, dialplan: result.dialplan, locate: result.locate });
  }
  if (problems.length === 0) problems.push(...crossCheck(checked, files));
  return problems.length > 0 ? { ok: false, problems } : { ok: true, dialplans: checked };
}

function crossCheck(checked: readonly CheckedDialplan[], files: readonly string[]): DialplanProblem[] {
  const problems: DialplanProblem[] = [];
  const seen = new Map<string, string>();
  const trunks = new Map(checked.flatMap((c) => c.dialplan.trunks.map((t) => [t.name, t] as const)));
  for (const { file, dialplan, locate } of checked) {
    const problem = (path: (string | number)[], message: string): void => {
      problems.push({ file, ...locate(path), path: path.join('.'), message });
    };
    const claim = (kind: string, key: string, path: (string | number)[]): void => {
      const k = `${kind}:${key}`;
      const first = seen.get(k);
      if (first) problem(path, `${kind} '${key}' is already declared at ${first}`);
      else {
        const { line } = locate(path);
        seen.set(k, `${file}:${line}`);
      }
    };
    dialplan.trunks.forEach((t, i) => claim('trunk', t.name, ['trunks', i, 'name']));
    dialplan.tenants.forEach((t, i) => {
      claim('tenant', t.id, ['tenants', i, 'id']);
      t.callUrls.forEach((u, j) => {
        if (u.slug) claim('call URL', u.slug, ['tenants', i, 'callUrls', j, 'slug']);
        // A random token would be a new URL on every load: dialplans name their call URLs.
        else problem(['tenants', i, 'callUrls', j], 'a call URL in a dialplan needs a slug');
      });
      t.numbers.forEach((n, j) => {
        claim('number', n.number, ['tenants', i, 'numbers', j, 'number']);
        if (!n.trunk) return;
        const trunk = trunks.get(n.trunk);
        if (!trunk) problem(['tenants', i, 'numbers', j, 'trunk'], `trunk '${n.trunk}' is not declared in ${files.join(', ')}`);
        // As the API refuses it: a number may be pinned only to a trunk its tenant may use.
        else if (!trunkAllows(trunk, t.id)) problem(['tenants', i, 'numbers', j, 'trunk'], `trunk '${n.trunk}' does not list tenant '${t.id}' in its tenants`);
      });
    });
  }
  return problems;
}
