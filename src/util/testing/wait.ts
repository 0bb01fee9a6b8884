/**
 * The one way tests wait: for state that settles in the background (records written, rtpengine
 * sessions deleted, lines released, audio arriving), and for a step that must finish in time. Each
 * wait has a deadline, and a wait that fails says what it waited for. The pauses use
 * node:timers/promises, which vitest's fake timers leave alone: a test that fakes setTimeout can
 * still wait for real I/O.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Reads `read()` every `intervalMs` until `done(value)` holds or about `timeoutMs` has passed, and
 * returns the last value either way, so the caller's assertion on the value says what was wrong
 * rather than "timed out".
 */
export async function pollUntil<T>(read: () => T | Promise<T>, done: (value: T) => boolean, timeoutMs = 2000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() >= deadline) return value;
    await sleep(intervalMs);
  }
}

/** Polls `check` (every 5 ms by default) until it holds; rejects naming `what` once `timeoutMs` has passed. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 3000, what = 'condition', intervalMs = 5): Promise<void> {
  const held = await pollUntil(check, (ok) => ok, timeoutMs, intervalMs);
  if (!held) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/**
 * Rejects naming `what` when `p` has not settled within `ms`: a stuck step (a call that never
 * connects, a peer that never answers) fails with a reason instead of hanging its caller.
 */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
