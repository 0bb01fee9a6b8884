import { describe, expect, it } from 'vitest';
import { concatSamples, harmonicShare, tone } from '../../src/media/signal.js';
import { voiceLike } from '../../src/providers/fake/FakeProviders.js';
import { FAKE_VOICE_SHARE, fakeVoiceShare } from './heard.js';

/** Deterministic white noise (a linear congruential generator), `n` samples at about -25 dBFS. */
function noise(n: number): Int16Array {
  let x = 12345;
  return Int16Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) >>> 0;
    return ((x >>> 16) / 65536 - 0.5) * 6000;
  });
}

describe('fakeVoiceShare: the caller-hears-the-agent check', () => {
  it('reads the fake TTS voice as the fake voice, at any level above the floor, at 16 and 8 kHz', () => {
    expect(fakeVoiceShare(voiceLike(2000, -20))).toBeGreaterThan(FAKE_VOICE_SHARE);
    for (const level of [-10, -20, -35]) expect(fakeVoiceShare(voiceLike(2000, level))).toBeGreaterThan(0.9);
    const v = voiceLike(2000, -20);
    const at8k = Int16Array.from({ length: v.length / 2 }, (_, i) => v[2 * i]!);
    expect(fakeVoiceShare(at8k, 8000)).toBeGreaterThan(0.9);
  });

  it('does not read noise, tones, silence or a voice at another pitch as the fake voice', () => {
    expect(fakeVoiceShare(noise(32000))).toBeLessThan(0.1);
    expect(fakeVoiceShare(tone(440, 2000))).toBeLessThan(0.1);
    expect(fakeVoiceShare(tone(1000, 2000))).toBeLessThan(0.1);
    expect(fakeVoiceShare(new Int16Array(32000))).toBe(0);
    // The same buzz at 200 Hz: the check is about pitch, not about being buzz-like.
    expect(harmonicShare(voiceLike(2000, -20), 16000, 200)).toBeLessThan(0.1);
  });

  it('judges only the sound: a little voice among long silence still reads as the voice; noise mixed in lowers it', () => {
    expect(fakeVoiceShare(concatSamples([new Int16Array(48000), voiceLike(500, -20), new Int16Array(48000)]))).toBeGreaterThan(0.9);
    const v = voiceLike(2000, -20);
    const n = noise(v.length);
    const mixed = Int16Array.from(v, (s, i) => s + n[i]!);
    expect(fakeVoiceShare(mixed)).toBeLessThan(fakeVoiceShare(v));
  });
});
