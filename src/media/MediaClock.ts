import { performance } from 'node:perf_hooks';
import { percentile } from '../util/percentile.js';
import { FRAME_MS } from './types.js';

/**
 * One tick as a subscriber sees it. Deadlines are `origin + n·intervalMs` on the clock's monotonic time
 * base, so a late tick never pushes the ones after it: lateness is reported, not carried forward.
 */
export interface ClockTick {
  /** Ticks since this run of the clock started (0-based); ticks skipped by a re-anchor are not counted. */
  readonly index: number;
  /** When the tick was due, on the clock's time base (ms). */
  readonly dueAt: number;
  /** How late it is being run: now − dueAt (ms, ≥ 0). A catch-up tick after a stall is ≥ intervalMs late. */
  readonly lateMs: number;
  /** Further ticks already due behind this one: they run right after it, in the same burst. */
  readonly behind: number;
}

export type TickListener = (tick: ClockTick) => void;

/** A handle the timer functions return; opaque to the clock. */
export type TimerHandle = unknown;

/**
 * The time source and timer functions the clock uses. Injected so a test or a simulation can run ten
 * minutes of ticks in milliseconds with whatever lateness it likes.
 */
export interface ClockTimers {
  /** Monotonic milliseconds (never wall-clock time: NTP steps must not move the schedule). */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  setImmediate(fn: () => void): TimerHandle;
  clearImmediate(handle: TimerHandle): void;
}

export interface MediaClockOptions {
  readonly intervalMs: number;
  /**
   * The last part of each wait (spinMs ± 0.5 ms) is finished by polling with setImmediate instead of
   * trusting setTimeout, which counts whole milliseconds and fires 0.2–1 ms late. Polling never blocks
   * the loop (I/O runs between polls) but keeps it busy: ~3.5 % of a core at 1 ms. 0 turns it off.
   */
  readonly spinMs: number;
  /**
   * Whether the timer keeps the process alive. Legs own UDP sockets that already keep it alive while
   * media flows; the shared clock must never be the thing that stops a process from exiting.
   */
  readonly unref: boolean;
  /**
   * Most ticks run in one catch-up burst after the event loop stalled. Past this the schedule is
   * re-anchored to now: the ticks beyond it are skipped (subscribers' queues keep their frames — they
   * are sent later, not dropped), because a burst of seconds of packets would arrive too late to play
   * and, times hundreds of legs, would stall the loop again.
   */
  readonly maxCatchUpTicks: number;
  /** How many recent ticks `stats()` computes exact percentiles over. */
  readonly statsWindow: number;
  /** Called when a subscriber throws; the clock goes on ticking for the others. */
  readonly onSubscriberError: (err: unknown) => void;
  readonly timers: ClockTimers;
}

/** Node's own timers on the performance.now() time base. */
export const nodeClockTimers: ClockTimers = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  setImmediate: (fn) => setImmediate(fn),
  clearImmediate: (h) => clearImmediate(h as NodeJS.Immediate),
};

export const defaultMediaClockOptions = {
  /** 20 ms: every leg moves audio in 20 ms frames. */
  intervalMs: FRAME_MS,
  /** 1 ms: absorbs setTimeout's whole-ms rounding (median send-interval error 0.25 → 0.001 ms) for ~3.5 % of one core per process. */
  spinMs: 1,
  /** true: see `MediaClockOptions.unref`. */
  unref: true,
  /** 50 ticks = 1 s of audio sent at once at most after a stall. */
  maxCatchUpTicks: 50,
  /** 3000 ticks = the last minute. */
  statsWindow: 3000,
  /** Reported as a process warning so a broken subscriber is visible without killing the clock. */
  onSubscriberError: (err: unknown) => {
    process.emitWarning(err instanceof Error ? err : new Error(String(err)), { code: 'CALLGATE_CLOCK_SUBSCRIBER' });
  },
  /** Node's timers on performance.now(). */
  timers: nodeClockTimers,
} as const satisfies MediaClockOptions;

/** Upper bounds (ms) of the lateness histogram buckets; the last bucket is open-ended. */
export const LATENESS_BUCKETS_MS: readonly number[] = [0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 20, 40, 100, 1000, Infinity];

