/** Sample rates the media layer converts between. The agent pipeline runs at 16 kHz mono. */
export type SampleRate = 8000 | 16000 | 24000 | 48000;
export const SAMPLE_RATES: readonly SampleRate[] = [8000, 16000, 24000, 48000];

/** Every leg moves audio in 20 ms frames (RTP ptime 20). */
export const FRAME_MS = 20;

/** The agent pipeline's rate: STT input and TTS output are 16 kHz mono PCM. */
export const PIPELINE_RATE: SampleRate = 16000;

export function samplesPerFrame(rate: SampleRate): number {
  return (rate * FRAME_MS) / 1000;
}

export function isSampleRate(rate: number): rate is SampleRate {
  return (SAMPLE_RATES as readonly number[]).includes(rate);
}

/** A DTMF key press decoded from RFC 4733 telephone-events (or SIP INFO, later). */
export interface DtmfEvent {
  /** '0'-'9', '*', '#', 'A'-'D'. */
  readonly digit: string;
  /** How long the key was held, from the event's duration field, in milliseconds. */
  readonly durationMs: number;
  /** RTP timestamp of the event start (identifies it; the end packet is sent three times). */
  readonly rtpTimestamp: number;
  /** Volume in -dBm0 (0 loudest .. 63), as the sender reported it. */
  readonly volume: number;
}
