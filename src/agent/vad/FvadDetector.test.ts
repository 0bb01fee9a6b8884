import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CallgateError } from '../../errors.js';
import { synthesize } from '../../providers/fliteTts.js';
import { FvadDetector, createFvadDetector, loadFvad } from './FvadDetector.js';
import { FRAME_SAMPLES, silence, toFrames } from './testing/testAudio.js';
import { concatSamples } from '../../media/signal.js';

let speech: Int16Array[];
const open: FvadDetector[] = [];

async function detector(mode?: 0 | 1 | 2 | 3): Promise<FvadDetector> {
  const d = await createFvadDetector(mode === undefined ? {} : { mode });
  open.push(d);
  return d;
}

function scores(d: FvadDetector, frames: readonly Int16Array[]): number[] {
  return frames.map((f) => d.process(f));
}

describe('FvadDetector', () => {
  beforeAll(async () => {
    speech = toFrames(concatSamples([silence(300), (await synthesize('Could you call me back tomorrow morning?')).samples, silence(300)]));
  });

  afterEach(() => {
    for (const d of open.splice(0)) d.close();
  });

  it('answers 0 or 1 per frame, and hears the sentence but not the silence around it', async () => {
    const d = await detector();
    const s = scores(d, speech);
    expect(new Set(s)).toEqual(new Set([0, 1]));
    // 300 ms of digital silence in front: never speech.
    expect(s.slice(0, 300 / 20).every((v) => v === 0)).toBe(true);
    expect(s.filter((v) => v === 1).length).toBeGreaterThan(speech.length / 2);
  });

  it('defaults to mode 3 and accepts modes 0–3 only', async () => {
    expect((await detector()).mode).toBe(3);
    for (const mode of [0, 1, 2, 3] as const) expect((await detector(mode)).mode).toBe(mode);
    for (const bad of [4, -1, 1.5, Number.NaN]) {
      await expect(createFvadDetector({ mode: bad as 0 })).rejects.toSatisfy(
        (err: unknown) => err instanceof CallgateError && err.code === 'CG_AGENT_CONFIG_INVALID',
      );
    }
  });

  it('takes 10, 20 and 30 ms frames, and throws a RangeError for any other length', async () => {
    const d = await detector();
    for (const n of [160, 320, 480]) expect([0, 1]).toContain(d.process(new Int16Array(n)));
    for (const n of [0, 319, 640]) expect(() => d.process(new Int16Array(n))).toThrow(RangeError);
  });

  it('gives the same answers on every instance, and again after reset()', async () => {
    const a = await detector();
    const b = await detector();
    const first = scores(a, speech);
    expect(scores(b, speech)).toEqual(first);
    a.reset();
    expect(scores(a, speech)).toEqual(first);
  });

  it('keeps working after other detectors make the shared wasm heap grow', async () => {
    const module = await loadFvad();
    const d = await detector();
    const before = scores(d, speech);
    d.reset();
    const heap = module.HEAP16;
    // Each detector takes ~1.7 KB of the 16 MB heap: allocate until emscripten replaces the heap view.
    const others: FvadDetector[] = [];
    try {
      while (module.HEAP16 === heap && others.length < 50_000) others.push(new FvadDetector(module));
      // (Compared by identity: the old view is detached, and printing it would throw.)
      expect(module.HEAP16 === heap).toBe(false);
      expect(scores(d, speech)).toEqual(before);
    } finally {
      for (const o of others) o.close();
    }
  });

  it('answers 0 after close(), which is idempotent', async () => {
    const d = await detector(0);
    const loud = speech.find((f) => d.process(f) === 1);
    expect(loud).toBeDefined();
    d.close();
    d.close();
    expect(d.process(loud ?? new Int16Array(FRAME_SAMPLES))).toBe(0);
    d.reset();
  });
});
