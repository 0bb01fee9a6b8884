import { parseArgs } from 'node:util';
import { defaultEngineOptions, runTarget, type CrashSample, type TargetReport } from './engine.js';
import { fuzzTargets } from './registry.js';

/**
 * `npm run fuzz`: every target (or `--target name`), seeded and bounded, one JSON line at the end.
 *
 *   npm run fuzz                         100 000 cases per target, seed 1
 *   npm run fuzz -- --quick              a smoke run that finishes in under a minute on 2 cores
 *   npm run fuzz -- --seed 7 --cases 5000 --target sdp,pcap
 *   npm run fuzz -- --target rtp --case 1234   replay one case (its input is printed with any crash)
 *   npm run fuzz -- --list
 *
 * Exit code 1 when any case crashed, 2 for bad arguments.
 */
export interface FuzzRunOptions {
  readonly seed: number;
  /** Cases per target in a full run. */
  readonly fullCases: number;
  /** Cases per target in a --quick run. */
  readonly quickCases: number;
  readonly caseTimeoutMs: number;
  readonly asyncTimeoutMs: number;
}

export const defaultFuzzRunOptions = {
  seed: defaultEngineOptions.seed,
  /** 100 000: the figure; see /work/notes/fuzz-figures.md for how long a full run takes. */
  fullCases: 100_000,
  /**
   * 4 000: about 30 s for all nine targets on a 2-core machine (the dialplan's YAML at ~6 ms a case
   * and the API at ~2 ms a request take most of it), leaving room under the 60 s the issue allows.
   */
  quickCases: 4_000,
  caseTimeoutMs: defaultEngineOptions.caseTimeoutMs,
  asyncTimeoutMs: defaultEngineOptions.asyncTimeoutMs,
} as const satisfies FuzzRunOptions;

function usage(message: string): never {
  process.stderr.write(`fuzz: ${message}\nusage: npm run fuzz -- [--quick] [--seed N] [--cases N] [--target a,b] [--case N] [--list]\n`);
  process.exit(2);
}

function integer(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) usage(`--${name} must be a whole number ≥ 0, got ${JSON.stringify(value)}`);
  return n;
}

async function main(): Promise<void> {
  // Libraries warn through process warnings (yaml: "keys with collection values will be stringified")
  // once per odd input; thousands of them would bury the report. Counted instead of printed.
  let warnings = 0;
  process.removeAllListeners('warning');
  process.on('warning', () => void warnings++);

  let args;
  try {
    args = parseArgs({
      options: {
        seed: { type: 'string' },
        cases: { type: 'string' },
        quick: { type: 'boolean', default: false },
        target: { type: 'string', multiple: true },
        case: { type: 'string' },
        list: { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    usage((err as Error).message);
  }
  if (args.list) {
    for (const t of fuzzTargets) process.stdout.write(`${t.name.padEnd(14)} ${t.about}\n`);
    return;
  }
  const o = defaultFuzzRunOptions;
  const seed = integer(args.seed, 'seed') ?? o.seed;
  const cases = integer(args.cases, 'cases');
  const onlyCase = integer(args.case, 'case');
  const names = (args.target ?? []).flatMap((t) => t.split(',')).filter((t) => t !== '');
  const unknown = names.filter((n) => !fuzzTargets.some((t) => t.name === n));
  if (unknown.length > 0) usage(`unknown target ${unknown.join(', ')} (known: ${fuzzTargets.map((t) => t.name).join(', ')})`);
  const targets = names.length > 0 ? fuzzTargets.filter((t) => names.includes(t.name)) : fuzzTargets;
  const mode = onlyCase !== undefined ? 'replay' : cases !== undefined ? 'custom' : args.quick ? 'quick' : 'full';

  const started = performance.now();
  const reports: TargetReport[] = [];
  for (const target of targets) {
    const count = cases ?? Math.min(args.quick ? o.quickCases : o.fullCases, (args.quick ? target.caseLimit?.quick : target.caseLimit?.full) ?? Infinity);
    const report = await runTarget(target, {
      seed,
      cases: count,
      caseTimeoutMs: o.caseTimeoutMs,
      asyncTimeoutMs: o.asyncTimeoutMs,
      onlyCase,
      onCrash: (name, sample) => process.stderr.write(formatCrash(name, seed, sample)),
      onInput: onlyCase === undefined ? undefined : (name, index, input) => process.stderr.write(`${name} case ${index}: ${input}\n`),
    });
    reports.push(report);
    process.stderr.write(
      `${report.target.padEnd(14)} ${String(report.cases).padStart(6)} cases  ${String(report.crashes).padStart(4)} crashes  ` +
        `${String(report.typedErrors).padStart(6)} typed  ${String(report.accepted).padStart(6)} accepted  max ${report.maxCaseMs} ms (case ${report.slowestCase})  ${(report.durationMs / 1000).toFixed(1)} s\n`,
    );
  }

  const crashes = reports.reduce((n, r) => n + r.crashes, 0);
  const summary = {
    mode,
    seed,
    cases: reports.reduce((n, r) => n + r.cases, 0),
    crashes,
    durationMs: Math.round(performance.now() - started),
    processWarnings: warnings,
    targets: Object.fromEntries(
      reports.map((r) => [
        r.target,
        {
          cases: r.cases,
          crashes: r.crashes,
          typedErrors: r.typedErrors,
          accepted: r.accepted,
          maxCaseMs: r.maxCaseMs,
          slowestCase: r.slowestCase,
          seed: r.seed,
          durationMs: Math.round(r.durationMs),
          ...(r.samples.length > 0 ? { samples: r.samples.slice(0, 3) } : {}),
        },
      ]),
    ),
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  if (crashes > 0) process.exitCode = 1;
}

function formatCrash(target: string, seed: number, s: CrashSample): string {
  return [
    `CRASH ${target} case ${s.case} (${s.kind}): ${s.error}`,
    `  at ${s.at}`,
    `  input ${s.input}`,
    `  replay: npm run fuzz -- --seed ${seed} --target ${target} --case ${s.case}`,
    '',
  ].join('\n');
}

await main();
// Live targets leave native threads behind (node-datachannel's, drachtio's sockets) that would keep
// the process up after its last line; the summary is written, so the run is over.
process.exit();
