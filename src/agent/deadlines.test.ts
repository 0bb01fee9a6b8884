import { afterEach, describe, expect, it, vi } from 'vitest';
import { isCallgateError } from '../errors.js';
import { textEvents, withDeadline, withTimeouts } from './deadlines.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function* timed(delays: readonly number[], onReturn?: () => void): AsyncIterable<number> {
  try {
    for (const [i, d] of delays.entries()) {
      await sleep(d);
      yield i;
    }
  } finally {
    onReturn?.();
  }
}

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of source) out.push(x);
  return out;
}

afterEach(() => vi.useRealTimers());

describe('withDeadline', () => {
  it('passes the value through when it comes in time', async () => {
    await expect(withDeadline(Promise.resolve(7), 50, 'CG_STT_TIMEOUT')).resolves.toBe(7);
  });

  it('fails with the given code when the deadline passes', async () => {
    const err = await withDeadline(new Promise(() => undefined), 20, 'CG_STT_TIMEOUT').catch((e: unknown) => e);
    expect(isCallgateError(err) && err.code).toBe('CG_STT_TIMEOUT');
    expect((err as Error).message).toContain('no answer within 20 ms');
  });

  it('fails at once when its signal aborts, and at once when it already had', async () => {
    const abort = new AbortController();
    const waiting = withDeadline(new Promise(() => undefined), 10_000, 'CG_STT_TIMEOUT', abort.signal);
    abort.abort();
    await expect(waiting).rejects.toThrow('the session ended first');
    await expect(withDeadline(Promise.resolve(1), 10_000, 'CG_STT_TIMEOUT', abort.signal)).rejects.toThrow('the session ended first');
  });

  it('passes the promise’s own failure through', async () => {
    await expect(withDeadline(Promise.reject(new Error('boom')), 50, 'CG_STT_TIMEOUT')).rejects.toThrow('boom');
  });
});

describe('withTimeouts', () => {
  it('lets a stream through whose first item and gaps are within their limits', async () => {
    expect(await collect(withTimeouts(timed([10, 10, 10]), 100, 100, 'CG_LLM_TIMEOUT'))).toEqual([0, 1, 2]);
  });

  it('gives the first item its own (longer) limit', async () => {
    expect(await collect(withTimeouts(timed([60, 5]), 100, 30, 'CG_LLM_TIMEOUT'))).toEqual([0, 1]);
    await expect(collect(withTimeouts(timed([60]), 30, 100, 'CG_LLM_TIMEOUT'))).rejects.toThrow('no answer within 30 ms');
  });

  it('fails on a stall after the first item, and lets the source clean up', async () => {
    let returned = false;
    const got: number[] = [];
    const err = await (async () => {
      for await (const x of withTimeouts(timed([5, 80], () => (returned = true)), 100, 30, 'CG_TTS_TIMEOUT')) got.push(x);
    })().catch((e: unknown) => e);
    expect(got).toEqual([0]);
    expect(isCallgateError(err) && err.code).toBe('CG_TTS_TIMEOUT');
    expect((err as Error).message).toContain('the stream stalled for 30 ms');
    await vi.waitFor(() => expect(returned).toBe(true));
  });

  it('does not count the consumer’s own time between items', async () => {
    const got: number[] = [];
    for await (const x of withTimeouts(timed([5, 5]), 30, 30, 'CG_TTS_TIMEOUT')) {
      got.push(x);
      await sleep(60);
    }
    expect(got).toEqual([0, 1]);
  });
});

describe('textEvents', () => {
  it('turns fixed text into model text events, each ending in a space', async () => {
    expect(await collect(textEvents(['One.', 'Two.']))).toEqual([
      { type: 'text', text: 'One. ' },
      { type: 'text', text: 'Two. ' },
    ]);
  });
});
