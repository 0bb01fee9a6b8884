/**
 * Reads `read()` every `intervalMs` until `done(value)` holds or about `timeoutMs` has passed, and
 * returns the last value either way: for state that settles in the background (records written,
 * rtpengine sessions deleted, lines released), so the caller's assertion on the value says what was
 * wrong rather than "timed out". (`media/testing/waitFor` is the synchronous, rejecting kind.)
 */
export async function pollUntil<T>(read: () => T | Promise<T>, done: (value: T) => boolean, timeoutMs = 2000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() >= deadline) return value;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
