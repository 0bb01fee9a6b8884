import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { ErrorCode } from '../errors.js';
import { dbfs } from '../media/signal.js';
import { FRAME_MS } from '../media/types.js';
import type { SttResult, SttStream } from '../providers/types.js';
import { withDeadline } from './deadlines.js';
import { EchoGuard, type EchoGuardOptions } from './EchoGuard.js';
import { TurnDetector, type TurnDetectorOptions } from './TurnDetector.js';
import type { VoiceActivityDetector } from './vad/VoiceActivityDetector.js';

export interface CallerInputOptions {
  readonly turn: Partial<TurnDetectorOptions> & { readonly endpointingMs: number };
  readonly echo: Partial<EchoGuardOptions>;
  /** Audio before the VAD confirmed speech that still goes to STT, so the first syllable is not lost. */
  readonly prerollMs: number;
  /** The STT's final text for a turn must arrive within this after the turn ended. */
  readonly sttFinalTimeoutMs: number;
  readonly log: Logger;
}

/** What the caller's audio tells the session. Times are performance.now() milliseconds. */
export interface CallerInputHandlers {
  /** The VAD confirmed a turn; `onsetAt` is its first speech frame. */
  speechStarted(onsetAt: number, now: number): void;
  /** Endpointing (or `forced`: maximum utterance, or the audio stopped); `speechEndAt` is the last speech frame. */
  speechEnded(speechEndAt: number, now: number, forced: boolean): void;
  /** Interim and final text as the STT streams it. */
  sttResult(result: SttResult): void;
  sttError(err: unknown, code: ErrorCode): void;
}

/**
 * The caller's side of the call: each 20 ms frame goes through the VAD, the echo guard and the turn
 * detector, and, while a turn is open, to the STT stream (with a pre-roll, so the turn's first
 * syllable is not lost). Whether a turn is answered is the session's decision, not this one's.
 */
export class CallerInput {
  readonly turns: TurnDetector;
  /** Told what the agent plays, so the agent's echo does not open turns. */
  readonly echo: EchoGuard;
  private stt: SttStream | undefined;
  private streaming = false;
  /** Audio went to STT since its last finalize. */
  private hasAudio = false;
  private readonly preroll: Int16Array[] = [];
  private readonly prerollFrames: number;
  private stallTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly vad: VoiceActivityDetector,
    private readonly opts: CallerInputOptions,
    private readonly handlers: CallerInputHandlers,
  ) {
    this.turns = new TurnDetector(opts.turn);
    this.echo = new EchoGuard(opts.echo);
    this.prerollFrames = Math.ceil(opts.prerollMs / FRAME_MS);
  }

  /** Opens the STT stream. A failure is reported, not thrown: the call goes on (keypad entry still works). */
  async open(openStream: () => Promise<SttStream>): Promise<void> {
    try {
      const stt = await openStream();
      if (this.closed) return void (await stt.close());
      this.stt = stt;
      stt.on('result', (r) => this.handlers.sttResult(r));
      stt.on('error', (err) => this.handlers.sttError(err, 'CG_STT_FAILED'));
    } catch (err) {
      this.handlers.sttError(err, 'CG_STT_UNAVAILABLE');
    }
  }

  frame(frame: Int16Array): void {
    if (this.closed) return;
    const now = performance.now();
    const score = this.vad.process(frame);
    const levelDbfs = dbfs(frame);
    const echoThresholdDbfs = this.echo.thresholdDbfs(now);
    this.preroll.push(frame.slice());
    if (this.preroll.length > this.prerollFrames) this.preroll.shift();
    if (this.streaming) {
      this.stt?.push(frame);
      this.hasAudio = true;
    }

    const signal = this.turns.process({ score, levelDbfs, echoThresholdDbfs });
    if (this.turns.speaking) this.armStall();
    if (!signal) return;
    if (signal.type === 'speech-start') this.handlers.speechStarted(now - signal.onsetFramesAgo * FRAME_MS, now);
    else this.speechEnded(now - signal.silenceFrames * FRAME_MS, now, signal.forced);
  }

  /** The session takes this turn: the STT hears it from the pre-roll on (the frames the VAD needed, and a little before). */
  streamTurn(): void {
    if (!this.stt) return;
    for (const f of this.preroll) this.stt.push(f);
    this.streaming = true;
    this.hasAudio = true;
  }

  /** Audio went to the STT since its last finalize. */
  get unfinalized(): boolean {
    return this.hasAudio;
  }

  /**
   * The STT's final text for what it heard since the last call ('' when it heard nothing or there is no
   * STT). Rejects with CG_STT_TIMEOUT when it takes too long, or at once when `signal` aborts.
   */
  async finalize(signal: AbortSignal): Promise<string> {
    const stt = this.stt;
    if (!stt || !this.hasAudio) return '';
    this.hasAudio = false;
    return (await withDeadline(stt.finalize(), this.opts.sttFinalTimeoutMs, 'CG_STT_TIMEOUT', signal)).trim();
  }

  /** Releases the STT stream and the VAD. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    const stt = this.stt;
    this.stt = undefined;
    await stt?.close().catch((err: unknown) => this.opts.log.warn({ err: String(err) }, 'STT close failed'));
    this.vad.close();
  }

  private speechEnded(speechEndAt: number, now: number, forced: boolean): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    this.streaming = false;
    this.handlers.speechEnded(speechEndAt, now, forced);
  }

  /** A turn must end even when the caller's packets stop (DTX, mute, network): silence frames never come. */
  private armStall(): void {
    if (this.stallTimer) return void this.stallTimer.refresh();
    const stallAfterMs = this.opts.turn.endpointingMs + 2 * FRAME_MS;
    this.stallTimer = setTimeout(() => {
      this.stallTimer = undefined;
      const signal = this.turns.forceEnd();
      const now = performance.now();
      if (signal?.type === 'speech-end') this.speechEnded(now - stallAfterMs, now, true);
    }, stallAfterMs);
  }
}
