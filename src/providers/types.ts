import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { CallgateError } from '../errors.js';

/**
 * The three provider interfaces the agent talks to. One file per vendor implements them
 * (`src/providers/<vendor>.ts`); the agent never knows which vendor is behind them. Audio crosses these
 * interfaces as 16 kHz mono PCM (`PIPELINE_RATE`) unless a chunk says otherwise.
 */

// ─── Speech to text ──────────────────────────────────────────────────────────────────────────────

export interface SttResult {
  readonly text: string;
  /** A final result is never revised; an interim one is replaced by the next result. */
  readonly final: boolean;
  /** 0–1 when the engine reports it. */
  readonly confidence?: number;
  /** The engine says the caller's speech ended here (Deepgram's speech_final): a hint for endpointing. */
  readonly endOfSpeech?: boolean;
  /**
   * What the engine heard word for word, when `text` is something else (pocketsphinx reports a matched
   * phrase, or nothing): endpointing reads how the speech ended from it ("…a table for").
   */
  readonly heard?: string;
}

export interface SttStreamEvents {
  /** Interim and final results, as the engine produces them (for events, the web phone, barge-in checks). */
  result: [result: SttResult];
  /** The stream failed; it is unusable afterwards. */
  error: [err: CallgateError];
}

export interface SttStream extends EventEmitter<SttStreamEvents> {
  /**
   * The engine streams interim results while the caller speaks (Deepgram). Without them the agent
   * looks at a pause by finalizing early, and sends the whole turn again if the caller goes on.
   */
  readonly interimResults?: boolean;
  /** 20 ms of caller audio, 16 kHz mono (320 samples). Never blocks; the engine may buffer. */
  push(frame: Int16Array): void;
  /**
   * The caller's turn has ended (the agent's endpointing said so): resolves with the final text of
   * everything pushed since the previous `finalize()`, '' when nothing was recognised. Rejects with a
   * CallgateError when the engine failed or did not answer in time.
   */
  finalize(): Promise<string>;
  /** Stops the engine and releases its resources (processes, sockets). Idempotent. */
  close(): Promise<void>;
}

export interface SttStreamOptions {
  /** BCP 47, e.g. 'en-US'. */
  readonly language: string;
  /**
   * Phrases the caller is expected to say (the tenant's intents). Engines that can bias or constrain
   * recognition with them do; others ignore them.
   */
  readonly phrases: readonly string[];
  readonly logger?: Logger;
}

export interface SttProvider {
  readonly name: string;
  open(options: SttStreamOptions): Promise<SttStream>;
}

// ─── Language model ──────────────────────────────────────────────────────────────────────────────

/** A function the model may call: the OpenAI function-tool shape, which MCP's tool listing maps onto. */
export interface ToolSpec {
  readonly name: string;
  readonly description: string;
  /** JSON Schema of the arguments object. */
  readonly parameters: Readonly<Record<string, unknown>>;
}

/** One call the model asked for; `arguments` is the JSON text as the model wrote it. */
export interface ToolCall {
  readonly id: string;
  readonly name: string;
  readonly arguments: string;
}

export type ChatMessage =
  | { readonly role: 'system' | 'user'; readonly content: string }
  /** `toolCalls`: the model asked for these after saying `content` (often ''). */
  | { readonly role: 'assistant'; readonly content: string; readonly toolCalls?: readonly ToolCall[] }
  /** The answer to the tool call `toolCallId`. */
  | { readonly role: 'tool'; readonly toolCallId: string; readonly content: string };

/**
 * What a language model streams back: text as it is produced, the decision to end the call (the
 * built-in `end_call`), and calls of the request's other tools, each once complete (arguments whole).
 */
export type LlmEvent =
  | { readonly type: 'text'; readonly text: string }
  | { readonly type: 'hangup' }
  | { readonly type: 'tool-call'; readonly call: ToolCall };

/** The built-in tool a model ends the call with; offered unless the tenant's built-ins leave it out. */
export const END_CALL_TOOL: ToolSpec = {
  name: 'end_call',
  description: 'End the phone call. Call it only after you have said goodbye to the caller.',
  parameters: { type: 'object', properties: {}, additionalProperties: false },
};

export interface LlmRequest {
  /** System prompt first, then the conversation so far, the caller's latest turn last. */
  readonly messages: readonly ChatMessage[];
  /** Aborted on barge-in and hangup: the provider stops and releases its connection. */
  readonly signal: AbortSignal;
  /** Tools offered to the model; absent: `end_call` alone. */
  readonly tools?: readonly ToolSpec[];
}

export interface LlmProvider {
  readonly name: string;
  /** Throws (or the iterator rejects) with a CallgateError on failure; ends early when `signal` aborts. */
  stream(request: LlmRequest): AsyncIterable<LlmEvent>;
}

// ─── Text to speech ──────────────────────────────────────────────────────────────────────────────

