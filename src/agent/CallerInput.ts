import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { ErrorCode } from '../errors.js';
import { EchoCanceller, type EchoCancellerOptions } from '../media/EchoCanceller.js';
import { dbfs } from '../media/signal.js';
import { FRAME_MS } from '../media/types.js';
import type { SttResult, SttStream } from '../providers/types.js';
import { withDeadline } from './deadlines.js';
import { EchoGuard, type EchoGuardOptions } from './EchoGuard.js';
import type { EndOfTurn, TurnSoFar } from './EndOfTurn.js';
import { TurnDetector, type TurnDetectorOptions } from './TurnDetector.js';
import type { VoiceActivityDetector } from './vad/VoiceActivityDetector.js';
import { VoicingMeter } from './vad/voicing.js';

export interface CallerInputOptions {
  readonly turn: Partial<TurnDetectorOptions> & { readonly endpointingMs: number };
  readonly echo: Partial<EchoGuardOptions>;
  /** Audio before the VAD confirmed speech that still goes to STT, so the first syllable is not lost. */
  readonly prerollMs: number;
  /** The STT's final text for a turn must arrive within this after the turn ended. */
  readonly sttFinalTimeoutMs: number;
  /** How much silence ends a turn (adaptive endpointing); the fixed `turn.endpointingMs` when absent. */
  readonly endOfTurn?: EndOfTurn;
  /**
   * An STT without interim results is asked for the turn's text at a pause this long (it finalizes
   * early); the caller going on sends it the whole turn again. 0: never.
   */
  readonly lookAtPauseMs?: number;
  /** Measure each frame's voicing (src/agent/vad/voicing.ts): steady noise and coughs are then never speech. */
  readonly voicing?: boolean;
  /**
   * Cancel the agent's echo in the caller's audio (src/media/EchoCanceller.ts) before anything listens
   * to it, given `reference()` frames; false: the level-only echo guard alone.
   */
  readonly echoCanceller?: Partial<EchoCancellerOptions> | false;
  readonly log: Logger;
}

/** What the caller's audio tells the session. Times are performance.now() milliseconds. */
export interface CallerInputHandlers {
  /** The VAD confirmed a turn; `onsetAt` is its first speech frame. */
  speechStarted(onsetAt: number, now: number): void;
  /**
   * Endpointing (or `forced`: maximum utterance, or the audio stopped); `speechEndAt` is the last speech
   * frame, `speechMs` the speech the turn held.
   */
  speechEnded(speechEndAt: number, now: number, forced: boolean, speechMs: number): void;
  /**
   * Every frame while a turn is open: speech or not (after the echo and level checks); `voice`: it would
   * be speech but for the echo guard.
   */
  turnFrame?(speech: boolean, voice: boolean, now: number): void;
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
  /** The open turn's audio from its pre-roll on, kept to send again after a look at a pause. */
  private turnAudio: Int16Array[] = [];
  private keepingTurnAudio = false;
  /** Finals and the latest interim of the open turn: what endpointing reads. */
  private finalsSoFar: string[] = [];
  private interim = '';
  private heard: string | undefined;
  private vendorEnd = false;
  /** The text of a look at the current pause (STTs without interim results). */
  private look: { readonly text: Promise<string>; known: string | undefined; heard: string | undefined } | undefined;
  private maxTurnFrames: number;
  private readonly voicing: VoicingMeter | undefined;
  private readonly canceller: EchoCanceller | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  /** turnSoFar(), until the words change. */
  private soFar: TurnSoFar | undefined;
  private closed = false;

  constructor(
    private readonly vad: VoiceActivityDetector,
    private readonly opts: CallerInputOptions,
    private readonly handlers: CallerInputHandlers,
  ) {
    const endOfTurn = opts.endOfTurn;
    this.turns = new TurnDetector(opts.turn, endOfTurn ? () => endOfTurn.silenceNeededMs(this.turnSoFar()) : undefined);
    this.echo = new EchoGuard(opts.echo);
    this.prerollFrames = Math.ceil(opts.prerollMs / FRAME_MS);
    this.maxTurnFrames = Math.ceil((opts.turn.maxUtteranceMs ?? 20_000) / FRAME_MS) + this.prerollFrames;
    this.voicing = opts.voicing ? new VoicingMeter() : undefined;
    this.canceller = opts.echoCanceller === false || opts.echoCanceller === undefined ? undefined : new EchoCanceller(opts.echoCanceller);
  }

