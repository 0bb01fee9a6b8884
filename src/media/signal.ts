/**
 * Small measurements on 16-bit PCM, for tests and benchmarks that must judge audio rather than bytes:
 * level, signal-to-noise, alignment by cross-correlation, tone power. Nothing here runs per packet
 * in production; clarity wins over speed, but every loop is bounded by the input's length.
 *
 * Conventions: levels are RMS-based dBFS relative to a full-scale *square* wave (32768), so a
 * full-scale sine reads -3.01 dBFS; silence reads -Infinity. Ranges are [start, end) sample indices.
 */

/** Magnitude of the most negative 16-bit sample: the reference for dBFS. */
export const FULL_SCALE = 32768;

/** A half-open range of sample indices. */
export interface SampleRange {
  readonly start: number;
  readonly end: number;
}

function clampRange(length: number, range?: Partial<SampleRange>): SampleRange {
  const start = Math.max(0, Math.min(length, Math.floor(range?.start ?? 0)));
  const end = Math.max(start, Math.min(length, Math.floor(range?.end ?? length)));
  return { start, end };
}

/** Mean of the squared samples over the range (0 for an empty range). */
export function meanSquare(samples: Int16Array, range?: Partial<SampleRange>): number {
  const { start, end } = clampRange(samples.length, range);
  if (end === start) return 0;
  let sum = 0;
  for (let i = start; i < end; i++) {
    const v = samples[i] ?? 0;
    sum += v * v;
  }
  return sum / (end - start);
}

/** Root mean square, in sample units (0 … 32768). */
export function rms(samples: Int16Array, range?: Partial<SampleRange>): number {
  return Math.sqrt(meanSquare(samples, range));
}

/** A mean power in sample units² (as from `meanSquare` or `goertzelPower`) expressed in dBFS. */
export function powerToDbfs(power: number): number {
  return power <= 0 ? -Infinity : 10 * Math.log10(power / (FULL_SCALE * FULL_SCALE));
}

/** RMS level in dBFS; -Infinity for digital silence. */
export function dbfs(samples: Int16Array, range?: Partial<SampleRange>): number {
  return powerToDbfs(meanSquare(samples, range));
}

/** Amplitude (peak, sample units) of a sine whose level is `levelDbfs`, under this module's convention. */
export function sineAmplitudeForDbfs(levelDbfs: number): number {
  return FULL_SCALE * Math.SQRT2 * 10 ** (levelDbfs / 20);
}

/**
 * Signal-to-noise ratio of `signal` against `reference`, in dB: reference energy over the energy of
 * their difference, where `signal[i + lag]` is compared with `reference[i]` over the samples both
 * have. Use `findLag` first when the delay is unknown (a codec or resampler shifts the signal).
 * Infinity when they are identical; -Infinity when there is no overlap or the reference is silent.
 */
export function snrDb(reference: Int16Array, signal: Int16Array, lag = 0): number {
  const start = Math.max(0, -lag);
  const end = Math.min(reference.length, signal.length - lag);
  let signalEnergy = 0;
  let noiseEnergy = 0;
  for (let i = start; i < end; i++) {
    const r = reference[i] ?? 0;
    const d = (signal[i + lag] ?? 0) - r;
    signalEnergy += r * r;
    noiseEnergy += d * d;
  }
  if (signalEnergy === 0) return -Infinity;
  if (noiseEnergy === 0) return Infinity;
  return 10 * Math.log10(signalEnergy / noiseEnergy);
}

/**
 * Normalized cross-correlation of `reference[i]` with `signal[i + lag]` over their overlap, in
 * [-1, 1]: 1 means the same waveform up to a positive gain. 0 when either side of the overlap is
 * silent or there is no overlap.
 */
export function crossCorrelation(reference: Int16Array, signal: Int16Array, lag: number): number {
  const start = Math.max(0, -lag);
  const end = Math.min(reference.length, signal.length - lag);
  let dot = 0;
  let refEnergy = 0;
  let sigEnergy = 0;
  for (let i = start; i < end; i++) {
    const r = reference[i] ?? 0;
    const s = signal[i + lag] ?? 0;
    dot += r * s;
    refEnergy += r * r;
    sigEnergy += s * s;
  }
  if (refEnergy === 0 || sigEnergy === 0) return 0;
  return dot / Math.sqrt(refEnergy * sigEnergy);
}

