import { EventEmitter } from 'node:events';
import { DeepgramClient, type listen } from '@deepgram/sdk';
import type { Logger } from 'pino';
import { CallgateError } from '../errors.js';
import { createG711Encoder, linearToMulaw } from '../media/codecs/g711.js';
import type { AudioEncoder } from '../media/codecs/AudioCodec.js';
import { Resampler } from '../media/Resampler.js';
import { PIPELINE_RATE } from '../media/types.js';
import { stripUndefined } from '../util/options.js';
import type { SttProvider, SttResult, SttStream, SttStreamEvents, SttStreamOptions } from './types.js';
import { isPermanentStatus } from './resilience/chain.js';

/**
 * Speech to text through Deepgram's live streaming API (`/v1/listen`, Nova models) with the official
 * `@deepgram/sdk` (v5): `client.listen.v1.connect()` builds the socket, `socket.connect()` dials it.
 * Protocol followed:
 * - https://developers.deepgram.com/reference/speech-to-text/listen-streaming (query parameters,
 *   Results / Metadata / UtteranceEnd messages, errors as WebSocket close frames such as 1011 NET-0001)
 * - https://developers.deepgram.com/docs/understand-endpointing-interim-results (is_final segments are
 *   concatenated; speech_final marks a pause, not the whole utterance)
 * - https://developers.deepgram.com/docs/utterance-end (UtteranceEnd after a gap following the last word)
 * - https://developers.deepgram.com/docs/audio-keep-alive (the socket closes after 10 s without audio
 *   or KeepAlive; KeepAlive gets no reply and must be a text frame)
 * - https://developers.deepgram.com/docs/finalize (Finalize flushes; the `from_finalize` reply is "not
 *   guaranteed if there is no significant amount of audio data to process")
 *
 * The agent decides when the caller's turn ends (its own VAD); `finalize()` then asks Deepgram to flush
 * and returns the final segments of that turn. Deepgram's own endpointing only shapes interim/final
 * segmentation here, it never ends a turn.
 */
export interface DeepgramSttOptions {
  /** Per tenant, else `DEEPGRAM_API_KEY`. Never logged. */
  readonly apiKey: string;
  /**
   * WebSocket base URL, e.g. `wss://api.eu.deepgram.com` or a self-hosted `ws://host:8080`; the SDK's
   * default (`wss://api.deepgram.com`) when undefined. `/v1/listen` is appended.
   */
  readonly baseUrl: string | undefined;
  readonly model: string;
  /**
   * 'linear16': the pipeline's 16 kHz PCM as is (256 kbit/s upstream). 'mulaw': halved to 8 kHz and
   * G.711 µ-law coded (64 kbit/s, 4× less). µ-law drops the 4–8 kHz band (s/f/th are told apart there)
   * and adds ~38 dB SNR quantisation noise, which costs accuracy on wideband callers (WebRTC, HD voice);
   * on a PSTN call the audio already was 8 kHz µ-law, so mulaw loses next to nothing there.
   */
  readonly encoding: 'linear16' | 'mulaw';
  /** Silence, in ms, after which Deepgram marks a segment `speech_final`; false disables it. */
  readonly endpointingMs: number | false;
  /** Gap after the last word, in ms, after which Deepgram sends UtteranceEnd; Deepgram advises ≥ 1000. */
  readonly utteranceEndMs: number;
  readonly smartFormat: boolean;
  readonly punctuate: boolean;
  /** At most this many of the stream's phrases go to Deepgram as keyterms (Nova-3) or keywords (older models). */
  readonly maxPhrases: number;
  /** `open()` rejects with CG_STT_UNAVAILABLE when the socket is not open by then. */
  readonly connectTimeoutMs: number;
  /** KeepAlive is sent once no audio has gone out for this long. */
  readonly keepAliveMs: number;
  /** `finalize()` rejects with CG_STT_TIMEOUT when Deepgram has not finished the turn by then. */
  readonly finalizeTimeoutMs: number;
  /**
   * When Deepgram had already ended the utterance (speech_final or UtteranceEnd, no unfinalized words)
   * it may not answer Finalize at all; `finalize()` then resolves once nothing else arrived for this long.
   */
  readonly finalizeGraceMs: number;
}

