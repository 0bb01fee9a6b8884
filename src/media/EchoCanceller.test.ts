import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { linearToMulaw, mulawToLinear } from './codecs/g711.js';
import { EchoCanceller } from './EchoCanceller.js';
import { concatSamples, dbfs } from './signal.js';
import { decodeWav } from './wav.js';

const FRAME = 320;
const fixture = async (name: string): Promise<Int16Array> => decodeWav(await readFile(new URL(`../../tests/fixtures/${name}`, import.meta.url))).samples;
// The agent (flite "slt", ~5 s) and a caller (flite "rms"), as in the demo.
const agent = await fixture('ava-greeting.wav');
const caller = await fixture('caller-open-today.wav');

interface Line {
  /** Echo path delay (ms) and loss (dB, negative). */
  readonly delayMs: number;
  readonly gainDb: number;
  /** Caller speech added to what comes back, starting at this sample. */
  readonly callerAt?: number;
  readonly callerGainDb?: number;
  /** The echo goes through µ-law, as on a PCMU line. */
  readonly mulaw?: boolean;
}

/** What the caller's side sends back while `far` plays: `far` delayed and attenuated, plus the caller. */
function nearEnd(far: Int16Array, line: Line): { near: Int16Array; echo: Int16Array; voice: Int16Array } {
  const d = Math.round(line.delayMs * 16);
  const g = 10 ** (line.gainDb / 20);
  const echo = new Int16Array(far.length);
  for (let i = d; i < far.length; i++) {
    const v = Math.round(far[i - d]! * g);
    echo[i] = line.mulaw ? mulawToLinear(linearToMulaw(v)) : v;
  }
  const voice = new Int16Array(far.length);
  if (line.callerAt !== undefined) {
    const cg = 10 ** ((line.callerGainDb ?? 0) / 20);
    for (let i = 0; i < caller.length && line.callerAt + i < far.length; i++) voice[line.callerAt + i] = Math.round(caller[i]! * cg);
  }
  const near = new Int16Array(far.length);
  for (let i = 0; i < far.length; i++) near[i] = Math.max(-32768, Math.min(32767, echo[i]! + voice[i]!));
  return { near, echo, voice };
}

/** Runs `far` and `near` frame by frame through a canceller (the far frame first: it is sent before its echo returns). */
function run(aec: EchoCanceller, far: Int16Array, near: Int16Array): { cleaned: Int16Array; bars: number[] } {
  const out: Int16Array[] = [];
  const bars: number[] = [];
  for (let i = 0; i + FRAME <= far.length; i += FRAME) {
    aec.reference(far.subarray(i, i + FRAME));
    const r = aec.process(near.subarray(i, i + FRAME));
    out.push(r.cleaned);
    bars.push(r.barDbfs);
  }
  return { cleaned: concatSamples(out), bars };
}

/** Echo removed (dB) between samples `from` and `to`. */
function erle(near: Int16Array, cleaned: Int16Array, from: number, to: number): number {
  return dbfs(near, { start: from, end: to }) - dbfs(cleaned, { start: from, end: to });
}

