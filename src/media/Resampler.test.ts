import { describe, expect, it } from 'vitest';
import { CallgateError } from '../errors.js';
import { Resampler, resample } from './Resampler.js';
import type { SampleRate } from './types.js';
import { concatSamples } from './signal.js';

function tone(rate: number, freq: number, n: number, amplitude = 10000, phase = 0): Int16Array {
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(amplitude * Math.sin((2 * Math.PI * freq * i) / rate + phase));
  return out;
}

function rms(x: Int16Array | Float64Array, from = 0, to = x.length): number {
  let s = 0;
  for (let i = from; i < to; i++) s += (x[i] as number) ** 2;
  return Math.sqrt(s / (to - from));
}

/** Streams `input` through a fresh resampler in 20 ms chunks, as a leg does. */
function stream(input: Int16Array, from: SampleRate, to: SampleRate): Int16Array {
  const r = new Resampler(from, to);
  const chunk = from / 50;
  const parts: Int16Array[] = [];
  for (let i = 0; i < input.length; i += chunk) parts.push(r.process(input.subarray(i, i + chunk)));
  return concatSamples(parts);
}

/**
 * Least-squares fit of a sinusoid of known frequency; returns its amplitude and the RMS of what is
 * left (noise + distortion + anything else), measured over [from, to).
 */
function fitSine(x: Int16Array, rate: number, freq: number, from: number, to: number): { amplitude: number; residualRms: number } {
  let ss = 0;
  let cc = 0;
  let sc = 0;
  let xs = 0;
  let xc = 0;
  for (let i = from; i < to; i++) {
    const w = (2 * Math.PI * freq * i) / rate;
    const s = Math.sin(w);
    const c = Math.cos(w);
    const v = x[i] as number;
    ss += s * s;
    cc += c * c;
    sc += s * c;
    xs += v * s;
    xc += v * c;
  }
  const det = ss * cc - sc * sc;
  const a = (xs * cc - xc * sc) / det;
  const b = (xc * ss - xs * sc) / det;
  let residual = 0;
  for (let i = from; i < to; i++) {
    const w = (2 * Math.PI * freq * i) / rate;
    residual += ((x[i] as number) - a * Math.sin(w) - b * Math.cos(w)) ** 2;
  }
  return { amplitude: Math.hypot(a, b), residualRms: Math.sqrt(residual / (to - from)) };
}

/** In-place radix-2 FFT (n a power of two); enough for measuring where energy sits. */
function powerSpectrum(x: Int16Array, start: number, n: number): Float64Array {
  const re = new Float64Array(n);
  const im = new Float64Array(n);
  for (let i = 0; i < n; i++) re[i] = (x[start + i] as number) * (0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j] as number, re[i] as number];
      [im[i], im[j]] = [im[j] as number, im[i] as number];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const angle = (-2 * Math.PI) / len;
    for (let i = 0; i < n; i += len) {
      for (let k = 0; k < len / 2; k++) {
        const wr = Math.cos(angle * k);
        const wi = Math.sin(angle * k);
        const a = i + k;
        const b = a + len / 2;
        const vr = (re[b] as number) * wr - (im[b] as number) * wi;
        const vi = (re[b] as number) * wi + (im[b] as number) * wr;
        re[b] = (re[a] as number) - vr;
        im[b] = (im[a] as number) - vi;
        re[a] = (re[a] as number) + vr;
        im[a] = (im[a] as number) + vi;
      }
    }
  }
  const p = new Float64Array(n / 2);
  for (let k = 0; k < n / 2; k++) p[k] = (re[k] as number) ** 2 + (im[k] as number) ** 2;
  return p;
}

const db = (ratio: number): number => 20 * Math.log10(ratio);

