import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CallgateError } from '../../errors.js';
import { until } from '../../util/testing/wait.js';
import { loadFlite, synthesize } from '../fliteTts.js';
import type { TtsChunk } from '../types.js';
import { FliteTtsProvider, type FliteTtsProviderOptions } from './FliteTtsProvider.js';

const PHRASE = 'What time do you open today?';
/** ~900 letters: about a second of flite work, a minute of audio. */
const LONG_TEXT = 'I would like to book a table for four people at seven. '.repeat(16).trim();
const CHUNK_SAMPLES = 3200;

function sha256(parts: readonly Int16Array[]): string {
  const hash = createHash('sha256');
  for (const p of parts) hash.update(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
  return hash.digest('hex');
}

const live = new AbortController().signal;

async function collect(iterable: AsyncIterable<TtsChunk>): Promise<TtsChunk[]> {
  const chunks: TtsChunk[] = [];
  for await (const chunk of iterable) chunks.push(chunk);
  return chunks;
}

async function errorOf(promise: Promise<unknown>): Promise<CallgateError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CallgateError);
  return err as CallgateError;
}

/** Thread ids of this process right now (Linux). */
function threadIds(): Set<string> {
  return new Set(readdirSync('/proc/self/task'));
}

describe('FliteTtsProvider', () => {
  const providers: FliteTtsProvider[] = [];
  function open(options: Partial<FliteTtsProviderOptions> = {}): FliteTtsProvider {
    const provider = new FliteTtsProvider(options);
    providers.push(provider);
    return provider;
  }
  afterEach(async () => {
    await Promise.all(providers.splice(0).map((p) => p.close()));
  });
  beforeAll(async () => {
    await loadFlite();
  });

  it('yields the same samples as fliteTts.synthesize(), in 200 ms chunks at 16 kHz, from one reused worker', async () => {
    const tts = open();
    for (const [text, voice] of [
      [PHRASE, 'slt'],
      [PHRASE, 'kal'],
      ["Hi, I'm Ava from Joe's Pizza, what can I do for you today?", 'rms'],
    ] as const) {
      const chunks = await collect(tts.synthesize({ text, voice, signal: live }));
      const direct = await synthesize(text, { voice });
      expect(sha256(chunks.map((c) => c.samples))).toBe(sha256([direct.samples]));
      expect(chunks.every((c) => c.sampleRate === 16000)).toBe(true);
      expect(chunks.slice(0, -1).every((c) => c.samples.length === CHUNK_SAMPLES)).toBe(true);
      expect(chunks.at(-1)?.samples.length).toBeGreaterThan(0);
    }
    expect(tts.stats()).toMatchObject({ workers: 1, dispatched: 3, completed: 3, crashed: 0 });
  });

  it('yields nothing for empty or whitespace-only text, without starting a worker', async () => {
    const tts = open();
    expect(await collect(tts.synthesize({ text: '', voice: 'slt', signal: live }))).toEqual([]);
    expect(await collect(tts.synthesize({ text: ' \n\t ', voice: 'slt', signal: live }))).toEqual([]);
    expect(tts.stats()).toMatchObject({ workers: 0, dispatched: 0 });
  });

  it('refuses an unknown voice (before any worker starts) and text over maxChars (from the worker)', async () => {
    const tts = open({ maxChars: 10 });
    const badVoice = await errorOf(collect(tts.synthesize({ text: PHRASE, voice: 'nosuch', signal: live })));
    expect(badVoice.code).toBe('CG_TTS_BAD_REQUEST');
    expect(badVoice.message).toContain('nosuch');
    expect(tts.stats().workers).toBe(0);
    const tooLong = await errorOf(collect(tts.synthesize({ text: PHRASE, voice: 'slt', signal: live })));
    expect(tooLong.code).toBe('CG_TTS_BAD_REQUEST');
    expect(tooLong.message).toBe('speech synthesis request is invalid: text is 28 characters, more than maxChars 10');
    expect(tts.stats()).toMatchObject({ workers: 1, completed: 1 });
  });

  it('an already aborted request yields nothing and does no work', async () => {
    const tts = open();
    expect(await collect(tts.synthesize({ text: PHRASE, voice: 'slt', signal: AbortSignal.abort() }))).toEqual([]);
    expect(tts.stats()).toMatchObject({ workers: 0, dispatched: 0 });
  });

  it('a request aborted while queued leaves the queue at once and never reaches a worker', async () => {
    const tts = open({ poolSize: 1 });
    const first = collect(tts.synthesize({ text: LONG_TEXT, voice: 'slt', signal: live }));
    const controller = new AbortController();
    const queued = tts.synthesize({ text: PHRASE, voice: 'slt', signal: controller.signal })[Symbol.asyncIterator]();
    const next = queued.next();
    expect(tts.stats()).toMatchObject({ busy: 1, queued: 1, dispatched: 1 });
    controller.abort();
    expect(await next).toEqual({ done: true, value: undefined });
    expect(tts.stats()).toMatchObject({ queued: 0, dispatched: 1 });
    expect((await first).length).toBeGreaterThan(100);
    expect(tts.stats()).toMatchObject({ dispatched: 1, completed: 1, discarded: 0 });
  });

  it('a request aborted while running ends at once without audio or error; its result is discarded and the worker reused', async () => {
    const tts = open({ poolSize: 1 });
    const controller = new AbortController();
    const running = tts.synthesize({ text: LONG_TEXT, voice: 'slt', signal: controller.signal })[Symbol.asyncIterator]();
    const next = running.next();
    expect(tts.stats()).toMatchObject({ busy: 1, dispatched: 1 });
    controller.abort();
    expect(await next).toEqual({ done: true, value: undefined });
    // The worker cannot stop flite halfway; it finishes, and the pool drops what it sends back.
    await until(() => tts.stats().discarded === 1, 30_000, 'the aborted result to come back');
    const chunks = await collect(tts.synthesize({ text: PHRASE, voice: 'slt', signal: live }));
    expect(sha256(chunks.map((c) => c.samples))).toBe(sha256([(await synthesize(PHRASE)).samples]));
    expect(tts.stats()).toMatchObject({ workers: 1, dispatched: 2, completed: 1, discarded: 1 });
  });

  it('stops yielding when aborted mid-stream', async () => {
    const tts = open();
    const controller = new AbortController();
    const got: TtsChunk[] = [];
    for await (const chunk of tts.synthesize({ text: PHRASE, voice: 'slt', signal: controller.signal })) {
      got.push(chunk);
      if (got.length === 2) controller.abort();
    }
    expect(got.length).toBe(2);
    expect((await synthesize(PHRASE)).samples.length).toBeGreaterThan(2 * CHUNK_SAMPLES);
  });

  it('serves two calls at once, each with its own audio, on two workers', async () => {
    const tts = open({ poolSize: 2 });
    const a = { text: PHRASE, voice: 'slt' } as const;
    const b = { text: 'Thank you for calling, goodbye.', voice: 'awb' } as const;
    const [chunksA, chunksB] = await Promise.all([
      collect(tts.synthesize({ ...a, signal: live })),
      collect(tts.synthesize({ ...b, signal: live })),
    ]);
    expect(sha256(chunksA.map((c) => c.samples))).toBe(sha256([(await synthesize(a.text, { voice: a.voice })).samples]));
    expect(sha256(chunksB.map((c) => c.samples))).toBe(sha256([(await synthesize(b.text, { voice: b.voice })).samples]));
    expect(tts.stats()).toMatchObject({ workers: 2, dispatched: 2, completed: 2 });
  });

  it('serves queued requests from two calls in order on one worker', async () => {
    const tts = open({ poolSize: 1 });
    const finished: string[] = [];
    await Promise.all(
      ['first', 'second', 'third'].map(async (name) => {
        await collect(tts.synthesize({ text: `This is the ${name} sentence.`, voice: 'slt', signal: live }));
        finished.push(name);
      }),
    );
    expect(finished).toEqual(['first', 'second', 'third']);
    expect(tts.stats()).toMatchObject({ workers: 1, dispatched: 3 });
  });

  it('close() terminates the workers (threads too), fails pending requests, and is idempotent', async () => {
    // Baseline once libuv's thread pool is up (synthesize's file I/O starts it).
    await synthesize(PHRASE);
    // Thread ids, not counts: the process may start an unrelated thread meanwhile (seen in CI: 12 vs 11).
    const before = threadIds();
    const tts = open({ poolSize: 2 });
    await tts.warmUp();
    expect(tts.stats().workers).toBe(2);
    const started = [...threadIds()].filter((t) => !before.has(t));
    expect(started.length).toBeGreaterThanOrEqual(2);
    const pending = errorOf(collect(tts.synthesize({ text: LONG_TEXT, voice: 'slt', signal: live })));
    await Promise.all([tts.close(), tts.close()]);
    expect((await pending).code).toBe('CG_TTS_FAILED');
    expect(tts.stats().workers).toBe(0);
    const left = threadIds();
    // The pool's two worker threads are gone.
    expect(started.filter((t) => !left.has(t)).length).toBeGreaterThanOrEqual(2);
    expect((await errorOf(collect(tts.synthesize({ text: PHRASE, voice: 'slt', signal: live })))).code).toBe('CG_TTS_FAILED');
    expect((await errorOf(tts.warmUp())).code).toBe('CG_TTS_FAILED');
    await tts.close();
  });

  it('close() during warmUp() rejects the warm-up instead of leaving it waiting', async () => {
    const tts = open();
    const warming = errorOf(tts.warmUp());
    await tts.close();
    expect((await warming).code).toBe('CG_TTS_FAILED');
    expect(tts.stats().workers).toBe(0);
  });

  it('a worker crash fails the running request with CG_TTS_FAILED and a new worker serves the queue', async () => {
    const crashText = 'This sentence crashes the worker.';
    const tts = open({ poolSize: 1, crashOnText: crashText });
    const doomed = errorOf(collect(tts.synthesize({ text: crashText, voice: 'slt', signal: live })));
    const queued = collect(tts.synthesize({ text: PHRASE, voice: 'slt', signal: live }));
    const err = await doomed;
    expect(err.code).toBe('CG_TTS_FAILED');
    expect((err.cause as Error).message).toContain('test hook');
    const chunks = await queued;
    expect(sha256(chunks.map((c) => c.samples))).toBe(sha256([(await synthesize(PHRASE)).samples]));
    expect(tts.stats()).toMatchObject({ workers: 1, crashed: 1, dispatched: 2, completed: 1 });
  });

  it('keeps the main thread free while flite works', async () => {
    const tts = open();
    await tts.warmUp();
    // No timing bound: the largest gap between 5 ms ticks is compared with the synthesis it overlaps.
    // Run on this thread, flite would stall it for nearly the whole synthesis (one wasm call).
    const ticks: number[] = [];
    const timer = setInterval(() => ticks.push(performance.now()), 5);
    try {
      const started = performance.now();
      const chunks = await collect(tts.synthesize({ text: LONG_TEXT, voice: 'slt', signal: live }));
      const ended = performance.now();
      expect(chunks.length).toBeGreaterThan(100);
      // The start and the end count as ticks: a thread blocked throughout would show one gap of it all.
      const times = [started, ...ticks, ended];
      const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
      expect(Math.max(...gaps)).toBeLessThan((ended - started) / 2);
    } finally {
      clearInterval(timer);
    }
  });

  it('validates its options', () => {
    expect(() => new FliteTtsProvider({ poolSize: 0 })).toThrow(CallgateError);
    expect(() => new FliteTtsProvider({ chunkMs: 30 })).toThrow(/multiple of 20/);
  });
});

describe('FliteTtsProvider under tsx (how the CLI and benchmarks run)', () => {
  const script = fileURLToPath(new URL('./testing/tsxSmoke.ts', import.meta.url));
  const tsx = fileURLToPath(new URL('../../../node_modules/.bin/tsx', import.meta.url));
  const run = promisify(execFile);

  it.each([
    ['closes the provider', []],
    ['leaves it open: an idle pool does not keep the process alive', ['--no-close']],
  ])('starts the worker from TypeScript source and exits cleanly when the script %s', async (_, extra) => {
    const { stdout } = await run(tsx, [script, PHRASE, ...extra], { timeout: 30_000 });
    const result = JSON.parse(stdout.trim()) as { samples: number; sha256: string };
    const direct = await synthesize(PHRASE);
    expect(result).toMatchObject({ samples: direct.samples.length, sha256: sha256([direct.samples]) });
  });
});
