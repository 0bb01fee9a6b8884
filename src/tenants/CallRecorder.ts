import type { AgentEvent, AgentEventOf, LatencyMark } from '../agent/events.js';
import type { ErrorCode } from '../errors.js';
import type { CallDoor, CallOutcome, CallRecord, TransferRecord, TranscriptEntry, WriteResult } from './CallRecordStore.js';

/** What a door knows when a call arrives. */
export interface CallRecorderStart {
  readonly callId: string;
  readonly tenantId: string;
  readonly door: CallDoor;
  readonly from: string;
  readonly to: string;
  /** Defaults to when the recorder was made. */
  readonly startedAt?: Date;
}

/** How the door saw the end; each field overrides what the events say. */
export interface CallEnd {
  readonly outcome?: CallOutcome;
  readonly error?: { readonly code: ErrorCode; readonly message?: string };
  readonly endedAt?: Date;
}

/** Anything that emits AgentEvents as 'event' (AgentSession does), so the recorder needs no session class. */
export interface AgentEventSource {
  on(event: 'event', listener: (event: AgentEvent) => void): unknown;
  off(event: 'event', listener: (event: AgentEvent) => void): unknown;
}

type Marks = Partial<Record<LatencyMark, number>>;
type SessionError = NonNullable<CallRecord['errors']>[number];

/** Where records go: CallRecordStore. `track` (optional) keeps an answered call's snapshot until its record lands. */
export interface CallRecordSink {
  write(record: CallRecord): Promise<WriteResult>;
  track?(snapshot: CallRecord): Promise<void>;
  readonly options?: { readonly openCallTtlMs: number };
}

/**
 * Builds one call's record from its AgentEvents and writes it once, at `finish()`. A rejected call has
 * no events: `finish({ outcome: 'rejected', error })` right away.
 *
 * From the answer until `finish()`, the record so far is also kept in Redis and renewed (the sink's
 * `track`), so a call whose gateway is killed still gets a record, written by another gateway.
 */
