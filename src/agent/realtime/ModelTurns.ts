import { performance } from 'node:perf_hooks';
import type { SessionEvents } from '../SessionEvents.js';
import type { RealtimeLink } from './RealtimeLink.js';

/**
 * A speech-to-speech call whose turns the model's own voice detection takes (`realtimeTurnDetection:
 * model`): the caller's audio streams to it whole, it decides when a turn ended and answers by itself,
 * and it stops when the caller speaks over it. What stays ours: stopping the audio already queued, the
 * truncation of what was not heard, the turns and words in the record. While the link is not up (still
 * connecting, reconnecting, or gone for good) our turn-taking listens, as in the default mode.
 */
export interface ModelTurnsHost {
  /** Opens a caller turn (an interruption when the agent is talking); returns its number. */
  speechStarted(now: number): number;
  /** Queues the model's own answer to `turn` behind the session's other work. */
  answer(turn: number): void;
  /** The model's transcription of what the caller said. */
  callerSaid(text: string): void;
  /** Our turn-taking has a turn open (it started before the link came up): it ends it. */
  ourTurnOpen(): boolean;
}

export class ModelTurns {
  /** The caller turn opened by the model's detection and not answered yet. */
  private turn: number | undefined;

  constructor(
    private readonly link: RealtimeLink,
    private readonly events: SessionEvents,
    private readonly host: ModelTurnsHost,
  ) {
    link.on('speech-started', this.onSpeech);
    link.on('unasked', this.onAnswer);
    link.on('caller-text', this.onCallerText);
  }

  /** This frame is the model's to hear (else our turn-taking's). */
  get listening(): boolean {
    return this.link.up && !this.host.ourTurnOpen();
  }

  close(): void {
    this.link.off('speech-started', this.onSpeech);
    this.link.off('unasked', this.onAnswer);
    this.link.off('caller-text', this.onCallerText);
  }

  private readonly onSpeech = (): void => {
    if (!this.listening) return;
    this.turn = this.host.speechStarted(performance.now());
  };

  private readonly onAnswer = (): void => {
    if (!this.listening) return;
    // Gemini says nothing when speech starts while it is quiet: the answer is what shows a turn ended.
    const turn = this.turn ?? this.host.speechStarted(performance.now());
    this.turn = undefined;
    this.events.emit({ type: 'turn-ended', turn, speechEndAtMs: this.events.rel(performance.now()) });
    this.host.answer(turn);
  };

  private readonly onCallerText = (text: string, final: boolean): void => {
    if (!final || !this.listening || !text.trim()) return;
    this.host.callerSaid(text.trim());
  };
}
