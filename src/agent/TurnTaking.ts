import type { Logger } from 'pino';
import type { BargeIn } from './BargeIn.js';
import type { CallerInput } from './CallerInput.js';
import { joinText } from './Reply.js';
import type { SessionEvents } from './SessionEvents.js';

/** What turn taking needs of the session around it. */
export interface TurnTakingHost {
  isClosed(): boolean;
  /** The agent is speaking, or its audio is still queued. */
  agentTalking(): boolean;
  /** The caller may interrupt the agent (the tenant's setting). */
  bargeInAllowed(): boolean;
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

  constructor(
    private readonly input: CallerInput,
    private readonly bargeIn: BargeIn,
    private readonly events: SessionEvents,
    private readonly lifetime: AbortSignal,
    private readonly log: Logger,
    private readonly host: TurnTakingHost,
  ) {}

  /** A key press interrupted the agent: it opens a turn of its own. */
  keyedTurn(): void {
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
    if (agentTalking && !this.host.bargeInAllowed()) {
      this.ignoringTurn = true;
      return;
    }
    this.turn++;
    this.events.emit({ type: 'turn-started', turn: this.turn, onsetAtMs: this.events.rel(onsetAt) }, now);
    this.input.streamTurn();
    if (agentTalking) this.bargeIn.interrupt('speech', now);
  }

  speechEnded(speechEndAt: number, now: number, forced: boolean): void {
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