describe('Resampler construction', () => {
  it.each([44100, 12000, 0, 96000])('rejects %i Hz with CG_RESAMPLE_UNSUPPORTED_RATE', (rate) => {
    expect(() => new Resampler(rate, 16000)).toThrow(expect.objectContaining({ code: 'CG_RESAMPLE_UNSUPPORTED_RATE' }));
    expect(() => new Resampler(16000, rate)).toThrow(CallgateError);
    expect(() => resample(new Int16Array(10), rate, 8000)).toThrow(CallgateError);
  });

  it('rejects nonsensical filter options', () => {
    expect(() => new Resampler(16000, 8000, { passbandRatio: 1.2 })).toThrow(CallgateError);
    expect(() => new Resampler(16000, 8000, { stopbandAttenuationDb: 5 })).toThrow(CallgateError);
  });

  it('same rate passes a copy through, with no delay', () => {
    const r = new Resampler(16000, 16000);
    const input = tone(16000, 440, 320);
    const out = r.process(input);
    expect(out).not.toBe(input);
    expect(Array.from(out)).toEqual(Array.from(input));
    expect(r.delaySamples).toBe(0);
    expect(Array.from(resample(input, 8000, 8000))).toEqual(Array.from(input));
  });

  it('produces exactly the expected number of samples per 20 ms frame for every rate pair', () => {
    const rates: SampleRate[] = [8000, 16000, 24000, 48000];
    for (const from of rates) {
      for (const to of rates) {
        const r = new Resampler(from, to);
        for (let f = 0; f < 5; f++) expect(r.process(new Int16Array(from / 50)).length).toBe(to / 50);
      }
    }
  });
});

describe('Resampler anti-aliasing (downsampling)', () => {
  // A tone the target rate cannot represent must vanish, not fold back as a false tone.
  it.each([
    [48000, 16000, 9000],
    [48000, 16000, 10000],
    [48000, 16000, 8200],
    [16000, 8000, 5000],
    [16000, 8000, 4200],
    [48000, 8000, 5000],
    [48000, 8000, 12000],
    [24000, 16000, 9000],
    [48000, 24000, 13000],
    [24000, 8000, 6000],
  ] as const)('%i → %i: a %i Hz tone is attenuated by at least 40 dB', (from, to, freq) => {
    const input = tone(from, freq, from / 2);
    const out = stream(input, from, to);
    const settle = to / 50; // skip the filter's start-up
    const attenuation = db(rms(out, settle) / rms(input));
    expect(attenuation).toBeLessThan(-40);
  });
});

describe('Resampler passband', () => {
  const pairs = [
    [48000, 16000],
    [16000, 48000],
    [16000, 8000],
    [8000, 16000],
    [48000, 8000],
    [8000, 48000],
    [24000, 16000],
    [16000, 24000],
    [24000, 48000],
    [48000, 24000],
    [8000, 24000],
  ] as const;

  it.each(pairs)('%i → %i keeps a 1 kHz tone within ±0.5 dB with distortion below -50 dB', (from, to) => {
    const amplitude = 10000;
    const out = stream(tone(from, 1000, from / 2, amplitude), from, to);
    const fit = fitSine(out, to, 1000, to / 20, out.length);
    expect(Math.abs(db(fit.amplitude / amplitude))).toBeLessThan(0.5);
    // Residual includes rounding to int16 (~-90 dB) and any aliasing/imaging of the tone.
    expect(db(fit.residualRms / (amplitude / Math.SQRT2))).toBeLessThan(-50);
  });

  it.each(pairs)('%i → %i keeps a tone at 75%% of the lower Nyquist within ±0.5 dB (passband edge)', (from, to) => {
    const freq = 0.75 * (Math.min(from, to) / 2);
    const out = stream(tone(from, freq, from / 2, 10000), from, to);
    const fit = fitSine(out, to, freq, to / 20, out.length);
    expect(Math.abs(db(fit.amplitude / 10000))).toBeLessThan(0.5);
  });

  it('a 3 kHz tone survives 16k → 8k (inside the telephone band)', () => {
    const out = stream(tone(16000, 3000, 8000), 16000, 8000);
    const fit = fitSine(out, 8000, 3000, 400, out.length);
    expect(Math.abs(db(fit.amplitude / 10000))).toBeLessThan(0.5);
  });
});

describe('Resampler imaging (upsampling)', () => {
  it.each([
    [16000, 48000, 1000],
    [16000, 48000, 3000],
    [16000, 48000, 6000],
    [8000, 16000, 1000],
    [8000, 16000, 3000],
    [8000, 48000, 2000],
    [24000, 48000, 9000],
    [16000, 24000, 5000],
  ] as const)('%i → %i with a %i Hz tone: energy above the source Nyquist is ≥ 40 dB down', (from, to, freq) => {
    const out = stream(tone(from, freq, from), from, to);
    const n = 8192;
    const spectrum = powerSpectrum(out, out.length - n, n);
    const nyquistBin = Math.floor(((from / 2) * n) / to);
    let below = 0;
    let above = 0;
    for (let k = 0; k < spectrum.length; k++) {
      if (k < nyquistBin) below += spectrum[k] as number;
      else above += spectrum[k] as number;
    }
    // The measurement is real: the tone's energy is where it should be.
    const toneBin = Math.round((freq * n) / to);
    expect((spectrum[toneBin] as number) / below).toBeGreaterThan(0.3);
    expect(10 * Math.log10(above / below)).toBeLessThan(-40);
  });
});

