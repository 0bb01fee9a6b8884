import { describe, expect, it } from 'vitest';
import { concatSamples, harmonicShare, tone } from '../../src/media/signal.js';
import { voiceLike } from '../../src/providers/testing/FakeProviders.js';
import { linearToMulaw, mulawToLinear } from '../../src/media/codecs/g711.js';
import { resample } from '../../src/media/Resampler.js';
import { FAKE_VOICE_SHARE, fakeVoiceShare, fliteSays, loudnessEnvelope, SPEECH_MATCH, speechMatch } from './heard.js';

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

describe('speechMatch: the caller-hears-these-words check for flite gateways', () => {
  const GREETING = "Hi, I'm Ava from Joe's Pizza, what can I do for you today?";
  const OTHERS = ['We open at eleven in the morning and close at ten at night, every day.', 'Of course. For how many people, and at what time?', 'Sorry, I can help with opening hours or booking a table. Which would you like?'];
  const around = (pcm: Int16Array): Int16Array => concatSamples([new Int16Array(7680), pcm, new Int16Array(16000)]);

  it('finds the sentence in what was heard: among silence, quieter, and through G.711 at 8 kHz', async () => {
    const g = await fliteSays(GREETING);
    expect(speechMatch(g, around(g)).score).toBeGreaterThan(0.99);
    // 7680 samples of silence first (24 frames of 20 ms), then flite's own lead-in up to one frame before its first sound.
    const leadFrames = loudnessEnvelope(g).findIndex((db) => db > -55) - 1;
    expect(leadFrames).toBeGreaterThan(3);
    expect(speechMatch(g, around(g)).atMs).toBe(480 + leadFrames * 20);
    // A caller who heard the sentence without flite's lead-in (the greeting, a call's first sound) heard it whole.
    expect(speechMatch(g, g.subarray(leadFrames * 320)).score).toBeGreaterThan(0.99);
    expect(speechMatch(g, around(Int16Array.from(g, (s) => s / 5))).score).toBeGreaterThan(0.9);
    const viaMulaw = resample(Int16Array.from(resample(g, 16000, 8000), (s) => mulawToLinear(linearToMulaw(s))), 8000, 16000);
    expect(speechMatch(g, around(viaMulaw)).score).toBeGreaterThan(0.9);
    // Later in a conversation: the second of several things said.
    const reply = await fliteSays(OTHERS[0]!);
    expect(speechMatch(reply, concatSamples([g, new Int16Array(8000), reply, await fliteSays(OTHERS[2]!)])).score).toBeGreaterThan(0.95);
  });

  it('does not take another sentence, another voice, noise, a tone, silence or half the sentence for it', async () => {
    const g = await fliteSays(GREETING);
    for (const other of OTHERS) {
      const o = await fliteSays(other);
      expect(speechMatch(g, around(o)).score, other).toBeLessThan(0.6);
      expect(speechMatch(o, around(g)).score, other).toBeLessThan(0.6);
    }
    expect(speechMatch(g, around(await fliteSays(GREETING, 'rms'))).score).toBeLessThan(SPEECH_MATCH);
    expect(speechMatch(g, noise(96000)).score).toBeLessThan(0.3);
    expect(speechMatch(g, tone(440, 6000)).score).toBeLessThan(0.1);
    expect(speechMatch(g, new Int16Array(96000)).score).toBe(0);
    expect(speechMatch(g, g.subarray(0, g.length - 8000)).score).toBe(0);
  });
});