export interface MediaClockStats {
  readonly running: boolean;
  readonly subscribers: number;
  /** Ticks dispatched since the clock was created (over all runs). */
  readonly ticks: number;
  /** Ticks dispatched ≥ one interval late, i.e. in a catch-up burst after a stall. */
  readonly catchUpTicks: number;
  /** Ticks skipped by re-anchoring after stalls longer than `maxCatchUpTicks`. */
  readonly skippedTicks: number;
  readonly subscriberErrors: number;
  /** Counts per `LATENESS_BUCKETS_MS` bucket, over all ticks. */
  readonly latenessHistogram: readonly number[];
  readonly latenessBucketsMs: readonly number[];
  /** Exact percentiles over the last `statsWindow` ticks. */
  readonly latenessP50Ms: number;
  readonly latenessP99Ms: number;
  readonly latenessMaxMs: number;
  /**
   * |interval between consecutive ticks − intervalMs| p99 over the window: the jitter a receiver sees.
   * Deadlines are exactly intervalMs apart, so this is the difference of consecutive latenesses.
   */
  readonly intervalErrorP99Ms: number;
}

interface Subscription {
  readonly listener: TickListener;
  active: boolean;
}

/**
 * The process's one media clock: a single timer ticks every 20 ms for all legs, however many there are.
 *
 * Drift-free: tick n is due at origin + n·intervalMs and each wait is computed from that deadline, so
 * the lateness of one timer is never added to the next. Ticks the event loop stalled past are run at
 * once, in order, each telling its lateness, so senders send every owed frame.
 */
export class MediaClock {
  readonly intervalMs: number;
  private readonly opts: MediaClockOptions;
  private readonly timers: ClockTimers;
  // Copy-on-write: a dispatch iterates the array it started with while (un)subscribe swaps in a new one.
  private subs: readonly Subscription[] = [];
  private origin = 0;
  private nextIndex = 0;
  // Bumped by every start(): a dispatch that stopped and restarted the clock must not touch the new run.
  private runId = 0;
  private timeout: TimerHandle | undefined;
  private immediate: TimerHandle | undefined;

  private tickCount = 0;
  private catchUps = 0;
  private skipped = 0;
  private errors = 0;
  private readonly histogram: number[];
  private readonly window: Float64Array;
  private windowFill = 0;
  private windowPos = 0;
  // Set for consecutive on-schedule ticks only, so catch-up bursts don't count as interval errors.
  private readonly intervalErrors: Float64Array;
  private intervalFill = 0;
  private intervalPos = 0;
  private prevLate: number | undefined;

  constructor(options: Partial<MediaClockOptions> = {}) {
    this.opts = { ...defaultMediaClockOptions, ...options };
    const { intervalMs, spinMs, maxCatchUpTicks, statsWindow } = this.opts;
    if (!(intervalMs > 0) || !(spinMs >= 0) || spinMs >= intervalMs || !(maxCatchUpTicks >= 1) || !(statsWindow >= 1)) {
      throw new RangeError('MediaClock: intervalMs > 0, 0 ≤ spinMs < intervalMs, maxCatchUpTicks ≥ 1, statsWindow ≥ 1');
    }
    this.intervalMs = intervalMs;
    this.timers = this.opts.timers;
    this.histogram = LATENESS_BUCKETS_MS.map(() => 0);
    this.window = new Float64Array(statsWindow);
    this.intervalErrors = new Float64Array(statsWindow);
  }

  /** Adds a listener; the first one starts the timer. Returns its unsubscribe function (idempotent). */
  subscribe(listener: TickListener): () => void {
    const sub: Subscription = { listener, active: true };
    this.subs = [...this.subs, sub];
    if (this.subs.length === 1) this.start();
    return () => this.remove(sub);
  }

  get subscriberCount(): number {
    return this.subs.length;
  }

  /** True while a timer or poll is pending (only when there are subscribers). */
  get running(): boolean {
    return this.timeout !== undefined || this.immediate !== undefined;
  }

  /** The clock's current monotonic time (ms), on the base `ClockTick.dueAt` uses. */
  now(): number {
    return this.timers.now();
  }

  /** Removes every subscriber and stops the timer. The clock can be subscribed to again afterwards. */
  stop(): void {
    for (const sub of this.subs) sub.active = false;
    this.subs = [];
    this.cancel();
  }

  stats(): MediaClockStats {
    const late = Array.from(this.window.subarray(0, this.windowFill)).sort((a, b) => a - b);
    const intervals = Array.from(this.intervalErrors.subarray(0, this.intervalFill)).sort((a, b) => a - b);
    return {
      running: this.running,
      subscribers: this.subs.length,
      ticks: this.tickCount,
      catchUpTicks: this.catchUps,
      skippedTicks: this.skipped,
      subscriberErrors: this.errors,
      latenessHistogram: [...this.histogram],
      latenessBucketsMs: LATENESS_BUCKETS_MS,
      latenessP50Ms: percentile(late, 0.5),
      latenessP99Ms: percentile(late, 0.99),
      latenessMaxMs: late.length > 0 ? late[late.length - 1]! : 0,
      intervalErrorP99Ms: percentile(intervals, 0.99),
    };
  }

