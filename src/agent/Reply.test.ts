import { describe, expect, it } from 'vitest';
import { Reply, joinText } from './Reply.js';

/** A reply whose pieces got the given audio durations (0: no audio). */
function reply(pieces: readonly [string, number][], prefix = ''): Reply {
  const r = new Reply(3, prefix);
  for (const [text, ms] of pieces) {
    const p = r.addPiece(text);
    if (ms > 0) r.addAudio(p, ms);
  }
  return r;
}

const THREE: [string, number][] = [
  ['We open at nine.', 1000],
  ['On Sundays we open at ten in the morning.', 2000],
  ['Anything else?', 800],
];

describe('Reply', () => {
  it('sums queued audio over pieces and chunks', () => {
    const r = new Reply(1);
    const p = r.addPiece('Hello there.');
    r.addAudio(p, 200);
    r.addAudio(p, 300);
    expect(p.durationMs).toBe(500);
    expect(r.queuedMs).toBe(500);
    expect(r.turn).toBe(1);
  });

  it('fullText has the prefix and every piece with audio, not a piece whose synthesis failed', () => {
    const r = reply([['First.', 500], ['Failed.', 0], ['Sorry, trouble.', 700]], 'Earlier words.');
    expect(r.fullText).toBe('Earlier words. First. Sorry, trouble.');
  });

  it('spokenText keeps whole pieces played (within half a frame) and nothing of unplayed ones', () => {
    const r = reply(THREE);
    expect(r.spokenText(0)).toBe('');
    expect(r.spokenText(990)).toBe('We open at nine.');
    expect(r.spokenText(3000)).toBe('We open at nine. On Sundays we open at ten in the morning.');
    expect(r.spokenText(10_000)).toBe(r.fullText);
  });

  it('spokenText cuts the piece under way in proportion to its played share, marked with …', () => {
    const r = reply(THREE);
    // 9 words over 2000 ms: 1000 ms in is half, 4 words (rounded down).
    expect(r.spokenText(2000)).toBe('We open at nine. On Sundays we open…');
    expect(r.spokenText(1100)).toBe('We open at nine.');
    expect(r.spokenText(2800)).toBe('We open at nine. On Sundays we open at ten in the…');
  });

  it('spokenText starts from the prefix of a resumed reply', () => {
    const r = reply([['Anything else?', 800]], 'We open at nine.');
    expect(r.spokenText(0)).toBe('We open at nine.');
    expect(r.spokenText(400)).toBe('We open at nine. Anything…');
  });

  it('spokenText stops at a piece still being synthesised', () => {
    const r = reply([['We open at nine.', 1000], ['On Sundays at ten.', 0]]);
    expect(r.spokenText(5000)).toBe('We open at nine.');
  });

  it('spokenText skips a piece whose synthesis failed and keeps what played after it', () => {
    const r = reply([['We open at nine.', 1000], ['Failed piece.', 0], ['Sorry, I am having trouble.', 1000]]);
    expect(r.spokenText(2000)).toBe(r.fullText);
    expect(r.spokenText(1500)).toBe('We open at nine. Sorry, I…');
  });

  it('resumePoint: the interrupted piece and the rest remain, whole pieces before it are kept', () => {
    const r = reply(THREE, 'Hi.');
    expect(r.resumePoint(0)).toEqual({ before: 'Hi.', remaining: THREE.map(([t]) => t) });
    expect(r.resumePoint(1500)).toEqual({ before: 'Hi. We open at nine.', remaining: [THREE[1]![0], THREE[2]![0]] });
    expect(r.resumePoint(2995)).toEqual({ before: 'Hi. We open at nine. On Sundays we open at ten in the morning.', remaining: ['Anything else?'] });
    expect(r.resumePoint(3800)).toEqual({ before: `Hi. ${THREE.map(([t]) => t).join(' ')}`, remaining: [] });
  });

  it('resumePoint resumes from a piece that had no audio yet', () => {
    const r = reply([['We open at nine.', 1000], ['On Sundays at ten.', 0]]);
    expect(r.resumePoint(5000)).toEqual({ before: 'We open at nine.', remaining: ['On Sundays at ten.'] });
  });
});

describe('joinText', () => {
  it('joins non-blank parts with one space', () => {
    expect(joinText(['', 'a', '  ', 'b c'])).toBe('a b c');
    expect(joinText([])).toBe('');
  });

  it("a piece cut short by a failed synthesis counts only the words its audio covered, at the reply's own speech rate", () => {
    // 'We open at nine.' took 1000 ms for 16 chars (62.5 ms/char); the cut piece got 640 ms of audio, about
    // a quarter of its 41 chars: 2 of its 9 words.
    const r = reply([['We open at nine.', 1000], ['On Sundays we open at ten in the morning.', 640]]);
    const cut = r.pieces[1]!;
    r.cutShort(cut);
    expect(r.fullText).toBe('We open at nine. On Sundays…');
    // Barged in after all of it played: still only what the cut audio held.
    expect(r.spokenText(1640)).toBe('We open at nine. On Sundays…');
    // Even audio as long as the estimate says a word is missing: it was cut.
    const long = reply([['Hi.', 300], ['Good morning to you.', 5000]]);
    long.cutShort(long.pieces[1]!);
    expect(long.fullText).toBe('Hi. Good morning to…');
    // No whole piece to measure the rate by: the default rate; a piece with no audio is not marked.
    const alone = reply([['Open every day from nine.', 700], ['Never heard.', 0]]);
    alone.cutShort(alone.pieces[0]!);
    alone.cutShort(alone.pieces[1]!);
    expect(alone.pieces[1]!.cutShort).toBeUndefined();
    expect(alone.fullText).toBe('Open every…');
  });
});