  /** 20 ms of what the caller's phone played (the echo canceller's reference), in the order sent. */
  reference(frame: Int16Array): void {
    this.canceller?.reference(frame);
  }

  /** What endpointing knows of the open turn's words (asked on every silent frame: kept until they change). */
  turnSoFar(): TurnSoFar {
    if (this.soFar) return this.soFar;
    if (this.look) return (this.soFar = { text: this.look.known, heard: this.look.heard, vendorEnd: false });
    const parts = [...this.finalsSoFar, this.interim].filter((t) => t !== '');
    const text = parts.length > 0 ? parts.join(' ') : this.stt?.interimResults ? '' : undefined;
    return (this.soFar = { text, heard: this.heard, vendorEnd: this.vendorEnd });
  }

  /**
   * The turn's words changed: endpointing reads them afresh, and a running stall timer (the caller's
   * packets may have stopped, DTX) takes the silence they now ask for.
   */
  private wordsChanged(): void {
    this.soFar = undefined;
    if (!this.stallTimer) return;
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    if (this.turns.speaking) this.armStall();
  }

  private sttResult(r: SttResult): void {
    if (this.streaming || this.look) {
      if (r.final) {
        if (r.text !== '') this.finalsSoFar.push(r.text);
        this.interim = '';
      } else {
        this.interim = r.text;
      }
      if (r.heard !== undefined) this.heard = r.heard !== '' ? r.heard : undefined;
      this.vendorEnd = r.endOfSpeech === true;
      this.wordsChanged();
    }
    this.handlers.sttResult(r);
  }

  /** Opens the STT stream. A failure is reported, not thrown: the call goes on (keypad entry still works). */
  async open(openStream: () => Promise<SttStream>): Promise<void> {
    try {
      const stt = await openStream();
      if (this.closed) return void (await stt.close());
      this.stt = stt;
      stt.on('result', (r) => this.sttResult(r));
      stt.on('error', (err) => this.handlers.sttError(err, 'CG_STT_FAILED'));
    } catch (err) {
      this.handlers.sttError(err, 'CG_STT_UNAVAILABLE');
    }
  }

  /**
   * The caller's audio with the agent's echo taken out, for a listener other than our turn-taking (the
   * model's own voice detection): it would otherwise hear the agent and interrupt itself.
   */
  cleaned(input16k: Int16Array): Int16Array {
    return this.canceller?.process(input16k).cleaned ?? input16k;
  }

  frame(input16k: Int16Array): void {
    if (this.closed) return;
    const now = performance.now();
    // The agent's echo taken out first: the VAD, the level checks and the STT hear the caller alone.
    // Once the canceller has learnt the line, its per-frame bar replaces the level-only guard's, which
    // has to assume the echo is as loud as the agent's loudest recent syllable allows.
    const cancelled = this.canceller?.process(input16k);
    const frame = cancelled?.cleaned ?? input16k;
    const score = this.vad.process(frame);
    const levelDbfs = dbfs(frame);
    const echoThresholdDbfs = cancelled && cancelled.barDbfs > -Infinity ? cancelled.barDbfs : this.echo.thresholdDbfs(now);
    const kept = frame.slice();
    this.preroll.push(kept);
    if (this.preroll.length > this.prerollFrames) this.preroll.shift();
    if (this.keepingTurnAudio && this.turnAudio.length < this.maxTurnFrames) this.turnAudio.push(kept);
    if (this.streaming) {
      this.stt?.push(frame);
      this.hasAudio = true;
    }

    const input = { score, levelDbfs, echoThresholdDbfs, ...(this.voicing ? { voicing: this.voicing.process(frame) } : {}) };
    const wasSpeaking = this.turns.speaking;
    const voice = wasSpeaking && this.turns.isSpeech({ ...input, echoThresholdDbfs: -Infinity });
    const signal = this.turns.process(input);
    if (this.turns.speaking) {
      this.armStall();
      const speech = this.turns.silenceMs === 0;
      if (speech && this.look) this.sendTurnAgain();
      else if (!speech) this.maybeLook();
      if (wasSpeaking) this.handlers.turnFrame?.(speech, voice, now);
    }
    if (!signal) return;
    if (signal.type === 'speech-start') {
      if (cancelled && cancelled.echoDbfs > -Infinity) {
        const r = (v: number): number => Math.round(v * 10) / 10;
        this.opts.log.debug({ levelDbfs: r(levelDbfs), barDbfs: r(echoThresholdDbfs), echoDbfs: r(cancelled.echoDbfs), canceller: this.canceller?.stats }, 'speech over the echo canceller');
      }
      this.handlers.speechStarted(now - signal.onsetFramesAgo * FRAME_MS, now);
    }
    else this.speechEnded(now - signal.silenceFrames * FRAME_MS, now, signal.forced, signal.speechFrames * FRAME_MS);
  }

