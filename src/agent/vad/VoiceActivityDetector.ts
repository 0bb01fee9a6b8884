/**
 * A frame classifier: is there speech in these 20 ms? Implementations: WebRTC VAD (fvad, the default)
 * and Silero v5 (an option, better in noise); `createVad` makes either. Turn-taking logic (minimum
 * speech, endpointing, echo guard) lives above this in `TurnDetector`, so both detectors are used the
 * same way: scores in, and the engine's threshold (`speechThreshold`) decides what counts as speech.
 */
export interface VoiceActivityDetector {
  readonly name: string;
  /**
   * Probability-like score of speech in one 20 ms frame of 16 kHz mono PCM (320 samples), 0–1.
   * Binary detectors answer 0 or 1. Called once per frame, in order: detectors may keep state.
   * Synchronous and cheap (a few µs for fvad; Silero buffers and answers with its newest finished
   * score, about one 32 ms window behind the frame). A closed detector answers 0.
   */
  process(frame: Int16Array): number;
  /** Forgets state between utterances (optional for stateless detectors). */
  reset(): void;
  /** Releases what the detector holds (wasm memory, its share of a loaded model). Idempotent. */
  close(): void;
}
