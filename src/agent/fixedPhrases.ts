import type { AgentConfig } from './AgentConfig.js';
import { SentenceSplitter, type SentenceSplitterOptions } from './SentenceSplitter.js';

/**
 * What the agent speaks from the prompt cache (src/agent/PromptCache.ts) rather than through the model:
 * in one place so a session and the gateway's warm-up at start (src/app/warmUp.ts) ask the cache for the
 * very same keys. A warm-up that split differently would fill the cache with entries no call ever hits.
 */

/** The tenant's fixed phrases besides the greeting, each cached so it still plays when TTS is what failed. */
export function fixedPhrases(config: AgentConfig): string[] {
  return [config.apology, config.unavailableMessage, config.shutdownMessage, config.reprompt, config.didNotCatch, config.goodbye.reply, config.timeLimitMessage];
}

/** The pieces a cached phrase is stored and played in: whole sentences (never a first clause alone). */
export function promptPieces(text: string, splitter: Partial<SentenceSplitterOptions> = {}): string[] {
  const s = new SentenceSplitter({ ...splitter, firstClauseMinChars: Number.POSITIVE_INFINITY });
  return [...s.push(text), ...s.flush()];
}
