import { describe, expect, it } from 'vitest';
import { CallgateError } from '../errors.js';
import type { CodecName } from '../media/codecs/AudioCodec.js';
import { FakeTts } from '../providers/testing/FakeProviders.js';
import type { TtsChunk, TtsProvider, TtsRequest } from '../providers/types.js';
import { withoutLeadIn, type CachedPrompt, PromptCache, type PromptKey } from './PromptCache.js';

const key = (text: string, over: Partial<PromptKey> = {}): PromptKey => ({ tenantId: 'acme', text, voice: 'slt', codec: 'PCMU', ...over });

/** A TTS that answers at 24 kHz, to check the cache brings it to the pipeline rate. */
class Tts24k implements TtsProvider {
  readonly name = 'tts-24k';
  async *synthesize(_request: TtsRequest): AsyncIterable<TtsChunk> {
    yield { samples: new Int16Array(24 * 500).fill(3000), sampleRate: 24000 };
  }
}

describe('PromptCache', () => {
  it('synthesises once for concurrent requests and counts hits and misses', async () => {
    const tts = new FakeTts({ firstAudioMs: 20, msPerChar: 10 });
    const cache = new PromptCache();
    const a = cache.get(key('Hello there.'), tts);
    const b = cache.get(key('Hello there.'), tts);
    expect(b).toBe(a);
    expect(cache.has(key('Hello there.'))).toBe(false); // in flight, not yet encoded
    const [pa, pb] = await Promise.all([a, b]);
    expect(pb).toBe(pa);
    expect(cache.has(key('Hello there.'))).toBe(true);
    expect(await cache.get(key('Hello there.'), tts)).toBe(pa);
    expect(tts.requests).toEqual(['Hello there.']);
    expect(cache.stats()).toEqual({ entries: 1, hits: 2, misses: 1 });
  });

  it('keys by tenant, voice, codec and text', async () => {
    const tts = new FakeTts({ msPerChar: 10 });
    const cache = new PromptCache();
    await Promise.all([
      cache.get(key('Hi.'), tts),
      cache.get(key('Hi.', { tenantId: 'other' }), tts),
      cache.get(key('Hi.', { voice: 'rms' }), tts),
      cache.get(key('Hi.', { codec: 'PCMA' }), tts),
      cache.get(key('Hi!'), tts),
    ]);
    expect(cache.stats()).toEqual({ entries: 5, hits: 0, misses: 5 });
  });

  it('evicts the least recently used prompt beyond maxEntries', async () => {
    const tts = new FakeTts({ msPerChar: 10 });
    const cache = new PromptCache({ maxEntries: 2 });
    await cache.get(key('one'), tts);
    await cache.get(key('two'), tts);
    await cache.get(key('one'), tts); // "one" is now the most recent
    await cache.get(key('three'), tts);
    expect(cache.has(key('one'))).toBe(true);
    expect(cache.has(key('two'))).toBe(false);
    expect(cache.has(key('three'))).toBe(true);
    expect(cache.stats().entries).toBe(2);
    await cache.get(key('two'), tts);
    expect(tts.requests).toEqual(['one', 'two', 'three', 'two']);
  });

  it('does not cache a failure: the next request tries again', async () => {
    let fail = true;
    const tts = new FakeTts({ msPerChar: 10, failWhen: () => fail });
    const cache = new PromptCache();
    const err = await cache.get(key('Sorry.'), tts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CallgateError);
    expect((err as CallgateError).code).toBe('CG_TTS_FAILED');
    expect(cache.has(key('Sorry.'))).toBe(false);
    expect(cache.stats().entries).toBe(0);
    fail = false;
    await expect(cache.get(key('Sorry.'), tts)).resolves.toMatchObject({ text: 'Sorry.' });
    expect(cache.stats()).toMatchObject({ entries: 1, misses: 2 });
  });

  it('does not cache a prompt whose synthesis was aborted (the provider ends quietly with part of it)', async () => {
    const tts = new FakeTts({ msPerChar: 70, chunkMs: 20 });
    const cache = new PromptCache();
    const abort = new AbortController();
    const cutOff = cache.get(key('A long prompt that takes a while to say.'), tts, abort.signal);
    abort.abort();
    await expect(cutOff).rejects.toThrow();
    expect(cache.stats().entries).toBe(0);
    const whole = await cache.get(key('A long prompt that takes a while to say.'), tts);
    expect(whole.encoded.durationMs).toBeGreaterThanOrEqual(40 * 70);
  });

  it('invalidateTenant drops only that tenant’s prompts', async () => {
    const tts = new FakeTts({ msPerChar: 10 });
    const cache = new PromptCache();
    await cache.get(key('Hi.'), tts);
    await cache.get(key('Bye.'), tts);
    await cache.get(key('Hi.', { tenantId: 'acme2' }), tts);
    cache.invalidateTenant('acme');
    expect(cache.has(key('Hi.'))).toBe(false);
    expect(cache.has(key('Bye.'))).toBe(false);
    expect(cache.has(key('Hi.', { tenantId: 'acme2' }))).toBe(true);
    expect(cache.stats().entries).toBe(1);
  });

  it.each<CodecName>(['PCMU', 'PCMA', 'opus'])('encodes %s with one 20 ms payload per frame of the PCM, and levels per frame', async (codec) => {
    // 23 characters × 10 ms = 230 ms: 11.5 frames, so the last one is padded.
    const tts = new FakeTts({ msPerChar: 10, levelDbfs: -20 });
    const prompt = await new PromptCache().get(key('Twenty three characters', { codec }), tts);
    expect(prompt.encoded.codec).toBe(codec);
    expect(prompt.encoded.payloads).toHaveLength(12);
    expect(prompt.encoded.durationMs).toBe(240);
    expect(prompt.levels).toHaveLength(12);
    // The fake voice is ~-20 dBFS; somewhere in it a frame reaches that.
    expect(Math.max(...prompt.levels)).toBeGreaterThan(-26);
    if (codec !== 'opus') for (const p of prompt.encoded.payloads) expect(p.length).toBe(160);
  });

  it('brings audio from a TTS at another rate to the pipeline rate first', async () => {
    const prompt = await new PromptCache().get(key('x'), new Tts24k());
    expect(prompt.levels).toHaveLength(25); // 500 ms at 16 kHz
    expect(prompt.encoded.durationMs).toBe(500);
  });
});

describe('withoutLeadIn', () => {
  const prompt = (levels: number[]): CachedPrompt => ({
    text: 'hi',
    degraded: false,
    encoded: { codec: 'opus', payloads: levels.map((_, i) => new Uint8Array([i])), durationMs: levels.length * 20 },
    levels: Float32Array.from(levels),
  });

  it('drops the silent frames before the first sound but one, with their levels and duration', () => {
    const out = withoutLeadIn(prompt([-80, -70, -65, -60, -50, -30, -20, -70]));
    expect(out.encoded.payloads.map((p) => p[0])).toEqual([4, 5, 6, 7]);
    expect(out.encoded.durationMs).toBe(80);
    expect([...out.levels]).toEqual([-50, -30, -20, -70]);
  });

  it('leaves a prompt that starts loud, or is silence throughout, as it is', () => {
    const loud = prompt([-20, -80]);
    expect(withoutLeadIn(loud)).toBe(loud);
    const quiet = prompt([-80, -80, -80]);
    expect(withoutLeadIn(quiet)).toBe(quiet);
  });
});
