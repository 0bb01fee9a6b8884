import { performance } from 'node:perf_hooks';
import { CallgateError } from '../../errors.js';
import type { TtsChunk, TtsProvider, TtsRequest } from '../types.js';
import { attempts, recordFailure, recordFallback, type ChainContext, type ChainLink } from './chain.js';

export interface TtsChainLink extends ChainLink<TtsProvider> {
  /** This provider's voice for the tenant's: a vendor voice id means nothing to flite, and the reverse. */
  readonly voiceFor: (voice: string) => string;
}

/**
 * A TTS chain, sentence by sentence: a provider that fails before its first audio hands the sentence to
 * the next (the caller hears it in another voice rather than not at all). Audio from any provider but
 * the first is marked `degraded`, so the prompt cache does not keep an offline-voice greeting after the
 * vendor is back. A failure after audio started is thrown: the agent apologises after what played.
 */
export class FallbackTts implements TtsProvider {
  readonly name: string;

  constructor(
    private readonly links: readonly TtsChainLink[],
    private readonly ctx: ChainContext,
  ) {
    if (links.length === 0) throw new CallgateError('CG_PROVIDER_UNKNOWN', 'a TTS chain needs at least one provider');
    this.name = links.map((l) => l.name).join('>');
  }

  async *synthesize(request: TtsRequest): AsyncIterable<TtsChunk> {
    let lastErr: unknown;
    let failed: TtsChainLink | undefined;
    for (const link of attempts('tts', this.links, this.ctx)) {
      if (failed) recordFallback('tts', failed, link, this.ctx);
      const degraded = link !== this.links[0];
      const started = performance.now();
      let first = true;
      let settled = false;
      try {
        for await (const chunk of link.provider.synthesize({ ...request, voice: link.voiceFor(request.voice) })) {
          if (first) {
            first = false;
            settled = true;
            link.breaker.success();
            this.ctx.metrics?.observeFirstResult('tts', link.name, performance.now() - started);
          }
          yield degraded ? { ...chunk, degraded: true } : chunk;
        }
        if (!settled) link.breaker.success();
        settled = true;
        return;
      } catch (err) {
        if (request.signal.aborted) return;
        recordFailure('tts', link, err, this.ctx);
        settled = true;
        if (!first) throw err;
        lastErr = err;
        failed = link;
      } finally {
        if (!settled) link.breaker.release();
      }
    }
    throw lastErr;
  }
}
