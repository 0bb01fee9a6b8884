import { FRAME_MS } from '../media/types.js';
import type { BackchannelLexicon } from './backchannels.js';

/**
 * Adaptive barge-in: the caller made a sound while the agent talks. Is it an interruption, or "uh-huh",
 * a cough, a knock? The agent ducks at once (the caller hears it yield) and the judge decides from what
 * arrives next, frame by frame: the words the STT recognises, and how long the speech lasts.
 *
 *   duck (at the VAD's onset) ─ hold (speech still going at `holdAfterMs`: the agent pauses, silent)
 *     ├─ interrupt: words that are not a backchannel, or `interruptAfterMs` of speech
 *     └─ keep: the sound ended (`keepAfterSilenceMs` of silence) first, with no words or only
 *        backchannel words: the agent goes on from where it paused, at full level, nothing lost
 *
 * Why hold rather than decide at once: a backchannel and the first word of an interruption sound alike
 * for ~300 ms, and no caller should wait that long for the agent to stop talking. Holding answers
 * both: a real interruption finds the agent silent within ~300 ms, a backchannel pauses it for less than
 * the ~300 ms a caller hears as the agent stopping.
 */
export interface InterruptionJudgeOptions {
  /** Level of the agent's voice while the judge decides. */
  readonly duckDb: number;
  /** Speech this long after its onset pauses the agent. */
  readonly holdAfterMs: number;
  /** Speech this long (frames of speech since the onset) is an interruption, words or not. */
  readonly interruptAfterMs: number;
  /** Silence this long after the sound ends it: it was not an interruption. */
  readonly keepAfterSilenceMs: number;
  /** A sound that ends with this much speech or more was words, not a backchannel: an interruption. */
  readonly maxBackchannelMs: number;
}

export const defaultInterruptionJudgeOptions = {
  /** -15 dB: clearly yielding (the goal is ≥ 10 dB), still audible, so a backchannel costs nothing. */
  duckDb: -15,
  /**
   * 240 ms: "yeah", "right", "sure" are over by then; longer backchannels ("okay", "uh-huh", ~430 ms)
   * pause the agent for less than 300 ms, and an interruption finds it silent ~300 ms after its onset.
   */
  holdAfterMs: 240,
  /** 640 ms of speech: longer than a spoken backchannel ("mm-hmm", "okay sure"), short for a sentence. */
  interruptAfterMs: 640,
  /** 100 ms: the gap after a backchannel; the /h/ inside "uh-huh" is shorter (and the voicing hangover covers it). */
  keepAfterSilenceMs: 100,
  /**
   * 480 ms: "okay", "uh-huh", "yeah sure" have less speech than that. Longer sounds that stop were words
   * (a short question); if no words come of it, the agent resumes its sentence (BargeIn).
   */
  maxBackchannelMs: 480,
} as const satisfies InterruptionJudgeOptions;

export type Verdict = 'hold' | 'interrupt' | 'keep';

export class InterruptionJudge {
  private spanMs: number;
  private speechMs: number;
  private silenceMs = 0;
  private held = false;
  private decided = false;

  /**
   * `onsetFramesAgo`: how long before this frame the speech began (the VAD needed that much to be sure).
   * `carriedSpeechMs`: speech of a sound judged a moment ago that this one continues ("wait, …" with a
   * pause after "wait"): it counts, so the agent holds at once and stops when the total is enough.
   */
  constructor(
    private readonly opts: InterruptionJudgeOptions,
    private readonly lexicon: BackchannelLexicon,
    onsetFramesAgo: number,
    carriedSpeechMs = 0,
  ) {
    this.spanMs = this.speechMs = (onsetFramesAgo + 1) * FRAME_MS + carriedSpeechMs;
  }

  get holding(): boolean {
    return this.held;
  }

  /** Speech heard so far in this sound (and the one it continues). */
  get speechSoFarMs(): number {
    return this.speechMs;
  }

  /**
   * The next 20 ms: speech or not (after the echo, noise and level checks). `voice`: the frame sounds
   * like speech but is under the echo guard's bar (the caller talking softer than the agent's echo
   * could be): it neither counts as speech nor ends the sound.
   */
  frame(speech: boolean, voice = speech): Verdict | undefined {
    if (this.decided) return undefined;
    this.spanMs += FRAME_MS;
    if (speech) {
      this.speechMs += FRAME_MS;
      this.silenceMs = 0;
    } else if (!voice) {
      this.silenceMs += FRAME_MS;
    }
    if (this.speechMs >= this.opts.interruptAfterMs) return this.decide('interrupt');
    if (this.silenceMs >= this.opts.keepAfterSilenceMs) return this.decide(this.speechMs >= this.opts.maxBackchannelMs ? 'interrupt' : 'keep');
    if (!this.held && this.silenceMs === 0 && this.spanMs >= this.opts.holdAfterMs) {
      this.held = true;
      return 'hold';
    }
    return undefined;
  }

  /** Text the STT recognised in the sound so far (interim or final). */
  words(text: string): Verdict | undefined {
    if (this.decided || text.trim() === '' || this.lexicon.covers(text)) return undefined;
    return this.decide('interrupt');
  }

  private decide(verdict: 'interrupt' | 'keep'): Verdict {
    this.decided = true;
    return verdict;
  }
}