export const defaultDeepgramSttOptions = {
  baseUrl: undefined,
  /** Nova-3: Deepgram's current streaming model, and the one that takes keyterm prompting. */
  model: 'nova-3',
  encoding: 'linear16',
  /** 300 ms: Deepgram's advice for conversation (people pause mid-thought); 10 ms would chop segments. */
  endpointingMs: 300,
  /** 1000 ms: the smallest useful value (interim results come about once a second). */
  utteranceEndMs: 1000,
  smartFormat: true,
  punctuate: true,
  /** 100: Deepgram's documented keyterm count (they also cap all keyterms at 500 tokens; see phraseParams). */
  maxPhrases: 100,
  /** 3 s: past that the caller has heard a silent line for too long; the fallback chain should take over. */
  connectTimeoutMs: 3000,
  /** 4 s: Deepgram advises a KeepAlive every 3–5 s against its 10 s inactivity close. */
  keepAliveMs: 4000,
  /** 2 s: a flush normally answers in a few hundred ms; longer would leave the caller in silence. */
  finalizeTimeoutMs: 2000,
  /**
   * 500 ms: long enough for a from_finalize reply to arrive when there was audio to flush (one round trip
   * plus decoding), short because it is pure latency when Deepgram has nothing to answer with.
   */
  finalizeGraceMs: 500,
} as const satisfies Partial<DeepgramSttOptions>;

/** Keyterms are limited to 500 tokens in all; ~4 characters a token for English, 3 to stay clear of it. */
const KEYTERM_TOKEN_BUDGET = 500;
const CHARS_PER_TOKEN = 3;
const MULAW_RATE = 8000;
/** Deepgram's segment ends are in seconds; one 20 ms frame of slack when comparing them with ours. */
const FRAME_SECONDS = 0.02;
/** The wire format is little-endian s16; Int16Array uses the host's order. */
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// The SDK does not export its wrapped client's argument and socket types; they are read off the client.
type ListenV1Client = DeepgramClient['listen']['v1'];
type ListenV1ConnectionArgs = Parameters<ListenV1Client['connect']>[0];
type ListenV1Socket = Awaited<ReturnType<ListenV1Client['connect']>>;
type ListenV1Message = listen.ListenV1Results | listen.ListenV1Metadata | listen.ListenV1UtteranceEnd | listen.ListenV1SpeechStarted;

export class DeepgramStt implements SttProvider {
  readonly name = 'deepgram';
  readonly options: DeepgramSttOptions;
  private readonly client: DeepgramClient;

  constructor(options: Partial<DeepgramSttOptions> & { apiKey: string }) {
    this.options = { ...defaultDeepgramSttOptions, ...stripUndefined(options) } as DeepgramSttOptions;
    this.client = new DeepgramClient({ apiKey: this.options.apiKey, ...(this.options.baseUrl ? { baseUrl: this.options.baseUrl } : {}) });
  }

  async open(options: SttStreamOptions): Promise<SttStream> {
    const o = this.options;
    const log = options.logger?.child({ stt: this.name, model: o.model, encoding: o.encoding });
    let socket: ListenV1Socket;
    try {
      socket = await this.client.listen.v1.connect(this.connectArgs(options));
    } catch (err) {
      // The SDK validates some arguments before dialling (e.g. keywords with Nova-3).
      throw new CallgateError('CG_STT_UNAVAILABLE', `deepgram: ${errorMessage(err)}`, { cause: err });
    }
    const stream = new DeepgramStream(socket, o, log);
    await stream.start();
    log?.debug('deepgram stream open');
    return stream;
  }

  private connectArgs(stream: SttStreamOptions): ListenV1ConnectionArgs {
    const o = this.options;
    return {
      model: o.model,
      language: stream.language,
      encoding: o.encoding,
      sample_rate: o.encoding === 'mulaw' ? MULAW_RATE : PIPELINE_RATE,
      channels: 1,
      interim_results: 'true',
      endpointing: o.endpointingMs === false ? 'false' : o.endpointingMs,
      utterance_end_ms: o.utteranceEndMs,
      smart_format: String(o.smartFormat),
      punctuate: String(o.punctuate),
      ...phraseParams(o.model, stream.language, stream.phrases, o.maxPhrases),
      // One attempt: a reconnect would lose the turn's audio anyway, and a refused key would be retried 30
      // times (the SDK's default). The call's fallback chain decides what happens next.
      reconnectAttempts: 0,
      shouldReconnect: () => false,
      connectionTimeoutInSeconds: o.connectTimeoutMs / 1000,
    };
  }
}

/**
 * Nova-3 takes `keyterm` (monolingual only) and rejects `keywords`; older models take `keywords`.
 * Phrases are trimmed, de-duplicated and cut to the count and token budgets, in the order given.
 */
