import { isCallgateError } from '../src/errors.js';
import { caseSeed, Rng } from './mutate.js';

/**
 * The fuzz runner: a seeded, bounded loop over one target's cases that times each case and sorts
 * its outcome. Case `i` of a target draws everything from `caseSeed(seed, target, i)`, so any case
 * can be rerun alone (`npm run fuzz -- --target rtp --case 1234`). Targets with state across cases
 * (the API's Redis) replay the input exactly but not the state it met.
 *
 * A synchronous case is measured when it returns: one that never returns (an infinite loop) stalls
 * the run rather than being reported, since nothing in-process can interrupt it.
 */

/** How the code under test answered one input. */
export type Verdict =
  /** It took the input (and the target's sanity checks on the result held). */
  | 'accepted'
  /** It refused the input the documented way: a typed error, a `Parsed` failure, a 4xx with a CG_ code. */
  | 'rejected';

/** A broken sanity check on an accepted input, or an answer outside the contract (an HTTP 5xx). */
export class InvariantViolation extends Error {
  override name = 'InvariantViolation';
}

/** Throws InvariantViolation with `message` unless `condition` holds. */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantViolation(message);
}

/** One target, opened once per run. */
export interface FuzzHarness<I> {
  /** Case input from the case's own Rng: usually a mutated seed, sometimes pure noise. */
  generate(rng: Rng): I;
  /** Runs one case. Throws whatever the code under test threw; sanity checks throw InvariantViolation. */
  run(input: I): Verdict | Promise<Verdict>;
  /**
   * Whether a thrown error is one the module raises on purpose. Defaults to CallgateError (and its
   * subclasses); parsers documented never to throw say `() => false`.
   */
  isTyped?(err: unknown): boolean;
  /** A short, printable form of the input for crash reports. */
  describe(input: I): string;
  close?(): Promise<void>;
}

export interface FuzzTarget<I = unknown> {
  readonly name: string;
  /** What it covers, for `--list`. */
  readonly about: string;
  /**
   * Fewer cases than a run's count, for a target that drives live servers (each case a whole SIP call):
   * `npm run fuzz` takes the smaller number, full or `--quick`; an explicit `--cases` is taken as given.
   */
  readonly caseLimit?: { readonly full: number; readonly quick: number };
  open(): Promise<FuzzHarness<I>>;
}

export interface EngineOptions {
  readonly seed: number;
  readonly cases: number;
  /**
   * A synchronous case that uses more CPU than this is a hang. CPU time rather than wall time, so a
   * busy machine (other test runs on the same two cores) does not turn a slow scheduler into a finding.
   */
  readonly caseTimeoutMs: number;
  /** An async case (HTTP on Redis) with no answer within this wall time is a hang, and is cut off. */
  readonly asyncTimeoutMs: number;
  /** Distinct crashes kept per target for the report; every crash is counted. */
  readonly maxSamples: number;
  /** Run only this case index (replay); `cases` is ignored. */
  readonly onlyCase: number | undefined;
  /** Called with each new distinct crash as it is found. */
  readonly onCrash: ((target: string, sample: CrashSample) => void) | undefined;
  /** Called with every case's input before it runs (for replays: see what case N is). */
  readonly onInput: ((target: string, index: number, input: string) => void) | undefined;
}

export const defaultEngineOptions = {
  /** 1: fixed, so two runs of the same code see the same inputs. */
  seed: 1,
  cases: 1000,
  /** 1000 ms: every target handles one input in about a millisecond or less; a second is a hang. */
  caseTimeoutMs: 1000,
  /** 5000 ms: one request is ~1 ms against Redis; the margin is for a loaded machine, not for slow code. */
  asyncTimeoutMs: 5000,
  maxSamples: 5,
  onlyCase: undefined,
  onCrash: undefined,
  onInput: undefined,
} as const satisfies EngineOptions;

export type CrashKind = 'error' | 'invariant' | 'hang';

export interface CrashSample {
  readonly case: number;
  readonly kind: CrashKind;
  /** `Name: message` (first line, shortened). */
  readonly error: string;
  /** First stack frame, so samples of one bug group together. */
  readonly at: string;
  readonly input: string;
  /** Crashes with the same kind, error name and frame. */
  count: number;
}

export interface TargetReport {
  readonly target: string;
  readonly seed: number;
  readonly cases: number;
  readonly crashes: number;
  readonly typedErrors: number;
  readonly accepted: number;
  /** Wall time of the slowest case, and which case it was (to rerun it with --case). */
  readonly maxCaseMs: number;
  readonly slowestCase: number;
  readonly durationMs: number;
  readonly samples: CrashSample[];
}

class CaseTimeout extends Error {
  override name = 'CaseTimeout';
}

