import type { Logger } from 'pino';
import { CallerInput } from '../agent/CallerInput.js';
import type { VoiceActivityDetector } from '../agent/vad/VoiceActivityDetector.js';
import type { SttStream } from '../providers/types.js';

/**
 * One person's own speech recogniser in a room: their audio alone (before the mix) through the VAD,
 * the turn detector and an STT stream — the same pieces as a caller's input on a call — so the room's
 * transcript says exactly who said what, even when two people talk at once.
 */
export interface PersonTranscriberOptions {
  /** A pause this long ends a line of the transcript. */
  readonly endpointingMs: number;
  readonly sttFinalTimeoutMs: number;
}

export const defaultPersonTranscriberOptions = {
  /** 600 ms: a transcript line per sentence or so; not a turn decision, so it need not be fast. */
  endpointingMs: 600,
  /** 5 s: a slow recogniser only delays a line of text; nobody waits on it. */
  sttFinalTimeoutMs: 5000,
} as const satisfies PersonTranscriberOptions;

export class PersonTranscriber {
  private readonly input: CallerInput;
  private readonly lifetime = new AbortController();
  private pending = Promise.resolve();

  constructor(
    vad: VoiceActivityDetector,
    openStt: () => Promise<SttStream>,
    /** A line of this person's words: interim while they speak (when the engine streams), then final. */
    private readonly onText: (text: string, final: boolean) => void,
    private readonly log: Logger,
    options: Partial<PersonTranscriberOptions> = {},
  ) {
    const o = { ...defaultPersonTranscriberOptions, ...options };
    this.input = new CallerInput(
      vad,
      // No echo here: a person's own audio carries no agent (the mix reaches their speaker, not this).
      { turn: { endpointingMs: o.endpointingMs }, echo: { marginDb: 200 }, prerollMs: 300, sttFinalTimeoutMs: o.sttFinalTimeoutMs, voicing: true, log },
      {
        speechStarted: () => this.input.streamTurn(),
        speechEnded: () => this.finishLine(),
        sttResult: (r) => {
          if (!r.final && r.text.trim()) this.onText(r.text.trim(), false);
        },
        sttError: (err) => this.log.warn({ err: String(err) }, 'room transcript STT failed'),
      },
    );
    void this.input.open(openStt);
  }

  frame(frame: Int16Array): void {
    this.input.frame(frame);
  }

  private finishLine(): void {
    // In order: a line's text is read before the next one's.
    this.pending = this.pending
      .then(() => this.input.finalize(this.lifetime.signal))
      .then((text) => {
        if (text) this.onText(text, true);
      })
      .catch((err: unknown) => {
        if (!this.lifetime.signal.aborted) this.log.debug({ err: String(err) }, 'room transcript line lost');
      });
  }

  async close(): Promise<void> {
    this.lifetime.abort();
    await this.input.close();
  }
}