function phraseParams(model: string, language: string, phrases: readonly string[], maxPhrases: number): Pick<ListenV1ConnectionArgs, 'keyterm' | 'keywords'> {
  const isNova3 = model === 'nova-3' || model.startsWith('nova-3-');
  if (isNova3 && language === 'multi') return {};
  const chosen: string[] = [];
  let tokens = 0;
  for (const raw of phrases) {
    const phrase = raw.trim().replace(/\s+/g, ' ');
    if (phrase === '' || chosen.includes(phrase)) continue;
    const cost = Math.ceil(phrase.length / CHARS_PER_TOKEN);
    if (chosen.length >= maxPhrases || tokens + cost > KEYTERM_TOKEN_BUDGET) break;
    chosen.push(phrase);
    tokens += cost;
  }
  if (chosen.length === 0) return {};
  return isNova3 ? { keyterm: chosen } : { keywords: chosen };
}

interface FinalizeWaiter {
  /** Audio sent when finalize() was called, in seconds of stream time (Deepgram's timestamps). */
  readonly target: number;
  /** The target of the finalize before this one: a from_finalize ending near it answers that one, late. */
  readonly previous: number;
  readonly resolve: (text: string) => void;
  readonly reject: (err: CallgateError) => void;
  readonly timer: NodeJS.Timeout;
  grace: NodeJS.Timeout | undefined;
}

interface FinalSegment {
  readonly text: string;
  /** Start of the segment, in seconds of stream time. */
  readonly start: number;
}

class DeepgramStream extends EventEmitter<SttStreamEvents> implements SttStream {
  readonly interimResults = true;
  private state: 'connecting' | 'open' | 'failed' | 'closed' = 'connecting';
  private failure: CallgateError | undefined;
  private opening: { resolve: () => void; reject: (err: CallgateError) => void; timer: NodeJS.Timeout } | undefined;
  private closing: Promise<void> | undefined;
  /** Close and error of one failure arrive back to back (close first); the error has the better message. */
  private pendingFailure: { code?: number; reason?: string; message?: string } | undefined;

  private readonly sampleRate: number;
  private readonly resampler: Resampler | undefined;
  private readonly encoder: AudioEncoder | undefined;
  private samplesSent = 0;
  private lastSentAt = 0;
  private keepAliveTimer: NodeJS.Timeout | undefined;

  private finals: FinalSegment[] = [];
  private pushedSinceFinalize = false;
  private waiters: FinalizeWaiter[] = [];
  private lastSettledTarget = 0;
  /** End of the furthest is_final segment: Deepgram will not revise anything before it. */
  private finalizedTo = 0;
  /** Words shown in an interim result and not yet in a final one. */
  private wordsPending = false;
  /** Deepgram ended the utterance (speech_final, UtteranceEnd) and heard no word since; true before any speech. */
  private quiet = true;
  /** End of the furthest audio any result covered (seconds of stream time): how far Deepgram has listened. */
  private heardTo = 0;
  private requestId: string | undefined;

  constructor(
    private readonly socket: ListenV1Socket,
    private readonly options: DeepgramSttOptions,
    private readonly log: Logger | undefined,
  ) {
    super();
    if (options.encoding === 'mulaw') {
      this.sampleRate = MULAW_RATE;
      this.resampler = new Resampler(PIPELINE_RATE, MULAW_RATE);
      this.encoder = createG711Encoder('PCMU');
    } else {
      this.sampleRate = PIPELINE_RATE;
    }
    // The SDK catches and console.errors what a handler throws; ours must not throw.
    socket.on('open', () => this.onOpen());
    socket.on('message', (msg) => this.onMessage(msg));
    socket.on('close', (event) => this.onSocketTrouble({ code: event.code, reason: event.reason }));
    socket.on('error', (err) => this.onSocketTrouble({ message: err.message }));
  }