  /** A pause in the turn, and the STT gives no interim words: finalize early to read what was said so far. */
  private maybeLook(): void {
    const stt = this.stt;
    const lookAtMs = this.opts.lookAtPauseMs ?? 0;
    if (!stt || stt.interimResults || this.look || !this.streaming || lookAtMs <= 0) return;
    if (this.turns.silenceMs < lookAtMs) return;
    this.streaming = false;
    this.hasAudio = false;
    this.heard = undefined;
    const look: { text: Promise<string>; known: string | undefined; heard: string | undefined } = {
      text: withDeadline(stt.finalize(), this.opts.sttFinalTimeoutMs, 'CG_STT_TIMEOUT').then((t) => t.trim()),
      known: undefined,
      heard: undefined,
    };
    // A failed look is not the turn's failure: the turn's own finalize reports it.
    look.text.then(
      (t) => {
        if (this.look !== look) return;
        look.heard = this.heard;
        look.known = t;
        this.wordsChanged();
      },
      () => undefined,
    );
    this.look = look;
    this.wordsChanged();
  }

  /** The caller went on after a look: the STT hears the whole turn again, pause included. */
  private sendTurnAgain(): void {
    const look = this.look;
    this.look = undefined;
    look?.text.catch(() => undefined);
    this.finalsSoFar = [];
    this.interim = '';
    this.heard = undefined;
    this.wordsChanged();
    if (!this.stt) return;
    for (const f of this.turnAudio) this.stt.push(f);
    this.streaming = true;
    this.hasAudio = true;
  }

  /** The session takes this turn: the STT hears it from the pre-roll on (the frames the VAD needed, and a little before). */
  streamTurn(): void {
    this.turnAudio = [...this.preroll];
    this.keepingTurnAudio = true;
    this.finalsSoFar = [];
    this.interim = '';
    this.heard = undefined;
    this.vendorEnd = false;
    this.look = undefined;
    this.wordsChanged();
    if (!this.stt) return;
    for (const f of this.preroll) this.stt.push(f);
    this.streaming = true;
    this.hasAudio = true;
  }

  /**
   * The sound that opened this turn was not the caller taking it (a backchannel, a cough): the turn is
   * forgotten and its words are finalized and dropped, so the next turn starts clean.
   */
  dropTurn(): void {
    this.turns.reset();
    this.endTurnAudio();
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    if (this.hasAudio) void this.finalize(new AbortController().signal).catch(() => undefined);
  }

  private endTurnAudio(): void {
    this.streaming = false;
    this.keepingTurnAudio = false;
    this.turnAudio = [];
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
    const look = this.look;
    this.look = undefined;
    this.soFar = undefined;
    if (look && !this.hasAudio) {
      // The turn ended in the pause that was looked at: the look's text is the turn's.
      return withDeadline(look.text, this.opts.sttFinalTimeoutMs, 'CG_STT_TIMEOUT', signal);
    }
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

  private speechEnded(speechEndAt: number, now: number, forced: boolean, speechMs: number): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    this.endTurnAudio();
    this.handlers.speechEnded(speechEndAt, now, forced, speechMs);
  }

  /**
   * A turn must end even when the caller's packets stop (DTX, mute, network): silence frames never come.
   * It ends after the silence the turn's words ask for (wordsChanged() re-arms it when they change),
   * plus two frames.
   */
  private armStall(): void {
    if (this.stallTimer) return void this.stallTimer.refresh();
    const stallAfterMs = (this.opts.endOfTurn?.silenceNeededMs(this.turnSoFar()) ?? this.opts.turn.endpointingMs) + 2 * FRAME_MS;
    this.stallTimer = setTimeout(() => {
      this.stallTimer = undefined;
      const signal = this.turns.forceEnd();
      const now = performance.now();
      if (signal?.type === 'speech-end') this.speechEnded(now - stallAfterMs, now, true, signal.speechFrames * FRAME_MS);
    }, stallAfterMs);
  }
}
