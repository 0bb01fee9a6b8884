import { describe, expect, it } from 'vitest';
import { ReceiveStats } from './ReceiveStats.js';

describe('ReceiveStats (RFC 3550 A.1/A.3/A.8)', () => {
  it('counts loss across a sequence wrap', () => {
    const s = new ReceiveStats(8000);
    let ts = 0;
    for (let i = 0; i < 100; i++) {
      const seq = (65500 + i) & 0xffff;
      if (i % 10 !== 3) s.record(1, seq, ts, i * 20, 172);
      ts += 160;
    }
    const snap = s.snapshot();
    expect(snap.expected).toBe(100);
    expect(snap.lost).toBe(10);
    expect(snap.packets).toBe(90);
  });

  it('reports zero jitter for perfectly paced arrivals and ~the spread for alternating delay', () => {
    const steady = new ReceiveStats(8000);
    for (let i = 0; i < 200; i++) steady.record(1, i, i * 160, i * 20, 172);
    expect(steady.snapshot().jitterMs).toBeCloseTo(0, 6);

    const bumpy = new ReceiveStats(8000);
    // every other packet 10 ms late: |D| is 10 ms each time, so J converges to 10 ms
    for (let i = 0; i < 500; i++) bumpy.record(1, i, i * 160, i * 20 + (i % 2) * 10, 172);
    expect(bumpy.snapshot().jitterMs).toBeGreaterThan(9.5);
    expect(bumpy.snapshot().jitterMs).toBeLessThan(10.5);
  });

  it('treats a new SSRC as a restart and keeps earlier loss', () => {
    const s = new ReceiveStats(8000);
    s.record(1, 10, 0, 0, 100);
    s.record(1, 12, 320, 40, 100); // 11 lost
    s.record(2, 5000, 0, 60, 100);
    s.record(2, 5001, 160, 80, 100);
    const snap = s.snapshot();
    expect(snap.restarts).toBe(1);
    expect(snap.lost).toBe(1);
    expect(snap.expected).toBe(5);
  });
});