  /** Dials; resolves once the WebSocket is open, rejects with CG_STT_UNAVAILABLE otherwise. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timeoutMs = this.options.connectTimeoutMs;
      const timer = setTimeout(() => this.openFailed({ message: 'TIMEOUT' }), timeoutMs);
      this.opening = { resolve, reject, timer };
      try {
        this.socket.connect();
      } catch (err) {
        this.openFailed({ message: errorMessage(err) });
      }
    });
  }

  push(frame: Int16Array): void {
    // An empty binary message is read by Deepgram as end of stream.
    if (this.state !== 'open' || frame.length === 0) return;
    const payload = this.encode(frame);
    if (payload.byteLength === 0) return;
    try {
      this.socket.sendMedia(payload);
    } catch (err) {
      this.fail(new CallgateError('CG_STT_FAILED', `deepgram: could not send audio: ${errorMessage(err)}`, { cause: err, details: this.details() }));
      return;
    }
    this.samplesSent += this.encoder ? payload.byteLength : payload.byteLength / 2;
    this.pushedSinceFinalize = true;
    this.lastSentAt = performance.now();
  }

  finalize(): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.state !== 'open') return Promise.reject(new CallgateError('CG_STT_FAILED', 'the stream is closed'));
    // Nothing new to flush: no round trip. Text is left only when an earlier finalize() timed out.
    if (!this.pushedSinceFinalize) return Promise.resolve(this.waiters.length > 0 ? '' : this.take(Infinity));
    this.pushedSinceFinalize = false;
    const target = this.samplesSent / this.sampleRate;
    const previous = this.waiters.at(-1)?.target ?? this.lastSettledTarget;
    try {
      this.socket.sendFinalize({ type: 'Finalize' });
    } catch (err) {
      const failure = new CallgateError('CG_STT_FAILED', `deepgram: could not send Finalize: ${errorMessage(err)}`, { cause: err, details: this.details() });
      this.fail(failure);
      return Promise.reject(failure);
    }
    return new Promise((resolve, reject) => {
      const timeoutMs = this.options.finalizeTimeoutMs;
      const timer = setTimeout(() => {
        this.settle(waiter);
        this.log?.warn({ timeoutMs, requestId: this.requestId }, 'deepgram did not finish the turn in time');
        reject(new CallgateError('CG_STT_TIMEOUT', `deepgram gave no final result within ${timeoutMs} ms`, { details: { timeoutMs } }));
        this.checkWaiters(false);
      }, timeoutMs);
      const waiter: FinalizeWaiter = { target, previous, resolve, reject, timer, grace: undefined };
      this.waiters.push(waiter);
      this.checkWaiters(false);
    });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const wasOpen = this.state === 'open';
      this.state = 'closed';
      this.stopTimers();
      this.rejectWaiters(new CallgateError('CG_STT_FAILED', 'the stream was closed'));
      if (wasOpen) {
        try {
          // Tells Deepgram the audio is complete, so it ends the session cleanly rather than as a dropped socket.
          this.socket.sendCloseStream({ type: 'CloseStream' });
        } catch {
          // Already closing: nothing more to tell it.
        }
      }
      this.socket.close();
    })();
    return this.closing;
  }

  // ─── Connection ──────────────────────────────────────────────────────────────────────────────────

  private onOpen(): void {
    const opening = this.opening;
    if (this.state !== 'connecting' || !opening) return;
    clearTimeout(opening.timer);
    this.opening = undefined;
    this.state = 'open';
    this.lastSentAt = performance.now();
    this.scheduleKeepAlive(this.options.keepAliveMs);
    opening.resolve();
  }

  private onSocketTrouble(info: { code?: number; reason?: string; message?: string }): void {
    if (this.state !== 'connecting' && this.state !== 'open') return;
    const first = this.pendingFailure === undefined;
    this.pendingFailure = { ...this.pendingFailure, ...stripUndefined(info) };
    if (!first) return;
    queueMicrotask(() => {
      const trouble = this.pendingFailure ?? {};
      this.pendingFailure = undefined;
      if (this.state === 'connecting') this.openFailed(trouble);
      else if (this.state === 'open') this.fail(this.midCallError(trouble));
    });
  }

  /** A refused handshake surfaces as ws's "Unexpected server response: 401": its status is all we get. */
  private openFailed(trouble: { code?: number; reason?: string; message?: string }): void {
    const opening = this.opening;
    if (!opening) return;
    clearTimeout(opening.timer);
    this.opening = undefined;
    this.state = 'failed';
    const timeoutMs = this.options.connectTimeoutMs;
    let err: CallgateError;
    if (trouble.message === 'TIMEOUT') {
      err = new CallgateError('CG_STT_UNAVAILABLE', `deepgram: no connection within ${timeoutMs} ms`, { details: { timeoutMs } });
    } else {
      const status = Number(/Unexpected server response: (\d{3})/.exec(trouble.message ?? '')?.[1]) || undefined;
      // 4xx other than 429 will not get better by retrying (bad key, no access, bad parameters).
      const permanent = isPermanentStatus(status) ? true : undefined;
      const what = trouble.message ?? `socket closed (${trouble.code ?? 'no code'}${trouble.reason ? ` ${trouble.reason}` : ''})`;
      err = new CallgateError('CG_STT_UNAVAILABLE', `deepgram: ${what}`.slice(0, 300), { details: stripUndefined({ status, permanent }) });
    }
    this.failure = err;
    this.log?.warn({ code: err.code, details: err.details }, 'deepgram connection failed');
    this.socket.close();
    opening.reject(err);
  }

