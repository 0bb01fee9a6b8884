import type { ChatMessage, LlmEvent } from '../providers/types.js';
import { textEvents } from './deadlines.js';
import type { SessionEvents } from './SessionEvents.js';
import { Reply } from './Reply.js';

/** What barge-in needs of the reply pipeline (ReplyPipeline has it). */
export interface Interruptible {
  readonly history: ChatMessage[];
  cut(now: number): { readonly reply: Reply | undefined; readonly playedMs: number };
  finishCurrent(interrupted: boolean, playedMs?: number): void;
  silenced(): void;
  speak(reply: Reply, events: AsyncIterable<LlmEvent>): Promise<void>;
  /** Whether a falsely interrupted reply can be said again (a speech-to-speech model's cannot). */
  resumable?(reply: Reply): boolean;
}

export interface BargeInHost {
  /** The caller's turn is open (talking, or pausing for less than the endpointing window). */
  callerTurnOpen(): boolean;
  /** The caller's latest turn. */
  latestTurn(): number;
  /** Nothing to resume: listen (no-input counts again). */
  listen(): void;
  /** Runs `task` in the session's serial queue. */
  enqueue(task: () => Promise<void>): void;
}

interface PendingResume {
  readonly reply: Reply;
  readonly playedMs: number;
  readonly timer: NodeJS.Timeout;
  wordsHeard: boolean;
}

/**
 * Interruptions: the caller talks (or presses a key) over the agent, which falls silent at once and
 * keeps what was heard. A spoken interruption may turn out to be no words at all (a cough, a door):
 * then, after `falseInterruptionMs` or at the turn's end, the agent resumes from the interrupted sentence.
 */
export class BargeIn {
  private resume: PendingResume | undefined;

  constructor(
    private readonly replies: Interruptible,
    private readonly events: SessionEvents,
    private readonly falseInterruptionMs: number,
    private readonly host: BargeInHost,
  ) {}

  /** An interruption is waiting to see whether words come of it. */
  get pending(): boolean {
    return this.resume !== undefined;
  }

  /** The caller interrupted: silence the agent now, stop its providers, remember where it was. */
  interrupt(by: 'speech' | 'dtmf', now: number): void {
    const { reply, playedMs } = this.replies.cut(now);
    this.events.emit({ type: 'barge-in', turn: this.host.latestTurn(), playedMs, by }, now);
    this.clear();
    if (reply) {
      this.replies.finishCurrent(true, playedMs);
      if (by === 'speech' && (this.replies.resumable?.(reply) ?? true)) {
        const timer = setTimeout(() => this.falseInterruptionTimeout(), this.falseInterruptionMs);
        this.resume = { reply, playedMs, timer, wordsHeard: false };
      }
    }
    this.replies.silenced();
  }

  /** The STT recognised something: the interruption was the caller speaking, not a noise. */
  heard(text: string): void {
    if (text.trim() && this.resume) this.resume.wordsHeard = true;
  }

  /** No words came of the interruption: say the interrupted sentence again, and the rest. */
  resumeInterrupted(): void {
    const resume = this.resume;
    if (!resume) return;
    this.clear();
    const point = resume.reply.resumePoint(resume.playedMs);
    if (point.remaining.length === 0) return this.host.listen();
    // The interrupted reply went into history as cut off (unless nothing of it was heard); the resumed
    // one replaces that entry.
    const history = this.replies.history;
    const last = history.at(-1);
    if (last?.role === 'assistant' && last.content === resume.reply.spokenText(resume.playedMs)) history.pop();
    this.events.emit({ type: 'barge-in-resumed', turn: resume.reply.turn, fromText: point.remaining[0]! });
    const reply = new Reply(resume.reply.turn, point.before);
    reply.hangupAfter = resume.reply.hangupAfter;
    this.host.enqueue(() => this.replies.speak(reply, textEvents(point.remaining)));
  }

  /** The caller's turn is answered (or the call is over): nothing will resume. */
  clear(): void {
    if (this.resume) clearTimeout(this.resume.timer);
    this.resume = undefined;
  }

  private falseInterruptionTimeout(): void {
    const resume = this.resume;
    if (!resume || resume.wordsHeard) return;
    // The caller's turn is still open, or speech is starting: the turn's end decides (no words resumes,
    // words are answered). An STT with no interim words (pocketsphinx, OpenAI) has none to give before
    // then, and a gap between syllables is not the end of an interruption: resuming there talked over
    // the caller and dropped their words.
    if (this.host.callerTurnOpen()) return;
    this.resumeInterrupted();
  }
}
