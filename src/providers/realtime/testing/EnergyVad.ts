/**
 * The voice detection the local realtime servers use when a session asks for the model's own turn
 * detection (OpenAI `server_vad`, Gemini's automatic activity detection): a level threshold with a start
 * and an end hold, enough to drive the protocol's events from what a test caller sends. Not a real VAD:
 * the tests' callers speak fixtures or tones over digital silence.
 */
export interface EnergyVadOptions {
  /** RMS over a chunk above which it is speech (≈ −36 dBFS). */
  readonly thresholdRms: number;
  /** Speech must last this long before it counts (OpenAI's prefix padding is about this). */
  readonly startMs: number;
  /** Silence that ends the speech (OpenAI's `silence_duration_ms` default). */
  readonly silenceMs: number;
}

export const defaultEnergyVadOptions: EnergyVadOptions = { thresholdRms: 500, startMs: 60, silenceMs: 500 };

export type EnergyVadSignal = { readonly type: 'start'; readonly atMs: number } | { readonly type: 'stop'; readonly atMs: number };

export class EnergyVad {
  private readonly o: EnergyVadOptions;
  private positionMs = 0;
  private loudMs = 0;
  private quietMs = 0;
  private speaking = false;

  constructor(options: Partial<EnergyVadOptions> = {}) {
    this.o = { ...defaultEnergyVadOptions, ...options };
  }

  /** A chunk of input audio at `rate`; says when speech starts or stops (the position in the stream). */
  feed(pcm: Int16Array, rate: number): EnergyVadSignal | undefined {
    const ms = (pcm.length / rate) * 1000;
    this.positionMs += ms;
    let sum = 0;
    for (const s of pcm) sum += s * s;
    const loud = pcm.length > 0 && Math.sqrt(sum / pcm.length) >= this.o.thresholdRms;
    if (loud) {
      this.loudMs += ms;
      this.quietMs = 0;
      if (!this.speaking && this.loudMs >= this.o.startMs) {
        this.speaking = true;
        return { type: 'start', atMs: Math.round(this.positionMs - this.loudMs) };
      }
      return undefined;
    }
    this.quietMs += ms;
    if (!this.speaking) this.loudMs = 0;
    if (this.speaking && this.quietMs >= this.o.silenceMs) {
      this.speaking = false;
      this.loudMs = 0;
      return { type: 'stop', atMs: Math.round(this.positionMs - this.quietMs) };
    }
    return undefined;
  }
}
