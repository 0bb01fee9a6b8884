import { CallgateError } from '../../errors.js';
import type { TtsChunk, TtsProvider, TtsRequest } from '../types.js';
import { streamDownChain, type ChainContext, type ChainLink } from './chain.js';

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
    const chunks = streamDownChain('tts', this.links, this.ctx, request.signal, (link) => link.provider.synthesize({ ...request, voice: link.voiceFor(request.voice) }));
    for await (const [chunk, link] of chunks) yield link === this.links[0] ? chunk : { ...chunk, degraded: true };
  }
}
