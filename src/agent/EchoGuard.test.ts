import { describe, expect, it } from 'vitest';
import { dbfs, sineAmplitudeForDbfs, tone } from '../media/signal.js';
import { EchoGuard, frameLevels } from './EchoGuard.js';

/** `n` frames all at `level` dBFS. */
const flat = (n: number, level: number) => new Float32Array(n).fill(level);

describe('frameLevels', () => {
  it('gives one RMS level per 20 ms frame, a short tail counting as a frame', () => {
    const loud = tone(440, 40, { amplitude: sineAmplitudeForDbfs(-10) });
    const quiet = tone(440, 30, { amplitude: sineAmplitudeForDbfs(-30) });
    const pcm = new Int16Array(loud.length + quiet.length);
    pcm.set(loud);
    pcm.set(quiet, loud.length);
    const levels = frameLevels(pcm);
    expect(levels).toHaveLength(4);
    expect(levels[0]).toBeCloseTo(-10, 0);
    expect(levels[1]).toBeCloseTo(-10, 0);
    expect(levels[2]).toBeCloseTo(-30, 0);
    // The 10 ms tail is measured over its own samples, not diluted by the missing half frame.
    expect(levels[3]).toBeCloseTo(dbfs(pcm, { start: 960 }), 3);
    expect(frameLevels(new Int16Array(320))[0]).toBe(-Infinity);
    expect(frameLevels(new Int16Array(0))).toHaveLength(0);
  });
});

describe('EchoGuard', () => {
  it('is silent (-Infinity) before anything is queued', () => {
    const g = new EchoGuard();
    expect(g.thresholdDbfs(0)).toBe(-Infinity);
    expect(g.active(0)).toBe(false);
  });

  it('sets the bar at the loudest frame sent within the window, minus the margin', () => {
    const g = new EchoGuard({ marginDb: 14, windowMs: 100 });
    // Frames at 1000, 1020, …: -30, -10, -30, -30, …
    const levels = flat(20, -30);
    levels[1] = -10;
    g.queued(levels, 1000);
    expect(g.thresholdDbfs(1000)).toBe(-44);
    expect(g.thresholdDbfs(1025)).toBe(-24);
    // The loud frame (sent 1020–1040) counts while its end is inside the window: at 1120, not at 1140.
    expect(g.thresholdDbfs(1120)).toBe(-24);
    expect(g.thresholdDbfs(1140)).toBe(-44);
  });

  it('does not count audio queued to start later than now', () => {
    const g = new EchoGuard({ marginDb: 10, windowMs: 100 });
    g.queued(flat(10, -30), 0);
    g.queued(flat(10, -5), 200);
    expect(g.thresholdDbfs(150)).toBe(-40);
    expect(g.thresholdDbfs(199)).toBe(-40);
    expect(g.thresholdDbfs(200)).toBe(-15);
  });

  it('goes silent once the last frame is older than the window, and forgets it', () => {
    const g = new EchoGuard({ marginDb: 10, windowMs: 100 });
    g.queued(flat(5, -20), 0); // frames sent 0–100 ms
    expect(g.active(150)).toBe(true);
    expect(g.thresholdDbfs(199)).toBe(-30);
    expect(g.active(201)).toBe(false);
    // Forgotten for good: asking about an earlier time no longer finds it.
    expect(g.thresholdDbfs(150)).toBe(-Infinity);
  });

  it('after a flush keeps only what was already sent', () => {
    const g = new EchoGuard({ marginDb: 10, windowMs: 100 });
    const first = flat(10, -30);
    first[5] = -5; // sent at 100–120 ms: after the flush at 50, never sent
    g.queued(first, 0);
    g.queued(flat(10, 0), 200); // queued behind: dropped
    g.flushed(50);
    expect(g.thresholdDbfs(60)).toBe(-40); // frames 0–2 (0–60 ms) were sent
    expect(g.thresholdDbfs(110)).toBe(-40);
    expect(g.thresholdDbfs(210)).toBe(-Infinity);
    expect(g.active(160)).toBe(false);
  });

  it('reset forgets everything', () => {
    const g = new EchoGuard();
    g.queued(flat(10, -10), 0);
    g.reset();
    expect(g.active(10)).toBe(false);
  });

  it('a pause holds the unsent audio back, and its echo is expected again once it resumes', () => {
    const guard = new EchoGuard({ marginDb: 10, windowMs: 100 });
    guard.queued(new Float32Array(50).fill(-20), 0); // 1 s of agent speech from t=0
    guard.held(200); // paused at 200 ms: 10 frames sent, 40 wait
    expect(guard.thresholdDbfs(250)).toBe(-30); // the echo of what was sent is still on its way
    expect(guard.thresholdDbfs(400)).toBe(-Infinity); // nothing is being sent
    guard.resumed(1000);
    expect(guard.thresholdDbfs(1010)).toBe(-30);
    expect(guard.thresholdDbfs(1000 + 40 * 20 + 200)).toBe(-Infinity); // the 40 frames played out
  });

  it('expects a ducked agent to echo as much quieter, for the frames sent while it was ducked', () => {
    const guard = new EchoGuard({ marginDb: 10, windowMs: 100 });
    guard.queued(new Float32Array(50).fill(-20), 0);
    guard.ducked(-15, 200);
    expect(guard.thresholdDbfs(250)).toBe(-30); // frames sent before the duck are still in the window
    expect(guard.thresholdDbfs(320)).toBe(-45);
    guard.ducked(0, 400);
    expect(guard.thresholdDbfs(450)).toBe(-30);
  });
});