  private midCallError(trouble: { code?: number; reason?: string; message?: string }): CallgateError {
    const { code, reason, message } = trouble;
    const what = message ?? `socket closed (${code ?? 'no code'}${reason ? ` ${reason}` : ''})`;
    return new CallgateError('CG_STT_FAILED', `deepgram: ${what}`.slice(0, 300), {
      details: stripUndefined({ closeCode: code, closeReason: reason || undefined, ...this.details() }),
    });
  }

  private details(): Record<string, unknown> {
    return stripUndefined({ requestId: this.requestId });
  }

  /** The stream is unusable from here on: finalize() rejects, push() drops, the owner hears it once. */
  private fail(err: CallgateError): void {
    if (this.state !== 'open') return;
    this.state = 'failed';
    this.failure = err;
    this.stopTimers();
    this.rejectWaiters(err);
    this.log?.warn({ code: err.code, details: err.details }, 'deepgram stream failed');
    this.socket.close();
    // An 'error' without listeners would throw and take the process down with one call's engine; the
    // failure also reaches the owner through finalize().
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private scheduleKeepAlive(delayMs: number): void {
    this.keepAliveTimer = setTimeout(() => this.keepAlive(), Math.max(1, delayMs));
    this.keepAliveTimer.unref();
  }

  /** Sends KeepAlive only in silence: audio itself keeps the socket open, and the check costs push() nothing. */
  private keepAlive(): void {
    if (this.state !== 'open') return;
    const idle = performance.now() - this.lastSentAt;
    const due = this.options.keepAliveMs - idle;
    if (due > 1) {
      this.scheduleKeepAlive(due);
      return;
    }
    try {
      this.socket.sendKeepAlive({ type: 'KeepAlive' });
    } catch (err) {
      this.fail(new CallgateError('CG_STT_FAILED', `deepgram: could not send KeepAlive: ${errorMessage(err)}`, { cause: err, details: this.details() }));
      return;
    }
    this.lastSentAt = performance.now();
    this.scheduleKeepAlive(this.options.keepAliveMs);
  }

  private stopTimers(): void {
    clearTimeout(this.keepAliveTimer);
    this.keepAliveTimer = undefined;
  }

  // ─── Audio ───────────────────────────────────────────────────────────────────────────────────────

  /** A new buffer each time: ws may hold it past this call, and callers reuse their frame buffers. */
  private encode(frame: Int16Array): Uint8Array {
    if (this.resampler && this.encoder) {
      const pcm8k = this.resampler.process(frame);
      if (pcm8k.length === this.encoder.frameSamples) return this.encoder.encode(pcm8k);
      // Frames other than 20 ms: the table encoder only takes whole 20 ms frames.
      const out = new Uint8Array(pcm8k.length);
      for (let i = 0; i < pcm8k.length; i++) out[i] = linearToMulaw(pcm8k[i] as number);
      return out;
    }
    const copy = frame.slice();
    const bytes = new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength);
    if (!HOST_IS_LITTLE_ENDIAN) {
      for (let i = 0; i + 1 < bytes.length; i += 2) {
        const hi = bytes[i] as number;
        bytes[i] = bytes[i + 1] as number;
        bytes[i + 1] = hi;
      }
    }
    return bytes;
  }

  // ─── Results ─────────────────────────────────────────────────────────────────────────────────────

  private onMessage(msg: ListenV1Message): void {
    if (this.state !== 'open' || typeof msg !== 'object' || msg === null) return;
    const type: unknown = (msg as { type?: unknown }).type;
    switch (type) {
      case 'Results':
        this.onResults(msg as listen.ListenV1Results);
        break;
      case 'UtteranceEnd':
        this.quiet = true;
        this.checkWaiters(false);
        break;
      case 'Metadata':
        this.requestId ??= (msg as { request_id?: string }).request_id;
        break;
      case 'Error': {
        // Deepgram reports errors as close frames; an Error message (newer APIs send one) is handled alike.
        const m = msg as { description?: unknown; message?: unknown; err_msg?: unknown };
        const text = String(m.description ?? m.message ?? m.err_msg ?? 'error message').slice(0, 200);
        this.fail(new CallgateError('CG_STT_FAILED', `deepgram: ${text}`, { details: this.details() }));
        break;
      }
      default:
      // SpeechStarted and anything newer: nothing the stream needs.
    }
  }

