import { CallgateError } from '../errors.js';
import { parseDtmfUserText, type LlmEvent, type LlmProvider, type LlmRequest } from './types.js';

/**
 * The offline "language model": not a model at all, and named so. It answers from the tenant's
 * intents — phrases the caller may say, each with a fixed reply — so a tenant with no LLM key still
 * gets a working phone agent (opening hours, directions, "press 1 for…"). Goodbye phrases end the call.
 */
export interface ScriptedIntent {
  readonly name: string;
  readonly phrases: readonly string[];
  readonly reply: string;
  readonly dtmf?: string;
}

export interface ScriptedResponderOptions {
  readonly intents: readonly ScriptedIntent[];
  readonly fallbackReply: string;
  readonly goodbye: { readonly phrases: readonly string[]; readonly reply: string };
  /**
   * Share of an intent phrase's words the caller's utterance must contain to match it. Below 1 so
   * that recognition slips ("what time you open today") still match; above one half so that sharing
   * a word or two ("what", "today") does not.
   */
  readonly minWordShare?: number;
}

const DEFAULT_MIN_WORD_SHARE = 0.75;

export interface ScriptedMatch {
  readonly kind: 'intent' | 'goodbye' | 'fallback';
  readonly intent?: string;
  readonly reply: string;
}

export class ScriptedResponder implements LlmProvider {
  readonly name = 'scripted';
  private readonly opts: ScriptedResponderOptions;

  constructor(options: ScriptedResponderOptions) {
    this.opts = options;
  }

  /** What the responder answers to one utterance (or keypad entry). */
  match(utterance: string): ScriptedMatch {
    const digits = parseDtmfUserText(utterance);
    if (digits !== undefined) {
      const intent = this.opts.intents.find((i) => i.dtmf !== undefined && i.dtmf === digits);
      return intent ? { kind: 'intent', intent: intent.name, reply: intent.reply } : { kind: 'fallback', reply: this.opts.fallbackReply };
    }
    const said = words(utterance);
    if (said.length === 0) return { kind: 'fallback', reply: this.opts.fallbackReply };
    const share = this.opts.minWordShare ?? DEFAULT_MIN_WORD_SHARE;
    let best: { intent: ScriptedIntent; score: number } | undefined;
    for (const intent of this.opts.intents) {
      for (const phrase of intent.phrases) {
        const score = overlap(words(phrase), said);
        if (score >= share && (!best || score > best.score)) best = { intent, score };
      }
    }
    // A goodbye wins only as a whole phrase: "bye" inside another request must not hang up on the caller.
    const goodbye = this.opts.goodbye.phrases.some((p) => containsPhrase(said, words(p)));
    if (goodbye && (!best || best.score < 1)) return { kind: 'goodbye', reply: this.opts.goodbye.reply };
    if (best) return { kind: 'intent', intent: best.intent.name, reply: best.intent.reply };
    return { kind: 'fallback', reply: this.opts.fallbackReply };
  }

  async *stream(request: LlmRequest): AsyncIterable<LlmEvent> {
    const last = request.messages.at(-1);
    if (!last || last.role !== 'user') throw new CallgateError('CG_LLM_FAILED', 'the last message must be the caller\'s');
    const answer = this.match(last.content);
    // Word by word, like a model streams: the agent's sentence pipeline is exercised the same way.
    for (const token of answer.reply.split(/(?<=\s)/)) {
      if (request.signal.aborted) return;
      yield { type: 'text', text: token };
    }
    if (answer.kind === 'goodbye' && !request.signal.aborted) yield { type: 'hangup' };
  }
}

export function words(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[’']/g, '')
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
}

/** Share of the phrase's distinct words present in the utterance. */
function overlap(phrase: readonly string[], said: readonly string[]): number {
  const want = new Set(phrase);
  if (want.size === 0) return 0;
  const have = new Set(said);
  let n = 0;
  for (const w of want) if (have.has(w)) n++;
  return n / want.size;
}

function containsPhrase(said: readonly string[], phrase: readonly string[]): boolean {
  if (phrase.length === 0) return false;
  outer: for (let i = 0; i + phrase.length <= said.length; i++) {
    for (let j = 0; j < phrase.length; j++) if (said[i + j] !== phrase[j]) continue outer;
    return true;
  }
  return false;
}
