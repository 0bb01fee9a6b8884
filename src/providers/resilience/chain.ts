import type { Logger } from 'pino';
import { isCallgateError } from '../../errors.js';
import { rootLogger } from '../../log.js';
import type { CircuitBreaker } from './CircuitBreaker.js';
import type { ProviderKind, ProviderMetrics } from './ProviderMetrics.js';

/** One provider in a fallback chain, with the breaker it shares with every other call using it. */
export interface ChainLink<P> {
  readonly provider: P;
  /** The provider's name in metrics and logs ('elevenlabs', 'flite'). */
  readonly name: string;
  readonly breaker: CircuitBreaker;
}

export interface ChainContext {
  readonly metrics: ProviderMetrics | undefined;
  readonly logger?: Logger;
}

/** A rejected key, an unknown model: the breaker opens for longer, since retrying will not help. */
export function isPermanent(err: unknown): boolean {
  return isCallgateError(err) && (err.details as { permanent?: unknown } | undefined)?.permanent === true;
}

/**
 * The links to try, in order: those whose circuit lets a request through now. When every circuit is
 * open the last link is tried anyway: it is the last resort (the offline provider), and a caller
 * hearing something beats one hearing nothing.
 */
export function* attempts<L extends ChainLink<unknown>>(kind: ProviderKind, links: readonly L[], ctx: ChainContext): Generator<L> {
  let tried = false;
  for (const link of links) {
    if (link.breaker.tryAcquire()) {
      tried = true;
      yield link;
    } else {
      ctx.metrics?.skipped.inc({ kind, provider: link.name });
    }
  }
  const last = links.at(-1);
  if (!tried && last) yield last;
}

/** Counts and logs one failed attempt, and opens the provider's circuit when it should. */
export function recordFailure(kind: ProviderKind, link: ChainLink<unknown>, err: unknown, ctx: ChainContext): void {
  link.breaker.failure(isPermanent(err));
  ctx.metrics?.error(kind, link.name, err);
  (ctx.logger ?? rootLogger).warn(
    { kind, provider: link.name, code: isCallgateError(err) ? err.code : undefined, err: err instanceof Error ? err.message : String(err), circuit: link.breaker.state },
    'provider failed',
  );
}

/** The chain moved on from `from` to `to` for one request. */
export function recordFallback(kind: ProviderKind, from: ChainLink<unknown>, to: ChainLink<unknown>, ctx: ChainContext): void {
  ctx.metrics?.fallbacks.inc({ kind, from: from.name, to: to.name });
  (ctx.logger ?? rootLogger).info({ kind, from: from.name, to: to.name }, 'provider fallback');
}
