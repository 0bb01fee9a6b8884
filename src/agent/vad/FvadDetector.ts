import type { FvadWasmModule } from '@echogarden/fvad-wasm';
import { CallgateError } from '../../errors.js';
import { PIPELINE_RATE } from '../../media/types.js';
import type { VoiceActivityDetector } from './VoiceActivityDetector.js';

/**
 * The WebRTC voice activity detector (libfvad, compiled to wasm in npm `@echogarden/fvad-wasm`): a
 * GMM over six sub-band energies with its own hangover, ~2 µs per 20 ms frame. Answers 0 or 1 for
 * each frame, with no look-ahead, so its score is never late. Steady noise at a level close to
 * speech's fools it (pink noise at 10 dB SNR: 72 % of frames right, mostly false alarms), which is
 * where `SileroDetector` does better (93 %).
 */

/** libfvad's aggressiveness: higher modes call fewer frames speech, trading missed speech for fewer false alarms. */
export type FvadMode = 0 | 1 | 2 | 3;

export interface FvadDetectorOptions {
  readonly mode: FvadMode;
}

export const defaultFvadDetectorOptions = {
  /**
   * The most accurate mode on every input of vadAccuracy.test.ts: 96 % of frames right on clean
   * speech (modes 0–2: 92–95 %), and the only mode that still tells speech from white noise at
   * 10 dB SNR (86 %; modes 0–2 call every frame speech).
   */
  mode: 3,
} as const satisfies FvadDetectorOptions;

/** Frame lengths libfvad accepts at 16 kHz: 10, 20 and 30 ms. */
const FRAME_LENGTHS: readonly number[] = [160, 320, 480];
const MAX_FRAME_SAMPLES = 480;

let loading: Promise<FvadWasmModule> | undefined;

/**
 * Instantiates fvad.wasm once per process (the first call pays ~5 ms; later ones share it). Every
 * detector lives in this one module's heap (~1.7 KB each with its frame buffer); the heap grows as
 * needed.
 * Throws CallgateError CG_VAD_UNAVAILABLE when the package is missing or the wasm does not load.
 */
export function loadFvad(): Promise<FvadWasmModule> {
  loading ??= import('@echogarden/fvad-wasm')
    .then(({ default: factory }) => factory())
    .catch((err: unknown) => {
      // Forget the failure so a later call can retry (the package may be installed meanwhile).
      loading = undefined;
      throw new CallgateError('CG_VAD_UNAVAILABLE', 'could not load @echogarden/fvad-wasm', { cause: err, details: { engine: 'fvad' } });
    });
  return loading;
}

export function isFvadMode(mode: unknown): mode is FvadMode {
  return mode === 0 || mode === 1 || mode === 2 || mode === 3;
}

export class FvadDetector implements VoiceActivityDetector {
  readonly name = 'fvad';
  readonly mode: FvadMode;
  readonly #module: FvadWasmModule;
  #handle: number;
  /** One frame's worth of heap for the samples, allocated once: process() must not allocate. */
  #buffer: number;

  /** Use `createFvadDetector`, which loads the module first. */
  constructor(module: FvadWasmModule, options: Partial<FvadDetectorOptions> = {}) {
    const mode = options.mode ?? defaultFvadDetectorOptions.mode;
    if (!isFvadMode(mode)) throw new CallgateError('CG_AGENT_CONFIG_INVALID', `fvad mode must be 0, 1, 2 or 3, not ${String(mode)}`);
    this.mode = mode;
    this.#module = module;
    const handle = module._fvad_new();
    const buffer = handle === 0 ? 0 : module._malloc(MAX_FRAME_SAMPLES * Int16Array.BYTES_PER_ELEMENT);
    if (handle === 0 || buffer === 0 || module._fvad_set_mode(handle, mode) !== 0 || module._fvad_set_sample_rate(handle, PIPELINE_RATE) !== 0) {
      if (buffer !== 0) module._free(buffer);
      if (handle !== 0) module._fvad_free(handle);
      throw new CallgateError('CG_VAD_UNAVAILABLE', 'fvad could not create an instance', { details: { engine: 'fvad', mode } });
    }
    this.#handle = handle;
    this.#buffer = buffer;
  }

  /**
   * 1 when libfvad calls the frame speech, else 0. Takes 10, 20 or 30 ms of 16 kHz audio (20 ms is
   * the pipeline's frame); any other length is a caller bug and throws a RangeError. A closed
   * detector answers 0.
   */
  process(frame: Int16Array): number {
    if (this.#handle === 0) return 0;
    if (!FRAME_LENGTHS.includes(frame.length)) {
      throw new RangeError(`fvad takes 160, 320 or 480 samples (10, 20 or 30 ms at 16 kHz), not ${frame.length}`);
    }
    // HEAP16 is replaced when the heap grows (another detector's malloc), so it is read here, each time.
    this.#module.HEAP16.set(frame, this.#buffer >> 1);
    const result = this.#module._fvad_process(this.#handle, this.#buffer, frame.length);
    // -1 only comes from a frame length we checked above.
    return result > 0 ? 1 : 0;
  }

  reset(): void {
    if (this.#handle === 0) return;
    // fvad_reset also forgets mode and sample rate; both were accepted at construction, so they are again.
    this.#module._fvad_reset(this.#handle);
    this.#module._fvad_set_mode(this.#handle, this.mode);
    this.#module._fvad_set_sample_rate(this.#handle, PIPELINE_RATE);
  }

  /** Frees the instance in the shared module. Idempotent. */
  close(): void {
    if (this.#handle === 0) return;
    this.#module._free(this.#buffer);
    this.#module._fvad_free(this.#handle);
    this.#handle = 0;
    this.#buffer = 0;
  }
}

/** A WebRTC VAD instance; loads the wasm module on first use. Throws CallgateError CG_VAD_UNAVAILABLE. */
export async function createFvadDetector(options: Partial<FvadDetectorOptions> = {}): Promise<FvadDetector> {
  return new FvadDetector(await loadFvad(), options);
}
