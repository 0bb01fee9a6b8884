import { parentPort, workerData } from 'node:worker_threads';
import { loadFlite, synthesize } from '../fliteTts.js';
import { serializeError, type FliteWorkerData, type SynthesizeJob, type WorkerReply } from './protocol.js';

/**
 * Worker-thread entry: runs flite (synchronous wasm, 15–130 ms a sentence) here so the main thread's
 * media clock keeps its 20 ms pacing. Started by FliteWorkerPool through startWorker(); one job at a time.
 */

const port = parentPort;
if (!port) throw new Error('fliteWorker.ts is a worker_threads entry, not a script');
const data = workerData as FliteWorkerData;

function reply(message: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(message, transfer);
}

/**
 * An Int16Array that is the whole of its ArrayBuffer, so transferring the buffer hands over exactly these
 * samples. fliteTts allocates exactly-sized arrays today; the copy only happens if that ever changes
 * (a view into a larger or pooled buffer would otherwise detach memory that is not ours to give away).
 */
function ownBuffer(samples: Int16Array): Int16Array<ArrayBuffer> {
  const whole = samples.byteOffset === 0 && samples.byteLength === samples.buffer.byteLength && samples.buffer instanceof ArrayBuffer;
  return whole ? (samples as Int16Array<ArrayBuffer>) : new Int16Array(samples);
}

async function run(job: SynthesizeJob): Promise<void> {
  try {
    const { samples } = await synthesize(job.text, { voice: job.voice, maxChars: data.maxChars, tempDir: data.tempDir });
    const owned = ownBuffer(samples);
    reply({ type: 'done', id: job.id, samples: owned }, [owned.buffer]);
  } catch (err) {
    reply({ type: 'failed', id: job.id, error: serializeError(err) });
  }
}

port.on('message', (job: SynthesizeJob) => {
  // Thrown from the listener itself, so it is an uncaught exception like a real crash would be.
  if (data.crashOnText !== undefined && job.text === data.crashOnText) throw new Error('test hook: flite worker crashes on request');
  void run(job);
});

// Compile now, so the first sentence does not pay the ~140 ms (synthesize() shares this promise).
loadFlite().then(
  () => reply({ type: 'ready' }),
  (err: unknown) => reply({ type: 'ready', error: serializeError(err) }),
);
