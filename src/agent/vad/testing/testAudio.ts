import { synthesize, type FliteVoice } from '../../../providers/fliteTts.js';
import { FULL_SCALE, concatSamples, dbfs, meanSquare } from '../../../media/signal.js';
import { FRAME_MS, PIPELINE_RATE } from '../../../media/types.js';
import { seededRandom } from '../../../util/random.js';

/**
 * Audio for judging voice activity detectors, all of it made here and the same on every run: flite
 * speech with pauses, seeded noise, and a reference labelling of which 20 ms frames hold speech.
 * Used by the VAD tests only.
 */

/** 20 ms at the pipeline rate. */
export const FRAME_SAMPLES = (PIPELINE_RATE * FRAME_MS) / 1000;

/** Scales float samples so their RMS level is `levelDbfs`, rounded and clamped to 16 bits. */
function toInt16AtLevel(values: Float64Array, levelDbfs: number): Int16Array {
  let sum = 0;
  for (const v of values) sum += v * v;
  const currentRms = Math.sqrt(sum / Math.max(1, values.length));
  const gain = currentRms === 0 ? 0 : (FULL_SCALE * 10 ** (levelDbfs / 20)) / currentRms;
  const out = new Int16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = Math.max(-FULL_SCALE, Math.min(FULL_SCALE - 1, Math.round((values[i] ?? 0) * gain)));
  return out;
}

/** Gaussian-ish white noise (sum of four uniforms) at `levelDbfs` RMS. */
export function whiteNoise(length: number, levelDbfs: number, seed: number): Int16Array {
  const random = seededRandom(seed);
  const values = new Float64Array(length);
  for (let i = 0; i < length; i++) values[i] = random() + random() + random() + random() - 2;
  return toInt16AtLevel(values, levelDbfs);
}

/**
 * Pink (1/f) noise at `levelDbfs` RMS: white noise through Paul Kellet's economy three-pole filter,
 * accurate to ±0.5 dB above 40 Hz at 16 kHz, which is all a speech-band test needs. Pink noise has
 * most of its energy low, where voiced speech is, so it is the harder case for a VAD.
 */
export function pinkNoise(length: number, levelDbfs: number, seed: number): Int16Array {
  const random = seededRandom(seed);
  const values = new Float64Array(length);
  let b0 = 0;
  let b1 = 0;
  let b2 = 0;
  for (let i = 0; i < length; i++) {
    const white = random() * 2 - 1;
    b0 = 0.99765 * b0 + white * 0.099046;
    b1 = 0.963 * b1 + white * 0.2965164;
    b2 = 0.57 * b2 + white * 1.0526913;
    values[i] = b0 + b1 + b2 + white * 0.1848;
  }
  return toInt16AtLevel(values, levelDbfs);
}

/** Sample-wise sum of two equally long signals, clamped to 16 bits. */
export function mix(a: Int16Array, b: Int16Array): Int16Array {
  if (a.length !== b.length) throw new RangeError(`cannot mix ${a.length} samples with ${b.length}`);
  const out = new Int16Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = Math.max(-FULL_SCALE, Math.min(FULL_SCALE - 1, (a[i] ?? 0) + (b[i] ?? 0)));
  return out;
}

/** The whole 20 ms frames of `samples` (a trailing partial frame is dropped). */
export function toFrames(samples: Int16Array): Int16Array[] {
  const frames: Int16Array[] = [];
  for (let start = 0; start + FRAME_SAMPLES <= samples.length; start += FRAME_SAMPLES) frames.push(samples.subarray(start, start + FRAME_SAMPLES));
  return frames;
}

export interface ReferenceLabelOptions {
  /** A frame of the clean speech at or above this RMS level is speech. */
  readonly thresholdDbfs: number;
  /**
   * Quieter runs shorter than this between speech frames are speech too: the stop closures and
   * soft consonants inside a phrase, which a listener (and every VAD, by design) counts as talking.
   */
  readonly bridgeMs: number;
}

export const defaultReferenceLabelOptions = {
  /** flite speech sits at -15 … -30 dBFS and its pauses below -60 (see signal.ts). */
  thresholdDbfs: -40,
  /** Gaps inside words and between words of one phrase; the pauses between our phrases are longer. */
  bridgeMs: 200,
} as const satisfies ReferenceLabelOptions;

