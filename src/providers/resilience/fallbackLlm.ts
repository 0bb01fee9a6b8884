import { performance } from 'node:perf_hooks';
import { CallgateError } from '../../errors.js';
import type { LlmEvent, LlmProvider, LlmRequest } from '../types.js';
import { attempts, recordFailure, recordFallback, type ChainContext, type ChainLink } from './chain.js';

/**
 * An LLM chain: the first provider whose circuit is closed gets the request; one that fails before its
 * first token hands the request to the next (safe: the caller has heard nothing of it yet). A failure
 * after text was spoken is not retried elsewhere, since the new answer would not continue the old one:
 * it is thrown, and the agent apologises.
 */
export class FallbackLlm implements LlmProvider {
  readonly name: string;

  constructor(
    private readonly links: readonly ChainLink<LlmProvider>[],
    private readonly ctx: ChainContext,
  ) {
    if (links.length === 0) throw new CallgateError('CG_PROVIDER_UNKNOWN', 'an LLM chain needs at least one provider');
    this.name = links.map((l) => l.name).join('>');
  }

  async *stream(request: LlmRequest): AsyncIterable<LlmEvent> {
    let lastErr: unknown;
    let failed: ChainLink<LlmProvider> | undefined;
    for (const link of attempts('llm', this.links, this.ctx)) {
      if (failed) recordFallback('llm', failed, link, this.ctx);
      const started = performance.now();
      let first = true;
      let settled = false;
      try {
        for await (const event of link.provider.stream(request)) {
          if (first) {
            first = false;
            settled = true;
            link.breaker.success();
            this.ctx.metrics?.observeFirstResult('llm', link.name, performance.now() - started);
          }
          yield event;
        }
        if (!settled) link.breaker.success(); // an empty answer is still an answer
        settled = true;
        return;
      } catch (err) {
        if (request.signal.aborted) return;
        recordFailure('llm', link, err, this.ctx);
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
}
