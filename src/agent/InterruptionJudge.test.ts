import { describe, expect, it } from 'vitest';
import { BackchannelLexicon, backchannelsFor } from './backchannels.js';
import { defaultInterruptionJudgeOptions, InterruptionJudge, type Verdict } from './InterruptionJudge.js';

const english = new BackchannelLexicon(backchannelsFor('en-US'));
const opts = { duckDb: -15, holdAfterMs: 280, interruptAfterMs: 640, keepAfterSilenceMs: 120, maxBackchannelMs: 480 };

/** Feeds `pattern` (1 speech, 0 silence per 20 ms) and returns each verdict with the frame it came on. */
function run(judge: InterruptionJudge, pattern: string): [number, Verdict][] {
  const out: [number, Verdict][] = [];
  [...pattern].forEach((c, i) => {
    const v = judge.frame(c === '1');
    if (v) out.push([i, v]);
  });
  return out;
}

describe('InterruptionJudge', () => {
  it('keeps talking after a short sound: no hold, keep once the silence after it is long enough', () => {
    // Confirmed after 3 frames (onset 2 frames ago), 200 ms of sound in all, then silence.
    expect(run(new InterruptionJudge(opts, english, 2), '1111111' + '000000')).toEqual([[12, 'keep']]);
  });

  it('holds a longer sound at holdAfterMs and keeps when it ends short of an interruption', () => {
    // 60 ms before the judge, then 380 ms more: 440 ms of "uh-huh" with a 40 ms gap inside.
    const verdicts = run(new InterruptionJudge(opts, english, 2), '1111111110011111111' + '000000');
    expect(verdicts).toEqual([[11, 'hold'], [24, 'keep']]);
  });

  it('takes a sound that ends with more speech than a backchannel has for words', () => {
    // 500 ms of speech, then silence: not "uh-huh".
    expect(run(new InterruptionJudge(opts, english, 2), '1'.repeat(22) + '000000')).toEqual([[10, 'hold'], [27, 'interrupt']]);
  });

  it('is an interruption after interruptAfterMs of speech, gaps not counted', () => {
    const verdicts = run(new InterruptionJudge(opts, english, 2), '1'.repeat(15) + '00' + '1'.repeat(20));
    expect(verdicts).toEqual([[10, 'hold'], [30, 'interrupt']]);
  });

  it("does not take a voice under the echo guard's bar for the end of the sound", () => {
    const judge = new InterruptionJudge(opts, english, 2);
    // 400 ms of a voice softer than the agent's echo could be: the sound goes on (the agent pauses)…
    const soft = Array.from({ length: 20 }, () => judge.frame(false, true));
    expect(soft.filter(Boolean)).toEqual(['hold']);
    // …but only louder frames count as speech: 30 of them make it an interruption.
    const verdicts = Array.from({ length: 30 }, () => judge.frame(true));
    expect(verdicts.filter(Boolean)).toEqual(['interrupt']);
  });

  it('decides from words at once: a backchannel changes nothing, anything else interrupts', () => {
    const judge = new InterruptionJudge(opts, english, 2);
    expect(judge.words('Uh-huh.')).toBeUndefined();
    expect(judge.words('yeah okay')).toBeUndefined();
    expect(judge.words('')).toBeUndefined();
    expect(judge.words('yeah but what about Sunday')).toBe('interrupt');
    expect(judge.frame(true)).toBeUndefined(); // decided once
  });

  it('has defaults that duck by at least 10 dB and hold before 300 ms', () => {
    expect(defaultInterruptionJudgeOptions.duckDb).toBeLessThanOrEqual(-10);
    expect(defaultInterruptionJudgeOptions.holdAfterMs).toBeLessThan(300);
  });
});

describe('BackchannelLexicon', () => {
  it('covers backchannels in any case and punctuation, in runs, and nothing else', () => {
    expect(english.covers('Mm-hmm!')).toBe(true);
    expect(english.covers('right, got it')).toBe(true);
    expect(english.covers('all right')).toBe(true);
    expect(english.covers('right now')).toBe(false);
    expect(english.covers('')).toBe(false);
  });

  it('has lists per language, English for the rest, and a tenant list replaces them', () => {
    expect(new BackchannelLexicon(backchannelsFor('de-DE')).covers('genau')).toBe(true);
    expect(new BackchannelLexicon(backchannelsFor('xx')).covers('okay')).toBe(true);
    const tenant = new BackchannelLexicon(['roger']);
    expect(tenant.covers('roger')).toBe(true);
    expect(tenant.covers('okay')).toBe(false);
  });
});
