import { stripUndefined } from '../../util/options.js';

/**
 * A token bucket per source address for INVITEs, checked before any Redis lookup: a source sending
 * far above a sane rate costs one map lookup and a 503 per INVITE, and a normal caller's bucket is
 * its own, so its calls go through during another source's flood.
 *
 * Memory stays bounded whatever the flood: an entry idle long enough to be full again is dropped
 * (it would behave exactly like a new one), and at most `maxSources` are tracked. Sources seen while
 * the table is full share one overflow bucket: a flood of spoofed addresses is then limited as if it
 * were one source, and the sources already tracked (a carrier calling steadily) keep their own.
 *
 * Not for big trunks at the defaults: a carrier that sends all its calls from one address needs
 * `invitesPerSecond` (SIP_INVITES_PER_SECOND) raised to its peak call rate.
 */
export interface SourceLimiterOptions {
  /** Sustained INVITEs per second one source may send. */
  readonly invitesPerSecond: number;
  /** INVITEs one source may send at once before the sustained rate applies (the bucket's size). */
  readonly burst: number;
  /** Most sources tracked at once; beyond it, new sources share one overflow bucket. */
  readonly maxSources: number;
  /**
   * A source quiet this long is forgotten. Never shorter in effect than the time a bucket takes to
   * refill (`burst / invitesPerSecond`), or forgetting would hand a flooder a fresh burst early.
   */
  readonly idleMs: number;
  /** A source over its rate is reported (logged) at most once per this window. */
  readonly reportWindowMs: number;
}

export const defaultSourceLimiterOptions = {
  /**
   * 10/s: a PBX or small trunk rarely starts more than a few calls a second; a flood (a scanner's
   * brute force, a looping misconfigured device) sends hundreds or thousands.
   */
  invitesPerSecond: 10,
  /** 30: three seconds at the sustained rate, so a burst of calls after an outage still goes through. */
  burst: 30,
  /** 10 000: about a megabyte of entries at most; far more distinct callers than one gateway sees at once. */
  maxSources: 10_000,
  /** 60 s: a source gone quiet for a minute is no flood; it starts again with a full bucket. */
  idleMs: 60_000,
  /** 60 s: one log line per flooding source a minute, carrying the count refused since the last. */
  reportWindowMs: 60_000,
} as const satisfies SourceLimiterOptions;

/** What `take` decided for one INVITE. */
export type SourceVerdict =
  | { readonly allowed: true }
  | {
      readonly allowed: false;
      /** Whose bucket was empty: the source, or OVERFLOW_SOURCE when the table was full. */
      readonly bucket: string;
      /** Whole seconds until the source has a token again (at least 1): the 503's Retry-After. */
      readonly retryAfterS: number;
      /**
       * Set on the first refusal of a report window: refusals of this source since the last report
       * (this one included), so the caller logs once per window instead of once per INVITE.
       */
      readonly report: number | undefined;
    };

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date (ms, the limiter's clock). */
  at: number;
  /** When the last report was made; -Infinity before the first. */
  reportedAt: number;
  /** Refusals since the last report. */
  refused: number;
}

const ALLOWED: SourceVerdict = { allowed: true };

/** The key of the bucket shared by sources seen while the table is full (not an address). */
export const OVERFLOW_SOURCE = '*overflow*';

export class SourceLimiter {
  readonly options: SourceLimiterOptions;
  /** In least-recently-seen order (each take re-inserts its entry), so idle ones are at the front. */
  private readonly buckets = new Map<string, Bucket>();
  private readonly idleMs: number;

  constructor(
    options: Partial<SourceLimiterOptions> = {},
    /** Milliseconds, monotonic; injected by tests. */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.options = { ...defaultSourceLimiterOptions, ...stripUndefined(options) };
    const { invitesPerSecond, burst, maxSources } = this.options;
    if (!(invitesPerSecond > 0) || !(burst >= 1) || !(maxSources >= 1)) {
      throw new RangeError(`SourceLimiter: invitesPerSecond must be > 0, burst and maxSources ≥ 1 (got ${invitesPerSecond}, ${burst}, ${maxSources})`);
    }
    this.idleMs = Math.max(this.options.idleMs, (burst / invitesPerSecond) * 1000);
  }

  /** Takes a token for one INVITE from `source`. */
  take(source: string, now: number = this.now()): SourceVerdict {
    this.forgetIdle(now);
    let key = source;
    let bucket = this.buckets.get(key);
    if (!bucket && this.buckets.size >= this.options.maxSources) {
      key = OVERFLOW_SOURCE;
      bucket = this.buckets.get(key);
    }
    if (bucket) {
      const { invitesPerSecond, burst } = this.options;
      bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * invitesPerSecond);
      bucket.at = now;
      this.buckets.delete(key);
    } else {
      bucket = { tokens: this.options.burst, at: now, reportedAt: -Infinity, refused: 0 };
    }
    // The overflow bucket may take the table one past maxSources: it is a single entry.
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return ALLOWED;
    }
    bucket.refused++;
    let report: number | undefined;
    if (now - bucket.reportedAt >= this.options.reportWindowMs) {
      report = bucket.refused;
      bucket.refused = 0;
      bucket.reportedAt = now;
    }
    const retryAfterS = Math.max(1, Math.ceil((1 - bucket.tokens) / this.options.invitesPerSecond));
    return { allowed: false, bucket: key, retryAfterS, report };
  }

  /** Sources tracked now (the overflow bucket counts as one). */
  get size(): number {
    return this.buckets.size;
  }

  /** Whether `source` has an entry of its own. */
  tracks(source: string): boolean {
    return this.buckets.has(source);
  }

  /**
   * Drops entries idle past `idleMs`, oldest first, stopping at the first one still in use: the map's
   * order makes that the only one worth looking at, so each call costs O(1) amortised.
   */
  private forgetIdle(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (now - bucket.at < this.idleMs) return;
      this.buckets.delete(key);
    }
  }
}
