import { describe, expect, it } from 'vitest';
import { OVERFLOW_SOURCE, SourceLimiter, defaultSourceLimiterOptions } from './SourceLimiter.js';

/** A limiter on a clock the test moves by hand. */
function setup(options: ConstructorParameters<typeof SourceLimiter>[0] = {}): { limiter: SourceLimiter; clock: { t: number } } {
  const clock = { t: 1_000 };
  return { limiter: new SourceLimiter(options, () => clock.t), clock };
}

/** How many of `n` INVITEs from `source` at the current time are allowed. */
const allowedOf = (limiter: SourceLimiter, source: string, n: number): number => {
  let allowed = 0;
  for (let i = 0; i < n; i++) if (limiter.take(source).allowed) allowed++;
  return allowed;
};

describe('SourceLimiter', () => {
  it('lets a burst through, then refills at the sustained rate', () => {
    const { limiter, clock } = setup({ invitesPerSecond: 10, burst: 30 });
    expect(allowedOf(limiter, '192.0.2.1', 100)).toBe(30);
    // 250 ms at 10/s: two and a half tokens, two whole INVITEs.
    clock.t += 250;
    expect(allowedOf(limiter, '192.0.2.1', 10)).toBe(2);
    // The half token carries over: 50 ms more makes it whole.
    clock.t += 50;
    expect(allowedOf(limiter, '192.0.2.1', 10)).toBe(1);
    // A long pause refills to the burst, never beyond it.
    clock.t += 60_000;
    expect(allowedOf(limiter, '192.0.2.1', 100)).toBe(30);
  });

  it('keeps each source to its own bucket', () => {
    const { limiter } = setup({ invitesPerSecond: 1, burst: 2 });
    expect(allowedOf(limiter, '192.0.2.1', 50)).toBe(2);
    expect(allowedOf(limiter, '192.0.2.2', 50)).toBe(2);
  });

  it('says when to retry (whole seconds, at least 1) and reports once per window with the count since the last report', () => {
    const { limiter, clock } = setup({ invitesPerSecond: 0.25, burst: 1, reportWindowMs: 10_000 });
    expect(limiter.take('a').allowed).toBe(true);
    const first = limiter.take('a');
    // One token at 0.25/s takes 4 s.
    expect(first).toEqual({ allowed: false, bucket: 'a', retryAfterS: 4, report: 1 });
    for (let i = 0; i < 9; i++) expect(limiter.take('a')).toMatchObject({ allowed: false, report: undefined });
    clock.t += 1000; // a quarter of a token back: three seconds to go
    expect(limiter.take('a')).toMatchObject({ retryAfterS: 3, report: undefined });
    clock.t += 9_000; // the window has passed: the next refusal reports the ones in between
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a')).toMatchObject({ allowed: false, report: 11 });
  });

  it('forgets a source once idle, and never before its bucket would be full again', () => {
    const { limiter, clock } = setup({ invitesPerSecond: 1, burst: 10, idleMs: 1_000 });
    allowedOf(limiter, 'a', 20);
    expect(limiter.tracks('a')).toBe(true);
    // idleMs is 1 s, but the bucket takes 10 s to refill: forgetting it at 5 s would give 10 tokens, not 5.
    clock.t += 5_000;
    limiter.take('b');
    expect(limiter.tracks('a')).toBe(true);
    expect(allowedOf(limiter, 'a', 20)).toBe(5);
    clock.t += 10_000;
    limiter.take('b');
    expect(limiter.tracks('a')).toBe(false);
    expect(limiter.size).toBe(1);
  });

  it('tracks at most maxSources; later sources share one overflow bucket while tracked ones keep theirs', () => {
    const { limiter, clock } = setup({ invitesPerSecond: 1, burst: 3, maxSources: 100, idleMs: 60_000 });
    expect(allowedOf(limiter, 'trunk', 1)).toBe(1);
    // A spoofed flood: 10 000 distinct addresses, one INVITE each.
    let allowed = 0;
    for (let i = 0; i < 10_000; i++) if (limiter.take(`10.0.${i >> 8}.${i & 255}`).allowed) allowed++;
    // 99 got entries of their own (the trunk holds the 100th); the rest shared 3 tokens.
    expect(allowed).toBe(99 + 3);
    expect(limiter.size).toBe(101);
    expect(limiter.tracks(OVERFLOW_SOURCE)).toBe(true);
    expect(limiter.take('203.0.113.9')).toMatchObject({ allowed: false, bucket: OVERFLOW_SOURCE });
    // The trunk's own bucket is untouched by the flood.
    expect(allowedOf(limiter, 'trunk', 10)).toBe(2);
    // Once the flood's entries go idle they are forgotten and new sources are tracked again.
    clock.t += 60_000;
    expect(limiter.take('203.0.113.9')).toMatchObject({ allowed: true });
    expect(limiter.tracks('203.0.113.9')).toBe(true);
    expect(limiter.size).toBe(1);
  });

  it('uses the documented defaults and refuses nonsense options', () => {
    expect(new SourceLimiter().options).toEqual(defaultSourceLimiterOptions);
    expect(new SourceLimiter({ invitesPerSecond: undefined as unknown as number }).options.invitesPerSecond).toBe(10);
    expect(() => new SourceLimiter({ invitesPerSecond: 0 })).toThrow(RangeError);
    expect(() => new SourceLimiter({ burst: 0.5 })).toThrow(RangeError);
  });
});
