import { describe, expect, it } from 'vitest';
import {
  FULL_SCALE,
  activeSpan,
  crossCorrelation,
  dbfs,
  findLag,
  goertzelPower,
  meanSquare,
  powerToDbfs,
  rms,
  sineAmplitudeForDbfs,
  snrDb,
  tone,
} from './signal.js';

/** Deterministic pseudo-noise (a fixed LCG), so tests never depend on Math.random. */
function noise(n: number, amplitude: number, seed = 1): Int16Array {
  const out = new Int16Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = Math.round(((x / 2 ** 32) * 2 - 1) * amplitude);
  }
  return out;
}

function add(a: Int16Array, b: Int16Array): Int16Array {
  return a.map((v, i) => Math.max(-32768, Math.min(32767, v + (b[i] ?? 0))));
}

function delay(x: Int16Array, samples: number): Int16Array {
  const out = new Int16Array(x.length + samples);
  out.set(x, samples);
  return out;
}

describe('levels', () => {
  it('rms of a constant and of a square wave', () => {
    expect(rms(new Int16Array(100).fill(-1000))).toBe(1000);
    const square = Int16Array.from({ length: 64 }, (_, i) => (i % 2 ? 2000 : -2000));
    expect(rms(square)).toBe(2000);
  });

  it('a full-scale sine reads -3.01 dBFS, and a -20 dBFS sine reads -20', () => {
    expect(dbfs(tone(1000, 100, { amplitude: 32767 }))).toBeCloseTo(-3.01, 2);
    expect(dbfs(tone(1000, 100, { amplitude: sineAmplitudeForDbfs(-20) }))).toBeCloseTo(-20, 2);
  });

  it('silence is -Infinity and empty input is 0 power', () => {
    expect(dbfs(new Int16Array(160))).toBe(-Infinity);
    expect(meanSquare(new Int16Array(0))).toBe(0);
    expect(powerToDbfs(FULL_SCALE * FULL_SCALE)).toBe(0);
  });

  it('measures only the requested range, clamped to the input', () => {
    const x = new Int16Array(200);
    x.fill(3000, 100);
    expect(rms(x, { start: 0, end: 100 })).toBe(0);
    expect(rms(x, { start: 100 })).toBe(3000);
    expect(rms(x, { start: 150, end: 10_000 })).toBe(3000);
    expect(rms(x, { start: 500 })).toBe(0);
  });
});

describe('snrDb', () => {
  const clean = tone(440, 500);

  it('matches the designed noise level', () => {
    const n = noise(clean.length, 1000);
    const expected = 10 * Math.log10(meanSquare(clean) / meanSquare(n));
    expect(snrDb(clean, add(clean, n))).toBeCloseTo(expected, 1);
    expect(expected).toBeGreaterThan(15);
    expect(expected).toBeLessThan(25);
  });

  it('is Infinity for identical signals and -Infinity for a silent reference', () => {
    expect(snrDb(clean, clean)).toBe(Infinity);
    expect(snrDb(new Int16Array(10), clean)).toBe(-Infinity);
  });

  it('uses the lag to compare delayed output', () => {
    const white = noise(8000, 8000, 3);
    const delayed = delay(white, 37);
    expect(snrDb(white, delayed, 37)).toBe(Infinity);
    // Uncorrelated at lag 0: the difference carries twice the reference's energy (-3 dB).
    expect(snrDb(white, delayed, 0)).toBeCloseTo(-3, 0);
  });
});

describe('cross-correlation and lag search', () => {
  const speechLike = add(tone(300, 300), add(tone(1170, 300, { amplitude: 4000 }), noise(4800, 2000, 7)));

  it('is 1 for a scaled copy, -1 for an inverted one, 0 against silence', () => {
    const half = speechLike.map((v) => v >> 1);
    expect(crossCorrelation(speechLike, half, 0)).toBeCloseTo(1, 3);
    expect(crossCorrelation(speechLike, speechLike.map((v) => -v), 0)).toBeCloseTo(-1, 6);
    expect(crossCorrelation(speechLike, new Int16Array(100), 0)).toBe(0);
    expect(crossCorrelation(speechLike, speechLike, 100_000)).toBe(0);
  });

  it('finds a known delay', () => {
    const delayed = delay(speechLike, 123);
    expect(findLag(speechLike, delayed)).toEqual({ lag: 123, correlation: expect.closeTo(1, 6) });
  });

  it('finds a negative lag when allowed, and stays in range otherwise', () => {
    // White noise: no periodicity that could make a wrong lag look good.
    const white = noise(4000, 8000, 5);
    const early = white.subarray(50);
    expect(findLag(white, early, { minLag: -100, maxLag: 100 })).toEqual({ lag: -50, correlation: expect.closeTo(1, 6) });
    const clipped = findLag(white, early, { minLag: 0, maxLag: 100 });
    expect(clipped.lag).toBeGreaterThanOrEqual(0);
    expect(clipped.correlation).toBeLessThan(0.2);
  });

  it('finds the delay through added noise', () => {
    const delayed = add(delay(speechLike, 200), noise(speechLike.length + 200, 3000, 99));
    const match = findLag(speechLike, delayed, { maxLag: 400 });
    expect(match.lag).toBe(200);
    expect(match.correlation).toBeGreaterThan(0.8);
  });

  it('rejects a bad range', () => {
    expect(() => findLag(speechLike, speechLike, { minLag: 5, maxLag: 4 })).toThrow(RangeError);
  });
});

