import type { ClockTimers } from '../MediaClock.js';

/**
 * Virtual time: timeouts fire `lateness()` ms after their delay (Node never fires before 1 ms), an
 * immediate costs 5 µs of virtual time, and `stallNext` delays the next timeout to simulate a blocked loop.
 */
export class VirtualTimers implements ClockTimers {
  t: number;
  stallNext = 0;
  private seq = 0;
  readonly pending = new Map<number, { at: number; fn: () => void; kind: 'timeout' | 'immediate' }>();
  timeoutsSet = 0;
  immediatesSet = 0;

  /** `lateness` (ms) is added to every timeout; `start` is the virtual time the timers begin at. */
  constructor(
    private readonly lateness: () => number = () => 0,
    start = 1000,
  ) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): number {
    this.timeoutsSet++;
    const at = this.t + Math.max(1, ms) + this.lateness() + this.stallNext;
    this.stallNext = 0;
    this.pending.set(++this.seq, { at, fn, kind: 'timeout' });
    return this.seq;
  }
  clearTimeout(h: unknown): void {
    this.pending.delete(h as number);
  }
  setImmediate(fn: () => void): number {
    this.immediatesSet++;
    this.pending.set(++this.seq, { at: this.t + 0.005, fn, kind: 'immediate' });
    return this.seq;
  }
  clearImmediate(h: unknown): void {
    this.pending.delete(h as number);
  }
  /** Runs everything due up to `end` in time order; bounded so a runaway scheduler fails the test. */
  advanceTo(end: number, maxSteps = 10_000_000): void {
    for (let step = 0; step < maxSteps; step++) {
      let nextId = -1;
      let next: { at: number; fn: () => void } | undefined;
      for (const [id, p] of this.pending) {
        if (!next || p.at < next.at) {
          next = p;
          nextId = id;
        }
      }
      if (!next || next.at > end) {
        this.t = end;
        return;
      }
      this.pending.delete(nextId);
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    throw new Error('advanceTo: step limit reached');
  }
  advance(ms: number): void {
    this.advanceTo(this.t + ms);
  }
}
