import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { CallScope } from './CallScope.js';

function logged(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

describe('CallScope', () => {
  it('releases once, newest first; a failing release is logged and the others still run', async () => {
    const { log, lines } = logged();
    const scope = new CallScope(log);
    const order: string[] = [];
    scope.defer('lease', () => void order.push('lease'));
    scope.defer('socket', () => {
      order.push('socket');
      throw new Error('socket already gone');
    });
    scope.defer('peer', async () => {
      await new Promise((r) => setTimeout(r, 5));
      order.push('peer');
    });
    await Promise.all([scope.close(), scope.close()]);
    await scope.close();
    expect(order).toEqual(['peer', 'socket', 'lease']);
    expect(lines.filter((l) => l['msg'] === 'call resource release failed')).toEqual([expect.objectContaining({ resource: 'socket', err: 'socket already gone', level: 40 })]);
  });

  it('runs a release deferred after close at once', async () => {
    const scope = new CallScope(logged().log);
    await scope.close();
    let released = false;
    scope.defer('late', () => {
      released = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(released).toBe(true);
  });

  it('clears its timers at close', async () => {
    const scope = new CallScope(logged().log);
    let fired = 0;
    scope.timeout(20, () => fired++);
    const kept = scope.timeout(5, () => fired++);
    await new Promise((r) => setTimeout(r, 10));
    expect(fired).toBe(1);
    kept.cancel();
    await scope.close();
    await new Promise((r) => setTimeout(r, 30));
    expect(fired).toBe(1);
  });

  it('a wait nobody awaits neither fires after close nor rejects unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const scope = new CallScope(logged().log);
      let timedOut = false;
      // The door's ICE-gathering wait on a refused offer: started, never awaited.
      scope.wait(20, () => {
        timedOut = true;
        return new Error('gathering took too long');
      }, () => undefined);
      // And one still pending when the call ends, also never awaited.
      scope.wait(10_000, () => new Error('never'), () => undefined);
      await scope.close();
      await new Promise((r) => setTimeout(r, 50));
      expect(timedOut).toBe(false);
      // A wait that times out before close, unawaited, is handled too.
      const other = new CallScope(logged().log);
      other.wait(5, () => new Error('late'), () => undefined);
      await new Promise((r) => setTimeout(r, 30));
      await other.close();
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('a wait resolves, rejects on its deadline, and rejects when the scope closes', async () => {
    const scope = new CallScope(logged().log);
    await expect(scope.wait<number>(1000, () => new Error('deadline'), (resolve) => setTimeout(() => resolve(7), 5))).resolves.toBe(7);
    await expect(scope.wait(5, () => new Error('deadline'), () => undefined)).rejects.toThrow('deadline');
    const pending = scope.wait(10_000, () => new Error('deadline'), () => undefined);
    void scope.close();
    await expect(pending).rejects.toThrow('the call has ended');
    await expect(scope.wait(10, () => new Error('deadline'), () => undefined)).rejects.toThrow('the call has ended');
  });
});