/** Which 20 ms frames of clean speech are speech: an energy threshold, with short gaps bridged. */
export function referenceLabels(clean: Int16Array, options: Partial<ReferenceLabelOptions> = {}): boolean[] {
  const thresholdDbfs = options.thresholdDbfs ?? defaultReferenceLabelOptions.thresholdDbfs;
  const bridgeFrames = Math.round((options.bridgeMs ?? defaultReferenceLabelOptions.bridgeMs) / FRAME_MS);
  const labels = toFrames(clean).map((frame) => dbfs(frame) >= thresholdDbfs);
  let lastSpeech = -1;
  for (let i = 0; i < labels.length; i++) {
    if (!labels[i]) continue;
    if (lastSpeech >= 0 && i - lastSpeech - 1 <= bridgeFrames) labels.fill(true, lastSpeech + 1, i);
    lastSpeech = i;
  }
  return labels;
}

/** Fraction of frames where `decisions[i + shift]` agrees with `labels[i]`, over the frames both have. */
export function frameAccuracy(decisions: readonly boolean[], labels: readonly boolean[], shift = 0): number {
  let agree = 0;
  let total = 0;
  for (let i = Math.max(0, -shift); i < labels.length && i + shift < decisions.length; i++) {
    total++;
    if (decisions[i + shift] === labels[i]) agree++;
  }
  return total === 0 ? 0 : agree / total;
}

/** Speech frames called speech, and non-speech frames called speech, as fractions of each kind. */
export function hitAndFalseAlarmRates(decisions: readonly boolean[], labels: readonly boolean[]): { hit: number; falseAlarm: number } {
  let speech = 0;
  let hits = 0;
  let other = 0;
  let falseAlarms = 0;
  for (let i = 0; i < labels.length && i < decisions.length; i++) {
    if (labels[i]) {
      speech++;
      if (decisions[i]) hits++;
    } else {
      other++;
      if (decisions[i]) falseAlarms++;
    }
  }
  return { hit: speech === 0 ? 0 : hits / speech, falseAlarm: other === 0 ? 0 : falseAlarms / other };
}

/** Silence of `ms` milliseconds at the pipeline rate. */
export function silence(ms: number): Int16Array {
  return new Int16Array(Math.round((ms * PIPELINE_RATE) / 1000));
}

/** What a caller says in the test corpus: short phone-call phrases in two voices, apart by pauses. */
const CORPUS: readonly { text: string; voice: FliteVoice; pauseMs: number }[] = [
  { text: 'Hello, I would like to book a table for two people tomorrow evening.', voice: 'slt', pauseMs: 900 },
  { text: 'Yes, at seven thirty please.', voice: 'rms', pauseMs: 700 },
  { text: 'Can you tell me whether you have a vegetarian menu?', voice: 'slt', pauseMs: 1200 },
  { text: 'No, that is all, thank you very much. Goodbye.', voice: 'rms', pauseMs: 800 },
];

export interface LabelledSpeech {
  /** The clean speech, 16 kHz. */
  readonly samples: Int16Array;
  /** One per whole 20 ms frame. */
  readonly labels: boolean[];
  /** Mean power (sample units²) over the speech frames: the "signal" of an SNR. */
  readonly speechPower: number;
}

/** The corpus spoken by flite with pauses between phrases (~12 s), and its reference labels. */
export async function labelledSpeech(): Promise<LabelledSpeech> {
  const parts: Int16Array[] = [silence(600)];
  for (const { text, voice, pauseMs } of CORPUS) {
    parts.push((await synthesize(text, { voice })).samples, silence(pauseMs));
  }
  const samples = concatSamples(parts);
  const labels = referenceLabels(samples);
  const frames = toFrames(samples);
  let power = 0;
  let count = 0;
  frames.forEach((frame, i) => {
    if (labels[i]) {
      power += meanSquare(frame);
      count++;
    }
  });
  return { samples, labels, speechPower: count === 0 ? 0 : power / count };
}

/** `speech` with noise added so that speech power over noise power is `snrDb` (seeded, repeatable). */
export function withNoise(speech: LabelledSpeech, snrDb: number, seed: number, colour: 'pink' | 'white' = 'pink'): Int16Array {
  const noiseDbfs = 10 * Math.log10(speech.speechPower / (FULL_SCALE * FULL_SCALE)) - snrDb;
  const noise = colour === 'pink' ? pinkNoise : whiteNoise;
  return mix(speech.samples, noise(speech.samples.length, noiseDbfs, seed));
}
