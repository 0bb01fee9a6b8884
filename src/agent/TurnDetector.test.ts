import { describe, expect, it } from 'vitest';
import { FRAME_MS } from '../media/types.js';
import { TurnDetector, defaultTurnDetectorOptions, type FrameInput, type TurnSignal } from './TurnDetector.js';

const SPEECH: FrameInput = { score: 1, levelDbfs: -20, echoThresholdDbfs: -Infinity };
const SILENCE: FrameInput = { score: 0, levelDbfs: -70, echoThresholdDbfs: -Infinity };
/** The same frames while the agent is talking (the echo guard has a bar). */
const withEcho = (f: FrameInput, echoThresholdDbfs = -40): FrameInput => ({ ...f, echoThresholdDbfs });

/** Feeds frames in order; returns each signal with the index of the frame that produced it. */
function feed(d: TurnDetector, frames: readonly FrameInput[]): { at: number; signal: TurnSignal }[] {
  const out: { at: number; signal: TurnSignal }[] = [];
  frames.forEach((f, at) => {
    const signal = d.process(f);
    if (signal) out.push({ at, signal });
  });
  return out;
}

const times = (n: number, f: FrameInput): FrameInput[] => Array.from({ length: n }, () => f);
const framesFor = (ms: number) => ms / FRAME_MS;

