import type { Parsed } from '../../errors.js';
import type { SampleRate } from '../types.js';

/** Codec names as they appear in SDP rtpmap lines (case as commonly written). */
export type CodecName = 'opus' | 'PCMU' | 'PCMA';

/**
 * Encodes 20 ms frames of mono PCM for one direction of one leg (encoders keep state between frames).
 * Implementations: opus (opusscript today; a native libopus binding can register under the same name),
 * PCMU, PCMA.
 */
export interface AudioEncoder {
  readonly codec: CodecName;
  /** PCM rate `encode` takes. */
  readonly sampleRate: SampleRate;
  /** RTP timestamp clock (48000 for Opus whatever the PCM rate, 8000 for G.711). */
  readonly clockRate: number;
  /** Samples per 20 ms at `sampleRate`; `encode` insists on exactly this many. */
  readonly frameSamples: number;
  /** RTP timestamp advance per 20 ms frame. */
  readonly timestampIncrement: number;
  /** Encoded 20 ms of digital silence, computed once: sent when nothing is queued, costs nothing. */
  readonly silence: Uint8Array;
  /** Throws CallgateError CG_CODEC_BAD_FRAME / CG_CODEC_ENCODE_FAILED (programming errors, not input). */
  encode(pcm: Int16Array): Uint8Array;
  close(): void;
}

/** Decodes one leg's inbound payloads to mono PCM; decoders keep state (Opus PLC needs history). */
export interface AudioDecoder {
  readonly codec: CodecName;
  /** PCM rate `decode` returns. */
  readonly sampleRate: SampleRate;
  readonly clockRate: number;
  readonly frameSamples: number;
  /** Bad payloads come back as a failure with a stable code; nothing is thrown. */
  decode(payload: Uint8Array): Parsed<Int16Array>;
  /**
   * Produces 20 ms standing in for a lost packet. `next` is the packet after the gap when it has
   * already arrived: a codec with in-band FEC recovers the lost frame from it; others ignore it.
   */
  conceal(next?: Uint8Array): Int16Array;
  close(): void;
}
