import type { TtsProvider } from '../providers/types.js';
import type { CallSession } from './CallSession.js';
import { promptPieces } from './fixedPhrases.js';
import type { CachedPrompt, PromptCache, PromptKey } from './PromptCache.js';
import type { SentenceSplitterOptions } from './SentenceSplitter.js';

/**
 * The shared prompt cache as one call sees it: keyed by the call's tenant, voice and codec, a phrase
 * stored and played in whole sentences (the same pieces the gateway's warm-up caches).
 */
export class CallPrompts {
  constructor(
    private readonly cache: PromptCache,
    private readonly call: CallSession,
    private readonly tts: TtsProvider,
    private readonly splitter: Partial<SentenceSplitterOptions>,
  ) {}

  /** The sentences `text` is cached and played as. */
  pieces(text: string): string[] {
    return promptPieces(text, this.splitter);
  }

  /** Every piece of `text` is encoded and ready (it plays without synthesis). */
  cached(text: string): boolean {
    return this.pieces(text).every((t) => this.cache.has(this.key(t)));
  }

  /** One piece, from the cache or synthesised into it. */
  get(piece: string): Promise<CachedPrompt> {
    return this.cache.get(this.key(piece), this.tts);
  }

  /** Caches `text` ahead of need, so it plays even when the TTS provider is what failed later. */
  warm(text: string): void {
    for (const piece of this.pieces(text)) this.get(piece).catch(() => undefined);
  }

  private key(text: string): PromptKey {
    const c = this.call.config;
    return { tenantId: c.tenantId, text, voice: c.voice, codec: this.call.media.codec.name };
  }
}
