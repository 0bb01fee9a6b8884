import { describe, expect, it } from 'vitest';
import { CallgateError } from '../../src/errors.js';
import { check, runTarget, type FuzzTarget, type Verdict } from '../../fuzz/engine.js';
import { mutateBytes, Rng } from '../../fuzz/mutate.js';
import { fuzzTargets } from '../../fuzz/registry.js';

/**
 * Every fuzz target through the same engine `npm run fuzz` uses, with a small fixed seed and count:
 * the inputs that once crashed project code are regenerated here on every test run. The engine's
 * classifier is checked against targets that crash on purpose, so a zero above means something.
 */
const CASES = 1500;
const SEED = 1;

describe('fuzz targets (seed 1, 1500 cases each)', () => {
  for (const target of fuzzTargets) {
    it(`${target.name}: no crashes, and both accepted and refused inputs`, async () => {
      const report = await runTarget(target, { seed: SEED, cases: CASES });
      expect(report.samples).toEqual([]);
      expect(report.crashes).toBe(0);
      expect(report.cases).toBe(CASES);
      expect(report.accepted + report.typedErrors).toBe(CASES);
      // A target whose every input is refused (or accepted) is not reaching the code behind the first check.
      expect(report.accepted).toBeGreaterThan(0);
      expect(report.typedErrors).toBeGreaterThan(0);
    });
  }
});

/** A target over numbers 0..99 whose run does what `behave` says for each. */
function toyTarget(name: string, behave: (n: number) => Verdict | Promise<Verdict>): FuzzTarget<number> {
  return {
    name,
    about: 'test target',
    async open() {
      return { generate: (rng: Rng) => rng.int(100), run: behave, describe: (n: number) => `n=${n}` };
    },
  };
}

describe('fuzz engine: classification', () => {
  it('counts typed errors as refusals and anything else thrown as a crash, with a replayable sample', async () => {
    const report = await runTarget(
      toyTarget('classify', (n) => {
        if (n < 10) throw new CallgateError('CG_SDP_MALFORMED', 'typed');
        if (n < 20) {
          const missing = undefined as unknown as { x: () => void };
          missing.x(); // a real TypeError, as project code would throw it
        }
        return 'accepted';
      }),
      { seed: 3, cases: 400 },
    );
    expect(report.crashes).toBeGreaterThan(0);
    expect(report.typedErrors).toBeGreaterThan(0);
    expect(report.accepted + report.typedErrors + report.crashes).toBe(400);
    expect(report.samples).toHaveLength(1);
    const sample = report.samples[0]!;
    expect(sample).toMatchObject({ kind: 'error', count: report.crashes });
    expect(sample.error).toMatch(/^TypeError: /);
    expect(sample.input).toMatch(/^n=1\d$/);
    // The sample's case index regenerates the same input alone. The inputs are collected and checked
    // after the run: an expect() inside the target would throw into the engine, which counts it as a
    // crash and carries on, so its failure would never reach this test.
    const replayed: string[] = [];
    const replay = await runTarget(
      toyTarget('classify', (n) => {
        replayed.push(`n=${n}`);
        return 'accepted';
      }),
      { seed: 3, onlyCase: sample.case },
    );
    expect(replayed).toEqual([sample.input]);
    expect(replay).toMatchObject({ cases: 1, accepted: 1, crashes: 0 });
  });

  it('reports a broken invariant, and a parser documented never to throw that throws a typed error', async () => {
    const invariant = await runTarget(
      toyTarget('invariant', (n) => {
        check(n !== 42, `n is ${n}`);
        return 'accepted';
      }),
      { cases: 2000 },
    );
    expect(invariant.crashes).toBeGreaterThan(0);
    expect(invariant.samples[0]).toMatchObject({ kind: 'invariant', error: 'InvariantViolation: n is 42' });

    const neverThrows: FuzzTarget<number> = {
      name: 'never-throws',
      about: 'test target',
      async open() {
        return {
          generate: (rng: Rng) => rng.int(2),
          run: (n: number): Verdict => {
            if (n === 0) throw new CallgateError('CG_RTP_TOO_SHORT');
            return 'rejected';
          },
          isTyped: () => false,
          describe: String,
        };
      },
    };
    const strict = await runTarget(neverThrows, { cases: 100 });
    expect(strict.crashes).toBeGreaterThan(0);
    expect(strict.samples[0]!.error).toMatch(/^CallgateError: /);
  });

  it('reports a case that burns CPU past the bound, and an async case that never answers, as hangs', async () => {
    const spin = await runTarget(
      toyTarget('spin', (n) => {
        if (n === 7) {
          // Burn 60 ms of CPU (not wall time: the bound is on CPU), as a super-linear parser would.
          const start = process.cpuUsage();
          const used = (): number => {
            const d = process.cpuUsage(start);
            return (d.user + d.system) / 1000;
          };
          while (used() < 60) {
            // spin
          }
        }
        return 'accepted';
      }),
      { cases: 300, caseTimeoutMs: 25 },
    );
    expect(spin.crashes).toBeGreaterThan(0);
    expect(spin.samples[0]).toMatchObject({ kind: 'hang', input: 'n=7' });
    expect(spin.samples[0]!.error).toMatch(/ms of CPU \(bound 25 ms\)/);

    const silent = await runTarget(
      toyTarget('silent', (n) => (n === 7 ? new Promise<Verdict>(() => {}) : Promise.resolve('accepted'))),
      { cases: 200, asyncTimeoutMs: 50 },
    );
    expect(silent.crashes).toBeGreaterThan(0);
    expect(silent.samples[0]).toMatchObject({ kind: 'hang', input: 'n=7' });
    expect(silent.samples[0]!.error).toMatch(/no answer within 50 ms/);
  });

  it('never changes a seed: mutants of a Buffer (whose slice() is a view) leave it as it was', () => {
    const seed = Buffer.from(Array.from({ length: 64 }, (_, i) => i));
    const before = Buffer.from(seed);
    for (let i = 0; i < 2000; i++) mutateBytes(new Rng(i), seed, { others: [seed] });
    expect(seed.equals(before)).toBe(true);
  });

  it('is deterministic for a seed: the same inputs and verdicts again, others for another seed', async () => {
    const rtp = fuzzTargets.find((t) => t.name === 'rtp')!;
    const a = await runTarget(rtp, { seed: 11, cases: 500 });
    const b = await runTarget(rtp, { seed: 11, cases: 500 });
    const c = await runTarget(rtp, { seed: 12, cases: 500 });
    expect([b.accepted, b.typedErrors]).toEqual([a.accepted, a.typedErrors]);
    expect([c.accepted, c.typedErrors]).not.toEqual([a.accepted, a.typedErrors]);
  });
});