describe('Resampler streaming', () => {
  it.each([
    [48000, 16000],
    [16000, 48000],
    [16000, 8000],
    [24000, 16000],
    [16000, 24000],
    [8000, 48000],
  ] as const)('%i → %i: any chunking gives exactly the one-call output', (from, to) => {
    // Pseudo-random but reproducible chunk sizes, including 0, 1 and odd sizes.
    const input = new Int16Array(from / 5);
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    for (let i = 0; i < input.length; i++) input[i] = Math.round((random() - 0.5) * 20000);
    const whole = new Resampler(from, to).process(input);
    const chunked = new Resampler(from, to);
    const parts: number[] = [];
    for (let i = 0, guard = 0; i < input.length && guard < 10000; guard++) {
      const size = Math.floor(random() * 700);
      for (const v of chunked.process(input.subarray(i, i + size))) parts.push(v);
      i += size;
    }
    expect(parts.length).toBe(whole.length);
    expect(parts).toEqual(Array.from(whole));
  });

  it('reset() forgets history and phase', () => {
    const input = tone(24000, 700, 960);
    const fresh = new Resampler(24000, 16000).process(input);
    const reused = new Resampler(24000, 16000);
    reused.process(tone(24000, 3000, 333));
    reused.reset();
    expect(Array.from(reused.process(input))).toEqual(Array.from(fresh));
  });

  it('saturates instead of wrapping on full-scale input', () => {
    // A full-scale square wave overshoots (Gibbs) after filtering: samples must clip, not wrap sign.
    const square = new Int16Array(1600);
    for (let i = 0; i < square.length; i++) square[i] = Math.floor(i / 40) % 2 ? -32768 : 32767;
    const out = new Resampler(16000, 48000).process(square);
    let maxJump = 0;
    for (let i = 1; i < out.length; i++) maxJump = Math.max(maxJump, Math.abs((out[i] as number) - (out[i - 1] as number)));
    expect(out.some((s) => s === 32767)).toBe(true);
    expect(maxJump).toBeLessThan(40000);
  });
});

describe('resample() one-shot', () => {
  it.each([
    [16000, 8000],
    [8000, 16000],
    [48000, 16000],
    [16000, 48000],
    [24000, 16000],
  ] as const)('%i → %i returns round(n·to/from) samples aligned with the input', (from, to) => {
    const n = from / 4 + 7;
    const out = resample(tone(from, 500, n), from, to);
    expect(out.length).toBe(Math.round((n * to) / from));
    // Aligned: compare against the same tone generated directly at the target rate.
    const expected = tone(to, 500, out.length);
    let err = 0;
    for (let i = to / 50; i < out.length - to / 50; i++) err += ((out[i] as number) - (expected[i] as number)) ** 2;
    const errRms = Math.sqrt(err / (out.length - to / 25));
    expect(db(errRms / (10000 / Math.SQRT2))).toBeLessThan(-30);
  });
});

describe('Resampler speed', () => {
  it('converts a 20 ms frame in well under a millisecond (numbers printed for the report)', () => {
    const results: Record<string, number> = {};
    for (const [from, to] of [
      [48000, 16000],
      [16000, 48000],
      [16000, 8000],
      [8000, 16000],
    ] as const) {
      const r = new Resampler(from, to);
      const frame = tone(from, 440, from / 50, 8000);
      for (let i = 0; i < 300; i++) r.process(frame);
      let best = Infinity;
      for (let rep = 0; rep < 5; rep++) {
        const start = process.hrtime.bigint();
        for (let i = 0; i < 200; i++) r.process(frame);
        best = Math.min(best, Number(process.hrtime.bigint() - start) / 1000 / 200);
      }
      results[`${from / 1000}k→${to / 1000}k`] = Math.round(best * 10) / 10;
      // Loose bound: the machine is shared; the point is to catch an accidental 10× regression.
      expect(best).toBeLessThan(400);
    }
    console.log(`resampler µs per 20 ms frame: ${JSON.stringify(results)}`);
  });
});