  private onResults(r: listen.ListenV1Results): void {
    this.requestId ??= r.metadata?.request_id;
    const alt = r.channel?.alternatives?.[0];
    const text = (alt?.transcript ?? '').trim();
    const start = Number(r.start) || 0;
    const end = start + (Number(r.duration) || 0);
    const result: SttResult = {
      text,
      final: r.is_final === true,
      ...(alt && typeof alt.confidence === 'number' ? { confidence: alt.confidence } : {}),
      ...(r.is_final === true && r.speech_final === true ? { endOfSpeech: true } : {}),
    };
    this.heardTo = Math.max(this.heardTo, end);
    if (r.is_final) {
      this.wordsPending = false;
      this.finalizedTo = Math.max(this.finalizedTo, end);
      if (text !== '' && start + FRAME_SECONDS < this.lastSettledTarget) {
        // A late final for a turn already answered (by the grace path or a timeout): adding it to the
        // next turn would put the caller's earlier words into a later answer.
        this.log?.debug({ start, settledTo: this.lastSettledTarget }, 'deepgram final for a finished turn dropped');
      } else if (text !== '') {
        this.quiet = false;
        this.finals.push({ text, start });
        this.emit('result', result);
      }
      if (r.speech_final) this.quiet = true;
    } else if (text !== '') {
      this.wordsPending = true;
      this.quiet = false;
      this.emit('result', result);
    }
    this.checkWaiters(r.from_finalize === true ? end : false);
  }

  /**
   * Settles the finalize() calls whose turn Deepgram has finished, oldest first. A turn is finished when
   * - a from_finalize reply answers its Finalize (one ending nearer the previous turn's end is a late
   *   reply to that one and is ignored), or
   * - final segments reach the end of the turn's audio (Deepgram finalised it on its own), or
   * - Deepgram had listened to some of the turn's audio, ended the utterance with no words pending, and
   *   nothing arrived for finalizeGraceMs: the case in which the docs say Finalize may go unanswered.
   */
  private checkWaiters(fromFinalizeEnd: number | false): void {
    let reply = fromFinalizeEnd;
    for (let head = this.waiters[0]; head; head = this.waiters[0]) {
      const answered = reply !== false && reply >= (head.previous + head.target) / 2;
      const covered = this.finalizedTo > head.previous && this.finalizedTo >= head.target - FRAME_SECONDS;
      if (!answered && !covered) break;
      if (answered) reply = false;
      this.resolveWaiter(head);
    }
    const head = this.waiters[0];
    if (!head) return;
    clearTimeout(head.grace);
    head.grace = undefined;
    // Only on evidence about this turn: before Deepgram has listened to any of its audio, "quiet" is
    // the previous turn's (or the stream's starting) state, and a slow reply would be taken for none.
    if (this.quiet && !this.wordsPending && this.heardTo > head.previous + FRAME_SECONDS) {
      head.grace = setTimeout(() => {
        this.resolveWaiter(head);
        this.checkWaiters(false);
      }, this.options.finalizeGraceMs);
    }
  }

  private resolveWaiter(waiter: FinalizeWaiter): void {
    this.settle(waiter);
    const text = this.take(waiter.target);
    // No word heard past this turn yet: the next one starts as quiet as the stream did.
    if (this.finals.length === 0) this.quiet = true;
    waiter.resolve(text);
  }

  private settle(waiter: FinalizeWaiter): void {
    clearTimeout(waiter.timer);
    clearTimeout(waiter.grace);
    this.waiters = this.waiters.filter((w) => w !== waiter);
    this.lastSettledTarget = Math.max(this.lastSettledTarget, waiter.target);
  }

  /** The final text of segments starting before `until` (seconds); later ones belong to the next turn. */
  private take(until: number): string {
    const mine = this.finals.filter((s) => s.start < until);
    this.finals = this.finals.filter((s) => s.start >= until);
    return mine.map((s) => s.text).join(' ');
  }

  private rejectWaiters(err: CallgateError): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      clearTimeout(w.timer);
      clearTimeout(w.grace);
      w.reject(err);
    }
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
