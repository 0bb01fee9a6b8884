import { CallgateError, type ErrorCode } from '../errors.js';
import type { LlmEvent } from '../providers/types.js';

/**
 * Time limits on provider streams, and the small async helpers the session's pieces share. A provider
 * without deadlines of its own must not hold the caller in silence.
 */

/** Lets queued packets (and other calls' ticks) go out before more CPU work. */
export const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** `promise`, or a CallgateError(`code`) after `timeoutMs`, or at once when `signal` aborts. */
export function withDeadline<T>(promise: Promise<T>, timeoutMs: number, code: ErrorCode, signal?: AbortSignal, message = `no answer within ${timeoutMs} ms`): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const settle = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      settle();
      reject(new CallgateError(code, 'the session ended first'));
    };
    const timer = setTimeout(() => {
      settle();
      reject(new CallgateError(code, message));
    }, timeoutMs);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        settle();
        resolve(value);
      },
      (err: unknown) => {
        settle();
        reject(err);
      },
    );
  });
}

/** Fixed text as model events (for resuming and prompts that go through TTS). */
export async function* textEvents(texts: readonly string[]): AsyncIterable<LlmEvent> {
  for (const text of texts) yield { type: 'text', text: `${text} ` };
}

/**
 * Fails with `code` when the first item takes longer than `firstMs`, or a later one longer than
 * `stallMs` after the one before it (the time the consumer spends between items is not counted).
 */
export async function* withTimeouts<T>(source: AsyncIterable<T>, firstMs: number, stallMs: number, code: ErrorCode): AsyncIterable<T> {
  const it = source[Symbol.asyncIterator]();
  let done = false;
  try {
    for (let first = true; ; first = false) {
      const ms = first ? firstMs : stallMs;
      const next = await withDeadline(it.next(), ms, code, undefined, first ? `no answer within ${ms} ms` : `the stream stalled for ${ms} ms`);
      if (next.done) return void (done = true);
      yield next.value;
    }
  } finally {
    // The consumer stopped early (abort, barge-in) or the first item timed out: let the source clean up.
    if (!done) void Promise.resolve(it.return?.()).catch(() => undefined);
  }
}