  private remove(sub: Subscription): void {
    if (!sub.active) return;
    sub.active = false;
    this.subs = this.subs.filter((s) => s !== sub);
    if (this.subs.length === 0) this.cancel();
  }

  private start(): void {
    this.runId++;
    this.origin = this.timers.now();
    this.nextIndex = 1;
    this.prevLate = undefined;
    this.arm();
  }

  private cancel(): void {
    if (this.timeout !== undefined) this.timers.clearTimeout(this.timeout);
    if (this.immediate !== undefined) this.timers.clearImmediate(this.immediate);
    this.timeout = undefined;
    this.immediate = undefined;
  }

  private deadline(index: number): number {
    return this.origin + index * this.intervalMs;
  }

  /** Schedules the wake-up for the next deadline from where the clock is now, never from the last wake-up. */
  private arm(): void {
    const wait = this.deadline(this.nextIndex) - this.timers.now();
    const spin = this.opts.spinMs;
    // setTimeout counts whole milliseconds: with polling, round so that the poll window averages spinMs
    // (flooring doubled the CPU for no measurable gain); without it, ceil so that we never wake early.
    const delay = spin > 0 ? Math.round(wait - spin) : Math.ceil(wait);
    if (wait > 0 && delay >= 1) {
      this.timeout = this.timers.setTimeout(this.onTimeout, delay);
      if (this.opts.unref) (this.timeout as { unref?: () => void }).unref?.();
    } else {
      // Within the poll window, or already due: setImmediate never blocks, so I/O still runs between polls.
      this.immediate = this.timers.setImmediate(this.onPoll);
    }
  }

  private readonly onTimeout = (): void => {
    this.timeout = undefined;
    this.wake();
  };

  private readonly onPoll = (): void => {
    this.immediate = undefined;
    this.wake();
  };

  private wake(): void {
    if (this.subs.length === 0) return;
    const due = this.deadline(this.nextIndex);
    const now = this.timers.now();
    if (now < due) {
      this.arm();
      return;
    }
    this.runDue(now);
    if (this.subs.length > 0 && !this.running) this.arm();
  }

  private runDue(firstNow: number): void {
    const runId = this.runId;
    let now = firstNow;
    for (let ran = 0; ran < this.opts.maxCatchUpTicks; ran++) {
      const dueAt = this.deadline(this.nextIndex);
      if (dueAt > now) return;
      const lateMs = now - dueAt;
      const behind = Math.floor(lateMs / this.intervalMs);
      this.record(lateMs, behind);
      const index = this.nextIndex++ - 1;
      this.dispatch({ index, dueAt, lateMs, behind });
      if (this.subs.length === 0 || this.runId !== runId) return;
      // Re-read: subscribers' work (encoding for hundreds of legs) may itself have taken us past a deadline.
      now = this.timers.now();
    }
    // Still behind after a full burst: re-anchor so the next tick is one interval from now.
    const owed = Math.floor((now - this.deadline(this.nextIndex)) / this.intervalMs) + 1;
    if (owed > 0) {
      this.skipped += owed;
      this.origin += owed * this.intervalMs;
      this.prevLate = undefined;
    }
  }

  private dispatch(tick: ClockTick): void {
    const subs = this.subs;
    for (const sub of subs) {
      if (!sub.active) continue;
      try {
        sub.listener(tick);
      } catch (err) {
        this.errors++;
        this.opts.onSubscriberError(err);
      }
    }
  }

  private record(lateMs: number, behind: number): void {
    this.tickCount++;
    if (behind > 0) this.catchUps++;
    let b = 0;
    while (lateMs > LATENESS_BUCKETS_MS[b]!) b++;
    this.histogram[b]!++;
    this.window[this.windowPos] = lateMs;
    this.windowPos = (this.windowPos + 1) % this.window.length;
    if (this.windowFill < this.window.length) this.windowFill++;
    if (behind === 0 && this.prevLate !== undefined) {
      this.intervalErrors[this.intervalPos] = Math.abs(lateMs - this.prevLate);
      this.intervalPos = (this.intervalPos + 1) % this.intervalErrors.length;
      if (this.intervalFill < this.intervalErrors.length) this.intervalFill++;
    }
    this.prevLate = behind === 0 ? lateMs : undefined;
  }
}

let shared: MediaClock | undefined;

/** The process-wide clock every leg should use (created on first use with the default options). */
export function sharedMediaClock(): MediaClock {
  shared ??= new MediaClock();
  return shared;
}
