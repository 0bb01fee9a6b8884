import { CallgateError } from '../errors.js';
import { renderTemplate } from '../util/template.js';
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
  /** A tool to call for this intent (when the request offers it): `say` first, then `reply` with its answer. */
  readonly tool?: {
    readonly name: string;
    readonly arguments: Readonly<Record<string, string | number | boolean>>;
    readonly say?: string;
  };
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

/** Said when a tool the responder called failed (the answer carries `error`). */
const TOOL_FAILED_REPLY = "Sorry, I couldn't check that just now.";

export class ScriptedResponder implements LlmProvider {
  readonly name = 'scripted';
  private readonly opts: ScriptedResponderOptions;
  private calls = 0;

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
    if (last?.role === 'tool') return yield* this.afterTool(request);
    if (!last || last.role !== 'user') throw new CallgateError('CG_LLM_FAILED', 'the last message must be the caller\'s');
    const answer = this.match(last.content);
    const intent = answer.kind === 'intent' ? this.opts.intents.find((i) => i.name === answer.intent) : undefined;
    if (intent?.tool && request.tools?.some((t) => t.name === intent.tool!.name)) {
      if (intent.tool.say) yield* tokens(intent.tool.say, request.signal);
      if (request.signal.aborted) return;
      const said = { utterance: last.content, digits: parseDtmfUserText(last.content) ?? '' };
      const args = Object.fromEntries(Object.entries(intent.tool.arguments).map(([k, v]) => [k, typeof v === 'string' ? fill(v, said) : v]));
      yield { type: 'tool-call', call: { id: `scripted-${this.opts.intents.indexOf(intent)}-${++this.calls}`, name: intent.tool.name, arguments: JSON.stringify(args) } };
      return;
    }
    yield* tokens(answer.reply, request.signal);
    if (answer.kind === 'goodbye' && !request.signal.aborted) yield { type: 'hangup' };
  }

  /** The tool this responder called has answered: the intent's reply, with the answer in it. */
  private async *afterTool(request: LlmRequest): AsyncIterable<LlmEvent> {
    const answers = new Map<string, string>();
    for (let i = request.messages.length - 1; i >= 0 && request.messages[i]!.role === 'tool'; i--) {
      const m = request.messages[i]!;
      if (m.role === 'tool') answers.set(m.toolCallId, m.content);
    }
    const [id, content] = [...answers][0] ?? [];
    const intent = this.opts.intents[Number(/^scripted-(\d+)-/.exec(id ?? '')?.[1] ?? -1)];
    if (!intent || content === undefined) return yield* tokens(this.opts.fallbackReply, request.signal);
    const result = parseAnswer(content);
    if (result.error !== undefined) return yield* tokens(TOOL_FAILED_REPLY, request.signal);
    yield* tokens(renderTemplate(intent.reply, result.variables).text || this.opts.fallbackReply, request.signal);
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

/** Word by word, like a model streams: the agent's sentence pipeline is exercised the same way. */
async function* tokens(text: string, signal: AbortSignal): AsyncIterable<LlmEvent> {
  for (const token of text.split(/(?<=\s)/)) {
    if (signal.aborted) return;
    yield { type: 'text', text: token };
  }
}

function fill(template: string, said: Record<string, string>): string {
  return template.replace(/\{\{\s*(utterance|digits)\s*\}\}/g, (_, name: string) => said[name] ?? '');
}

/**
 * A tool's answer as template variables: `result` is the whole answer (a JSON string as its text), and
 * an object's fields are `result.<field>` (nested ones `result.<a>.<b>`, two levels).
 */
function parseAnswer(content: string): { error?: unknown; variables: Record<string, string> } {
  let value: unknown;
  try {
    value = JSON.parse(content);
  } catch {
    return { variables: { result: content } };
  }
  const variables: Record<string, string> = { result: typeof value === 'string' ? value : content };
  const flatten = (obj: unknown, prefix: string, depth: number): void => {
    if (typeof obj !== 'object' || obj === null || depth > 2) return;
    for (const [k, v] of Object.entries(obj)) {
      if (v === null || v === undefined) continue;
      if (typeof v === 'object') flatten(v, `${prefix}.${k}`, depth + 1);
      else variables[`${prefix}.${k}`] = String(v);
    }
  };
  flatten(value, 'result', 1);
  const error = typeof value === 'object' && value !== null && 'error' in value ? (value as { error: unknown }).error : undefined;
  return { ...(error !== undefined ? { error } : {}), variables };
}
