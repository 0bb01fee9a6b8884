import { PIPELINE_RATE, samplesPerFrame } from '../../media/types.js';
import { PocketsphinxStt, type PocketsphinxSttInput } from './PocketsphinxStt.js';

export interface RecognizePcmOptions {
  /** Recognise against these phrases (with the garbage path); omitted or empty: the general model. */
  readonly phrases?: readonly string[];
  /** Provider options, e.g. `{ band: 'wide' }` for wideband audio. */
  readonly provider?: PocketsphinxSttInput;
}

/**
 * Recognises a whole 16 kHz mono recording at once: for tests and tools (e.g. what a caller heard,
 * decoded from RTP). Audio is pushed as fast as the decoder takes it — the CLI reads a file, so pacing
 * changes nothing — and every utterance's text is returned joined by spaces ('' for none).
 */
export async function recognizePcm(pcm: Int16Array, options: RecognizePcmOptions = {}): Promise<string> {
  const audioMs = (pcm.length / PIPELINE_RATE) * 1000;
  const provider = new PocketsphinxStt({
    // Decoding runs at up to ~0.4× real time with the general model; allow real time on a busy host.
    finalizeTimeoutMs: 2000 + audioMs,
    maxBacklogMs: audioMs + 10_000,
    ...options.provider,
  });
  const stream = await provider.open({ language: 'en-US', phrases: options.phrases ?? [] });
  try {
    const frame = samplesPerFrame(PIPELINE_RATE);
    for (let i = 0; i < pcm.length; i += frame) stream.push(pcm.subarray(i, i + frame));
    return await stream.finalize();
  } finally {
    await stream.close();
  }
}
