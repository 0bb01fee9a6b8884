import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { CallgateError } from '../../errors.js';
import type { ChatMessage, RealtimeProvider, RealtimeSession, RealtimeSessionOptions, RealtimeUsage, ToolCall } from '../../providers/types.js';
import { AsyncQueue } from '../AsyncQueue.js';

/**
 * One call's connection to a speech-to-speech model. It opens while the greeting plays, streams the
 * caller's turns, hands out each response's audio, words and tool calls, and survives one dropped
 * connection (reopened with the conversation so far). A second failure, or none at the start, and the
 * link is `down` for good: the session answers with the cascade (its STT, LLM and TTS) from then on.
 */
export type RealtimeResponseEvent =
  | { readonly type: 'audio'; readonly pcm: Int16Array; readonly itemId: string }
  | { readonly type: 'text'; readonly text: string; readonly itemId: string; readonly final: boolean }
  | { readonly type: 'tool'; readonly call: ToolCall }
  | { readonly type: 'done'; readonly status: string };

export type RealtimeLinkState = 'connecting' | 'up' | 'reconnecting' | 'down';

/** What a call used of the model, for its record and metrics. */
export interface RealtimeTotals {
  readonly provider: string;
  audioInMs: number;
  audioOutMs: number;
  inputTokens: number;
  outputTokens: number;
  responses: number;
  reconnects: number;
}

export interface RealtimeLinkEvents {
  'caller-text': [text: string, final: boolean];
  state: [state: RealtimeLinkState];
  /** The model's own turn detection heard the caller start or stop (`realtimeTurnDetection: model`). */
  'speech-started': [];
  'speech-stopped': [];
  /** A response began that nobody asked for (the model's own turn detection answered a turn): `takeUnasked()` reads it. */
  unasked: [];
}

export class RealtimeLink extends EventEmitter<RealtimeLinkEvents> {
  state: RealtimeLinkState = 'connecting';
  readonly totals: RealtimeTotals;
  private session: RealtimeSession | undefined;
  private opening: Promise<boolean> | undefined;
  private responding: AsyncQueue<RealtimeResponseEvent> | undefined;
  private reconnected = false;
  private closed = false;
  /** Events came before anyone asked for a response: the next respond() reads them. */
  private early = false;
  /** A response is streaming (events came since the last response-done). */
  private active = false;
  /** A cut response's late events are dropped until its end arrives: they are no new answer. */
  private discarding = false;

  constructor(
    private readonly provider: RealtimeProvider,
    private readonly options: Omit<RealtimeSessionOptions, 'history'>,
    /** The conversation so far, for a reopened connection. */
    private readonly history: () => readonly ChatMessage[],
    private readonly log: Logger,
  ) {
    super();
    this.totals = { provider: provider.name, audioInMs: 0, audioOutMs: 0, inputTokens: 0, outputTokens: 0, responses: 0, reconnects: 0 };
  }

  /** Connects (the session calls it as the call starts, so the model is there by the caller's first turn). */
  start(): Promise<boolean> {
    this.opening ??= this.connect();
    return this.opening;
  }

  /** Resolves true once the model is there, false when the call must use the cascade. */
  ready(): Promise<boolean> {
    return this.opening ?? this.start();
  }

  get up(): boolean {
    return this.state === 'up';
  }

  appendAudio(pcm16k: Int16Array): void {
    if (this.state !== 'up') return;
    this.session?.appendAudio(pcm16k);
    this.totals.audioInMs += pcm16k.length / 16;
  }

  commit(): void {
    this.session?.commit();
  }

  /**
   * Asks for a response and yields its events until it is done (a tool call's result continues it:
   * `toolResult` then keeps reading). Ends early, without a `done`, when the connection fails.
   */
  respond(instructions?: string): AsyncQueue<RealtimeResponseEvent> {
    this.totals.responses++;
    // A model that answers a turn by itself (Gemini, at the turn's end) may have started already: its
    // first events wait in the queue made for them.
    if (this.early) {
      this.early = false;
      this.session?.respond(instructions);
      return this.responding!;
    }
    this.responding?.end();
    const queue = new AsyncQueue<RealtimeResponseEvent>();
    this.responding = queue;
    this.session?.respond(instructions);
    return queue;
  }

  /**
   * The response the model began by itself (after `unasked`), without asking for another; undefined
   * when it was cut or lost before it was read (nothing to play).
   */
  takeUnasked(): AsyncQueue<RealtimeResponseEvent> | undefined {
    const queue = this.early ? this.responding : undefined;
    this.early = false;
    if (queue) this.totals.responses++;
    return queue;
  }

