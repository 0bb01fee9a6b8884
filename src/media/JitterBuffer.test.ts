import { describe, expect, it } from 'vitest';
import { JitterBuffer, type JitterOutput } from './JitterBuffer.js';

function collect(opts = {}): { jb: JitterBuffer<number>; out: JitterOutput<number>[]; seqs: () => (number | string)[] } {
  const out: JitterOutput<number>[] = [];
  const jb = new JitterBuffer<number>((o) => out.push(o), opts);
  const seqs = (): (number | string)[] => out.map((o) => (o.kind === 'packet' ? o.seq : `lost${o.firstSeq}x${o.count}`));
  return { jb, out, seqs };
}

describe('JitterBuffer', () => {
  it('passes in-order packets straight through', () => {
    const { jb, seqs } = collect();
    for (let i = 0; i < 5; i++) jb.push(100 + i, i, i * 20);
    expect(seqs()).toEqual([100, 101, 102, 103, 104]);
    expect(jb.size).toBe(0);
  });

  it('reorders within the window', () => {
    const { jb, seqs } = collect();
    jb.push(1, 1, 0);
    jb.push(3, 3, 20);
    jb.push(2, 2, 25);
    jb.push(4, 4, 40);
    expect(seqs()).toEqual([1, 2, 3, 4]);
    expect(jb.stats().reordered).toBe(1);
  });

  it('declares a gap lost after the window and then drops the straggler as late', () => {
    const { jb, seqs, out } = collect({ windowMs: 60 });
    jb.push(1, 1, 0);
    jb.push(3, 3, 20);
    jb.poll(50);
    expect(seqs()).toEqual([1]);
    jb.poll(81);
    expect(seqs()).toEqual([1, 'lost2x1', 3]);
    const lost = out[1];
    expect(lost?.kind === 'lost' && lost.next).toBe(3);
    jb.push(2, 2, 90);
    expect(jb.stats()).toMatchObject({ late: 1, lost: 1, duplicates: 0 });
  });

  it('gives a gap up when a window of packets is queued behind it, without waiting', () => {
    const { jb, seqs } = collect({ windowMs: 60 });
    jb.push(10, 10, 0);
    jb.push(12, 12, 1);
    jb.push(13, 13, 2);
    jb.push(14, 14, 3);
    expect(seqs()).toEqual([10, 'lost11x1', 12, 13, 14]);
  });

  it('drops duplicates, both released and held ones', () => {
    const { jb, seqs } = collect();
    jb.push(1, 1, 0);
    jb.push(1, 1, 1);
    jb.push(3, 3, 2);
    jb.push(3, 3, 3);
    jb.push(2, 2, 4);
    expect(seqs()).toEqual([1, 2, 3]);
    expect(jb.stats().duplicates).toBe(2);
  });

  it('follows a sequence wrap', () => {
    const { jb, seqs } = collect();
    jb.push(65534, 0, 0);
    jb.push(0, 2, 1);
    jb.push(65535, 1, 2);
    jb.push(1, 3, 3);
    expect(seqs()).toEqual([65534, 65535, 0, 1]);
  });

  it('treats a huge jump as a sender restart, not seconds of loss', () => {
    const { jb, seqs } = collect();
    jb.push(100, 0, 0);
    jb.push(30000, 1, 20);
    jb.push(30001, 2, 40);
    expect(seqs()).toEqual([100, 30000, 30001]);
    expect(jb.stats()).toMatchObject({ restarts: 1, lost: 0 });
  });

  it('flush releases held packets and reports the gaps', () => {
    const { jb, seqs } = collect();
    jb.push(1, 1, 0);
    jb.push(4, 4, 1);
    jb.flush();
    expect(seqs()).toEqual([1, 'lost2x2', 4]);
  });
});
