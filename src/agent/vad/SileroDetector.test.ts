import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CallgateError } from '../../errors.js';
import { concatSamples } from '../../media/signal.js';
import { synthesize } from '../../providers/fliteTts.js';
import { SILERO_WINDOW_SAMPLES, createSileroDetector, loadedSileroSessions, type SileroDetector } from './SileroDetector.js';
import { FRAME_SAMPLES, silence, toFrames } from './testing/testAudio.js';

let audio: Int16Array;
let frames: Int16Array[];
let scratch: string;
const open: SileroDetector[] = [];

async function detector(options: Parameters<typeof createSileroDetector>[0] = {}): Promise<SileroDetector> {
  const d = await createSileroDetector(options);
  open.push(d);
  return d;
}

/** Feeds frames at a live pace: each frame's inference has finished before the next frame arrives. */
async function paced(d: SileroDetector, input: readonly Int16Array[]): Promise<number[]> {
  const out: number[] = [];
  for (const f of input) {
    out.push(d.process(f));
    await d.idle();
  }
  return out;
}

/** The model's score for each whole 512-sample window, one window at a time (no buffering, no lag). */
async function windowScores(samples: Int16Array): Promise<number[]> {
  const d = await detector();
  const scores: number[] = [];
  for (let start = 0; start + SILERO_WINDOW_SAMPLES <= samples.length; start += SILERO_WINDOW_SAMPLES) {
    d.process(samples.subarray(start, start + SILERO_WINDOW_SAMPLES));
    await d.idle();
    scores.push(d.process(new Int16Array(0)));
  }
  return scores;
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<CallgateError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CallgateError);
  expect((err as CallgateError).code).toBe(code);
  return err as CallgateError;
}

/**
 * A valid ONNX model that is not Silero (y = Identity(x), float[1]), protobuf-encoded by hand:
 * ModelProto{ir_version 8, graph, opset_import{version 13}}. 60 bytes beat shipping a binary fixture.
 */
function identityModel(): Uint8Array {
  const varint = (n: number): number[] => {
    const out: number[] = [];
    for (; n > 0x7f; n >>>= 7) out.push((n & 0x7f) | 0x80);
    out.push(n);
    return out;
  };
  const int = (no: number, value: number): number[] => [...varint(no << 3), ...varint(value)];
  const bytes = (no: number, body: number[] | string): number[] => {
    const b = typeof body === 'string' ? [...Buffer.from(body)] : body;
    return [...varint((no << 3) | 2), ...varint(b.length), ...b];
  };
  // ValueInfoProto{name, type: TypeProto{tensor_type{elem_type FLOAT, shape{dim{dim_value 1}}}}}
  const valueInfo = (name: string): number[] => [...bytes(1, name), ...bytes(2, bytes(1, [...int(1, 1), ...bytes(2, bytes(1, int(1, 1)))]))];
  const node = [...bytes(1, 'x'), ...bytes(2, 'y'), ...bytes(4, 'Identity')];
  const graph = [...bytes(1, node), ...bytes(2, 'g'), ...bytes(11, valueInfo('x')), ...bytes(12, valueInfo('y'))];
  return Uint8Array.from([...int(1, 8), ...bytes(7, graph), ...bytes(8, int(2, 13))]);
}

