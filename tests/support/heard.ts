import { activeSpan, harmonicShare } from '../../src/media/signal.js';

/**
 * What the caller heard, judged by content: the fake TTS (FakeProviders' voiceLike) speaks every text
 * as a buzz on the harmonics of 140 Hz, so "the caller hears the agent" is "most of what reached the
 * caller lies on those harmonics" — not a count of samples or packets, which noise, comfort silence or
 * the wrong audio would pass as well. tests/support/heard.test.ts ties the figures to voiceLike.
 */
export const FAKE_VOICE_HZ = 140;

/** voiceLike reads ~0.98 (also after G.711 or Opus); noise and other tones below ~0.1. */
export const FAKE_VOICE_SHARE = 0.6;

/** The share of the sound in `samples` that is the fake voice (0 for silence). */
export function fakeVoiceShare(samples: Int16Array, sampleRate = 16000): number {
  return harmonicShare(samples, sampleRate, FAKE_VOICE_HZ);
}

/** How long `samples` has sound, first loud frame to last, in ms (0 for none): how much was heard. */
export function soundMs(samples: Int16Array, sampleRate = 16000): number {
  const span = activeSpan(samples, sampleRate);
  return span ? span.endMs - span.startMs : 0;
}
