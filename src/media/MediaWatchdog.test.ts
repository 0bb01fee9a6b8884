import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { MediaWatchdog } from './MediaWatchdog.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('MediaWatchdog', () => {
  const options = { timeoutMs: 150, checkEveryMs: 20 };

  it('fires once when packets stop, not while they flow', async () => {
    const endpoint = new EventEmitter();
    const fired: number[] = [];
    const dog = new MediaWatchdog(endpoint as never, (silentFor) => fired.push(silentFor), options);
    for (let i = 0; i < 15; i++) {
      endpoint.emit('packet', {});
      await sleep(20);
    }
    expect(fired).toEqual([]);
    await sleep(300);
    expect(fired).toHaveLength(1);
    expect(fired[0]).toBeGreaterThan(150);
    await sleep(100);
    expect(fired).toHaveLength(1);
    // Fired watchdogs stop listening: nothing of theirs keeps the leg's emitter busy.
    expect(endpoint.listenerCount('packet')).toBe(0);
    dog.close();
  });

  it('does not fire on hold, and counts the silence from the unhold', async () => {
    const endpoint = new EventEmitter();
    let fired = 0;
    const dog = new MediaWatchdog(endpoint as never, () => fired++, options);
    dog.pause();
    await sleep(300);
    expect(fired).toBe(0);
    dog.resume();
    await sleep(80);
    expect(fired).toBe(0);
    await sleep(200);
    expect(fired).toBe(1);
  });

  it('close() stops it for good', async () => {
    const endpoint = new EventEmitter();
    let fired = 0;
    const dog = new MediaWatchdog(endpoint as never, () => fired++, options);
    dog.close();
    dog.close();
    await sleep(250);
    expect(fired).toBe(0);
    expect(endpoint.listenerCount('packet')).toBe(0);
  });
});
