import type { Logger } from 'pino';
import { CallgateError } from '../../errors.js';
import { rootLogger } from '../../log.js';
import { FRAME_MS, PIPELINE_RATE } from '../../media/types.js';
import { stripUndefined } from '../../util/options.js';
import { FLITE_VOICES, defaultFliteOptions, type FliteVoice } from '../fliteTts.js';
import type { TtsChunk, TtsProvider, TtsRequest } from '../types.js';
import { FliteWorkerPool, type FlitePoolStats } from './FliteWorkerPool.js';

export interface FliteTtsProviderOptions {
  /** Worker threads running flite at once. */
  readonly poolSize: number;
  /** Audio per yielded chunk; a whole number of 20 ms frames. */
  readonly chunkMs: number;
  /** Longer text is refused with CG_TTS_BAD_REQUEST (see FliteOptions.maxChars). */
  readonly maxChars: number;
  /** Where the workers' flite writes its scratch files. */
  readonly tempDir: string;
  readonly logger: Logger;
  /** Tests only: the worker that receives exactly this text crashes instead of answering. */
  readonly crashOnText?: string;
}

export const defaultFliteTtsProviderOptions = {
  /**
   * One worker. These machines have 2 cores: one for the main thread (media clock, sockets, agent) and
   * one for flite. A second worker would take CPU from the main thread exactly when it is busiest, and
   * one is plenty: flite runs ~10–20× faster than real time, so one worker keeps up with a dozen or
   * more calls speaking at once (a sentence waits at most for the ones queued before it).
   */
  poolSize: 1,
  /**
   * 200 ms. flite delivers a sentence whole, so chunking does not make the first audio earlier; it
   * bounds what a consumer does per step (resample, encode, queue for playout) and lets a consumer with
   * a bounded playout queue apply back-pressure and stop within 200 ms of a barge-in, instead of
   * swallowing a 10 s sentence at once. Chunks are views of one buffer: no copying.
   */
  chunkMs: 200,
  /** As fliteTts: about 15 sentences. */
  maxChars: defaultFliteOptions.maxChars,
  /** As fliteTts: the OS temp directory. */
  tempDir: defaultFliteOptions.tempDir,
  /** The root logger, tagged `provider: 'flite'`. */
  logger: rootLogger.child({ provider: 'flite' }),
} as const satisfies FliteTtsProviderOptions;

/**
 * Offline TTS for live calls: flite (fliteTts.ts) run on worker threads, so a sentence's 15–130 ms of
 * synchronous wasm never stalls the main thread's 20 ms media clock.
 *
 * `synthesize()` is lazy like any async generator: the request is queued when iteration starts. Requests
 * from all calls share one FIFO queue, which is fair as long as each call asks for one sentence at a time
 * (the agent speaks sentence by sentence). Output is the same samples as `fliteTts.synthesize()` gives
 * for the same text and voice, at 16 kHz.
 */
export class FliteTtsProvider implements TtsProvider {
  readonly name = 'flite';
  private readonly options: FliteTtsProviderOptions;
  private readonly chunkSamples: number;
  private pool: FliteWorkerPool | undefined;
  private closed = false;

  constructor(options: Partial<FliteTtsProviderOptions> = {}) {
    this.options = { ...defaultFliteTtsProviderOptions, ...stripUndefined(options) };
    const { poolSize, chunkMs } = this.options;
    if (!Number.isInteger(poolSize) || poolSize < 1) throw new CallgateError('CG_CONFIG_INVALID', `flite poolSize ${poolSize} is not a positive integer`);
    if (!Number.isInteger(chunkMs / FRAME_MS) || chunkMs <= 0) {
      throw new CallgateError('CG_CONFIG_INVALID', `flite chunkMs ${chunkMs} is not a positive multiple of ${FRAME_MS} ms`);
    }
    this.chunkSamples = (PIPELINE_RATE * chunkMs) / 1000;
  }

  /**
   * Yields 16 kHz chunks of `chunkMs` (the last one shorter), views of one buffer that arrived from the
   * worker by transfer: copy a chunk before transferring it on. Nothing for empty or whitespace-only text,
   * or once `signal` has aborted: a queued request is dropped at once, a running one's audio is discarded.
   * Throws CallgateError CG_TTS_BAD_REQUEST (unknown voice, text over maxChars) or CG_TTS_FAILED (flite
   * failed, its worker died, or the provider is closed).
   */
  async *synthesize({ text, voice, signal }: TtsRequest): AsyncGenerator<TtsChunk, void, undefined> {
    if (!isFliteVoice(voice)) {
      throw new CallgateError('CG_TTS_BAD_REQUEST', `unknown flite voice "${voice}"`, { details: { voices: FLITE_VOICES } });
    }
    if (this.closed) throw new CallgateError('CG_TTS_FAILED', 'the flite provider is closed');
    if (text.trim() === '' || signal.aborted) return;
    const samples = await this.workers().run(text, voice, signal);
    if (!samples) return;
    for (let start = 0; start < samples.length; start += this.chunkSamples) {
      if (signal.aborted) return;
      yield { samples: samples.subarray(start, start + this.chunkSamples), sampleRate: PIPELINE_RATE };
    }
  }

  /** Starts the workers and compiles flite in each now, so the first sentence of the first call is not slower. */
  warmUp(): Promise<void> {
    if (this.closed) return Promise.reject(new CallgateError('CG_TTS_FAILED', 'the flite provider is closed'));
    return this.workers().warmUp();
  }

  stats(): FlitePoolStats {
    return this.pool?.stats() ?? { workers: 0, busy: 0, queued: 0, dispatched: 0, completed: 0, discarded: 0, crashed: 0 };
  }

  /** Terminates the workers; running and queued requests fail with CG_TTS_FAILED. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await this.pool?.close();
  }

  private workers(): FliteWorkerPool {
    const { poolSize, maxChars, tempDir, crashOnText, logger } = this.options;
    this.pool ??= new FliteWorkerPool({
      size: poolSize,
      workerData: crashOnText === undefined ? { maxChars, tempDir } : { maxChars, tempDir, crashOnText },
      logger,
    });
    return this.pool;
  }
}

export function isFliteVoice(voice: string): voice is FliteVoice {
  return (FLITE_VOICES as readonly string[]).includes(voice);
}
