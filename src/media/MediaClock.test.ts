import { describe, expect, it } from 'vitest';
import { MediaClock, type ClockTick, LATENESS_BUCKETS_MS } from './MediaClock.js';
import { seededRandom } from '../util/random.js';
import { VirtualTimers } from './testing/VirtualTimers.js';

describe('MediaClock (virtual time)', () => {
  it('stays on schedule for 10 simulated minutes with 0–8 ms random timer lateness', () => {
    const rand = seededRandom(42);
    const timers = new VirtualTimers(() => rand() * 8);
    const clock = new MediaClock({ timers });
    const start = timers.now();
    const sendTimes: number[] = [];
    const unsubscribe = clock.subscribe(() => sendTimes.push(timers.now()));
    timers.advance(600_000 + 10);

    // One tick per 20 ms: 30 000 in 10 minutes, none lost and none extra.
    expect(sendTimes.length).toBe(30_000);
    const last = sendTimes[sendTimes.length - 1]!;
    const drift = last - (start + 30_000 * 20);
    expect(drift).toBeGreaterThanOrEqual(0);
    expect(drift).toBeLessThan(20);
    // Lateness never accumulates: every tick is within one timer's lateness of its own deadline.
    let worst = 0;
    for (let n = 0; n < sendTimes.length; n++) worst = Math.max(worst, sendTimes[n]! - (start + (n + 1) * 20));
    expect(worst).toBeLessThan(8);
    const stats = clock.stats();
    expect(stats.ticks).toBe(30_000);
    expect(stats.catchUpTicks).toBe(0);
    expect(stats.latenessMaxMs).toBeLessThan(8);
    unsubscribe();
    console.log(`[MediaClock] simulated 10 min, lateness U(0,8) ms: end drift ${drift.toFixed(3)} ms, worst tick ${worst.toFixed(3)} ms`);
  });

  it('the same lateness makes a naive re-arm-after-each-tick timer drift by minutes (the test can tell)', () => {
    const rand = seededRandom(42);
    const timers = new VirtualTimers(() => rand() * 8);
    const start = timers.now();
    let ticks = 0;
    let last = start;
    const naive = (): void => {
      ticks++;
      last = timers.now();
      if (ticks < 30_000) timers.setTimeout(naive, 20);
    };
    timers.setTimeout(naive, 20);
    timers.advance(2 * 600_000);
    expect(last - (start + 30_000 * 20)).toBeGreaterThan(60_000);
  });

  it('polls with setImmediate only for the last spinMs of each wait', () => {
    const timers = new VirtualTimers();
    const clock = new MediaClock({ timers, spinMs: 1 });
    const lates: number[] = [];
    clock.subscribe((t) => lates.push(t.lateMs));
    timers.advance(1005);
    expect(lates.length).toBe(50);
    // With exact timers, polling lands every tick within one poll step (5 µs) of its deadline.
    expect(Math.max(...lates)).toBeLessThanOrEqual(0.005 + 1e-9);
    // The poll window is spinMs ± 0.5 ms (setTimeout counts whole ms): ≤ 1.5 ms at 5 µs per poll.
    expect(timers.immediatesSet / 50).toBeLessThanOrEqual(301);
    expect(timers.timeoutsSet).toBe(51); // one per tick, plus the one pending for tick 51
    clock.stop();
  });

  it('without polling (spinMs 0) each tick fires on its timeout, never early', () => {
    const timers = new VirtualTimers(() => 0.5);
    const clock = new MediaClock({ timers, spinMs: 0 });
    const lates: number[] = [];
    clock.subscribe((t) => lates.push(t.lateMs));
    timers.advance(1005);
    expect(lates.length).toBe(50);
    expect(Math.min(...lates)).toBeGreaterThanOrEqual(0);
    expect(timers.immediatesSet).toBe(0);
    clock.stop();
  });

  it('runs every missed tick at once after a stall, oldest first, with due/late info', () => {
    const timers = new VirtualTimers();
    const clock = new MediaClock({ timers });
    const ticks: (ClockTick & { at: number })[] = [];
    clock.subscribe((t) => ticks.push({ ...t, at: timers.now() }));
    timers.advance(105); // 5 ticks on time
    expect(ticks.length).toBe(5);
    // The timeout armed by the next tick (due 1120) fires 75 ms late: the loop was blocked.
    timers.stallNext = 75;
    timers.advance(250);
    const burst = ticks.filter((t) => t.lateMs >= 10);
    expect(burst.map((t) => t.index)).toEqual([6, 7, 8, 9]);
    expect(burst.map((t) => t.behind)).toEqual([3, 2, 1, 0]);
    expect(new Set(burst.map((t) => t.at)).size).toBe(1); // all at once
    expect(burst[0]!.lateMs).toBeGreaterThan(60);
    expect(burst[3]!.lateMs).toBeLessThan(20);
    // Nothing lost, and deadlines stay on the original grid after the burst.
    expect(ticks.map((t) => t.index)).toEqual([...Array(17).keys()]);
    for (const t of ticks) expect(t.dueAt).toBeCloseTo(1000 + (t.index + 1) * 20, 9);
    expect(ticks.at(-1)!.lateMs).toBeLessThan(0.01);
    expect(clock.stats().catchUpTicks).toBe(3);
    clock.stop();
  });

  it('re-anchors after a stall longer than maxCatchUpTicks and counts the skipped ticks', () => {
    const timers = new VirtualTimers();
    const clock = new MediaClock({ timers, maxCatchUpTicks: 10 });
    const ticks: ClockTick[] = [];
    clock.subscribe((t) => ticks.push(t));
    timers.advance(25); // tick 0 at 1020
    // The timeout armed by tick 1 (at 1040) fires 500 ms late, at ~1559: ticks 2..26 (25) are owed.
    timers.stallNext = 500;
    timers.advance(600);
    const stats = clock.stats();
    // 10 ran in the burst, the other 15 were skipped; the schedule restarted one interval after the burst.
    expect(stats.skippedTicks).toBe(15);
    const burst = ticks.filter((t) => t.lateMs >= 20);
    expect(burst.map((t) => t.index)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const after = ticks[12]!;
    expect(after.index).toBe(12);
    expect(after.dueAt).toBeCloseTo(1560, 9);
    expect(after.lateMs).toBeLessThan(0.01);
    clock.stop();
  });

  it('holds a timer only while it has subscribers', () => {
    const timers = new VirtualTimers();
    const clock = new MediaClock({ timers });
    expect(clock.running).toBe(false);
    expect(timers.pending.size).toBe(0);
    let a = 0;
    let b = 0;
    const unA = clock.subscribe(() => a++);
    const unB = clock.subscribe(() => b++);
    expect(clock.running).toBe(true);
    timers.advance(105);
    expect([a, b]).toEqual([5, 5]);
    unA();
    unA(); // idempotent
    expect(clock.subscriberCount).toBe(1);
    timers.advance(100);
    expect([a, b]).toEqual([5, 10]);
    unB();
    expect(clock.subscriberCount).toBe(0);
    expect(clock.running).toBe(false);
    expect(timers.pending.size).toBe(0);
    // A new subscriber starts a fresh schedule from now.
    const unC = clock.subscribe(() => a++);
    timers.advance(45);
    expect(a).toBe(7);
    unC();
    expect(timers.pending.size).toBe(0);
  });

  it('handles (un)subscribing from inside a tick', () => {
    const timers = new VirtualTimers();
    const clock = new MediaClock({ timers });
    const calls: string[] = [];
    let unB: () => void = () => undefined;
    const unA = clock.subscribe((t) => {
      calls.push(`a${t.index}`);
      if (t.index === 0) {
        unB(); // removed before its turn in this tick: must not be called
        clock.subscribe((t2) => calls.push(`c${t2.index}`)); // joins from the next tick
      }
    });
    unB = clock.subscribe((t) => calls.push(`b${t.index}`));
    timers.advance(45);
    expect(calls).toEqual(['a0', 'a1', 'c1']);
    unA();
    clock.stop();
    expect(timers.pending.size).toBe(0);
  });

  it('keeps ticking for the others when a subscriber throws', () => {
    const timers = new VirtualTimers();
    const errors: unknown[] = [];
    const clock = new MediaClock({ timers, onSubscriberError: (e) => errors.push(e) });
    let ok = 0;
    clock.subscribe(() => {
      throw new Error('boom');
    });
    clock.subscribe(() => ok++);
    timers.advance(65);
    expect(ok).toBe(3);
    expect(errors.length).toBe(3);
    expect(clock.stats().subscriberErrors).toBe(3);
    clock.stop();
  });

  it('reports a lateness histogram and percentiles', () => {
    let i = 0;
    // Every 10th timeout is 6 ms late, the rest exact.
    const timers = new VirtualTimers(() => (i++ % 10 === 9 ? 6 : 0));
    const clock = new MediaClock({ timers, spinMs: 0 });
    clock.subscribe(() => undefined);
    timers.advance(2010);
    const s = clock.stats();
    expect(s.ticks).toBe(100);
    expect(s.latenessHistogram.reduce((x, y) => x + y, 0)).toBe(100);
    expect(s.latenessBucketsMs).toBe(LATENESS_BUCKETS_MS);
    const bucket8 = LATENESS_BUCKETS_MS.indexOf(8);
    expect(s.latenessHistogram[bucket8]).toBe(10);
    expect(s.latenessP50Ms).toBe(0);
    expect(s.latenessP99Ms).toBe(6);
    expect(s.intervalErrorP99Ms).toBe(6);
    clock.stop();
  });
});

describe('MediaClock (real time)', () => {
  it('unrefs its timer and clears it when the last subscriber leaves', async () => {
    const clock = new MediaClock();
    let n = 0;
    const un = clock.subscribe(() => n++);
    const handle = (clock as unknown as { timeout: NodeJS.Timeout | undefined }).timeout;
    expect(handle?.hasRef()).toBe(false);
    await new Promise((r) => setTimeout(r, 110));
    expect(n).toBeGreaterThanOrEqual(4);
    un();
    expect(clock.running).toBe(false);
    const before = n;
    await new Promise((r) => setTimeout(r, 60));
    expect(n).toBe(before);
  });
});
