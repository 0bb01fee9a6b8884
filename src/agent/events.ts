import type { ErrorCode } from '../errors.js';

/**
 * One call's event stream, as the agent produces it. The API, the web phone and call records read it;
 * every event carries `atMs`, milliseconds since the session started (monotonic clock).
 */

/** Why a session ended. */
export type EndReason =
  | 'caller-hangup'
  | 'agent-goodbye'
  | 'no-input'
  | 'max-duration'
  /** Providers kept failing: the agent said so and hung up. */
  | 'provider-failure'
  /** The gateway shut down with the call still up: the agent said goodbye and hung up. */
  | 'shutdown'
  /** The caller's media stopped without a hang-up (no RTP for the door's media timeout): the door hung up. */
  | 'media-timeout'
  /** The front door closed the session (shutdown, transport failure). */
  | 'closed'
  /** The caller was handed to a person (transfer_call): the agent's part of the call is over. */
  | 'transferred';

/**
 * Latency marks of one turn, each measured from the end of the caller's speech (the last speech frame
 * before endpointing started counting) except `endOfTurn`, which is when endpointing fired.
 */
export type LatencyMark = 'endOfTurn' | 'sttFinal' | 'llmFirstToken' | 'ttsFirstAudio' | 'firstPacketOut';

export type AgentEvent =
  | { readonly type: 'session-started'; readonly atMs: number }
  | { readonly type: 'greeting'; readonly atMs: number; readonly text: string; readonly cached: boolean }
  /** The caller started speaking (confirmed by the VAD); `onsetAtMs` is the first speech frame. */
  | { readonly type: 'turn-started'; readonly atMs: number; readonly turn: number; readonly onsetAtMs: number }
  /** Endpointing: the caller's turn is over. `speechEndAtMs` is the last speech frame. */
  | { readonly type: 'turn-ended'; readonly atMs: number; readonly turn: number; readonly speechEndAtMs: number }
  | { readonly type: 'transcript'; readonly atMs: number; readonly turn: number; readonly text: string; readonly final: boolean }
  /** A piece of the agent's reply, as it is handed to speech synthesis. */
  | { readonly type: 'agent-text'; readonly atMs: number; readonly turn: number; readonly text: string }
  /** The agent's reply was spoken to the end (`interrupted: false`) or cut off by barge-in. */
  | { readonly type: 'agent-done'; readonly atMs: number; readonly turn: number; readonly spokenText: string; readonly interrupted: boolean }
  | { readonly type: 'barge-in'; readonly atMs: number; readonly turn: number; readonly playedMs: number; readonly by: 'speech' | 'dtmf' }
  /** Adaptive barge-in: the caller made a sound over the agent, which lowered its voice while it judges it. */
  | { readonly type: 'agent-ducked'; readonly atMs: number; readonly onsetAtMs: number }
  /** The sound was a backchannel or a noise: the agent went on, at full level, from where it was. */
  | { readonly type: 'backchannel'; readonly atMs: number; readonly onsetAtMs: number }
  /** No words followed a barge-in: the agent resumes the interrupted sentence. */
  | { readonly type: 'barge-in-resumed'; readonly atMs: number; readonly turn: number; readonly fromText: string }
  | { readonly type: 'dtmf'; readonly atMs: number; readonly digit: string }
  /** A tool the model called has answered (or failed, or was dropped because the caller interrupted). */
  | { readonly type: 'tool'; readonly atMs: number; readonly turn: number; readonly name: string; readonly ok: boolean; readonly durationMs: number }
  | { readonly type: 'reprompt'; readonly atMs: number; readonly count: number }
  | { readonly type: 'latency'; readonly atMs: number; readonly turn: number; readonly mark: LatencyMark; readonly sinceSpeechEndMs: number }
  | { readonly type: 'error'; readonly atMs: number; readonly code: ErrorCode; readonly message: string; readonly during: 'stt' | 'llm' | 'tts' | 'greeting' | 'session' }
  /** What the call used of its speech-to-speech model (emitted once, as the session ends). */
  | { readonly type: 'realtime-usage'; readonly atMs: number; readonly provider: string; readonly audioInMs: number; readonly audioOutMs: number; readonly inputTokens: number; readonly outputTokens: number; readonly responses: number; readonly reconnects: number; readonly fellBack: boolean }
  | { readonly type: 'session-ended'; readonly atMs: number; readonly reason: EndReason };

export type AgentEventType = AgentEvent['type'];
export type AgentEventOf<T extends AgentEventType> = Extract<AgentEvent, { type: T }>;
