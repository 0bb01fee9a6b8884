/**
 * Caller audio for bench:turns, made here at run time: voices by espeak-ng (a different engine from the
 * agent's flite, several voices and speeds), noises synthesised from seeded random numbers. Nothing is
 * recorded or downloaded; the same seed gives the same audio.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { concatSamples, dbfs } from '../../src/media/signal.js';
import { mixInto } from '../../src/media/testing/mix.js';
import { seededRandom } from '../../src/util/random.js';

const run = promisify(execFile);
const RATE = 16000;

/** espeak-ng voices with variants: men, women, two accents. */
export const CALLER_VOICES = ['en-us', 'en-us+f3', 'en-gb+m3', 'en-gb-scotland+f2', 'en-us+m7', 'en-gb-x-rp+f4'] as const;

/** `text` spoken by espeak-ng at 16 kHz, its leading and trailing silence cut. */
export async function speech(text: string, voice: string, wordsPerMinute = 165): Promise<Int16Array> {
  const { stdout } = await run(
    'sh',
    ['-c', 'espeak-ng -v "$1" -s "$2" --stdout "$3" | sox -t wav - -r 16000 -c 1 -b 16 -e signed -t raw - silence 1 0.01 0.5% reverse silence 1 0.01 0.5% reverse', 'speak', voice, String(wordsPerMinute), text],
    { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024 },
  );
  const buf = stdout as Buffer;
  return new Int16Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength - (buf.byteLength % 2)));
}

/** `pcm` scaled to an RMS of `levelDbfs`. */
export function atLevel(pcm: Int16Array, levelDbfs: number): Int16Array {
  const gain = 10 ** ((levelDbfs - dbfs(pcm)) / 20);
  return Int16Array.from(pcm, (s) => Math.max(-32768, Math.min(32767, Math.round(s * gain))));
}

export function silence(ms: number): Int16Array {
  return new Int16Array(Math.round((ms * RATE) / 1000));
}

/** `a` + `b` sample by sample (the longer sets the length), clipped. */
export function mix(a: Int16Array, b: Int16Array): Int16Array {
  return a.length >= b.length ? mixInto(a, b, 1) : mixInto(b, a, 1);
}

/** Pink noise (Paul Kellet's filter on white noise) of `ms`, at `levelDbfs` RMS. */
export function pinkNoise(ms: number, levelDbfs: number, seed: number): Int16Array {
  const rnd = seededRandom(seed);
  const n = Math.round((ms * RATE) / 1000);
  const out = new Float64Array(n);
  let b0 = 0, b1 = 0, b2 = 0, b3 = 0, b4 = 0, b5 = 0, b6 = 0;
  for (let i = 0; i < n; i++) {
    const w = rnd() * 2 - 1;
    b0 = 0.99886 * b0 + w * 0.0555179;
    b1 = 0.99332 * b1 + w * 0.0750759;
    b2 = 0.969 * b2 + w * 0.153852;
    b3 = 0.8665 * b3 + w * 0.3104856;
    b4 = 0.55 * b4 + w * 0.5329522;
    b5 = -0.7616 * b5 - w * 0.016898;
    out[i] = b0 + b1 + b2 + b3 + b4 + b5 + b6 + w * 0.5362;
    b6 = w * 0.115926;
  }
  return atLevel(Int16Array.from(out, (x) => Math.round(x * 3000)), levelDbfs);
}

/** Brown noise (integrated white noise, leaky): a fan or an engine. */
export function brownNoise(ms: number, levelDbfs: number, seed: number): Int16Array {
  const rnd = seededRandom(seed);
  const n = Math.round((ms * RATE) / 1000);
  let y = 0;
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    y = 0.995 * y + (rnd() * 2 - 1) * 0.1;
    out[i] = Math.round(y * 8000);
  }
  return atLevel(out, levelDbfs);
}

/** Noise shaped by an envelope: a fast attack, an exponential decay. */
function burst(ms: number, decayMs: number, lowpass: number, peak: number, rnd: () => number): Int16Array {
  const n = Math.round((ms * RATE) / 1000);
  const out = new Int16Array(n);
  let y = 0;
  for (let i = 0; i < n; i++) {
    const t = (i / RATE) * 1000;
    const env = Math.min(1, t / 5) * Math.exp(-t / decayMs);
    y = y + lowpass * ((rnd() * 2 - 1) - y);
    out[i] = Math.round(y * env * peak);
  }
  return out;
}

/** A cough: two noisy bursts, the first stronger. */
export function cough(seed: number, levelDbfs = -20): Int16Array {
  const rnd = seededRandom(seed);
  const first = burst(180 + rnd() * 80, 70, 0.35, 30000, rnd);
  const second = burst(120 + rnd() * 60, 50, 0.3, 18000, rnd);
  return atLevel(concatSamples([first, silence(60 + rnd() * 60), second]), levelDbfs);
}

/** Knocks on a table: three damped low thuds with a click. */
export function knock(seed: number, levelDbfs = -22): Int16Array {
  const rnd = seededRandom(seed);
  const parts: Int16Array[] = [];
  for (let k = 0; k < 3; k++) {
    const n = Math.round(0.06 * RATE);
    const thud = new Int16Array(n);
    const f = 150 + rnd() * 80;
    for (let i = 0; i < n; i++) thud[i] = Math.round(Math.sin((2 * Math.PI * f * i) / RATE) * Math.exp(-i / (0.012 * RATE)) * 25000 + (i < 40 ? (rnd() * 2 - 1) * 12000 : 0));
    parts.push(thud, silence(180 + rnd() * 120));
  }
  return atLevel(concatSamples(parts), levelDbfs);
}

/** Typing: sharp clicks 80–200 ms apart for about a second. */
export function typing(seed: number, levelDbfs = -26): Int16Array {
  const rnd = seededRandom(seed);
  const parts: Int16Array[] = [];
  for (let k = 0; k < 8; k++) parts.push(burst(12, 3, 0.9, 30000, rnd), silence(80 + rnd() * 120));
  return atLevel(concatSamples(parts), levelDbfs);
}