describe('goertzelPower', () => {
  it('reports A²/2 for a sine at the probed frequency, in the same dBFS as dbfs()', () => {
    const a = 8000;
    const x = tone(697, 40, { sampleRate: 8000, amplitude: a });
    expect(goertzelPower(x, 8000, 697) / ((a * a) / 2)).toBeCloseTo(1, 1);
    expect(powerToDbfs(goertzelPower(x, 8000, 697))).toBeCloseTo(dbfs(x), 0);
  });

  it('separates the two tones of a DTMF digit from its neighbours', () => {
    // '5' is 770 Hz + 1336 Hz; neighbours on the keypad use 697/852 Hz and 1209/1477 Hz.
    const digit5 = add(tone(770, 40, { sampleRate: 8000, amplitude: 6000 }), tone(1336, 40, { sampleRate: 8000, amplitude: 6000 }));
    const on = powerToDbfs(goertzelPower(digit5, 8000, 770));
    for (const off of [697, 852, 1209, 1477]) {
      expect(on - powerToDbfs(goertzelPower(digit5, 8000, off))).toBeGreaterThan(10);
    }
    expect(powerToDbfs(goertzelPower(digit5, 8000, 1336))).toBeCloseTo(on, 0);
  });

  it('measures only the range', () => {
    const x = new Int16Array(1600);
    x.set(tone(1000, 50, { amplitude: 5000 }), 800);
    expect(goertzelPower(x, 16000, 1000, { end: 800 })).toBe(0);
    expect(goertzelPower(x, 16000, 1000, { start: 800 })).toBeCloseTo(5000 ** 2 / 2, -4);
    expect(goertzelPower(new Int16Array(0), 16000, 1000)).toBe(0);
  });
});

describe('tone', () => {
  it('produces the requested length, amplitude and frequency', () => {
    const x = tone(1000, 25, { sampleRate: 16000, amplitude: 12000 });
    expect(x.length).toBe(400);
    expect(Math.max(...x)).toBe(12000);
    expect(x[0]).toBe(0);
    // 1 kHz at 16 kHz repeats every 16 samples.
    expect(x[16]).toBe(x[0]);
    expect(x[20]).toBe(x[4]);
  });

  it('clips to 16-bit instead of wrapping', () => {
    const x = tone(100, 20, { amplitude: 50_000 });
    expect(Math.max(...x)).toBe(32767);
    expect(Math.min(...x)).toBe(-32768);
  });
});

describe('activeSpan', () => {
  it('finds a burst in silence to the frame', () => {
    const x = new Int16Array(16000);
    x.set(tone(500, 300, { amplitude: 5000 }), 4000); // 250 ms … 550 ms
    expect(activeSpan(x, 16000)).toEqual({ startMs: 250, endMs: 550 });
  });

  it('is undefined for silence and for sound below the threshold', () => {
    expect(activeSpan(new Int16Array(1600), 16000)).toBeUndefined();
    expect(activeSpan(tone(500, 100, { amplitude: 100 }), 16000)).toBeUndefined();
    expect(activeSpan(tone(500, 100, { amplitude: 100 }), 16000, { thresholdDbfs: -60 })).toEqual({ startMs: 0, endMs: 100 });
  });
});

describe('options', () => {
  it('an explicitly undefined option falls back to its default', () => {
    expect(tone(1000, 10, { sampleRate: undefined }).length).toBe(160);
    const x = Int16Array.from({ length: 2000 }, (_, i) => (i * 7919) % 4000);
    expect(findLag(x, x, { maxLag: undefined }).lag).toBe(0);
  });
});
