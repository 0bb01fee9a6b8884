/**
 * One provider's circuit breaker, shared by every call in the process: after `failureThreshold`
 * failures in a row the provider is skipped for `openMs`, so a dead vendor costs calls nothing but a
 * map lookup instead of a timeout each. Then one request is let through (half-open): success closes
 * the circuit, failure opens it again. A permanent failure (a rejected key) opens it at once, for
 * longer: retrying a bad key every few seconds only fills the vendor's logs.
 *
 * Written here rather than taken from a library (opossum and cockatiel wrap a function call); our
 * requests are streams whose success is decided at the first byte, which those do not model.
 */
export interface CircuitBreakerOptions {
  readonly failureThreshold: number;
  readonly openMs: number;
  readonly permanentOpenMs: number;
}

export const defaultCircuitBreakerOptions = {
  /** 3 in a row: one timeout is a blip, three is an outage. */
  failureThreshold: 3,
  /** 30 s before one request probes the vendor again. */
  openMs: 30_000,
  /** 5 minutes for a rejected key or unknown model. */
  permanentOpenMs: 5 * 60_000,
} as const satisfies CircuitBreakerOptions;

export type CircuitState = 'closed' | 'open' | 'half-open';

export class CircuitBreaker {
  private failures = 0;
  private openUntil = 0;
  private probing = false;

  constructor(
    private readonly opts: CircuitBreakerOptions = defaultCircuitBreakerOptions,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): CircuitState {
    if (this.openUntil === 0) return 'closed';
    return this.now() < this.openUntil ? 'open' : 'half-open';
  }

  /** Whether a request may go to the provider now. In half-open, only one at a time. */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.probing) return false;
    this.probing = true;
    return true;
  }

  success(): void {
    this.failures = 0;
    this.openUntil = 0;
    this.probing = false;
  }

  failure(permanent = false): void {
    this.failures++;
    this.probing = false;
    if (permanent) this.openUntil = this.now() + this.opts.permanentOpenMs;
    else if (this.failures >= this.opts.failureThreshold || this.openUntil !== 0) this.openUntil = this.now() + this.opts.openMs;
  }

  /** A request that ended without a verdict (aborted by barge-in): frees the half-open slot. */
  release(): void {
    this.probing = false;
  }
}

/** Breakers by key, made on first use. The key names the vendor and the credential, so one tenant's bad key does not cut off the others. */
export class CircuitBreakers {
  private readonly breakers = new Map<string, CircuitBreaker>();

  constructor(
    private readonly opts: CircuitBreakerOptions = defaultCircuitBreakerOptions,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: string): CircuitBreaker {
    let b = this.breakers.get(key);
    if (!b) {
      b = new CircuitBreaker(this.opts, this.now);
      this.breakers.set(key, b);
    }
    return b;
  }

  /** Open circuits, for /readyz and the tests. */
  openKeys(): string[] {
    return [...this.breakers].filter(([, b]) => b.state !== 'closed').map(([k]) => k);
  }
}
