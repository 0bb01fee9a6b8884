import { seededRandom } from '../src/util/random.js';

/**
 * Mutators: turn a valid seed into a nearby invalid (or surprisingly valid) input. Every choice comes
 * from the case's Rng, so a case is replayed exactly from its seed and index. Inputs are never changed
 * in place: seeds are shared by every case of a run.
 */

/** The seeded choices one case makes (Mulberry32 from src/util/random.ts underneath). */
export class Rng {
  readonly #next: () => number;

  constructor(seed: number) {
    this.#next = seededRandom(seed);
  }

  float(): number {
    return this.#next();
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.#next() * n);
  }

  /** An integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  bool(p = 0.5): boolean {
    return this.#next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Rng.pick: nothing to pick from');
    return items[this.int(items.length)]!;
  }

  /**
   * A length in [1, max], mostly small: most mutations should touch a few bytes, a few should touch
   * many (log-uniform, so 1–10 is as likely as 1000–10000).
   */
  length(max: number): number {
    return Math.max(1, Math.min(max, Math.floor(Math.exp(this.#next() * Math.log(max + 1)))));
  }
}

/** Derives the seed of case `index` of `target`: each case stands alone and can be rerun by itself. */
export function caseSeed(seed: number, target: string, index: number): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (let i = 0; i < target.length; i++) h = Math.imul(h ^ target.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ index, 0x9e3779b1);
  return (h ^ (h >>> 16)) >>> 0;
}

// ── Bytes ────────────────────────────────────────────────────────────────────────────────────────

export interface ByteMutateOptions {
  /** Other valid inputs to splice from. */
  readonly others: readonly Uint8Array[];
  /** Longest input a mutation may produce. */
  readonly maxLength: number;
  /** Most mutations stacked on one input. */
  readonly maxRounds: number;
}

export const defaultByteMutateOptions = {
  others: [],
  /** 64 KiB: past every parser's own limit, so limits are exercised without slowing the run. */
  maxLength: 64 * 1024,
  /** 6: a handful of stacked changes finds more than one at a time without turning into noise. */
  maxRounds: 6,
} as const satisfies ByteMutateOptions;

/** Values that sit on the edges parsers check: zero, sign bits, all ones, and off-by-ones around them. */
export const INTERESTING_8 = [0x00, 0x01, 0x02, 0x0f, 0x10, 0x1f, 0x20, 0x3f, 0x40, 0x7f, 0x80, 0x81, 0xc0, 0xfe, 0xff];
export const INTERESTING_16 = [0, 1, 3, 4, 0x7f, 0x80, 0xff, 0x100, 0x3fff, 0x7ffe, 0x7fff, 0x8000, 0xfffe, 0xffff];
export const INTERESTING_32 = [0, 1, 4, 12, 16, 0xff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x0a0d0d0a, 0x1a2b3c4d];

type ByteMutator = (rng: Rng, b: Uint8Array, o: ByteMutateOptions) => Uint8Array;

const byteMutators: readonly ByteMutator[] = [
  // Bit flip.
  (rng, b) => {
    if (b.length === 0) return b;
    const out = b.slice();
    const i = rng.int(out.length);
    out[i]! ^= 1 << rng.int(8);
    return out;
  },
  // An interesting or random byte.
  (rng, b) => {
    if (b.length === 0) return b;
    const out = b.slice();
    out[rng.int(out.length)] = rng.bool() ? rng.pick(INTERESTING_8) : rng.int(256);
    return out;
  },
  // A 16- or 32-bit boundary integer, either byte order: lengths, counts and offsets live in these.
  (rng, b) => {
    const wide = rng.bool();
    const size = wide ? 4 : 2;
    if (b.length < size) return b;
    const out = b.slice();
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    // Mostly aligned, where real fields are.
    const at = rng.bool(0.7) ? Math.floor(rng.int(out.length - size + 1) / size) * size : rng.int(out.length - size + 1);
    const le = rng.bool();
    if (wide) view.setUint32(at, pickAround(rng, INTERESTING_32, b.length) >>> 0, le);
    else view.setUint16(at, pickAround(rng, INTERESTING_16, b.length) & 0xffff, le);
    return out;
  },
  // Insert random or repeated bytes.
  (rng, b, o) => {
    const n = Math.min(rng.length(64), o.maxLength - b.length);
    if (n <= 0) return b;
    const at = rng.int(b.length + 1);
    const filler = rng.bool() ? randomBytes(rng, n) : new Uint8Array(n).fill(rng.pick(INTERESTING_8));
    return concat(b.subarray(0, at), filler, b.subarray(at));
  },
  // Delete a range.
  (rng, b) => {
    if (b.length === 0) return b;
    const at = rng.int(b.length);
    const n = Math.min(rng.length(b.length), b.length - at);
    return concat(b.subarray(0, at), b.subarray(at + n));
  },
  // Truncate.
  (rng, b) => (b.length === 0 ? b : b.slice(0, rng.int(b.length))),
  // Duplicate a range in place (repeated records, repeated headers).
  (rng, b, o) => {
    if (b.length === 0) return b;
    const at = rng.int(b.length);
    const n = Math.min(rng.length(b.length - at), o.maxLength - b.length);
    if (n <= 0) return b;
    return concat(b.subarray(0, at + n), b.subarray(at, at + n), b.subarray(at + n));
  },
  // Repeat a chunk many times: the huge inputs.
  (rng, b, o) => {
    if (b.length === 0) return b;
    const at = rng.int(b.length);
    const chunk = b.subarray(at, at + rng.length(Math.min(64, b.length - at)));
    const times = Math.floor((o.maxLength - b.length) / Math.max(1, chunk.length) / rng.range(1, 8));
    if (times <= 0) return b;
    const out = new Uint8Array(b.length + times * chunk.length);
    out.set(b.subarray(0, at));
    for (let i = 0; i < times; i++) out.set(chunk, at + i * chunk.length);
    out.set(b.subarray(at), at + times * chunk.length);
    return out;
  },
  // Splice with another seed: a header from one, a body from another.
  (rng, b, o) => {
    if (o.others.length === 0) return b;
    const other = rng.pick(o.others);
    const cut = rng.int(b.length + 1);
    const from = rng.int(other.length + 1);
    return concat(b.subarray(0, cut), other.subarray(from)).subarray(0, o.maxLength);
  },
  // Fill a range with one value.
  (rng, b) => {
    if (b.length === 0) return b;
    const out = b.slice();
    const at = rng.int(out.length);
    out.fill(rng.pick([0x00, 0xff, 0x80]), at, at + rng.length(out.length - at));
    return out;
  },
];

/** Near-boundary values, plus values near the input's own length (lengths that are almost right). */
function pickAround(rng: Rng, table: readonly number[], length: number): number {
  const base = rng.bool(0.8) ? rng.pick(table) : length + rng.range(-16, 16);
  return rng.bool(0.8) ? base : base + rng.range(-2, 2);
}

/** Stacks 1..maxRounds mutations on `input`. */
export function mutateBytes(rng: Rng, input: Uint8Array, options: Partial<ByteMutateOptions> = {}): Uint8Array {
  const o: ByteMutateOptions = { ...defaultByteMutateOptions, ...options };
  // Buffer#slice is a view, not a copy (unlike Uint8Array#slice): mutating "copies" of a Buffer seed
  // would corrupt the seed for every later case. Start from a plain copy.
  let b: Uint8Array = Buffer.isBuffer(input) ? new Uint8Array(input) : input;
  const rounds = rng.range(1, o.maxRounds);
  for (let i = 0; i < rounds; i++) b = rng.pick(byteMutators)(rng, b, o);
  return b.length > o.maxLength ? b.slice(0, o.maxLength) : b;
}

export function randomBytes(rng: Rng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.int(256);
  return out;
}

export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ── Text ─────────────────────────────────────────────────────────────────────────────────────────

export interface TextMutateOptions {
  readonly others: readonly string[];
  /** Longest text a mutation may produce, in UTF-16 units. */
  readonly maxLength: number;
  readonly maxRounds: number;
  /** Tokens of the format (`a=rtpmap:`, `{{`, `- name:`) worth inserting. */
  readonly dictionary: readonly string[];
}

export const defaultTextMutateOptions = {
  others: [],
  /** 64 Ki characters: at and past the SDP and offer limits. */
  maxLength: 64 * 1024,
  maxRounds: 6,
  dictionary: [],
} as const satisfies TextMutateOptions;

/** Strings that trip text handling: NUL, line ends, BOM, RTL and zero-width marks, lone surrogates, astral emoji. */
export const INTERESTING_STRINGS = [
  '\0',
  '\r',
  '\n',
  '\r\n',
  '\t',
  ' ',
  '\u00a0',
  '\ufeff',
  '\u200b',
  '\u202e',
  '\u2028',
  '\ud800',
  '\udfff',
  '😀',
  'é',
  'e\u0301',
  '\u0000\u0000\u0000\u0000',
  '%00',
  '\\',
  '"',
  "'",
  '{',
  '}',
  '[',
  ']',
  ':',
  '=',
  '/',
  ';',
  ',',
  '-',
  '#',
  '&',
  '*',
  '|',
  '<',
  '>',
  '!',
  '?',
];

/** Numbers that break number handling: signs, floats, exponents, past 32 and 53 bits, NaN spellings. */
export const INTERESTING_NUMBERS = [
  '0',
  '-0',
  '-1',
  '1',
  '127',
  '128',
  '255',
  '256',
  '65535',
  '65536',
  '2147483647',
  '2147483648',
  '4294967295',
  '4294967296',
  '9007199254740991',
  '9007199254740993',
  '99999999999999999999999',
  '1e308',
  '1e309',
  '1.5',
  '0x10',
  'NaN',
  'Infinity',
  '',
];

type TextMutator = (rng: Rng, s: string, o: TextMutateOptions) => string;

const textMutators: readonly TextMutator[] = [
  // Insert an interesting string or a dictionary token.
  (rng, s, o) => {
    const at = rng.int(s.length + 1);
    const piece = o.dictionary.length > 0 && rng.bool() ? rng.pick(o.dictionary) : rng.pick(INTERESTING_STRINGS);
    return s.slice(0, at) + piece + s.slice(at);
  },
  // Replace a run of digits with a boundary number.
  (rng, s) => {
    const runs = [...s.matchAll(/\d+/g)];
    if (runs.length === 0) return s;
    const m = rng.pick(runs);
    return s.slice(0, m.index) + rng.pick(INTERESTING_NUMBERS) + s.slice(m.index + m[0].length);
  },
  // Delete a range.
  (rng, s) => {
    if (s.length === 0) return s;
    const at = rng.int(s.length);
    return s.slice(0, at) + s.slice(at + rng.length(s.length - at));
  },
  // Truncate.
  (rng, s) => s.slice(0, rng.int(s.length + 1)),
  // Duplicate, delete or swap lines.
  (rng, s) => {
    const lines = s.split('\n');
    const i = rng.int(lines.length);
    const j = rng.int(lines.length);
    const op = rng.int(3);
    if (op === 0) lines.splice(j, 0, lines[i]!);
    else if (op === 1) lines.splice(i, 1);
    else [lines[i], lines[j]] = [lines[j]!, lines[i]!];
    return lines.join('\n');
  },
  // Splice a line of another seed into this one.
  (rng, s, o) => {
    if (o.others.length === 0) return s;
    const lines = s.split('\n');
    const from = rng.pick(o.others).split('\n');
    lines.splice(rng.int(lines.length + 1), rng.int(2), rng.pick(from));
    return lines.join('\n');
  },
  // Repeat a piece many times: huge lines, huge documents.
  (rng, s, o) => {
    if (s.length === 0) return s;
    const at = rng.int(s.length);
    const piece = s.slice(at, at + rng.length(Math.min(80, s.length - at)));
    const times = Math.floor((o.maxLength - s.length) / Math.max(1, piece.length) / rng.range(1, 16));
    if (times <= 0) return s;
    return s.slice(0, at) + piece.repeat(times) + s.slice(at);
  },
  // Change case of a range (case-insensitive names, case-sensitive keys).
  (rng, s) => {
    if (s.length === 0) return s;
    const at = rng.int(s.length);
    const n = rng.length(s.length - at);
    const part = s.slice(at, at + n);
    return s.slice(0, at) + (rng.bool() ? part.toUpperCase() : part.toLowerCase()) + s.slice(at + n);
  },
  // Byte-level mutation of the UTF-8 encoding, decoded back (invalid sequences become U+FFFD).
  (rng, s, o) => {
    const bytes = mutateBytes(rng, new TextEncoder().encode(s), { maxLength: o.maxLength, maxRounds: 2 });
    return new TextDecoder().decode(bytes);
  },
  // Swap line endings: CRLF, LF, CR, none.
  (rng, s) => s.replace(/\r?\n/g, rng.pick(['\r\n', '\n', '\r', '', '\n\n'])),
];

export function mutateText(rng: Rng, input: string, options: Partial<TextMutateOptions> = {}): string {
  const o: TextMutateOptions = { ...defaultTextMutateOptions, ...options };
  let s = input;
  const rounds = rng.range(1, o.maxRounds);
  for (let i = 0; i < rounds; i++) s = rng.pick(textMutators)(rng, s, o);
  return s.length > o.maxLength ? s.slice(0, o.maxLength) : s;
}

/** Random printable-ish text with the odd control and astral character. */
export function randomText(rng: Rng, n: number, dictionary: readonly string[] = []): string {
  let s = '';
  while (s.length < n) {
    const r = rng.float();
    if (r < 0.7) s += String.fromCharCode(rng.range(0x20, 0x7e));
    else if (r < 0.8) s += rng.pick(['\n', '\r\n', ' ', '\t']);
    else if (r < 0.9 && dictionary.length > 0) s += rng.pick(dictionary);
    else s += rng.pick(INTERESTING_STRINGS);
  }
  return s;
}

// ── JSON ─────────────────────────────────────────────────────────────────────────────────────────

export interface JsonMutateOptions {
  readonly maxRounds: number;
  /** Field names worth adding (the schema's own, misspelt, prototype keys). */
  readonly keys: readonly string[];
  /** Deepest nesting a mutation builds; the JSON text of it is made directly, not by JSON.stringify. */
  readonly maxDepth: number;
}

export const defaultJsonMutateOptions = {
  maxRounds: 4,
  keys: [],
  /** 100 000 levels: ~600 KB of text, inside Fastify's 1 MiB body limit, and deep enough for any recursion. */
  maxDepth: 100_000,
} as const satisfies JsonMutateOptions;

/** Leaf values of every JSON type at their edges. */
export function interestingJsonValue(rng: Rng): unknown {
  return rng.pick<() => unknown>([
    () => null,
    () => true,
    () => false,
    () => 0,
    () => -1,
    () => 1.5,
    () => -0.0000001,
    () => 2 ** 31,
    () => 2 ** 32,
    () => 2 ** 53 + 2,
    () => -(2 ** 63),
    () => 1e308,
    () => '',
    () => ' ',
    () => rng.pick(INTERESTING_STRINGS),
    () => rng.pick(INTERESTING_NUMBERS),
    () => 'x'.repeat(rng.length(200_000)),
    () => randomText(rng, rng.length(300)),
    () => [],
    () => {
      const o: Record<string, unknown> = {};
      return o;
    },
    () => Array.from({ length: rng.length(10_000) }, () => rng.int(10)),
  ])();
}

/**
 * A marker replaced by deeply nested JSON once the value is serialised: JSON.stringify (and so the
 * mutator itself) would overflow the stack on what we want the code under test to face.
 */
const DEEP = '\u0000fuzz-deep:';

type Path = (string | number)[];

function paths(value: unknown, at: Path = [], out: Path[] = [], budget = { n: 2000 }): Path[] {
  if (budget.n-- <= 0) return out;
  out.push(at);
  if (Array.isArray(value)) value.slice(0, 50).forEach((v, i) => paths(v, [...at, i], out, budget));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) paths(v, [...at, k], out, budget);
  return out;
}

/** Returns a copy of `root` with the value at `path` replaced (or removed when `replace` is undefined). */
function setAt(root: unknown, path: Path, replace: ((old: unknown) => unknown) | undefined): unknown {
  if (path.length === 0) return replace ? replace(root) : undefined;
  const [head, ...rest] = path as [string | number, ...Path];
  if (Array.isArray(root)) {
    const copy = root.slice();
    if (rest.length === 0 && !replace) copy.splice(head as number, 1);
    else copy[head as number] = setAt(copy[head as number], rest, replace);
    return copy;
  }
  const copy = cloneObject(root as Record<string, unknown>);
  if (rest.length === 0 && !replace) delete copy[head as string];
  else defineKey(copy, head as string, setAt(copy[head as string], rest, replace));
  return copy;
}

function cloneObject(o: Record<string, unknown>): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) defineKey(copy, k, v);
  return copy;
}

