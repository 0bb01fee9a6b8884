import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { CallgateError } from '../../errors.js';
import type { ChatMessage, ToolCall, ToolSpec } from '../types.js';

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
   * truncate on barge-in); `server`: the model's own voice detection answers by itself.
   */
  readonly turnDetection: 'ours' | 'server';
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
