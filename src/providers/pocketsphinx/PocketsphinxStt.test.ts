import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CallgateError } from '../../errors.js';
import { createG711Decoder, createG711Encoder } from '../../media/codecs/g711.js';
import { until } from '../../util/testing/wait.js';
import { resample } from '../../media/Resampler.js';
import { concatSamples } from '../../media/signal.js';
import { synthesize, type FliteVoice } from '../fliteTts.js';
import type { SttResult, SttStream } from '../types.js';
import { PocketsphinxStt, recognizePcm, type PocketsphinxStream } from './index.js';
import { describeWith } from '../../../tests/support/tools.js';

/**
 * Real pocketsphinx on speech from the project's offline TTS (flite: the same samples every run, and the
 * decoder reads its input like a file, so every result here is deterministic). Audio is pushed as fast
 * as possible except where the test is about timing: the decoder needs no pacing, only the trailing
 * silence that finalize() adds.
 */

const PHRASES = ['Pay my bill', 'talk to an agent', 'Check my balance!', 'cancel my order', 'opening hours', 'yes', 'no', 'report a problem'];
const FRAME = 320;

const speechCache = new Map<string, Int16Array>();
async function speech(text: string, voice: FliteVoice = 'slt'): Promise<Int16Array> {
  const key = `${voice}:${text}`;
  let samples = speechCache.get(key);
  if (!samples) {
    samples = (await synthesize(text, { voice })).samples;
    speechCache.set(key, samples);
  }
  return samples;
}

function silence(ms: number): Int16Array {
  return new Int16Array((ms * 16000) / 1000);
}

function pushAll(stream: SttStream, pcm: Int16Array): void {
  for (let i = 0; i < pcm.length; i += FRAME) stream.push(pcm.subarray(i, i + FRAME));
}

/** 20 ms per frame on a wall-clock schedule (not drifting with timer lateness). */
async function pushRealTime(stream: SttStream, pcm: Int16Array): Promise<void> {
  const start = performance.now();
  for (let i = 0, n = 1; i < pcm.length; i += FRAME, n++) {
    stream.push(pcm.subarray(i, i + FRAME));
    const wait = start + n * 20 - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/** What a phone call does to the audio: 16 → 8 kHz, G.711 µ-law in 20 ms frames, back to 16 kHz. */
function mulawRoundTrip(pcm: Int16Array): Int16Array {
  const narrow = resample(pcm, 16000, 8000);
  const encoder = createG711Encoder('PCMU');
  const decoder = createG711Decoder('PCMU');
  const out: Int16Array[] = [];
  for (let i = 0; i < narrow.length; i += 160) {
    const frame = new Int16Array(160);
    frame.set(narrow.subarray(i, i + 160));
    const decoded = decoder.decode(encoder.encode(frame));
    if (!decoded.ok) throw new Error(decoded.code);
    out.push(decoded.value);
  }
  return resample(concatSamples(out), 8000, 16000);
}

/** Deterministic white noise (a fixed LCG), for a "speech-like energy but no words" utterance. */
function noise(ms: number, amplitude: number): Int16Array {
  const out = silence(ms);
  let seed = 12345;
  for (let i = 0; i < out.length; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    out[i] = Math.round((seed / 0x7fffffff - 0.5) * 2 * amplitude);
  }
  return out;
}

function wordOverlap(reference: string, hypothesis: string): number {
  const heard = new Set(hypothesis.split(' '));
  const words = reference.split(' ');
  return words.filter((w) => heard.has(w)).length / words.length;
}

/** Process ids in process group `pgid`, from ps. */
function processGroup(pgid: number): number[] {
  return execFileSync('ps', ['-e', '-o', 'pid=,pgid='], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number))
    .filter(([pid, group]) => group === pgid && pid !== undefined && pid > 0)
    .map(([pid]) => pid as number);
}

async function rejection(promise: Promise<unknown>): Promise<CallgateError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CallgateError);
  return err as CallgateError;
}

