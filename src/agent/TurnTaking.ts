import type { Logger } from 'pino';
import { FRAME_MS } from '../media/types.js';
import type { BargeInMode } from './AgentConfig.js';
import type { BargeIn } from './BargeIn.js';
import type { InterruptionJudge, Verdict } from './InterruptionJudge.js';
import type { CallerInput } from './CallerInput.js';
import { joinText } from './Reply.js';
import type { SessionEvents } from './SessionEvents.js';

/** A sound starting this soon after one was let go continues it (the pause after "wait," in "wait, what time…"). */
const CONTINUES_WITHIN_MS = 500;

/** What turn taking needs of the session around it. */
export interface TurnTakingHost {
  isClosed(): boolean;
  /** The agent is speaking, or its audio is still queued. */
  agentTalking(): boolean;
  /** Whether and how the caller may interrupt the agent (the tenant's setting). */
  bargeInMode(): BargeInMode;
  /** A judge for a sound the caller made over the agent, which began `onsetFramesAgo` frames ago. */
  judge(onsetFramesAgo: number, carriedSpeechMs: number): InterruptionJudge;
  /** Lowers (true) or restores the agent's level. */
  duck(on: boolean): void;
  /** Pauses (true) or resumes what the agent is saying, where it stopped. */
  hold(on: boolean): void;
  /** The caller spoke and no words came of it: say the tenant's "didn't catch that". */
  didNotCatch(turn: number): Promise<void>;
  /** Answers the caller's `text` (the model's reply). */
  respond(text: string, turn: number): Promise<void>;
  /** The STT failed the turn: apologise, or end the call after repeated failures. */
  failTurn(turn: number): Promise<void>;
  /** The caller has the floor and said nothing: start counting no-input. */
  listen(): void;
  /** The caller is talking: no-input does not count. */
  quiet(): void;
  /** Runs `task` in the session's serial queue. */
  enqueue(task: () => Promise<void>): void;
}

/**
 * Whose turn it is. A caller's turn opens (and may interrupt the agent) or is heard and ignored while
 * barge-in is off; when it ends, its final text is answered, joined with the next turn's when the
 * caller went on talking, or resumes an interrupted reply when no words came of it.
 */
export class TurnTaking {
  /** The caller's latest turn (keypad entries count too). */
  turn = 0;
  /** A turn's text that was not answered because the caller kept talking; joins the next turn's. */
  private carriedText = '';
  /** The caller's speech while barge-in is off: heard, not answered. */
  private ignoringTurn = false;
  /** A sound over the agent being judged (adaptive barge-in): interruption, or backchannel / noise. */
  private pending: { readonly onsetAt: number; readonly judge: InterruptionJudge } | undefined;
  /** The last sound let go as no interruption: a sound right after it continues it ("wait, …"). */
  private lastKept: { readonly at: number; readonly onsetAt: number; readonly speechMs: number } | undefined;

  constructor(
    private readonly input: CallerInput,
    private readonly bargeIn: BargeIn,
    private readonly events: SessionEvents,
    private readonly lifetime: AbortSignal,
    private readonly log: Logger,
    private readonly host: TurnTakingHost,
    /** Speech shorter than this with no words is let go (a click, a breath), not answered with "didn't catch". */
    private readonly didNotCatchMinSpeechMs: number,
  ) {}

  /** A key press interrupted the agent: it opens a turn of its own. */
  keyedTurn(): void {
    if (this.pending) {
      // The key press decides: the sound being judged is dropped, and the agent is cut at full level.
      this.pending = undefined;
      this.input.dropTurn();
      this.host.hold(false);
    }
    this.host.duck(false);
    this.turn++;
  }

  /** Answers `text` now: anything carried over is part of it. */
  answer(text: string, turn: number): Promise<void> {
    this.carriedText = '';
    return this.host.respond(text, turn);
  }

  speechStarted(onsetAt: number, now: number): void {
    this.host.quiet();
    const agentTalking = this.host.agentTalking();
    const mode = this.host.bargeInMode();
    if (agentTalking && mode === 'off') {
      this.ignoringTurn = true;
      return;
    }
    this.input.streamTurn();
    if (agentTalking && mode === 'adaptive') {
      const kept = this.lastKept !== undefined && now - this.lastKept.at <= CONTINUES_WITHIN_MS ? this.lastKept : undefined;
      const judge = this.host.judge(Math.max(0, Math.round((now - onsetAt) / FRAME_MS)), kept?.speechMs ?? 0);
      this.pending = { onsetAt: kept?.onsetAt ?? onsetAt, judge };
      this.lastKept = undefined;
      this.host.duck(true);
      this.events.emit({ type: 'agent-ducked', onsetAtMs: this.events.rel(onsetAt) }, now);
      this.log.debug({ sinceOnsetMs: Math.round(now - onsetAt), carriedMs: kept?.speechMs ?? 0 }, 'agent ducked under a sound');
      return;
    }
    this.openTurn(onsetAt, now, agentTalking);
  }