describe('TurnDetector', () => {
  it('opens a turn after minSpeechMs of speech, onset counted from the first speech frame', () => {
    const d = new TurnDetector();
    const need = framesFor(defaultTurnDetectorOptions.minSpeechMs);
    const signals = feed(d, [...times(3, SILENCE), ...times(need, SPEECH)]);
    expect(signals).toEqual([{ at: 3 + need - 1, signal: { type: 'speech-start', onsetFramesAgo: need - 1, bargeIn: false } }]);
    expect(d.speaking).toBe(true);
  });

  it('needs only bargeInMinSpeechMs while the agent talks (echo bar above -Infinity)', () => {
    const d = new TurnDetector({ minSpeechMs: 200, bargeInMinSpeechMs: 60 });
    const signals = feed(d, times(3, withEcho(SPEECH)));
    expect(signals).toEqual([{ at: 2, signal: { type: 'speech-start', onsetFramesAgo: 2, bargeIn: true } }]);
    // The same three frames with the agent silent are not enough.
    expect(feed(new TurnDetector({ minSpeechMs: 200, bargeInMinSpeechMs: 60 }), times(3, SPEECH))).toEqual([]);
  });

  it('tolerates gaps up to maxGapMs inside the opening run, and counts them in the onset', () => {
    const d = new TurnDetector({ minSpeechMs: 100, maxGapMs: 40 });
    // 2 speech, 2-frame gap (40 ms), 3 speech: 5 speech frames spanning 7.
    const signals = feed(d, [...times(2, SPEECH), ...times(2, SILENCE), ...times(3, SPEECH)]);
    expect(signals).toEqual([{ at: 6, signal: { type: 'speech-start', onsetFramesAgo: 6, bargeIn: false } }]);
  });

  it('restarts the count after a gap longer than maxGapMs', () => {
    const d = new TurnDetector({ minSpeechMs: 100, maxGapMs: 40 });
    const signals = feed(d, [...times(4, SPEECH), ...times(3, SILENCE), ...times(4, SPEECH), SPEECH]);
    // The first 4 frames are forgotten; the second run opens the turn at its 5th frame.
    expect(signals).toEqual([{ at: 11, signal: { type: 'speech-start', onsetFramesAgo: 4, bargeIn: false } }]);
  });

  it('ends the turn after exactly endpointingMs of silence, and speech resets the silence count', () => {
    const d = new TurnDetector({ minSpeechMs: 40, endpointingMs: 200 });
    const silent = framesFor(200);
    const frames = [...times(2, SPEECH), ...times(silent - 1, SILENCE), SPEECH, ...times(silent, SILENCE)];
    const signals = feed(d, frames);
    expect(signals).toEqual([
      { at: 1, signal: { type: 'speech-start', onsetFramesAgo: 1, bargeIn: false } },
      { at: frames.length - 1, signal: { type: 'speech-end', silenceFrames: silent, speechFrames: 3, forced: false } },
    ]);
    expect(d.speaking).toBe(false);
  });

  it('forces the end of a turn at maxUtteranceMs, counted from the onset', () => {
    const d = new TurnDetector({ minSpeechMs: 100, maxUtteranceMs: 400 });
    const signals = feed(d, times(40, SPEECH));
    // Onset at frame 0; 400 ms is 20 frames, so the turn ends on frame 19 and a new one opens 5 frames later.
    expect(signals.map((s) => [s.at, s.signal.type])).toEqual([
      [4, 'speech-start'],
      [19, 'speech-end'],
      [24, 'speech-start'],
      [39, 'speech-end'],
    ]);
    expect(signals[1]!.signal).toEqual({ type: 'speech-end', silenceFrames: 0, speechFrames: 20, forced: true });
  });

  it('forceEnd ends a turn in progress with its silence so far, and does nothing between turns', () => {
    const d = new TurnDetector({ minSpeechMs: 40 });
    expect(d.forceEnd()).toBeUndefined();
    feed(d, [...times(2, SPEECH), ...times(3, SILENCE)]);
    expect(d.forceEnd()).toEqual({ type: 'speech-end', silenceFrames: 3, speechFrames: 2, forced: true });
    expect(d.speaking).toBe(false);
    expect(d.forceEnd()).toBeUndefined();
  });

  it('rejects frames under the echo bar or under minLevelDbfs, whatever the VAD says', () => {
    const d = new TurnDetector({ minLevelDbfs: -55 });
    expect(d.isSpeech(SPEECH)).toBe(true);
    expect(d.isSpeech({ ...SPEECH, score: 0.49 })).toBe(false);
    expect(d.isSpeech({ ...SPEECH, levelDbfs: -56 })).toBe(false);
    expect(d.isSpeech(withEcho(SPEECH, -19))).toBe(false);
    expect(d.isSpeech(withEcho(SPEECH, -20))).toBe(true);
    // A run of echo never opens a turn, however long.
    expect(feed(d, times(50, withEcho(SPEECH, -10)))).toEqual([]);
    expect(feed(d, times(50, { ...SPEECH, levelDbfs: -60 }))).toEqual([]);
  });

  it('reports hearingSpeech before and during a turn', () => {
    const d = new TurnDetector({ minSpeechMs: 60, endpointingMs: 200 });
    expect(d.hearingSpeech).toBe(false);
    d.process(SPEECH);
    expect(d.hearingSpeech).toBe(true);
    expect(d.speaking).toBe(false);
    d.process(SPEECH);
    d.process(SPEECH);
    expect(d.speaking).toBe(true);
    expect(d.hearingSpeech).toBe(true);
    d.process(SILENCE);
    expect(d.hearingSpeech).toBe(false);
    expect(d.speaking).toBe(true);
  });

  it('reset forgets a turn and a half-counted run', () => {
    const d = new TurnDetector({ minSpeechMs: 100 });
    feed(d, times(4, SPEECH));
    d.reset();
    expect(d.hearingSpeech).toBe(false);
    // The 4 frames before the reset do not count.
    expect(feed(d, times(4, SPEECH))).toEqual([]);
    expect(feed(d, [SPEECH])).toHaveLength(1);
  });

  it('asks how much silence ends the turn on every silent frame, so the answer can change mid-pause', () => {
    let needed = 200;
    const d = new TurnDetector({ minSpeechMs: 40 }, () => needed);
    feed(d, [...times(3, SPEECH), ...times(5, SILENCE)]);
    expect(d.speaking).toBe(true);
    expect(d.silenceMs).toBe(100);
    needed = 1000; // the words so far end mid-clause: wait longer
    expect(feed(d, times(20, SILENCE))).toEqual([]);
    needed = 300; // …then they turned out finished
    expect(feed(d, [SILENCE]).map((s) => s.signal)).toEqual([{ type: 'speech-end', silenceFrames: 26, speechFrames: 3, forced: false }]);
  });

  it('counts unvoiced frames as speech only next to voiced ones: steady noise and coughs never open a turn', () => {
    const d = new TurnDetector({ minSpeechMs: 100, voicingHangoverMs: 120 });
    const noise = { ...SPEECH, voicing: 0.1 };
    const vowel = { ...SPEECH, voicing: 0.8 };
    expect(feed(d, times(150, noise))).toEqual([]); // 3 s of a fan: fvad says speech, nothing is voiced
    // "sss-ix": an unvoiced onset waits for the vowel; the consonant after it stays inside the speech.
    const signals = feed(d, [...times(4, noise), ...times(5, vowel), ...times(6, noise), ...times(40, { ...SILENCE, voicing: 0 })]);
    expect(signals.map((s) => [s.at, s.signal.type])).toEqual([[8, 'speech-start'], [39, 'speech-end']]);
    expect(signals[1]!.signal).toMatchObject({ speechFrames: 11 });
  });
});
