import { FRAME_MS } from '../media/types.js';

/**
 * Turn-taking on top of a frame VAD: when the caller has started a turn (enough speech, not echo), and
 * when it has ended (endpointing silence). Counts frames, not wall-clock time, so it follows the
 * caller's audio timeline exactly and is deterministic under test; the session maps frames to times.
 */
export interface TurnDetectorOptions {
  /** VAD score at or above which a frame is speech (fvad answers 0/1; Silero 0–1). */
  readonly vadThreshold: number;
  /** Speech needed to open a turn while the agent is silent. */
  readonly minSpeechMs: number;
  /**
   * Speech needed to interrupt the agent (barge-in). Short, because the agent keeps talking over the
   * caller until it is confirmed; the echo guard and false-interruption recovery cover what it lets in.
   */
  readonly bargeInMinSpeechMs: number;
  /** Gaps this long inside a run of speech frames do not restart the count (plosives, VAD flicker). */
  readonly maxGapMs: number;
  /** Silence that ends the caller's turn (the tenant's endpointing). */
  readonly endpointingMs: number;
  /** A turn this long ends even without silence (a noisy line must not hold the agent forever). */
  readonly maxUtteranceMs: number;
  /** Frames quieter than this never count as speech, whatever the VAD says (line hiss). */
  readonly minLevelDbfs: number;
  /** A frame this periodic (src/agent/vad/voicing.ts) is voiced. */
  readonly voicingThreshold: number;
  /** Speech frames count only this close after a voiced frame: steady noise, coughs and clicks are never voiced. */
  readonly voicingHangoverMs: number;
}

export const defaultTurnDetectorOptions = {
  /** fvad's binary answer and Silero's usual cut. */
  vadThreshold: 0.5,
  /** 100 ms: a short "yes" opens a turn; clicks and single VAD flickers do not. */
  minSpeechMs: 100,
  /** 60 ms: three frames; with the VAD's own reaction this keeps barge-in under 100 ms. */
  bargeInMinSpeechMs: 60,
  /** 40 ms. */
  maxGapMs: 40,
  /** 500 ms (the tenant's setting replaces it). */
  endpointingMs: 500,
  /** 20 s. */
  maxUtteranceMs: 20_000,
  /** -55 dBFS: well under quiet speech (-40), above a PCMU line's idle noise. */
  minLevelDbfs: -55,
  /** 0.45: speech scores 0.5–0.95 on its vowels, pink and brown noise, coughs and typing under 0.35. */
  voicingThreshold: 0.45,
  /**
   * 80 ms: keeps the unvoiced consonants next to a vowel ("sorry", "six") inside the speech; every ms of
   * it is added to the end of each turn, so no longer.
   */
  voicingHangoverMs: 80,
} as const satisfies TurnDetectorOptions;

export type TurnSignal =
  /** The caller started a turn. `onsetFrames` is how many frames ago their speech began. */
  | { readonly type: 'speech-start'; readonly onsetFramesAgo: number; readonly bargeIn: boolean }
  /**
   * Endpointing: the turn is over; the last speech frame was `silenceFrames` frames ago, and the turn
   * held `speechFrames` frames of speech.
   */
  | { readonly type: 'speech-end'; readonly silenceFrames: number; readonly speechFrames: number; readonly forced: boolean };

export interface FrameInput {
  /** The VAD's score for the frame. */
  readonly score: number;
  /** The frame's level (dBFS). */
  readonly levelDbfs: number;
  /** The echo guard's bar for this frame; -Infinity when the agent is silent. */
  readonly echoThresholdDbfs: number;
  /** How periodic the frame is (0–1); absent: not measured, every frame counts as voiced. */
  readonly voicing?: number;
}

export class TurnDetector {
  private readonly opts: TurnDetectorOptions;
  private inTurn = false;
  /** Speech frames in the current candidate run, and the frames it spans (gaps included). */
  private runSpeech = 0;
  private runSpan = 0;
  private gap = 0;
  private silence = 0;
  private turnFrames = 0;
  private speechFrames = 0;
  /** Frames since the last voiced one (Infinity: none yet). */
  private sinceVoiced = Number.POSITIVE_INFINITY;
  private readonly silenceNeededMs: () => number;

