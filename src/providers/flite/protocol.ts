import { CallgateError, errorCatalogue, isCallgateError, type ErrorCode } from '../../errors.js';
import type { FliteVoice } from '../fliteTts.js';

/**
 * The messages between FliteWorkerPool (main thread) and fliteWorker (one per worker thread). One job at
 * a time per worker: the pool sends the next only after the previous one's reply.
 */

/** What the pool hands each worker when it starts it. */
export interface FliteWorkerData {
  readonly maxChars: number;
  readonly tempDir: string;
  /** Tests only: a worker that receives exactly this text dies (uncaught exception) before replying. */
  readonly crashOnText?: string;
}

export interface SynthesizeJob {
  readonly type: 'synthesize';
  readonly id: number;
  readonly text: string;
  readonly voice: FliteVoice;
}

/** A CallgateError flattened for postMessage: structured clone keeps an Error's message but drops `code`. */
export interface SerializedError {
  readonly code: ErrorCode;
  /** The detail part of the message (the catalogue's message is added back on the other side). */
  readonly detail: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

export type WorkerReply =
  /** flite.wasm is compiled (or failed to compile: `error`); sent once, right after start. */
  | { readonly type: 'ready'; readonly error?: SerializedError }
  /** `samples` arrives by transfer: the worker no longer has it. */
  | { readonly type: 'done'; readonly id: number; readonly samples: Int16Array }
  | { readonly type: 'failed'; readonly id: number; readonly error: SerializedError };

export function serializeError(err: unknown): SerializedError {
  if (!isCallgateError(err)) return { code: 'CG_TTS_FAILED', detail: err instanceof Error ? err.message : String(err) };
  const prefix = `${errorCatalogue[err.code].message}: `;
  const detail = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
  // Details are plain facts (voice names, exit codes); a JSON round trip guarantees they clone.
  return err.details === undefined ? { code: err.code, detail } : { code: err.code, detail, details: JSON.parse(JSON.stringify(err.details)) as Record<string, unknown> };
}

export function deserializeError(error: SerializedError): CallgateError {
  return error.details === undefined ? new CallgateError(error.code, error.detail) : new CallgateError(error.code, error.detail, { details: error.details });
}
