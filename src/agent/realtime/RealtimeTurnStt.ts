import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { SttResult, SttStream, SttStreamEvents } from '../../providers/types.js';
import type { RealtimeLink } from './RealtimeLink.js';

/**
 * The caller's side of a speech-to-speech call as CallerInput sees an STT stream: a turn's audio goes to
 * the model as it comes, and the turn's end commits it; the turn's text is the model's transcription.
 * When the model is not there (never came up, or gone for good) the same turn is heard by the cascade's
 * recogniser instead, from the audio kept here, so no turn is lost in a fallback.
 */
export interface RealtimeTurnSttOptions {
  /** How long a turn's end waits for the model's transcription before answering without it. */
  readonly transcriptWaitMs: number;
  /** Audio kept for a fallback, at most. */
  readonly maxTurnMs: number;
}

export const defaultRealtimeTurnSttOptions = {
  /**
   * 800 ms: the model hears the audio itself and does not need our text to answer; the text is for the
   * record, the page and our turn rules. OpenAI transcribes a short turn in ~300–700 ms.
   */
  transcriptWaitMs: 800,
  /** 30 s: longer than any turn the turn detector lets run. */
  maxTurnMs: 30_000,
} as const satisfies RealtimeTurnSttOptions;

/** Said for a turn the model heard but has not transcribed yet: the turn is answered all the same. */
export const UNTRANSCRIBED = '…';

export class RealtimeTurnStt extends EventEmitter<SttStreamEvents> implements SttStream {
  /** Interim words come from the model; more to the point, CallerInput must not finalize mid-turn to look. */
  readonly interimResults = true;
  private turn: Int16Array[] = [];
  private turnSamples = 0;
  private cascade: SttStream | undefined;
  private finals: string[] = [];
  private waiting: ((text: string) => void) | undefined;
  private readonly options: RealtimeTurnSttOptions;

  constructor(
    private readonly link: RealtimeLink,
    private readonly openCascade: () => Promise<SttStream>,
    private readonly log: Logger,
    options: Partial<RealtimeTurnSttOptions> = {},
  ) {
    super();
    this.options = { ...defaultRealtimeTurnSttOptions, ...options };
    link.on('caller-text', (text, final) => {
      if (!final) {
        if (text.trim()) this.emit('result', { text, final: false } satisfies SttResult);
        return;
      }
      if (this.waiting) this.waiting(text.trim());
      else this.finals.push(text.trim());
    });
  }

  push(frame: Int16Array): void {
    if (this.turnSamples < this.options.maxTurnMs * 16) {
      this.turn.push(frame);
      this.turnSamples += frame.length;
    }
    this.link.appendAudio(frame);
  }

  async finalize(): Promise<string> {
    const audio = this.turn;
    this.turn = [];
    this.turnSamples = 0;
    if (this.link.up) {
      this.finals = [];
      this.link.commit();
      const text = await new Promise<string>((resolve) => {
        const timer = setTimeout(() => {
          this.waiting = undefined;
          resolve(UNTRANSCRIBED);
        }, this.options.transcriptWaitMs);
        this.waiting = (t) => {
          clearTimeout(timer);
          this.waiting = undefined;
          resolve(t || UNTRANSCRIBED);
        };
      });
      this.emit('result', { text, final: true });
      return text;
    }
    // The cascade hears the turn (the model is down, or between connections).
    if (!this.cascade) {
      this.cascade = await this.openCascade();
      this.cascade.on('result', (r) => this.emit('result', r));
      this.cascade.on('error', (err) => this.emit('error', err));
      this.log.info('caller turns go to the cascade recogniser');
    }
    for (const f of audio) this.cascade.push(f);
    return this.cascade.finalize();
  }

  async close(): Promise<void> {
    this.waiting?.('');
    await this.cascade?.close();
  }
}
