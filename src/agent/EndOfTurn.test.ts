import { describe, expect, it } from 'vitest';
import { FixedSilence, TextEndOfTurn, unfinishedClause } from './EndOfTurn.js';

describe('unfinishedClause', () => {
  it.each([
    ["I'd like a table for", true],
    ['my number is five five five', true],
    ['can I book a table and', true],
    ['the reservation is', true],
    ['so I was wondering,', true],
    ['what time do you open today', false],
    ['what time do you open today?', false],
    ['book a table for four people.', false],
    ['for four', false],
    ['at seven', false],
    ['', false],
  ])('%j → %s', (text, unfinished) => {
    expect(unfinishedClause(text)).toBe(unfinished);
  });
});

describe('TextEndOfTurn', () => {
  const eot = new TextEndOfTurn({ finishedMs: 300, unknownMs: 500, noWordsMs: 1250, unfinishedMs: 1800 });

  it('answers a finished question fast and waits out a pause mid-clause', () => {
    expect(eot.silenceNeededMs({ text: 'what time do you open today', vendorEnd: false })).toBe(300);
    expect(eot.silenceNeededMs({ text: "I'd like a table for", vendorEnd: false })).toBe(1800);
    // An offline grammar reports the phrase it matched; the words as heard show the clause went on.
    expect(eot.silenceNeededMs({ text: 'book a table', heard: 'i would like to book a table for', vendorEnd: false })).toBe(1800);
  });

  it('waits the tenant endpointing while nothing is known, and longer for speech with no words yet', () => {
    expect(eot.silenceNeededMs({ text: undefined, vendorEnd: false })).toBe(500);
    expect(eot.silenceNeededMs({ text: '', vendorEnd: false })).toBe(1250);
    // Without a phrase, the engine's guesses at what it could not place say nothing of a clause.
    expect(eot.silenceNeededMs({ text: '', heard: 'the is a', vendorEnd: false })).toBe(1250);
    expect(eot.maxSilenceMs).toBe(1800);
  });

  it("takes the engine's end of speech, unless the words stop mid-clause", () => {
    expect(eot.silenceNeededMs({ text: undefined, vendorEnd: true })).toBe(300);
    expect(eot.silenceNeededMs({ text: 'my number is', vendorEnd: true })).toBe(1800);
  });

  it('a fixed silence ignores the words', () => {
    const fixed = new FixedSilence(700);
    expect(fixed.silenceNeededMs()).toBe(700);
    expect(fixed.maxSilenceMs).toBe(700);
  });
});
