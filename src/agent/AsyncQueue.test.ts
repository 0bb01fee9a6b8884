import { describe, expect, it } from 'vitest';
import { AsyncQueue } from './AsyncQueue.js';

async function drain<T>(q: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of q) out.push(item);
  return out;
}

describe('AsyncQueue', () => {
  it('delivers items pushed before the consumer starts, then ends', async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    q.push(2);
    q.end();
    expect(await drain(q)).toEqual([1, 2]);
  });

  it('wakes a waiting consumer, keeping order when pushes outrun it', async () => {
    const q = new AsyncQueue<string>();
    const consumed = drain(q);
    await Promise.resolve();
    q.push('a'); // straight to the waiting consumer
    q.push('b'); // buffered: the consumer has not pulled again yet
    q.push('c');
    await new Promise((r) => setImmediate(r));
    q.push('d');
    q.end();
    expect(await consumed).toEqual(['a', 'b', 'c', 'd']);
  });

  it('end() releases a consumer that is waiting on an empty queue', async () => {
    const q = new AsyncQueue<number>();
    const consumed = drain(q);
    await new Promise((r) => setImmediate(r));
    q.end();
    expect(await consumed).toEqual([]);
  });

  it('ignores pushes after end(), and end() twice', async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    q.end();
    q.push(2);
    q.end();
    expect(await drain(q)).toEqual([1]);
  });

  it('lets the consumer stop early with break', async () => {
    const q = new AsyncQueue<number>();
    for (let i = 0; i < 5; i++) q.push(i);
    const seen: number[] = [];
    for await (const n of q) {
      seen.push(n);
      if (n === 1) break;
    }
    expect(seen).toEqual([0, 1]);
  });
});
