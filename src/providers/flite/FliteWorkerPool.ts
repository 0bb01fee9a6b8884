import type { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { CallgateError } from '../../errors.js';
import type { FliteVoice } from '../fliteTts.js';
import { deserializeError, type FliteWorkerData, type SynthesizeJob, type WorkerReply } from './protocol.js';
import { sourceOrCompiled, startWorker } from './startWorker.js';

export interface FliteWorkerPoolOptions {
  /** Most worker threads running flite at once. */
  readonly size: number;
  /** Handed to every worker. */
  readonly workerData: FliteWorkerData;
  readonly logger: Logger;
}

/** Counters for tests and metrics. */
export interface FlitePoolStats {
  /** Worker threads alive (started, not yet exited). */
  readonly workers: number;
  /** Workers with a job, including jobs whose caller has aborted and whose result will be discarded. */
  readonly busy: number;
  readonly queued: number;
  /** Jobs sent to a worker. */
  readonly dispatched: number;
  /** Jobs a worker finished (audio or error) for a caller still waiting. */
  readonly completed: number;
  /** Jobs a worker finished after their caller had aborted. */
  readonly discarded: number;
  /** Workers that exited without being told to. */
  readonly crashed: number;
}

interface Job {
  readonly id: number;
  readonly text: string;
  readonly voice: FliteVoice;
  readonly signal: AbortSignal;
  /** Set once the caller has its answer (audio, error, or undefined after an abort). */
  settled: boolean;
  readonly resolve: (samples: Int16Array | undefined) => void;
  readonly reject: (err: CallgateError) => void;
  readonly onAbort: () => void;
}

interface Slot {
  readonly worker: Worker;
  job: Job | undefined;
  /** The last 'error' the worker raised: the cause reported when it then exits. */
  error: Error | undefined;
  /** Settles on the worker's 'ready' message, or rejects when it exits first. */
  readonly ready: Promise<void>;
  started: boolean;
}

const WORKER_ENTRY = sourceOrCompiled('fliteWorker', import.meta.url);

/**
 * Worker threads that run flite, one job per worker at a time. Workers start lazily (the first job that
 * finds none idle starts one, up to `size`), stay for later jobs, and are replaced the same way after a
 * crash: lazily, so a worker that cannot start fails the jobs that asked for it instead of restarting in
 * a loop. Jobs wait in one FIFO queue.
 *
 * An idle worker is unref'd: a pool nobody closed does not keep the process alive, while a job in
 * flight does (its caller is waiting for it).
 */
export class FliteWorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closing: Promise<void> | undefined;
  private readonly counts = { dispatched: 0, completed: 0, discarded: 0, crashed: 0 };

  constructor(private readonly options: FliteWorkerPoolOptions) {}

  /**
   * Synthesises `text` on a worker. Resolves with the samples (16 kHz), or with undefined when `signal`
   * aborts: at once, whether the job was still queued (it is dropped and never reaches a worker) or
   * already running (its result is discarded when it arrives). Rejects with a CallgateError:
   * CG_TTS_BAD_REQUEST / CG_TTS_FAILED from flite, CG_TTS_FAILED when the worker dies or the pool closes.
   */
  run(text: string, voice: FliteVoice, signal: AbortSignal): Promise<Int16Array | undefined> {
    if (this.closing) return Promise.reject(closedError());
    if (signal.aborted) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const job: Job = {
        id: this.nextId++,
        text,
        voice,
        signal,
        settled: false,
        resolve,
        reject,
        onAbort: () => {
          const queuedAt = this.queue.indexOf(job);
          if (queuedAt >= 0) this.queue.splice(queuedAt, 1);
          this.settle(job, undefined);
        },
      };
      signal.addEventListener('abort', job.onAbort, { once: true });
      this.queue.push(job);
      this.pump();
    });
  }

  /** Starts every worker now and resolves once each has compiled flite, so no caller pays start-up. */
  async warmUp(): Promise<void> {
    if (this.closing) throw closedError();
    while (this.slots.length < this.options.size) this.spawn();
    await Promise.all(this.slots.map((slot) => slot.ready));
  }

  stats(): FlitePoolStats {
    return {
      workers: this.slots.length,
      busy: this.slots.filter((slot) => slot.job).length,
      queued: this.queue.length,
      ...this.counts,
    };
  }

  /** Fails queued and running jobs with CG_TTS_FAILED and terminates every worker. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const job of this.queue.splice(0)) this.settle(job, closedError());
      const slots = this.slots.slice();
      for (const slot of slots) if (slot.job) this.settle(slot.job, closedError());
      await Promise.all(slots.map((slot) => slot.worker.terminate()));
    })();
    return this.closing;
  }

  private pump(): void {
    while (this.queue.length > 0 && !this.closing) {
      let slot = this.slots.find((s) => !s.job);
      if (!slot) {
        if (this.slots.length >= this.options.size) return;
        try {
          slot = this.spawn();
        } catch (err) {
          // Nothing to wait for (e.g. running from source without tsx): the job fails now.
          this.settle(this.queue.shift() as Job, new CallgateError('CG_TTS_FAILED', 'could not start a flite worker', { cause: err }));
          continue;
        }
      }
      const job = this.queue.shift() as Job;
      slot.job = job;
      slot.worker.ref();
      this.counts.dispatched++;
      const message: SynthesizeJob = { type: 'synthesize', id: job.id, text: job.text, voice: job.voice };
      slot.worker.postMessage(message);
    }
  }

  private spawn(): Slot {
    const worker = startWorker(WORKER_ENTRY, { workerData: this.options.workerData });
    let markReady!: () => void;
    let failReady!: (err: CallgateError) => void;
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    // warmUp() may never be called: an unobserved rejection must not become an unhandled one.
    ready.catch(() => undefined);
    const slot: Slot = { worker, job: undefined, error: undefined, ready, started: false };
    this.slots.push(slot);
    // Ref'd until it is ready: someone is waiting for it (warmUp() or the job that started it).
    worker.on('message', (reply: WorkerReply) => {
      if (reply.type === 'ready') {
        slot.started = true;
        if (!slot.job) worker.unref();
        if (reply.error) failReady(deserializeError(reply.error));
        else markReady();
        return;
      }
      const job = slot.job;
      if (!job || job.id !== reply.id) return;
      slot.job = undefined;
      if (slot.started) worker.unref();
      if (job.settled) this.counts.discarded++;
      else this.counts.completed++;
      this.settle(job, reply.type === 'done' ? reply.samples : deserializeError(reply.error));
      this.pump();
    });
    worker.on('error', (err) => {
      slot.error = err;
    });
    worker.on('exit', (exitCode) => {
      this.slots.splice(this.slots.indexOf(slot), 1);
      if (this.closing) {
        failReady(closedError());
        return;
      }
      this.counts.crashed++;
      const failure = new CallgateError('CG_TTS_FAILED', 'the flite worker exited', { cause: slot.error, details: { exitCode } });
      failReady(failure);
      this.options.logger.warn({ err: slot.error, exitCode, queued: this.queue.length }, 'flite worker exited; the next job starts a new one');
      if (slot.job) this.settle(slot.job, failure);
      slot.job = undefined;
      this.pump();
    });
    return slot;
  }

  private settle(job: Job, outcome: Int16Array | CallgateError | undefined): void {
    if (job.settled) return;
    job.settled = true;
    job.signal.removeEventListener('abort', job.onAbort);
    if (outcome instanceof CallgateError) job.reject(outcome);
    else job.resolve(outcome);
  }
}

function closedError(): CallgateError {
  return new CallgateError('CG_TTS_FAILED', 'the flite provider is closed');
}
