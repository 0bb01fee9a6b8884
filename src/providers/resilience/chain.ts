import { performance } from 'node:perf_hooks';
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

/**
 * The vendor refused the request itself (4xx other than 429: a bad key, an unknown model): retrying
 * will not help. 429 and 5xx may pass. Each provider marks its errors `permanent` with this rule.
 */
export function isPermanentStatus(status: number | undefined): boolean {
  return status !== undefined && status >= 400 && status < 500 && status !== 429;
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

/**
 * One streaming request down a chain (LLM text, TTS audio): the first provider whose circuit lets it
 * through gets it; one that fails before its first item hands the request to the next (safe: the caller
 * has heard nothing of it yet). A failure after the first item is thrown, since another provider's
 * answer would not continue this one. Yields each item with the link that made it.
 */
export async function* streamDownChain<L extends ChainLink<unknown>, T>(
  kind: ProviderKind,
  links: readonly L[],
  ctx: ChainContext,
  signal: AbortSignal,
  request: (link: L) => AsyncIterable<T>,
): AsyncGenerator<[T, L]> {
  let lastErr: unknown;
  let failed: L | undefined;
  for (const link of attempts(kind, links, ctx)) {
    if (failed) recordFallback(kind, failed, link, ctx);
    const started = performance.now();
    let first = true;
    let settled = false;
    try {
      for await (const item of request(link)) {
        if (first) {
          first = false;
          settled = true;
          link.breaker.success();
          ctx.metrics?.observeFirstResult(kind, link.name, performance.now() - started);
        }
        yield [item, link];
      }
      if (!settled) link.breaker.success(); // an empty answer is still an answer
      settled = true;
      return;
    } catch (err) {
      if (signal.aborted) return;
      recordFailure(kind, link, err, ctx);
      settled = true;
      if (!first) throw err;
      lastErr = err;
      failed = link;
    } finally {
      // Ended without a verdict (barge-in, or the reader stopped): free a half-open probe.
      if (!settled) link.breaker.release();
    }
  }
  throw lastErr;
}