export interface LagSearchOptions {
  /** Smallest lag tried, in samples (negative: the signal leads the reference). */
  readonly minLag: number;
  /** Largest lag tried, in samples. Cost is (maxLag - minLag + 1) × overlap multiply-adds. */
  readonly maxLag: number;
}

export const defaultLagSearchOptions = {
  /** A codec or resampler delays its output; it never runs ahead. */
  minLag: 0,
  /** 50 ms at 16 kHz: covers Opus look-ahead (6.5 ms) and resampler filters with room to spare. */
  maxLag: 800,
} as const satisfies LagSearchOptions;

export interface LagMatch {
  /** `signal[i + lag]` lines up with `reference[i]`. */
  readonly lag: number;
  /** Normalized cross-correlation at that lag. */
  readonly correlation: number;
}

/**
 * Finds the delay of `signal` relative to `reference` by trying every lag in [minLag, maxLag] and
 * keeping the highest normalized cross-correlation (the earliest lag on ties).
 */
export function findLag(reference: Int16Array, signal: Int16Array, options: Partial<LagSearchOptions> = {}): LagMatch {
  const minLag = options.minLag ?? defaultLagSearchOptions.minLag;
  const maxLag = options.maxLag ?? defaultLagSearchOptions.maxLag;
  if (!Number.isInteger(minLag) || !Number.isInteger(maxLag) || maxLag < minLag) {
    throw new RangeError(`lag range [${minLag}, ${maxLag}] must be integers with minLag <= maxLag`);
  }
  let best: LagMatch = { lag: minLag, correlation: -Infinity };
  for (let lag = minLag; lag <= maxLag; lag++) {
    const correlation = crossCorrelation(reference, signal, lag);
    if (correlation > best.correlation) best = { lag, correlation };
  }
  return best;
}

/**
 * Mean power of the `frequencyHz` component (Goertzel algorithm over the range), in sample units²
 * so it compares directly with `meanSquare`: a sine of amplitude A at that frequency gives A²/2,
 * and `powerToDbfs` turns it into the same dBFS as `dbfs`. Frequency resolution is about
 * sampleRate / length Hz: use ≥ 20 ms of audio to separate DTMF tones.
 */