  /** The reader is done with `queue` (its response ended, or was cut): later events are a new response. */
  release(queue: AsyncQueue<RealtimeResponseEvent>): void {
    if (this.responding !== queue) return;
    queue.end();
    this.responding = undefined;
    this.early = false;
  }

  /** Where a response's events go: the current reader's queue, or one kept for the reader to come. */
  private deliver(event: RealtimeResponseEvent): void {
    if (this.discarding) return;
    this.active = true;
    if (!this.responding) {
      this.responding = new AsyncQueue<RealtimeResponseEvent>();
      this.early = true;
      this.emit('unasked');
    }
    this.responding.push(event);
  }

  toolResult(callId: string, output: string): void {
    this.session?.toolResult(callId, output);
    this.session?.respond();
  }

  /** Barge-in: stop generating, and forget what the caller did not hear of `itemId`. */
  interrupt(itemId: string | undefined, heardMs: number): void {
    this.session?.cancel();
    if (itemId) this.session?.truncate(itemId, heardMs);
    this.discarding = this.active;
    this.responding?.end();
    this.responding = undefined;
    this.early = false;
  }

  private dropEarly(): void {
    this.responding?.end();
    this.responding = undefined;
    this.early = false;
  }

  /** A message said outside the model (the greeting from our cache), so its context holds it. */
  addMessage(role: 'assistant' | 'user', text: string): void {
    if (this.state === 'up') this.session?.addMessage(role, text);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.responding?.end();
    await this.session?.close();
  }

  private async connect(): Promise<boolean> {
    try {
      const session = await this.provider.open({ ...this.options, history: this.history() });
      if (this.closed) {
        await session.close();
        return false;
      }
      this.attach(session);
      this.setState('up');
      return true;
    } catch (err) {
      this.log.warn({ err: err instanceof Error ? err.message : String(err), provider: this.provider.name }, 'speech-to-speech model unreachable; the cascade answers');
      this.setState('down');
      return false;
    }
  }

  private attach(session: RealtimeSession): void {
    this.session = session;
    const mine = (): boolean => this.session === session;
    session.on('audio', (pcm, itemId) => {
      if (!mine()) return;
      this.totals.audioOutMs += pcm.length / 16;
      this.deliver({ type: 'audio', pcm, itemId });
    });
    session.on('agent-text', (text, itemId, final) => mine() && this.deliver({ type: 'text', text, itemId, final }));
    session.on('tool-call', (call) => mine() && this.deliver({ type: 'tool', call }));
    session.on('caller-text', (text, final) => mine() && this.emit('caller-text', text, final));
    session.on('speech-started', () => mine() && this.emit('speech-started'));
    session.on('speech-stopped', () => mine() && this.emit('speech-stopped'));
    session.on('response-done', (done) => {
      if (!mine()) return;
      this.count(done.usage);
      this.active = false;
      if (this.discarding) {
        this.discarding = false;
        return;
      }
      // A response that ended in a tool call goes on once its result is in; the reader decides.
      this.responding?.push({ type: 'done', status: done.status });
      if (done.status === 'cancelled' && this.early) this.dropEarly();
    });
    session.on('error', (err) => {
      if (mine()) this.log.warn({ err: err.message }, 'speech-to-speech model error');
    });
    session.on('closed', () => {
      if (mine() && !this.closed) void this.lost();
    });
  }

  /** The connection dropped: once per call it is reopened with the conversation so far. */
  private async lost(): Promise<void> {
    this.session = undefined;
    this.active = false;
    this.discarding = false;
    this.responding?.end();
    this.responding = undefined;
    this.early = false;
    if (this.reconnected) {
      this.log.warn('speech-to-speech connection lost again; the cascade answers from now on');
      this.setState('down');
      return;
    }
    this.reconnected = true;
    this.totals.reconnects++;
    this.setState('reconnecting');
    this.log.warn('speech-to-speech connection lost; reopening it with the conversation so far');
    this.opening = this.connect();
    await this.opening;
  }

  private count(usage: RealtimeUsage | undefined): void {
    if (!usage) return;
    this.totals.inputTokens += usage.inputTokens;
    this.totals.outputTokens += usage.outputTokens;
  }

  private setState(state: RealtimeLinkState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state);
  }
}

/** A link that was never up: nothing to answer with but the cascade. */
export function linkDown(): CallgateError {
  return new CallgateError('CG_REALTIME_UNAVAILABLE', 'the speech-to-speech model is not connected');
}
