import { describe, expect, it } from 'vitest';
import { SentenceSplitter, type SentenceSplitterOptions } from './SentenceSplitter.js';

/** Feeds `deltas` one push at a time, then flushes: every piece in the order produced. */
function split(deltas: readonly string[], options: Partial<SentenceSplitterOptions> = {}): string[] {
  const s = new SentenceSplitter(options);
  return [...deltas.flatMap((d) => s.push(d)), ...s.flush()];
}

const whole = (text: string, options?: Partial<SentenceSplitterOptions>) => split([text], options);
const charByChar = (text: string, options?: Partial<SentenceSplitterOptions>) => split([...text], options);
/** Word-like deltas, as models stream them ("Hello", " there", "."). */
const byToken = (text: string, options?: Partial<SentenceSplitterOptions>) => split(text.split(/(?=[\s.,!?])/), options);

const TEXTS = [
  'Hello there, thanks for calling us today. We open at 9 in the morning. Is there anything else?',
  'Please ask Dr. Smith about it. The fee is 3.5 dollars, e.g. for a visit. J. R. Tolkien wrote it!',
  'OK. Sure. Yes! Right, that works for me; see you then.',
  'Line one of the answer\nline two follows here. And the end',
  `${'word '.repeat(70)}done. Then a short one.`,
];

describe('SentenceSplitter', () => {
  it.each(TEXTS)('gives the same pieces streamed char by char, by token, or whole: %#', (text) => {
    const expected = whole(text);
    expect(charByChar(text)).toEqual(expected);
    expect(byToken(text)).toEqual(expected);
    // Nothing is lost or reordered: the pieces put back together are the text, up to whitespace.
    expect(expected.join(' ').replace(/\s+/g, ' ')).toBe(text.trim().replace(/\s+/g, ' '));
  });

  it('cuts the first piece at a clause once it is long enough, later pieces only at sentence ends', () => {
    expect(whole('Thanks for calling today, we open at nine, and close at five. After that, call again, please.')).toEqual([
      'Thanks for calling today,',
      'we open at nine, and close at five.',
      'After that, call again, please.',
    ]);
  });

  it('does not cut the first clause before firstClauseMinChars', () => {
    expect(whole('Sure, we open at nine. Bye now.')).toEqual(['Sure, we open at nine.', 'Bye now.']);
    expect(whole('Sure, we open at nine. Bye now.', { firstClauseMinChars: 5 })).toEqual(['Sure,', 'we open at nine.', 'Bye now.']);
  });

  it('keeps abbreviations, decimals and initials inside a sentence', () => {
    expect(whole('You will see Dr. Smith at 3.5 past. Mrs. Jones too.')).toEqual(['You will see Dr. Smith at 3.5 past.', 'Mrs. Jones too.']);
    expect(whole('The author is J. K. Rowling. Next.')).toEqual(['The author is J. K. Rowling.', 'Next.']);
    expect(whole('Bring fruit, e.g. apples and i.e. pears. Done.', { firstClauseMinChars: 100 })).toEqual([
      'Bring fruit, e.g. apples and i.e. pears.',
      'Done.',
    ]);
  });

  it('ends a sentence at a number followed by a period', () => {
    expect(whole('The total is 45. Anything else?')).toEqual(['The total is 45.', 'Anything else?']);
  });

  it('waits for the character after a period: "3." may become "3.5"', () => {
    const s = new SentenceSplitter();
    expect(s.push('The price is 3.')).toEqual([]);
    expect(s.push('5 dollars. ')).toEqual(['The price is 3.5 dollars.']);
    expect(s.flush()).toEqual([]);
  });

  it('joins a piece shorter than minChars to the next one', () => {
    expect(whole('OK. I will do that. Hi! Bye.')).toEqual(['OK. I will do that.', 'Hi! Bye.']);
    expect(whole('OK. I will do that.', { minChars: 2 })).toEqual(['OK.', 'I will do that.']);
  });

  it('cuts a run-on sentence at its last space before maxChars', () => {
    const text = 'alpha beta gamma delta epsilon zeta eta theta';
    const pieces = whole(text, { maxChars: 20 });
    expect(pieces).toEqual(['alpha beta gamma', 'delta epsilon zeta', 'eta theta']);
    for (const p of pieces) expect(p.length).toBeLessThanOrEqual(20);
    expect(charByChar(text, { maxChars: 20 })).toEqual(pieces);
  });

  it('cuts at maxChars mid-word when there is no space to cut at', () => {
    expect(whole('abcdefghijklmnopqrstuvwxyz', { maxChars: 10 })).toEqual(['abcdefghij', 'klmnopqrst', 'uvwxyz']);
  });

  it('cuts at a newline', () => {
    expect(whole('First line here\nSecond line here')).toEqual(['First line here', 'Second line here']);
  });

  it('flush returns the unfinished rest once, and nothing for whitespace', () => {
    const s = new SentenceSplitter();
    expect(s.push('We are open until')).toEqual([]);
    expect(s.push(' five  ')).toEqual([]);
    expect(s.flush()).toEqual(['We are open until five']);
    expect(s.flush()).toEqual([]);
    expect(s.push('   ')).toEqual([]);
    expect(s.flush()).toEqual([]);
  });

  it('does not count whitespace that arrives after a cut towards the next piece', () => {
    // A model may send the space after a sentence in the next delta, or a blank line as its own delta.
    const deltas = ['Here you go. ', '\n\n', ' OK. ', 'Then we', ' are done.'];
    expect(split(deltas)).toEqual(whole(deltas.join('')));
    expect(split(deltas)).toEqual(['Here you go.', 'OK. Then we are done.']);
    const long = ['First sentence here. ', '     ', 'alpha beta gamma delta epsilon'];
    expect(split(long, { maxChars: 20 })).toEqual(['First sentence here.', 'alpha beta gamma', 'delta epsilon']);
  });

  it('allows the early clause only for the first piece of a reply', () => {
    const s = new SentenceSplitter();
    expect(s.push('Absolutely, we can do that. ')).toEqual(['Absolutely, we can do that.']);
    // A clause after the first piece waits for its sentence to end.
    expect(s.push('After the holidays, we open later, ')).toEqual([]);
    expect(s.push('at ten. ')).toEqual(['After the holidays, we open later, at ten.']);
  });
});