export interface TtsChunk {
  /** Mono 16-bit PCM. */
  readonly samples: Int16Array;
  readonly sampleRate: number;
  /** Made by a fallback provider (resilience/FallbackTts): play it, but a cache should not keep it. */
  readonly degraded?: true;
}

export interface TtsRequest {
  readonly text: string;
  /** A voice name the provider knows (flite: slt, rms, awb, kal16). */
  readonly voice: string;
  readonly signal: AbortSignal;
}

export interface TtsProvider {
  readonly name: string;
  /** Streams audio for one sentence (or any short text) as it is produced; ends early when `signal` aborts. */
  synthesize(request: TtsRequest): AsyncIterable<TtsChunk>;
}

/** The providers one call uses, chosen from its tenant's configuration. */
export interface AgentProviders {
  readonly stt: SttProvider;
  readonly llm: LlmProvider;
  readonly tts: TtsProvider;
  /** A speech-to-speech model that answers instead of stt → llm → tts (which remain its fallback). */
  readonly realtime?: RealtimeProvider;
}

/**
 * How a keypad entry reaches the model: as a user message in plain words, which every LLM understands
 * and the scripted responder parses back (`parseDtmfUserText`).
 */
export function dtmfUserText(digits: string): string {
  return `(The caller pressed the keys: ${digits})`;
}

export function parseDtmfUserText(text: string): string | undefined {
  return /^\(The caller pressed the keys: ([0-9*#A-D]+)\)$/.exec(text)?.[1];
}

// ─── Speech-to-speech models (src/providers/realtime) ─────────────────────────────────────────────

/**
 * A speech-to-speech model's session (OpenAI Realtime, Gemini Live) as the agent uses it: caller audio
 * in, the model's audio and words out, with what barge-in needs (cancel, and truncate what the caller
 * did not hear). Audio is 16 kHz mono PCM on our side whatever the model speaks; each adapter resamples.
 */
export interface RealtimeSessionOptions {
  /** The system prompt. */
  readonly instructions: string;
  readonly voice: string | undefined;
  readonly language: string;
  readonly tools: readonly ToolSpec[];
  /**
   * `ours`: our VAD and turn-taking decide when the caller's turn ends (commit + respond, cancel and
   * truncate on barge-in); `model`: the model's own voice detection ends turns, answers and interrupts by itself.
   */
  readonly turnDetection: 'ours' | 'model';
  /** The conversation so far (a reconnect within a call, or a greeting said by us). */
  readonly history: readonly ChatMessage[];
  readonly logger?: Logger;
}

/** What one response cost, as the model reports it. */
export interface RealtimeUsage {
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly inputAudioTokens: number;
  readonly outputAudioTokens: number;
}

export interface RealtimeEvents {
  /** A piece of the model's spoken answer, 16 kHz mono, for the response item `itemId`. */
  audio: [pcm16k: Int16Array, itemId: string];
  /** The model's words as it speaks them (`final`: the item's whole transcript). */
  'agent-text': [text: string, itemId: string, final: boolean];
  /** The caller's words as the model heard them (its transcription of the input audio). */
  'caller-text': [text: string, final: boolean];
  /** The model asks for a tool; answer with `toolResult`. */
  'tool-call': [call: ToolCall];
  /** A response ended: completed, cancelled (barge-in) or failed. */
  'response-done': [done: { readonly status: string; readonly usage?: RealtimeUsage }];
  /** Server turn detection heard the caller start or stop. */
  'speech-started': [];
  'speech-stopped': [];
  /** The connection failed or the model reported an error; the session may be unusable. */
  error: [err: CallgateError];
  /** The connection closed (not by `close()`). */
  closed: [];
}

export interface RealtimeSession extends EventEmitter<RealtimeEvents> {
  /** 20 ms (or any length) of caller audio at 16 kHz. */
  appendAudio(pcm16k: Int16Array): void;
  /** Our turn-taking says the caller's turn ended: the audio so far is a user message. */
  commit(): void;
  /** Asks the model to answer now (after commit, a tool result, or with `instructions` for one response). */
  respond(instructions?: string): void;
  /** Stops the response being generated (barge-in). */
  cancel(): void;
  /** The caller heard only `audioEndMs` of item `itemId`: the model forgets the rest. */
  truncate(itemId: string, audioEndMs: number): void;
  /** The answer to a `tool-call`. */
  toolResult(callId: string, output: string): void;
  /** Words said outside the model (our greeting from the prompt cache), so its context has them. */
  addMessage(role: 'assistant' | 'user', text: string): void;
  close(): Promise<void>;
}

export interface RealtimeProvider {
  readonly name: string;
  /** Connects and configures a session; rejects with a CallgateError when the model cannot be reached. */
  open(options: RealtimeSessionOptions): Promise<RealtimeSession>;
}
