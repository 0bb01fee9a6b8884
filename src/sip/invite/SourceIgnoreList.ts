import { stripUndefined } from '../../util/options.js';

/**
 * Sources that keep sending INVITEs we refuse are ignored for a while: their INVITEs get no answer
 * of ours, no Redis lookup, no log line — one map lookup each. Issue 24 measured a scanner sending
 * 180 INVITEs a second for two minutes: every one was refused, and every refusal cost a response (and
 * before the rate limit, a Redis lookup).
 *
 * What counts is what only an unwelcome source earns: INVITEs from a known scanner, and 403s of the
 * source check (no trunk covers the address, digest answers that fail, a locked-out username, a bad
 * call token). Refusals of a source already identified — an unknown number (404), a busy tenant (486),
 * its own rate limit (503) — do not count: a carrier misrouting numbers, or briefly over its rate, must
 * not have every call dropped. Kept per process (each gateway learns on its own within the window):
 * cluster-wide state would cost a Redis round trip per INVITE, which is what this avoids.
 *
 * Memory stays bounded: at most `maxSources` counting entries and as many ignored ones, the oldest
 * dropped first (a flood of spoofed addresses can at worst push a real scanner off the list early).
 */
export interface SourceIgnoreOptions {
  /** Counted refusals within `windowMs` that put a source on the list. */
  readonly refusals: number;
  /** How long refusals are counted towards that (a fixed window from the first). */
  readonly windowMs: number;
  /** How long a source stays ignored (the cool-down). It is not extended by what it sends meanwhile. */
  readonly ignoreMs: number;
  /** Most sources counted, and most ignored, at once. */
  readonly maxSources: number;
}

export const defaultSourceIgnoreOptions = {
  /**
   * 100: far above what a real device or trunk earns (a desk phone with a wrong password is locked out
   * after 5; a new carrier not yet configured gets its 403s within the per-source rate), reached
   * within seconds by a scanner or a guesser.
   */
  refusals: 100,
  /** 60 s: at the default INVITE rate (10/s) a source refused every time reaches 100 in about 10 s. */
  windowMs: 60_000,
  /**
   * 10 minutes: long enough that a scanner's run is mostly unanswered, short enough that a trunk
   * configured for an address that was being ignored is heard again soon (or restart the gateway).
   */
  ignoreMs: 10 * 60_000,
  /** 10 000, as the per-source rate limiter's table: about a megabyte at most. */
  maxSources: 10_000,
} as const satisfies SourceIgnoreOptions;

interface Count {
  start: number;
  refused: number;
}

export class SourceIgnoreList {
  readonly options: SourceIgnoreOptions;
  /** Insertion order is age order: the first entries are the oldest, dropped when full. */
  private readonly counts = new Map<string, Count>();
  /** Source → when its cool-down ends. */
  private readonly ignored = new Map<string, number>();

  constructor(
    options: Partial<SourceIgnoreOptions> = {},
    /** Milliseconds, monotonic; injected by tests. */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.options = { ...defaultSourceIgnoreOptions, ...stripUndefined(options) };
    const { refusals, windowMs, ignoreMs, maxSources } = this.options;
    if (!(refusals >= 1) || !(windowMs > 0) || !(ignoreMs >= 0) || !(maxSources >= 1)) {
      throw new RangeError(`SourceIgnoreList: refusals, maxSources ≥ 1, windowMs > 0, ignoreMs ≥ 0 (got ${refusals}, ${windowMs}, ${ignoreMs}, ${maxSources})`);
    }
  }

  /** Whether INVITEs from `source` are to be dropped unanswered now. */
  isIgnored(source: string, now: number = this.now()): boolean {
    const until = this.ignored.get(source);
    if (until === undefined) return false;
    if (now < until) return true;
    this.ignored.delete(source);
    return false;
  }

  /** Counts one refusal of `source`; true when this one put it on the list. */
  refused(source: string, now: number = this.now()): boolean {
    if (this.options.ignoreMs === 0) return false;
    let count = this.counts.get(source);
    if (!count || now - count.start >= this.options.windowMs) {
      this.counts.delete(source);
      count = { start: now, refused: 0 };
      if (this.counts.size >= this.options.maxSources) this.dropOldest(this.counts);
      this.counts.set(source, count);
    }
    count.refused++;
    if (count.refused < this.options.refusals) return false;
    this.counts.delete(source);
    this.ignored.delete(source);
    if (this.ignored.size >= this.options.maxSources) this.dropOldest(this.ignored);
    this.ignored.set(source, now + this.options.ignoreMs);
    return true;
  }

  /** Sources ignored now (expired entries are dropped as they are looked up, or when the list is full). */
  get size(): number {
    return this.ignored.size;
  }

  /** Takes `source` off the list and forgets its count (an operator, or a trunk just configured for it). */
  forgive(source: string): void {
    this.ignored.delete(source);
    this.counts.delete(source);
  }

  private dropOldest(map: Map<string, unknown>): void {
    const oldest = map.keys().next();
    if (!oldest.done) map.delete(oldest.value);
  }
}