describe('EchoCanceller', () => {
  it.each([
    { delayMs: 20, gainDb: -15 },
    { delayMs: 150, gainDb: -20 },
    { delayMs: 300, gainDb: -25, mulaw: true },
  ])('finds a $delayMs ms echo path and removes the echo ($gainDb dB)', ({ delayMs, gainDb, mulaw }) => {
    const aec = new EchoCanceller();
    const { near } = nearEnd(agent, { delayMs, gainDb, mulaw: mulaw ?? false });
    const { cleaned } = run(aec, agent, near);
    expect(aec.stats.delayMs).toBeCloseTo(delayMs, -0.5);
    expect(aec.converged).toBe(true);
    // The last two seconds: the echo is at least 15 dB quieter (µ-law's quantisation noise limits it).
    expect(erle(near, cleaned, agent.length - 32_000, agent.length)).toBeGreaterThan(mulaw ? 12 : 20);
  });

  it('keeps the caller talking over the echo at the same level, and tells them from the echo', () => {
    const aec = new EchoCanceller();
    const callerAt = 40_000; // 2.5 s in: the filter has learnt the path
    const line = { delayMs: 120, gainDb: -20, callerAt, callerGainDb: -20 };
    const { near, voice } = nearEnd(agent, line);
    const { cleaned, bars } = run(aec, agent, near);
    const end = Math.min(agent.length, callerAt + caller.length);
    // What is left while the caller talks is the caller: the echo is ≥ 10 dB under their voice…
    const left = new Int16Array(end - callerAt);
    for (let i = callerAt; i < end; i++) left[i - callerAt] = cleaned[i]! - voice[i]!;
    expect(dbfs(voice, { start: callerAt, end }) - dbfs(left)).toBeGreaterThan(10);
    // …and the filter did not learn to cancel them: the echo after is still removed.
    expect(aec.stats.doubleTalkFrames).toBeGreaterThan(10);
    // Frame by frame: caller frames clear the bar, echo-only frames before them stay under it.
    const frameDb = (i: number): number => dbfs(cleaned, { start: i * FRAME, end: (i + 1) * FRAME });
    const first = Math.ceil(callerAt / FRAME);
    const callerFrames = Array.from({ length: Math.floor((end - callerAt) / FRAME) }, (_, k) => first + k).filter(
      (i) => dbfs(voice, { start: i * FRAME, end: (i + 1) * FRAME }) > dbfs(voice, { start: callerAt, end }) - 6,
    );
    const heard = callerFrames.filter((i) => frameDb(i) >= bars[i]!).length;
    expect(heard / callerFrames.length).toBeGreaterThan(0.8);
    // Echo-only frames with sound in them (quieter ones are under any speech level anyway).
    const echoFrames = Array.from({ length: first - 80 }, (_, k) => 80 + k).filter(
      (i) => bars[i]! > -Infinity && dbfs(near, { start: i * FRAME, end: (i + 1) * FRAME }) > -55,
    );
    expect(echoFrames.length).toBeGreaterThan(20);
    expect(echoFrames.filter((i) => frameDb(i) >= bars[i]!).length / echoFrames.length).toBeLessThan(0.05);
  });

  it('finds the new path when the delay changes', () => {
    const aec = new EchoCanceller();
    const twice = concatSamples([agent, agent]);
    const a = nearEnd(agent, { delayMs: 80, gainDb: -18 }).near;
    const b = nearEnd(agent, { delayMs: 230, gainDb: -18 }).near;
    const { cleaned } = run(aec, twice, concatSamples([a, b]));
    expect(aec.stats.delayMs).toBeCloseTo(230, -0.5);
    expect(erle(b, cleaned.subarray(agent.length), agent.length - 32_000, agent.length)).toBeGreaterThan(15);
  });

  it("never puts the agent's voice into a line that stopped echoing, nor trusts itself when the echo moves", () => {
    const aec = new EchoCanceller();
    const half = 40_000;
    const { near } = nearEnd(agent, { delayMs: 100, gainDb: -20 });
    const stopped = near.slice();
    stopped.fill(0, half); // the phone turned its own echo canceller on
    const { cleaned, bars } = run(aec, agent, stopped);
    const after = Math.ceil(half / FRAME) + 1;
    expect(bars.slice(0, after - 1).some((b) => b > -Infinity)).toBe(true); // it had learnt the line
    // Subtracting the echo it expects would play the agent into the silence: it does not.
    expect(dbfs(cleaned, { start: after * FRAME })).toBe(-Infinity);
    expect(bars.slice(after).every((b) => b === -Infinity)).toBe(true);

    const moved = new EchoCanceller();
    const late = nearEnd(agent, { delayMs: 260, gainDb: -20 }).near;
    const jumped = concatSamples([near.subarray(0, half), late.subarray(half)]); // a jitter buffer grew by 160 ms
    const r = run(moved, agent, jumped);
    // After the jump, the frames with echo in them find the canceller untrusted until it has learnt the
    // new path: no per-frame bar (the level-only guard decides) and the audio passed on as it came. The
    // first echo to arrive where none was expected looks like a caller for a frame or two: fewer than
    // the three frames of speech a barge-in needs.
    const first = Math.ceil(half / FRAME);
    const echoing = Array.from({ length: 100 }, (_, k) => first + k).filter((i) => dbfs(jumped, { start: i * FRAME, end: (i + 1) * FRAME }) > -55);
    expect(echoing.length).toBeGreaterThan(30);
    expect(echoing.slice(0, 30).filter((i) => r.bars[i]! > -Infinity).length).toBeLessThanOrEqual(2);
  });

  it('leaves a line without echo alone', () => {
    const aec = new EchoCanceller();
    const { near } = nearEnd(agent, { delayMs: 0, gainDb: -200, callerAt: 16_000 });
    const { cleaned, bars } = run(aec, agent, near);
    expect(aec.stats.delayMs).toBeUndefined();
    // No echo to find: the search backs off (0.4, 0.8, 1.6, 3.2 s apart) instead of running every 0.4 s.
    expect(aec.stats.searches).toBeLessThanOrEqual(6);
    expect(Array.from(cleaned)).toEqual(Array.from(near.subarray(0, cleaned.length)));
    expect(bars.every((b) => b === -Infinity)).toBe(true);
  });
});
