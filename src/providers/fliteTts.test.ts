import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CallgateError } from '../errors.js';
import { activeSpan, dbfs } from '../media/signal.js';
import { FLITE_VOICES, defaultFliteOptions, loadFlite, synthesize } from './fliteTts.js';

const PHRASE = 'What time do you open today?';

function sha256(samples: Int16Array): string {
  return createHash('sha256').update(new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength)).digest('hex');
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CallgateError);
  expect((err as CallgateError).code).toBe(code);
}

describe('flite TTS', () => {
  beforeAll(async () => {
    await loadFlite();
  });

  it('is deterministic: fresh instances give the same samples, and the same as a pinned hash', async () => {
    const a = await synthesize(PHRASE);
    const b = await synthesize(PHRASE);
    expect(sha256(a.samples)).toBe(sha256(b.samples));
    // Pinned so a change of flite build (or of how we drive it) shows up here before it silently
    // changes every generated fixture. Update with `npm run fixtures` when that is intended.
    expect(sha256(a.samples)).toBe('c110137c3cb2aedd102ab49321cbc5cb73b3f0a3fda54f9886f9226676c1826c');
  });

  it('speaks with plausible level and duration', async () => {
    const { samples, sampleRate } = await synthesize(PHRASE);
    expect(sampleRate).toBe(16000);
    const span = activeSpan(samples, sampleRate);
    expect(span).toBeDefined();
    const spokenMs = (span?.endMs ?? 0) - (span?.startMs ?? 0);
    // Six words at a conversational ~2.5–4 words per second.
    expect(spokenMs).toBeGreaterThan(1200);
    expect(spokenMs).toBeLessThan(2600);
    const level = dbfs(samples, { start: ((span?.startMs ?? 0) * sampleRate) / 1000, end: ((span?.endMs ?? 0) * sampleRate) / 1000 });
    expect(level).toBeGreaterThan(-35);
    expect(level).toBeLessThan(-6);
    // flite pads the utterance with near-silence, not with noise or clipping.
    expect(span?.startMs ?? 0).toBeLessThan(300);
    expect(Math.max(...samples)).toBeLessThan(32767);
  });

  it('takes longer to say more', async () => {
    const short = await synthesize('Thank you, goodbye.');
    const long = await synthesize("Hi, I'm Ava from Joe's Pizza, what can I do for you today?");
    expect(long.samples.length).toBeGreaterThan(short.samples.length * 1.8);
  });

  it.each(FLITE_VOICES)('voice %s gives 16 kHz speech', async (voice) => {
    const { samples, sampleRate } = await synthesize(PHRASE, { voice });
    expect(sampleRate).toBe(16000);
    const seconds = samples.length / sampleRate;
    expect(seconds).toBeGreaterThan(1.2);
    expect(seconds).toBeLessThan(3);
    expect(dbfs(samples)).toBeGreaterThan(-40);
  });

  it('voices differ from one another', async () => {
    const hashes = new Set<string>();
    for (const voice of ['slt', 'rms', 'awb'] as const) hashes.add(sha256((await synthesize(PHRASE, { voice })).samples));
    expect(hashes.size).toBe(3);
  });

  it('resamples the 8 kHz kal voice to about the length of kal16 (the same speaker, recorded at 16 kHz)', async () => {
    const kal = await synthesize(PHRASE, { voice: 'kal' });
    const kal16 = await synthesize(PHRASE, { voice: 'kal16' });
    expect(Math.abs(kal.samples.length - kal16.samples.length) / kal16.samples.length).toBeLessThan(0.1);
  });

  it('returns no samples for whitespace-only text without running flite', async () => {
    const { samples } = await synthesize(' \n\t ');
    expect(samples.length).toBe(0);
  });

  it('treats control characters as spaces (NUL cannot be passed to flite)', async () => {
    const plain = await synthesize('Thank you, goodbye.');
    const dirty = await synthesize('Thank you,\u0000\u0007 goodbye.\n');
    expect(sha256(dirty.samples)).toBe(sha256(plain.samples));
  });

  it('refuses an unknown voice instead of letting flite fall back silently', async () => {
    await expectCode(synthesize(PHRASE, { voice: 'nosuch' as 'slt' }), 'CG_TTS_BAD_REQUEST');
  });

  it('refuses text over maxChars', async () => {
    await expectCode(synthesize('a'.repeat(11), { maxChars: 10 }), 'CG_TTS_BAD_REQUEST');
  });

  it('survives an utterance long enough to grow wasm memory (Node fast-call crash)', async () => {
    const sentence = 'I would like to book a table for four people at seven. ';
    const text = sentence.repeat(Math.floor(defaultFliteOptions.maxChars / sentence.length)).trim();
    expect(text.length).toBeLessThanOrEqual(defaultFliteOptions.maxChars);
    const { samples } = await synthesize(text);
    // Without the slow-path wrapper Node segfaulted once the WAV passed ~2 MB (~60 s of audio).
    expect(samples.length / 16000).toBeGreaterThan(40);
  });

  it('leaves no scratch directory behind, and reports an unusable one as CG_TTS_FAILED', async () => {
    const tempDir = await mkdtemp(join(tmpdir(), 'callgate-flite-test-'));
    try {
      await synthesize(PHRASE, { tempDir });
      await synthesize(PHRASE, { tempDir, voice: 'kal' });
      expect(await readdir(tempDir)).toEqual([]);
      await expectCode(synthesize(PHRASE, { tempDir: join(tempDir, 'missing') }), 'CG_TTS_FAILED');
    } finally {
      await rm(tempDir, { recursive: true, force: true });
    }
  });

  it('an explicitly undefined option falls back to its default', async () => {
    const a = await synthesize('Thank you, goodbye.', { voice: undefined, maxChars: undefined });
    const b = await synthesize('Thank you, goodbye.', { voice: 'slt' });
    expect(sha256(a.samples)).toBe(sha256(b.samples));
  });

  it('takes well under a second per sentence once compiled', async () => {
    const sentences = ['What time do you open today?', 'I would like to book a table for four people at seven', 'Thank you, goodbye.'];
    const started = performance.now();
    for (const s of sentences) await synthesize(s);
    const perSentenceMs = (performance.now() - started) / sentences.length;
    console.log(JSON.stringify({ flite: 'slt', perSentenceMs: Math.round(perSentenceMs) }));
    // Typically 40–110 ms here; the bound only catches a regression by an order of magnitude.
    expect(perSentenceMs).toBeLessThan(1000);
  });
});
