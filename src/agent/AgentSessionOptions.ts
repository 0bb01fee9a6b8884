import type { EchoCancellerOptions } from '../media/EchoCanceller.js';
import type { EchoGuardOptions } from './EchoGuard.js';
import type { TextEndOfTurnOptions } from './EndOfTurn.js';
import type { InterruptionJudgeOptions } from './InterruptionJudge.js';
import type { SentenceSplitterOptions } from './SentenceSplitter.js';
import type { TurnDetectorOptions } from './TurnDetector.js';

/** Agent timing that is not the tenant's business (the tenant's part is AgentConfig.turn). */
export interface AgentSessionOptions {
  /** VAD turn-taking; `endpointingMs` comes from the tenant. */
  readonly turn: Partial<Omit<TurnDetectorOptions, 'endpointingMs'>>;
  readonly echo: Partial<EchoGuardOptions>;
  /** Server-side echo cancellation of the caller's audio (src/media/EchoCanceller.ts); false: off. */
  readonly echoCanceller: Partial<EchoCancellerOptions> | false;
  readonly splitter: Partial<SentenceSplitterOptions>;
  /** Adaptive barge-in's timing (the tenant chooses the mode). */
  readonly interruption: Partial<InterruptionJudgeOptions>;
  /** Adaptive endpointing's silences; the tenant's `endpointingMs` and `maxEndpointingMs` set the others. */
  readonly endOfTurn: Pick<TextEndOfTurnOptions, 'finishedMs' | 'noWordsMs'>;
  /** An STT without interim results is asked for the turn's text at a pause this long (adaptive endpointing). */
  readonly lookAtPauseMs: number;
  /** Speech with no words shorter than this is let go silently; longer gets the tenant's `didNotCatch`. */
  readonly didNotCatchMinSpeechMs: number;
  /** Speech must be voiced (src/agent/vad/voicing.ts): steady noise, coughs and typing never open a turn. */
  readonly voicing: boolean;
  /** After a barge-in, if no words are recognised this long and the caller's turn is over, the agent resumes. */
  readonly falseInterruptionMs: number;
  /** Audio before the VAD confirmed speech that still goes to STT, so the first syllable is not lost. */
  readonly prerollMs: number;
  /** Keypad entry ends this long after the last digit (or at '#'). */
  readonly dtmfInterDigitMs: number;
  /** The model's first text must arrive within this, or the caller hears the apology. */
  readonly llmFirstTokenTimeoutMs: number;
  /** A sentence's first audio must arrive within this, or the caller hears the apology. */
  readonly ttsFirstAudioTimeoutMs: number;
  /** Once the model's text flows, a gap longer than this ends the reply with the apology (the stream stalled). */
  readonly llmStallTimeoutMs: number;
  /** Once a sentence's audio flows, a gap longer than this ends the reply with the apology. */
  readonly ttsStallTimeoutMs: number;
  /** The STT's final text for a turn must arrive within this after the turn ended, or the caller hears the apology. */
  readonly sttFinalTimeoutMs: number;
  /** How long a goodbye may play before the agent hangs up anyway. */
  readonly goodbyeMaxMs: number;
  /** Caller turns in a row left unanswered by provider failures before the agent ends the call politely. */
  readonly maxFailedTurns: number;
  /** Model requests ending in tool calls per caller turn. */
  readonly maxToolRounds: number;
  /** A tool still running after this gets its filler spoken. */
  readonly toolFillerAfterMs: number;
}

export const defaultAgentSessionOptions = {
  turn: {},
  echo: {},
  /**
   * Off for now: with it, a caller as soft as their line's echo interrupts (bench:turns interruptEcho
   * missed 1/8 instead of 6/8 on WebRTC, 0/8 instead of 3/8 on SIP), but through Opus (two codec passes
   * on the echo path, ~13–20 dB of cancellation) the agent's own echo stopped it in 2 of 8 calls, where
   * the level-only guard alone gives 0 of 8. On once that is 0 (docs/turn-taking.md).
   */
  echoCanceller: false,
  splitter: {},
  interruption: {},
  endOfTurn: {
    /**
     * 300 ms after a finished sentence or question: people start answering 200–300 ms after a turn ends;
     * below that the agent talks over callers who merely breathe between sentences.
     */
    finishedMs: 300,
    /**
     * 1200 ms when the STT made out no words so far: as long as a caller's mid-sentence pause (0.7–1.2 s
     * sound to sound, and the voicing hangover counts in it), whose first half an offline grammar often
     * cannot place; short enough that "sorry, I didn't catch that" comes within 1.5 s of a caller who
     * really stopped (1250 measured 1.33–1.51 s at the caller, bench:turns).
     */
    noWordsMs: 1200,
  },
  /** 200 ms: a pause that long already says something; the offline STT answers in ~20 ms. */
  lookAtPauseMs: 200,
  /** 200 ms: a word is at least that long; a click or a breath is not. */
  didNotCatchMinSpeechMs: 200,
  /** On: ~25 µs a frame (0.1 % of a core per call) against the frame VAD's false alarms in noise. */
  voicing: true,
  /** 1500 ms: long enough for STT to return a first word, short enough that a cough costs little. */
  falseInterruptionMs: 1500,
  /** 300 ms: covers the VAD's confirmation time and a soft onset. */
  prerollMs: 300,
  /** 2 s between key presses: IVR convention. */
  dtmfInterDigitMs: 2000,
  /** 10 s: a model slower than this has failed as far as the caller can tell. */
  llmFirstTokenTimeoutMs: 10_000,
  /** 5 s. */
  ttsFirstAudioTimeoutMs: 5000,
  /**
   * 8 s, and 8 s for the STT final below: backstops for a provider with no deadline of its own. Later
   * than the vendors' own (stall 5 s; STT final 2–3 s, plus a fallback replaying the turn), which fail
   * over and count against the provider; without one a stalled stream held the caller in silence, and
   * the session's queue (no-input, time limit) with it, until the caller hung up.
   */
  llmStallTimeoutMs: 8000,
  ttsStallTimeoutMs: 8000,
  sttFinalTimeoutMs: 8000,
  /** 15 s. */
  goodbyeMaxMs: 15_000,
  /** 2: one apology and a second chance; a third "say that again" would only waste the caller's time. */
  maxFailedTurns: 2,
  /** 5: a lookup, a follow-up and a booking fit; a model looping on tools past that is stuck, not working. */
  maxToolRounds: 5,
  /** 700 ms: past the pause a caller reads as thinking (~0.5 s), before one they read as a dropped line. */
  toolFillerAfterMs: 700,
} as const satisfies AgentSessionOptions;