  /**
   * `silenceNeededMs`: the silence that ends the turn, asked on every silent frame (adaptive endpointing,
   * src/agent/EndOfTurn.ts); the fixed `endpointingMs` when absent.
   */
  constructor(options: Partial<TurnDetectorOptions> = {}, silenceNeededMs?: () => number) {
    this.opts = { ...defaultTurnDetectorOptions, ...options };
    this.silenceNeededMs = silenceNeededMs ?? (() => this.opts.endpointingMs);
  }

  /** Silence since the caller's last speech frame in the open turn (0 outside a turn). */
  get silenceMs(): number {
    return this.inTurn ? this.silence * FRAME_MS : 0;
  }

  get speaking(): boolean {
    return this.inTurn;
  }

  /** True when the last frames were speech (the caller is talking right now, turn or not). */
  get hearingSpeech(): boolean {
    return this.inTurn ? this.silence === 0 : this.runSpeech > 0;
  }

  /** Whether a frame is caller speech: the VAD says so, it is not line hiss, and it is not the agent's echo. */
  isSpeech(input: FrameInput): boolean {
    return (
      input.score >= this.opts.vadThreshold &&
      input.levelDbfs >= this.opts.minLevelDbfs &&
      input.levelDbfs >= input.echoThresholdDbfs &&
      (this.voiced(input) || (this.sinceVoiced + 1) * FRAME_MS <= this.opts.voicingHangoverMs)
    );
  }

  private voiced(input: FrameInput): boolean {
    return input.voicing === undefined || input.voicing >= this.opts.voicingThreshold;
  }

  /** Feeds one 20 ms frame; returns what it changed, if anything. */
  process(input: FrameInput): TurnSignal | undefined {
    const speech = this.isSpeech(input);
    this.sinceVoiced = this.voiced(input) ? 0 : this.sinceVoiced + 1;
    if (!this.inTurn) return this.idleFrame(speech, input.echoThresholdDbfs > -Infinity);
    this.turnFrames++;
    this.silence = speech ? 0 : this.silence + 1;
    if (speech) this.speechFrames++;
    if (this.silence > 0 && this.silence * FRAME_MS >= this.silenceNeededMs()) return this.endTurn(false);
    if (this.turnFrames * FRAME_MS >= this.opts.maxUtteranceMs) return this.endTurn(true);
    return undefined;
  }

  /**
   * Ends the turn in progress now: the caller's audio stopped arriving (a phone that sends nothing in
   * silence, a stalled network), so silence frames that would end it never come.
   */
  forceEnd(): TurnSignal | undefined {
    return this.inTurn ? this.endTurn(true) : undefined;
  }

  /** Forgets any turn in progress (the session was reset, e.g. after a hangup decision). */
  reset(): void {
    this.sinceVoiced = Number.POSITIVE_INFINITY;
    this.inTurn = false;
    this.runSpeech = this.runSpan = this.gap = this.silence = this.turnFrames = this.speechFrames = 0;
  }

  private idleFrame(speech: boolean, agentSpeaking: boolean): TurnSignal | undefined {
    if (speech) {
      if (this.runSpeech === 0) this.runSpan = 0;
      this.runSpeech++;
      this.runSpan += this.gap + 1;
      this.gap = 0;
    } else if (this.runSpeech > 0) {
      this.gap++;
      if (this.gap * FRAME_MS > this.opts.maxGapMs) this.runSpeech = this.runSpan = this.gap = 0;
    }
    const need = agentSpeaking ? this.opts.bargeInMinSpeechMs : this.opts.minSpeechMs;
    if (this.runSpeech > 0 && this.runSpeech * FRAME_MS >= need) {
      const onsetFramesAgo = this.runSpan - 1;
      this.inTurn = true;
      this.turnFrames = this.runSpan;
      this.speechFrames = this.runSpeech;
      this.silence = 0;
      this.runSpeech = this.runSpan = this.gap = 0;
      return { type: 'speech-start', onsetFramesAgo, bargeIn: agentSpeaking };
    }
    return undefined;
  }

  private endTurn(forced: boolean): TurnSignal {
    const silenceFrames = this.silence;
    const speechFrames = this.speechFrames;
    this.reset();
    return { type: 'speech-end', silenceFrames, speechFrames, forced };
  }
}