describe('pocketsphinx options', () => {
  it('refuses options it cannot use with CG_CONFIG_INVALID (no decoder needed)', () => {
    for (const bad of [{ garbageWeight: 2 }, { finalizeTimeoutMs: 0 }, { decoder: { vadPostspeechFramesGrammar: 0.5 } }]) {
      expect(() => new PocketsphinxStt(bad)).toThrow(expect.objectContaining({ code: 'CG_CONFIG_INVALID' }));
    }
    expect(new PocketsphinxStt({ decoder: { vadThreshold: 3 } }).options.decoder).toMatchObject({ vadThreshold: 3, vadPostspeechFramesGrammar: 100 });
  });
});

describeWith(['pocketsphinx'], 'pocketsphinx STT', () => {
  const open: SttStream[] = [];
  async function openStream(phrases: readonly string[], stt = new PocketsphinxStt()): Promise<PocketsphinxStream> {
    const stream = (await stt.open({ language: 'en-US', phrases })) as PocketsphinxStream;
    open.push(stream);
    return stream;
  }

  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });

  describe('with phrases (grammar and garbage path)', () => {
    it('recognises a phrase exactly, as normalised words, and reports it as a final result', async () => {
      const stream = await openStream(PHRASES);
      const results: SttResult[] = [];
      stream.on('result', (r) => results.push(r));
      pushAll(stream, await speech('check my balance'));
      expect(await stream.finalize()).toBe('check my balance');
      expect(results).toEqual([{ text: 'check my balance', final: true }]);
    });

    it('recognises phrases exactly after a µ-law phone line (8 kHz G.711)', async () => {
      const stream = await openStream(PHRASES);
      pushAll(stream, mulawRoundTrip(await speech('talk to an agent')));
      expect(await stream.finalize()).toBe('talk to an agent');
      pushAll(stream, mulawRoundTrip(await speech('pay my bill', 'rms')));
      expect(await stream.finalize()).toBe('pay my bill');
    });

    it('does not turn an unrelated sentence into a phrase', async () => {
      const stream = await openStream(PHRASES);
      pushAll(stream, await speech('the weather is lovely in paris this time of year'));
      expect(await stream.finalize()).toBe('');
      pushAll(stream, mulawRoundTrip(await speech('my name is john and i live in london')));
      expect(await stream.finalize()).toBe('');
      // The stream is still good for the next turn.
      pushAll(stream, await speech('cancel my order'));
      expect(await stream.finalize()).toBe('cancel my order');
    });

    it('gives nothing for noise without words', async () => {
      const stream = await openStream(PHRASES);
      pushAll(stream, concatSamples([silence(300), noise(800, 3000), silence(300)]));
      expect(await stream.finalize()).toBe('');
    });

    it('joins the utterances of one turn, and each finalize returns only its own turn', async () => {
      const stream = await openStream(PHRASES);
      // 1.5 s between them: longer than -vad_postspeech, so the decoder ends the first one by itself.
      pushAll(stream, concatSamples([await speech('pay my bill'), silence(1500), await speech('talk to an agent')]));
      expect(await stream.finalize()).toBe('pay my bill talk to an agent');
      pushAll(stream, await speech('opening hours'));
      expect(await stream.finalize()).toBe('opening hours');
    });

    it('recognises a tenant sentence with punctuation as one phrase (the agent greeting, over µ-law)', async () => {
      const greeting = "Hi, I'm Ava from Joe's Pizza, what can I do for you today?";
      const goodbye = "Thanks for calling Joe's Pizza. Goodbye!";
      const heard = await recognizePcm(mulawRoundTrip(concatSamples([await speech(greeting), silence(1000), await speech(goodbye)])), {
        phrases: [greeting, goodbye],
      });
      expect(heard).toBe("hi i'm ava from joe's pizza what can i do for you today thanks for calling joe's pizza goodbye");
    });
  });

  describe('without phrases (general language model)', () => {
    it('transcribes a sentence', async () => {
      const stream = await openStream([]);
      const sentence = 'i would like to book a table for four people at seven';
      pushAll(stream, await speech(sentence, 'rms'));
      const text = await stream.finalize();
      expect(wordOverlap(sentence, text)).toBeGreaterThanOrEqual(0.7);
    });

    it('batch helper: recognizePcm transcribes a whole recording', async () => {
      const sentence = 'my name is john and i live in london';
      const text = await recognizePcm(concatSamples([await speech(sentence), silence(500), await speech('can you hear me')]));
      expect(wordOverlap(`${sentence} can you hear me`, text)).toBeGreaterThanOrEqual(0.75);
    });
  });

  describe('finalize', () => {
    it("gives '' for silence only, and for nothing pushed at all", async () => {
      const stream = await openStream(PHRASES);
      expect(await stream.finalize()).toBe('');
      pushAll(stream, silence(2000));
      expect(await stream.finalize()).toBe('');
    });

    it('reports an utterance as soon as the caller pauses, before finalize (audio in real time)', async () => {
      const stream = await openStream(PHRASES);
      const results: SttResult[] = [];
      stream.on('result', (r) => results.push(r));
      // The decoder ends an utterance after 1 s of silence (-vad_postspeech) by itself.
      await pushRealTime(stream, concatSamples([await speech('yes', 'rms'), silence(1300)]));
      await until(() => results.length > 0, 3000, 'a result before finalize');
      expect(results).toEqual([{ text: 'yes', final: true }]);
      expect(await stream.finalize()).toBe('yes');
    });

    it('ends the turn where it is called: audio pushed meanwhile (the caller talking on) is the next turn', async () => {
      const stream = await openStream(PHRASES);
      const [first, second] = [await speech('pay my bill'), await speech('report a problem')];
      pushAll(stream, first);
      const turn1 = stream.finalize();
      // In real time, so the decoder never sees the end of the push before it is over.
      const talkingOn = pushRealTime(stream, second);
      expect(await turn1).toBe('pay my bill');
      await talkingOn;
      expect(await stream.finalize()).toBe('report a problem');
    });

    it('serialises calls made together: each returns its own turn', async () => {
      const stream = await openStream(PHRASES);
      const [first, second] = [await speech('cancel my order'), await speech('opening hours')];
      pushAll(stream, first);
      const turn1 = stream.finalize();
      pushAll(stream, second);
      const turn2 = stream.finalize();
      expect(await Promise.all([turn1, turn2])).toEqual(['cancel my order', 'opening hours']);
    });

    it('rejects with CG_STT_TIMEOUT when the decoder does not catch up in time', async () => {
      const stream = await openStream(PHRASES, new PocketsphinxStt({ finalizeTimeoutMs: 300 }));
      process.kill(stream.pid, 'SIGSTOP');
      try {
        pushAll(stream, await speech('pay my bill'));
        const err = await rejection(stream.finalize());
        expect(err.code).toBe('CG_STT_TIMEOUT');
      } finally {
        process.kill(stream.pid, 'SIGCONT');
      }
    });
  });

  describe('failures and clean-up', () => {
    it('a missing binary gives CG_STT_UNAVAILABLE from open()', async () => {
      const stt = new PocketsphinxStt({ binary: '/nonexistent/pocketsphinx_continuous' });
      const err = await rejection(stt.open({ language: 'en-US', phrases: PHRASES }));
      expect(err.code).toBe('CG_STT_UNAVAILABLE');
    });

    it('a missing model, a decoder that exits while starting, or a language without a model give CG_STT_UNAVAILABLE', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'callgate-ps-model-'));
      try {
        const missing = await rejection(new PocketsphinxStt({ modelDir: dir }).open({ language: 'en-US', phrases: PHRASES }));
        expect(missing.code).toBe('CG_STT_UNAVAILABLE');
        // With the wideband settings nothing is read before the decoder starts: it fails on its own.
        const err = await rejection(new PocketsphinxStt({ modelDir: dir, band: 'wide' }).open({ language: 'en-US', phrases: [] }));
        expect(err.code).toBe('CG_STT_UNAVAILABLE');
        expect(err.details?.['stderr']).toMatch(/ERROR|FATAL/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      expect((await rejection(new PocketsphinxStt().open({ language: 'fr-FR', phrases: [] }))).code).toBe('CG_STT_UNAVAILABLE');
    });

    it('a decoder that dies emits CG_STT_FAILED as an error, and finalize rejects with it', async () => {
      const stream = await openStream(PHRASES);
      const errors: CallgateError[] = [];
      stream.on('error', (e) => errors.push(e));
      process.kill(stream.pid, 'SIGKILL');
      await until(() => errors.length > 0, 3000, 'the error event');
      expect(errors.map((e) => e.code)).toEqual(['CG_STT_FAILED']);
      pushAll(stream, await speech('yes')); // ignored, not thrown
      expect((await rejection(stream.finalize())).code).toBe('CG_STT_FAILED');
    });

    it('close() kills the decoder (no process left in its group), removes its files, and is idempotent', async () => {
      const stream = await openStream(PHRASES);
      const pid = stream.pid;
      expect(processGroup(pid)).toEqual([pid]);
      // Its scratch directory (FIFO, grammar, dictionary), from its command line.
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const dir = dirname(args[args.indexOf('-infile') + 1] ?? '');
      expect(existsSync(join(dir, 'phrases.gram'))).toBe(true);
      pushAll(stream, await speech('yes'));
      await Promise.all([stream.close(), stream.close()]);
      await stream.close();
      expect(processGroup(pid)).toEqual([]);
      expect(existsSync(`/proc/${pid}`)).toBe(false);
      expect(existsSync(dir)).toBe(false);
      expect((await rejection(stream.finalize())).code).toBe('CG_STT_FAILED');
    });

    it('the decoder exits by itself when the Node process that feeds it is killed', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'callgate-ps-orphan-'));
      let decoderPid = 0;
      try {
        const script = join(dir, 'feeder.mts');
        const moduleUrl = new URL('./index.ts', import.meta.url).href;
        writeFileSync(
          script,
          `import { PocketsphinxStt } from ${JSON.stringify(moduleUrl)};\n` +
            // Its scratch directory inside ours: a killed process cannot remove it, the test does.
            `const stream = await new PocketsphinxStt({ tempDir: ${JSON.stringify(dir)} }).open({ language: 'en-US', phrases: ['yes'] });\n` +
            `process.stdout.write(String((stream as { pid?: number }).pid) + '\\n');\n` +
            `setInterval(() => stream.push(new Int16Array(320)), 20);\n`,
        );
        const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
        const feeder = spawn(process.execPath, ['--import', tsx, script], { stdio: ['ignore', 'pipe', 'inherit'] });
        decoderPid = await new Promise<number>((resolve, reject) => {
          feeder.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
          feeder.once('exit', () => reject(new Error('feeder exited early')));
        });
        expect(existsSync(`/proc/${decoderPid}`)).toBe(true);
        feeder.kill('SIGKILL');
        // Not killed by anyone (it has its own process group): it read end-of-file and exited.
        await until(() => processState(decoderPid) === undefined || processState(decoderPid) === 'Z', 3000, 'the orphaned decoder to exit');
      } finally {
        if (decoderPid > 0 && processState(decoderPid) !== undefined) process.kill(decoderPid, 'SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  afterAll(async () => {
    // Nothing left from this file: no pocketsphinx child of this process.
    const { stdout } = await promisify(execFile)('ps', ['-o', 'comm=', '--ppid', String(process.pid)]).catch(() => ({ stdout: '' }));
    expect(stdout.split('\n').filter((c) => c.includes('pocketsphinx'))).toEqual([]);
  });
});

/** The state letter of /proc/<pid>/stat ('Z' for a zombie nobody reaped yet), undefined when gone. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}