/** An own enumerable property even for `__proto__`, so JSON.stringify writes the key as a client could. */
function defineKey(o: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

type JsonMutator = (rng: Rng, root: unknown, path: Path, o: JsonMutateOptions) => unknown;

const jsonMutators: readonly JsonMutator[] = [
  // Replace a value with an edge value of any type.
  (rng, root, path) => setAt(root, path, () => interestingJsonValue(rng)),
  // Remove a field or element.
  (_rng, root, path) => (path.length === 0 ? root : setAt(root, path, undefined)),
  // Add a field (a schema field where it does not belong, `__proto__`, `constructor`, a huge key).
  (rng, root, path, o) =>
    setAt(root, path, (old) => {
      if (old === null || typeof old !== 'object') return old;
      const key = rng.pick([...o.keys, '__proto__', 'constructor', 'prototype', '', 'x'.repeat(rng.length(5000)), 'id', 'tenantId']);
      if (Array.isArray(old)) return [...old, interestingJsonValue(rng)];
      const copy = cloneObject(old as Record<string, unknown>);
      defineKey(copy, key, key === 'constructor' ? { prototype: {} } : interestingJsonValue(rng));
      return copy;
    }),
  // Change the type but keep the meaning: 5 → "5", "5" → 5, x → [x], x → {value: x}.
  (rng, root, path) =>
    setAt(root, path, (old) => {
      const op = rng.int(4);
      if (op === 0) return typeof old === 'string' && old.trim() !== '' && !Number.isNaN(Number(old)) ? Number(old) : String(old);
      if (op === 1) return [old];
      if (op === 2) return { value: old };
      return JSON.stringify(old) ?? null;
    }),
  // Deep nesting.
  (rng, root, path, o) => setAt(root, path, () => `${DEEP}${rng.length(o.maxDepth)}:${rng.bool() ? 'a' : 'o'}`),
  // Many copies of an array element (or a long array where there was a value), about a body's worth at most.
  (rng, root, path) =>
    setAt(root, path, (old) => {
      const item = Array.isArray(old) && old.length > 0 ? rng.pick(old) : old;
      const size = Math.max(1, jsonLength(item));
      return Array.from({ length: Math.min(rng.length(5000), Math.ceil(DEEP_BUDGET / size)) }, () => item);
    }),
];

/** Length of a value's JSON text, counting a deep-nesting marker at its expanded size. */
function jsonLength(value: unknown): number {
  if (typeof value === 'string' && value.startsWith(DEEP)) return Number(value.split(':')[1]) * 6;
  return (JSON.stringify(value) ?? 'null').length;
}

/** Mutates a JSON value structurally and returns the JSON text (deep nesting already expanded). */
export function mutateJson(rng: Rng, input: unknown, options: Partial<JsonMutateOptions> = {}): string {
  const o: JsonMutateOptions = { ...defaultJsonMutateOptions, ...options };
  let v = input;
  const rounds = rng.range(1, o.maxRounds);
  for (let i = 0; i < rounds; i++) {
    const all = paths(v);
    const next = rng.pick(jsonMutators)(rng, v, rng.pick(all), o);
    // Stacked mutations can multiply a value's size; past a few bodies' worth, keep the last one that fit.
    if (jsonLength(next) > 4 * DEEP_BUDGET) break;
    v = next;
  }
  return toJsonText(v);
}

/** Most text the deep-nesting markers of one value may expand to: a little past Fastify's 1 MiB body limit. */
const DEEP_BUDGET = 1_200_000;

/** JSON.stringify, with the deep-nesting markers expanded into their nested text. */
export function toJsonText(value: unknown): string {
  const text = JSON.stringify(value) ?? 'null';
  // A marker copied into a long array would otherwise expand past what a string can hold.
  let budget = DEEP_BUDGET;
  return text.replace(/"\\u0000fuzz-deep:(\d+):([ao])"/g, (_, depth: string, kind: string) => {
    const d = Math.max(1, Math.min(Number(depth), Math.floor(budget / 6)));
    budget -= d * 6;
    return kind === 'a' ? '['.repeat(d) + '1' + ']'.repeat(d) : '{"a":'.repeat(d) + '1' + '}'.repeat(d);
  });
}


// ── Case mix ─────────────────────────────────────────────────────────────────────────────────────

/**
 * The usual mix of a case: mostly a mutated seed, sometimes a seed as it is (valid input must stay
 * accepted), sometimes pure noise (no seed's structure at all).
 */
export function seedOrMutant<I>(rng: Rng, seeds: readonly I[], mutate: (seed: I) => I, random: () => I): I {
  const r = rng.float();
  if (r < 0.05) return rng.pick(seeds);
  if (r < 0.15) return random();
  return mutate(rng.pick(seeds));
}