/** Opens `target`, runs its cases, closes it. */
export async function runTarget<I>(target: FuzzTarget<I>, options: Partial<EngineOptions> = {}): Promise<TargetReport> {
  const o: EngineOptions = { ...defaultEngineOptions, ...options };
  const started = performance.now();
  const harness = await target.open();
  const isTyped = harness.isTyped?.bind(harness) ?? isCallgateError;
  const samples = new Map<string, CrashSample>();
  let cases = 0;
  let crashes = 0;
  let typedErrors = 0;
  let accepted = 0;
  let maxCaseMs = 0;
  let slowestCase = 0;

  const crash = (index: number, kind: CrashKind, err: unknown, input: I): void => {
    crashes++;
    const e = err instanceof Error ? err : new Error(String(err));
    const at = firstFrame(e);
    const key = `${kind}|${e.name}|${kind === 'invariant' ? e.message : at}`;
    const seen = samples.get(key);
    if (seen) {
      seen.count++;
      return;
    }
    if (samples.size >= o.maxSamples) return;
    const sample: CrashSample = { case: index, kind, error: shorten(`${e.name}: ${e.message.split('\n')[0]}`, 240), at, input: safeDescribe(harness, input), count: 1 };
    samples.set(key, sample);
    o.onCrash?.(target.name, sample);
  };

  try {
    const first = o.onlyCase ?? 0;
    const end = o.onlyCase === undefined ? o.cases : o.onlyCase + 1;
    for (let index = first; index < end; index++) {
      const input = harness.generate(new Rng(caseSeed(o.seed, target.name, index)));
      cases++;
      o.onInput?.(target.name, index, safeDescribe(harness, input, 4000));
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      let verdict: Verdict | undefined;
      let thrown: unknown;
      let failed = false;
      let async = false;
      try {
        const result = harness.run(input);
        async = result instanceof Promise;
        verdict = result instanceof Promise ? await withTimeout(result, o.asyncTimeoutMs) : result;
      } catch (err) {
        thrown = err;
        failed = true;
      }
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const cpuMs = (cpu.user + cpu.system) / 1000;
      if (ms > maxCaseMs) {
        maxCaseMs = ms;
        slowestCase = index;
      }

      if (thrown instanceof CaseTimeout) {
        crash(index, 'hang', thrown, input);
      } else if (!async && cpuMs > o.caseTimeoutMs) {
        crash(index, 'hang', new CaseTimeout(`case used ${cpuMs.toFixed(0)} ms of CPU (bound ${o.caseTimeoutMs} ms)`), input);
      } else if (!failed) {
        if (verdict === 'accepted') accepted++;
        else typedErrors++;
      } else if (thrown instanceof InvariantViolation) {
        crash(index, 'invariant', thrown, input);
      } else if (isTyped(thrown)) {
        typedErrors++;
      } else {
        crash(index, 'error', thrown, input);
      }
    }
  } finally {
    await harness.close?.();
  }
  return {
    target: target.name,
    seed: o.seed,
    cases,
    crashes,
    typedErrors,
    accepted,
    maxCaseMs: round(maxCaseMs),
    slowestCase,
    durationMs: round(performance.now() - started),
    samples: [...samples.values()],
  };
}

/**
 * Cuts an async case off at `ms`. The case's promise is left to settle on its own: a request that
 * never ends is already reported, and waiting for it would stop the run.
 */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CaseTimeout(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function firstFrame(e: Error): string {
  const frames = (e.stack ?? '').split('\n').filter((l) => l.trimStart().startsWith('at '));
  // The first frame in project code says where the bug is; node_modules frames only say which library tripped.
  const own = frames.find((f) => !f.includes('node_modules') && !f.includes('node:')) ?? frames[0] ?? '';
  return shorten(own.trim().replace(/^at /, '').replace(/\(?(?:file:\/\/)?\/[^()]*?\/(src|fuzz)\//, '$1/').replace(/\)$/, ''), 200);
}

function safeDescribe<I>(harness: FuzzHarness<I>, input: I, max = 400): string {
  try {
    return shorten(harness.describe(input), max);
  } catch (err) {
    return `(describe failed: ${String(err)})`;
  }
}

export function shorten(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length} chars)`;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** A printable preview of bytes: hex of the start, and the length. */
export function describeBytes(b: Uint8Array, max = 96): string {
  const hex = Buffer.from(b.buffer, b.byteOffset, Math.min(b.length, max)).toString('hex');
  return `${b.length} bytes: ${hex}${b.length > max ? '…' : ''}`;
}

/** A printable preview of text: JSON-escaped, so NULs and line ends show. */
export function describeText(s: string, max = 300): string {
  return `${s.length} chars: ${JSON.stringify(s.length > max ? s.slice(0, max) : s)}${s.length > max ? '…' : ''}`;
}