  /**
   * The speech-to-speech model's own turn detection heard the caller start (`realtimeTurnDetection:
   * model`): a turn opens, and over the agent it is an interruption at once (the model stops by itself;
   * the cut here stops what is queued and truncates what was not heard).
   */
  modelHeardSpeech(now: number): number {
    this.host.quiet();
    this.openTurn(now, now, this.host.agentTalking());
    return this.turn;
  }

  /** A frame of the open turn: while a sound over the agent is judged, the judge sees it. */
  turnFrame(speech: boolean, voice: boolean, now: number): void {
    const verdict = this.pending?.judge.frame(speech, voice);
    if (verdict) this.settle(verdict, now);
  }

  /** Words from the STT: a judged sound with words that are not a backchannel is an interruption. */
  heard(text: string, now: number): void {
    const verdict = this.pending?.judge.words(text);
    if (verdict) this.settle(verdict, now);
  }

  private settle(verdict: Verdict, now: number): void {
    const pending = this.pending;
    if (!pending) return;
    this.log.debug({ verdict, sinceOnsetMs: Math.round(now - pending.onsetAt), speechMs: pending.judge.speechSoFarMs }, 'sound over the agent judged');
    if (verdict === 'hold') return this.host.hold(true);
    this.pending = undefined;
    if (verdict === 'interrupt' || !this.host.agentTalking()) {
      // The agent finished while the sound was judged: whatever it was, it is now the caller's turn.
      this.openTurn(pending.onsetAt, now, this.host.agentTalking());
    } else {
      this.input.dropTurn();
      this.lastKept = { at: now, onsetAt: pending.onsetAt, speechMs: pending.judge.speechSoFarMs };
      this.events.emit({ type: 'backchannel', onsetAtMs: this.events.rel(pending.onsetAt) }, now);
    }
    // Either way the agent is at full level at once. After a backchannel: a speaker who hears "uh-huh"
    // does not stay hushed, and a ducked voice's soft syllables sink under what a caller hears as sound
    // (bench:turns counted them as the agent going quiet); a continuation ("wait, … what") ducks it again.
    this.host.hold(false);
    this.host.duck(false);
  }

  /** The call is over: no sound is judged any more. */
  close(): void {
    this.pending = undefined;
  }

  private openTurn(onsetAt: number, now: number, interrupt: boolean): void {
    this.turn++;
    this.events.emit({ type: 'turn-started', turn: this.turn, onsetAtMs: this.events.rel(onsetAt) }, now);
    if (interrupt) this.bargeIn.interrupt('speech', now);
  }

  speechEnded(speechEndAt: number, now: number, forced: boolean, speechMs: number): void {
    if (this.pending) {
      // The turn ended (the audio stopped) before the judge decided: a sound this short was no interruption.
      const agentTalking = this.host.agentTalking();
      this.settle('keep', now);
      if (agentTalking) return;
    }
    if (this.ignoringTurn) {
      this.ignoringTurn = false;
      // The words are dropped, but the engine must start the next turn clean.
      if (this.input.unfinalized) void this.finalize();
      // The agent finished while the caller talked over it, and its end armed nothing (the caller was
      // talking): the silence after this turn must be counted, or the call sits mute until its limit.
      if (!this.host.agentTalking()) this.host.listen();
      return;
    }
    const turn = this.turn;
    this.events.emit({ type: 'turn-ended', turn, speechEndAtMs: this.events.rel(speechEndAt) }, now);
    this.events.expectMarks(speechEndAt, ['sttFinal', 'llmFirstToken', 'ttsFirstAudio', 'firstPacketOut']);
    this.events.emit({ type: 'latency', turn, mark: 'endOfTurn', sinceSpeechEndMs: now - speechEndAt }, now);
    if (forced) this.log.debug({ turn }, 'turn ended without its endpointing silence (maximum utterance, or the audio stopped)');
    const finalizing = this.finalize();
    this.host.enqueue(async () => {
      const text = await finalizing;
      if (text === undefined || this.host.isClosed()) return;
      this.events.mark('sttFinal');
      this.events.emit({ type: 'transcript', turn, text, final: true });
      if (text === '' && this.bargeIn.pending) {
        this.events.clearMarks();
        return this.bargeIn.resumeInterrupted();
      }
      const full = joinText([this.carriedText, text]);
      if (this.input.turns.speaking) {
        // The caller went on talking while the STT finished ("I'd like… a table for four"): answer
        // both parts together when this new turn ends, not the first half over their voice.
        this.carriedText = full;
        return;
      }
      if (full === '') {
        this.events.clearMarks();
        // Speech, and no words in it: say so, rather than leave the caller in silence.
        if (speechMs >= this.didNotCatchMinSpeechMs) return this.host.didNotCatch(turn);
        return this.host.listen();
      }
      await this.answer(full, turn);
    });
  }

  /** The STT's final text for the turn; undefined after an STT failure (reported, and apologised for). */
  private async finalize(): Promise<string | undefined> {
    try {
      return await this.input.finalize(this.lifetime);
    } catch (err) {
      if (this.host.isClosed()) return undefined;
      this.events.error(err, 'stt', 'CG_STT_FAILED');
      const turn = this.turn;
      this.host.enqueue(() => this.host.failTurn(turn));
      return undefined;
    }
  }
}