export function goertzelPower(samples: Int16Array, sampleRate: number, frequencyHz: number, range?: Partial<SampleRange>): number {
  const { start, end } = clampRange(samples.length, range);
  const n = end - start;
  if (n === 0) return 0;
  const omega = (2 * Math.PI * frequencyHz) / sampleRate;
  const coeff = 2 * Math.cos(omega);
  let s1 = 0;
  let s2 = 0;
  for (let i = start; i < end; i++) {
    const s0 = (samples[i] ?? 0) + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  // |X(ω)|² from the last two states; scaling by 2/N² turns it into the component's mean power.
  const magnitudeSquared = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return (2 * magnitudeSquared) / (n * n);
}

export interface ToneOptions {
  /** Hz of the samples produced. */
  readonly sampleRate: number;
  /** Peak amplitude in sample units. */
  readonly amplitude: number;
  /** Starting phase in radians. */
  readonly phase: number;
}

export const defaultToneOptions = {
  /** The pipeline rate. */
  sampleRate: 16000,
  /** About -12 dBFS RMS: loud enough to measure, far from clipping when mixed. */
  amplitude: 10_000,
  /** Start at zero crossing, so a tone begins without a click. */
  phase: 0,
} as const satisfies ToneOptions;

/** A sine of `frequencyHz` lasting `durationMs` (rounded down to whole samples), rounded to 16-bit. */
export function tone(frequencyHz: number, durationMs: number, options: Partial<ToneOptions> = {}): Int16Array {
  const sampleRate = options.sampleRate ?? defaultToneOptions.sampleRate;
  const amplitude = options.amplitude ?? defaultToneOptions.amplitude;
  const phase = options.phase ?? defaultToneOptions.phase;
  const count = Math.max(0, Math.floor((durationMs * sampleRate) / 1000));
  const out = new Int16Array(count);
  const step = (2 * Math.PI * frequencyHz) / sampleRate;
  for (let i = 0; i < count; i++) {
    out[i] = Math.max(-FULL_SCALE, Math.min(FULL_SCALE - 1, Math.round(amplitude * Math.sin(phase + step * i))));
  }
  return out;
}

export interface ActivityOptions {
  /** A frame is active when its RMS level reaches this many dBFS. */
  readonly thresholdDbfs: number;
  /** Analysis frame length. */
  readonly frameMs: number;
}

export const defaultActivityOptions = {
  /** Flite and codec output sit at -15 … -30 dBFS in speech and below -60 in pauses. */
  thresholdDbfs: -40,
  /** Short enough to place the edges of a word within 10 ms. */
  frameMs: 10,
} as const satisfies ActivityOptions;

/** Where sound is, to the frame: from the start of the first active frame to the end of the last. */
export interface ActiveSpan {
  readonly startMs: number;
  readonly endMs: number;
}

/** Finds the span from the first to the last frame at or above the threshold; undefined if none is. */
export function activeSpan(samples: Int16Array, sampleRate: number, options: Partial<ActivityOptions> = {}): ActiveSpan | undefined {
  const thresholdDbfs = options.thresholdDbfs ?? defaultActivityOptions.thresholdDbfs;
  const frameMs = options.frameMs ?? defaultActivityOptions.frameMs;
  const frame = Math.max(1, Math.round((frameMs * sampleRate) / 1000));
  let first = -1;
  let last = -1;
  for (let start = 0; start < samples.length; start += frame) {
    const end = Math.min(samples.length, start + frame);
    if (dbfs(samples, { start, end }) >= thresholdDbfs) {
      if (first < 0) first = start;
      last = end;
    }
  }
  if (first < 0) return undefined;
  return { startMs: (first * 1000) / sampleRate, endMs: (last * 1000) / sampleRate };
}

/** Joins chunks of samples (decoded frames, resampler output) into one array. */
export function concatSamples(parts: readonly Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

export interface HarmonicShareOptions {
  /** Harmonics counted, the fundamental included. */
  readonly harmonics: number;
  /**
   * Analysis frame: short enough that a syllable envelope's sidebands (a few Hz) stay inside each
   * harmonic's bin (about 1000 / frameMs Hz wide), long enough that neighbouring harmonics do not.
   */
  readonly frameMs: number;
  /** Frames quieter than this are left out (pauses, comfort silence): only sound is judged. */
  readonly floorDbfs: number;
}

export const defaultHarmonicShareOptions = {
  /** The fake voice (FakeProviders' voiceLike) has 6; they hold all but a trace of its power. */
  harmonics: 6,
  /** 40 ms: 25 Hz bins, 140 Hz harmonics 5.6 bins apart; a 20 ms RTP frame pair. */
  frameMs: 40,
  /** As activeSpan: speech and codec output sit well above, comfort silence and pauses below. */
  floorDbfs: -40,
} as const satisfies HarmonicShareOptions;

/**
 * The share of the sound's power that lies on the harmonics of `fundamentalHz`, in [0, 1]: a check
 * on *what* was heard, not how much. The sum of the harmonics' Goertzel powers over the sum of
 * mean squares, over the frames at or above the floor. A buzz at that pitch reads near 1 (through
 * G.711 or Opus too); noise, a tone at another pitch or a voice at another pitch read below ~0.2.
 * 0 when no frame reaches the floor.
 */
export function harmonicShare(samples: Int16Array, sampleRate: number, fundamentalHz: number, options: Partial<HarmonicShareOptions> = {}): number {
  const o = { ...defaultHarmonicShareOptions, ...options };
  const frame = Math.max(1, Math.round((o.frameMs * sampleRate) / 1000));
  let onHarmonics = 0;
  let total = 0;
  for (let start = 0; start + frame <= samples.length; start += frame) {
    const range = { start, end: start + frame };
    const power = meanSquare(samples, range);
    if (powerToDbfs(power) < o.floorDbfs) continue;
    total += power;
    for (let h = 1; h <= o.harmonics && h * fundamentalHz < sampleRate / 2; h++) onHarmonics += goertzelPower(samples, sampleRate, h * fundamentalHz, range);
  }
  return total > 0 ? Math.min(1, onHarmonics / total) : 0;
}