export class CallRecorder {
  private transfer: TransferRecord | undefined;
  private realtime: CallRecord['realtime'];
  private readonly startedAt: Date;
  private answeredAt: Date | undefined;
  private readonly transcript: TranscriptEntry[] = [];
  private readonly latency = new Map<number, Marks>();
  private readonly onsets = new Map<number, number>();
  /** Caller speech onset → barge-in detected, per interruption by speech. */
  private readonly bargeIns: { turn: number; reactionMs: number }[] = [];
  private readonly errors: SessionError[] = [];
  /** The agent reply being spoken: pieces so far, until its `agent-done`. */
  private speaking: { turn: number; atMs: number; text: string } | undefined;
  private ended: AgentEventOf<'session-ended'> | undefined;
  private finished: Promise<WriteResult> | undefined;
  private trackTimer: NodeJS.Timeout | undefined;
  /** The snapshot on its way: the record waits for it, so a late snapshot cannot outlive the record. */
  private tracking: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: CallRecordSink,
    readonly start: CallRecorderStart,
  ) {
    this.startedAt = start.startedAt ?? new Date();
  }

  /** The call was answered (a SIP 200 OK, a WebRTC connect); otherwise the session's start counts. */
  answered(at: Date = new Date()): void {
    if (this.answeredAt) return;
    this.answeredAt = at;
    const { store } = this;
    if (!store.track || !store.options || this.finished) return;
    const snapshot = (): void => {
      this.tracking = this.tracking.then(() => store.track?.(this.build({ outcome: 'lost', error: { code: 'CG_CALL_LOST' } })));
    };
    snapshot();
    // A third of the snapshot's life: two renewals can be missed (a Redis blip) before it lapses.
    this.trackTimer = setInterval(snapshot, Math.max(100, Math.floor(store.options.openCallTtlMs / 3)));
    this.trackTimer.unref();
  }

  /** Feeds the events of `source` in until the returned function is called (or the record is finished). */
  attach(source: AgentEventSource): () => void {
    const listener = (event: AgentEvent): void => this.observe(event);
    source.on('event', listener);
    return () => void source.off('event', listener);
  }

  observe(event: AgentEvent): void {
    if (this.finished) return;
    switch (event.type) {
      case 'session-started':
        this.answered();
        break;
      case 'turn-started':
        this.onsets.set(event.turn, event.onsetAtMs);
        break;
      case 'transcript':
        if (event.final && event.text.trim()) {
          this.transcript.push({ role: 'caller', text: event.text, atMs: this.onsets.get(event.turn) ?? event.atMs, turn: event.turn });
        }
        break;
      case 'dtmf': {
        // Digits typed in a row are one entry ("1234#"), as the caller thinks of them.
        const last = this.transcript.at(-1);
        if (last?.dtmf) this.transcript[this.transcript.length - 1] = { ...last, text: last.text + event.digit };
        else this.transcript.push({ role: 'caller', text: event.digit, atMs: event.atMs, dtmf: true });
        break;
      }
      case 'agent-text':
        if (this.speaking?.turn !== event.turn) {
          this.flushSpeaking();
          this.speaking = { turn: event.turn, atMs: event.atMs, text: '' };
        }
        this.speaking.text += this.speaking.text ? ` ${event.text}` : event.text;
        break;
      case 'agent-done': {
        const atMs = this.speaking?.turn === event.turn ? this.speaking.atMs : event.atMs;
        this.speaking = undefined;
        // The spoken text is what the caller heard; an empty one (cut off before any audio) says nothing.
        if (event.spokenText) {
          const entry: TranscriptEntry = { role: 'agent', text: event.spokenText, atMs, turn: event.turn };
          this.transcript.push(event.interrupted ? { ...entry, interrupted: true } : entry);
        }
        break;
      }
      case 'barge-in': {
        const onset = this.onsets.get(event.turn);
        if (event.by === 'speech' && onset !== undefined) this.bargeIns.push({ turn: event.turn, reactionMs: Math.max(0, event.atMs - onset) });
        break;
      }
      case 'latency': {
        const marks = this.latency.get(event.turn) ?? {};
        marks[event.mark] ??= event.sinceSpeechEndMs;
        this.latency.set(event.turn, marks);
        break;
      }
      case 'error':
        this.errors.push({ code: event.code, during: event.during, atMs: event.atMs });
        break;
      case 'realtime-usage': {
        const { type: _type, atMs: _atMs, ...usage } = event;
        this.realtime = usage;
        break;
      }
      case 'session-ended':
        this.ended = event;
        break;
      default:
        break;
    }
  }

  /** A transfer the agent attempted: the record keeps the last one. */
  transferred(transfer: TransferRecord): void {
    this.transfer = transfer;
  }

  /** The record as it stands, with `end` applied. Pure: for `finish()` and for a live view. */
  build(end: CallEnd = {}): CallRecord {
    const sessionError = this.errors.findLast((e) => e.during === 'session');
    let outcome: CallOutcome;
    let error = end.error;
    if (end.outcome) outcome = end.outcome;
    else if (end.error) outcome = 'failed';
    else if (this.ended?.reason === 'closed' && sessionError) {
      outcome = 'failed';
      error = { code: sessionError.code };
    } else if (this.ended) outcome = this.ended.reason;
    // No end from the session nor the door: the door lost track of the call.
    else outcome = 'failed';

    const transcript = [...this.transcript];
    // A reply still being spoken when the call ended was cut off.
    const s = this.speaking;
    if (s?.text) transcript.push({ role: 'agent', text: s.text, atMs: s.atMs, turn: s.turn, interrupted: true });
    // Entries are pushed when a result arrives (STT final after the agent reacted, a reply when it ends);
    // a stable sort by start time restores the order of the conversation.
    transcript.sort((a, b) => a.atMs - b.atMs);

    return {
      callId: this.start.callId,
      tenantId: this.start.tenantId,
      door: this.start.door,
      // Clipped to the schema's bound: a door's odd header must not cost the call its record.
      from: this.start.from.slice(0, 512),
      to: this.start.to.slice(0, 512),
      startedAt: this.startedAt.toISOString(),
      ...(this.answeredAt ? { answeredAt: this.answeredAt.toISOString() } : {}),
      endedAt: (end.endedAt ?? new Date()).toISOString(),
      outcome,
      ...(error ? { error: error.message === undefined ? { code: error.code } : { code: error.code, message: error.message } } : {}),
      latency: [...this.latency].sort(([a], [b]) => a - b).map(([turn, marks]) => ({ turn, marks })),
      ...(this.bargeIns.length > 0 ? { bargeIns: this.bargeIns } : {}),
      ...(this.transfer ? { transfer: this.transfer } : {}),
      ...(this.realtime ? { realtime: this.realtime } : {}),
      transcript,
      ...(this.errors.length > 0 ? { errors: [...this.errors] } : {}),
    };
  }

  /** Writes the record (once; later calls return the first result). Later events are ignored. */
  finish(end: CallEnd = {}): Promise<WriteResult> {
    if (!this.finished) {
      clearInterval(this.trackTimer);
      const record = this.build(end);
      this.finished = this.tracking.then(() => this.store.write(record));
    }
    return this.finished;
  }

  private flushSpeaking(): void {
    const s = this.speaking;
    if (s?.text) this.transcript.push({ role: 'agent', text: s.text, atMs: s.atMs, turn: s.turn, interrupted: true });
    this.speaking = undefined;
  }
}