describe('SileroDetector', () => {
  beforeAll(async () => {
    audio = concatSamples([silence(400), (await synthesize('Could you call me back tomorrow morning?')).samples, silence(400)]);
    frames = toFrames(audio);
    scratch = await mkdtemp(join(tmpdir(), 'callgate-silero-'));
  });

  afterEach(async () => {
    const closing = open.splice(0);
    for (const d of closing) d.close();
    await Promise.all(closing.map((d) => d.idle()));
    // Every detector gave back its hold on the shared model, which was then released.
    expect(loadedSileroSessions()).toBe(0);
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('scores speech high and silence low, as probabilities', async () => {
    const s = await paced(await detector(), frames);
    expect(s.every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(s.slice(0, 300 / 20).every((v) => v < 0.1)).toBe(true);
    expect(Math.max(...s)).toBeGreaterThan(0.9);
  });

  it('returns, for each 20 ms frame, the score of the last window completed before it: at most 2 windows late', async () => {
    const reference = await windowScores(audio);
    const live = await paced(await detector(), frames);
    let worstLagSamples = 0;
    live.forEach((score, k) => {
      // Windows wholly inside the frames before frame k: their runs finished before frame k arrived.
      const done = Math.floor((k * FRAME_SAMPLES) / SILERO_WINDOW_SAMPLES);
      expect(score).toBe(done === 0 ? 0 : reference[done - 1]);
      if (done > 0) worstLagSamples = Math.max(worstLagSamples, (k + 1) * FRAME_SAMPLES - done * SILERO_WINDOW_SAMPLES);
    });
    // From the end of the newest audio in the score to the end of the frame it is returned with.
    expect(worstLagSamples).toBeLessThanOrEqual(2 * SILERO_WINDOW_SAMPLES);
  });

  it('drops the oldest windows instead of piling up inference when frames come faster than it runs', async () => {
    const d = await detector({ maxQueuedWindows: 2 });
    // 50 frames in one go, with no chance for a run to finish: 31 windows, 1 running, 2 waiting.
    for (const f of frames.slice(0, 50)) d.process(f);
    await d.idle();
    expect(d.stats()).toEqual({ windows: 3, droppedWindows: 28, failedRuns: 0 });
  });

  it('forgets everything on reset(), even with a run in flight', async () => {
    const a = await detector();
    const b = await detector();
    await paced(a, frames.slice(0, 60));
    // Starts a run whose result must be ignored.
    for (const f of frames.slice(60, 64)) a.process(f);
    a.reset();
    expect(a.process(new Int16Array(0))).toBe(0);
    expect(await paced(a, frames)).toEqual(await paced(b, frames));
  });

  it('shares one loaded model between detectors, each with its own state', async () => {
    const a = await detector();
    const b = await detector();
    expect(loadedSileroSessions()).toBe(1);
    // Interleaved on the same model, speech on one and silence on the other do not mix.
    const quiet = toFrames(silence(frames.length * 20));
    const speechScores: number[] = [];
    const quietScores: number[] = [];
    for (let i = 0; i < frames.length; i++) {
      speechScores.push(a.process(frames[i] ?? new Int16Array(FRAME_SAMPLES)));
      quietScores.push(b.process(quiet[i] ?? new Int16Array(FRAME_SAMPLES)));
      await Promise.all([a.idle(), b.idle()]);
    }
    expect(Math.max(...speechScores)).toBeGreaterThan(0.9);
    expect(Math.max(...quietScores)).toBeLessThan(0.1);
  });

  it('close() with a run in flight lets it finish, ignores it, answers 0 after, and is idempotent', async () => {
    const d = await detector();
    await paced(d, frames.slice(0, 40));
    for (const f of frames.slice(40, 44)) d.process(f);
    d.close();
    d.close();
    expect(d.process(frames[45] ?? new Int16Array(FRAME_SAMPLES))).toBe(0);
    await d.idle();
    expect(loadedSileroSessions()).toBe(0);
    // The model loads again for the next detector.
    const next = await detector();
    expect(Math.max(...(await paced(next, frames)))).toBeGreaterThan(0.9);
  });

  it('throws CG_VAD_UNAVAILABLE for a missing, broken or foreign model file, and leaks nothing', async () => {
    await expectCode(createSileroDetector({ modelPath: join(scratch, 'missing.onnx') }), 'CG_VAD_UNAVAILABLE');
    const broken = join(scratch, 'broken.onnx');
    await writeFile(broken, 'not a model');
    await expectCode(createSileroDetector({ modelPath: broken }), 'CG_VAD_UNAVAILABLE');
    // A model onnxruntime loads fine, but with the wrong inputs: refused at load, not at every run.
    const other = join(scratch, 'identity.onnx');
    await writeFile(other, identityModel());
    const err = await expectCode(createSileroDetector({ modelPath: other }), 'CG_VAD_UNAVAILABLE');
    expect(String(err.cause)).toContain('not a Silero v5 model: its inputs → outputs are x → y');
    expect(loadedSileroSessions()).toBe(0);
  });

  it('rejects a bad maxQueuedWindows with CG_AGENT_CONFIG_INVALID, giving back the model', async () => {
    await expectCode(createSileroDetector({ maxQueuedWindows: -1 }), 'CG_AGENT_CONFIG_INVALID');
    expect(loadedSileroSessions()).toBe(0);
  });
});
