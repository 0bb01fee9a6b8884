import { describe, expect, it } from 'vitest';
import { buildPhraseGrammar, heardWords, interpretHypothesis, normalisePhrase } from './grammar.js';
import { Lexicon } from './lexicon.js';

/** A few CMUdict lines, in its format (variants as `word(2)`), standing in for the real dictionary. */
const lexicon = Lexicon.parse(
  [
    'pay P EY',
    'my M AY',
    'bill B IH L',
    'talk T AO K',
    'to T UW',
    'to(2) T IH',
    'to(3) T AH',
    'an AE N',
    'an(2) AH N',
    'agent EY JH AH N T',
    "don't D OW N T",
    "don't(2) D OW N",
    'twenty T W EH N T IY',
    'four F AO R',
    'seven S EH V AH N',
    'zero Z IH R OW',
    'eight EY T',
    'hundred HH AH N D R AH D',
    'and AH N D',
    'percent P ER S EH N T',
    'cafe K AH F EY',
    'the DH AH',
    'a AH',
    'yes Y EH S',
    'no N OW',
    '',
  ].join('\n'),
);

describe('normalisePhrase', () => {
  it('lower-cases and drops punctuation, keeping apostrophes inside words', () => {
    expect(normalisePhrase("  Don't PAY my bill!!  ")).toEqual(["don't", 'pay', 'my', 'bill']);
    expect(normalisePhrase("'quoted' words, (and) more...")).toEqual(['quoted', 'words', 'and', 'more']);
    expect(normalisePhrase('It’s a café')).toEqual(["it's", 'a', 'cafe']);
  });

  it('spells out numbers and symbols the way they are said', () => {
    expect(normalisePhrase('24/7')).toEqual(['twenty', 'four', 'seven']);
    expect(normalisePhrase('table for 4 at 7pm')).toEqual(['table', 'for', 'four', 'at', 'seven', 'pm']);
    expect(normalisePhrase('100% & 205')).toEqual(['one', 'hundred', 'percent', 'and', 'two', 'hundred', 'five']);
    expect(normalisePhrase('1,250,000')).toEqual(['one', 'million', 'two', 'hundred', 'fifty', 'thousand']);
    expect(normalisePhrase('call 0800 123')).toEqual(['call', 'zero', 'eight', 'zero', 'zero', 'one', 'hundred', 'twenty', 'three']);
    expect(normalisePhrase('90210')).toEqual(['nine', 'zero', 'two', 'one', 'zero']);
    expect(normalisePhrase('13 40 1000 2024')).toEqual(['thirteen', 'forty', 'one', 'thousand', 'two', 'thousand', 'twenty', 'four']);
    expect(normalisePhrase('1, 2 and 3')).toEqual(['one', 'two', 'and', 'three']);
  });
});

describe('buildPhraseGrammar', () => {
  it('writes a JSGF grammar of the phrases beside a garbage loop, and a dictionary of just the words it uses', () => {
    const grammar = buildPhraseGrammar(['Pay my bill.', 'talk to an agent'], lexicon, { garbageWeight: 1e-12 });
    expect(grammar).toBeDefined();
    const { jsgf, dictionary, phrases } = grammar!;
    expect([...phrases]).toEqual(['pay my bill', 'talk to an agent']);
    expect(jsgf).toContain('public <utterance> = <phrase> | <garbage>;');
    expect(jsgf).toContain('<phrase> = pay my bill | talk to an agent;');
    expect(jsgf).toContain('<garbage> = <unit>+;');
    // The sphinxbase parser rejects exponents: the weight is written out in full.
    expect(jsgf).toContain('/0.000000000001/ __p_aa');
    expect(jsgf).not.toMatch(/\de-\d/);
    // Every pronunciation of a phrase word; garbage units for phones and common words.
    expect(dictionary).toContain('to T UW\nto(2) T IH\nto(3) T AH\n');
    expect(dictionary).toContain('__p_zh ZH\n');
    expect(dictionary).toContain('__w_the DH AH\n');
    // A phrase word is never garbage (the garbage path could say the phrase), nor a word the dictionary lacks.
    expect(dictionary).not.toContain('__w_my ');
    expect(dictionary).not.toContain('__w_please');
  });

  it('leaves out unknown words, drops phrases left empty and duplicates, and says which words it dropped', () => {
    const grammar = buildPhraseGrammar(['pay my Zorblax bill', 'PAY MY BILL', 'zorblax!', '...'], lexicon, { garbageWeight: 1e-12 });
    expect([...grammar!.phrases]).toEqual(['pay my bill']);
    expect(grammar!.unknownWords).toEqual(['zorblax']);
    expect(buildPhraseGrammar(['zorblax', ''], lexicon, { garbageWeight: 1e-12 })).toBeUndefined();
  });

  it('maps a word the dictionary lists only without its apostrophe ("cafe\'s" → "cafes")', () => {
    const withVariant = Lexicon.parse("cafes K AH F EY Z\n");
    expect([...buildPhraseGrammar(["cafe's"], withVariant, { garbageWeight: 1e-12 })!.phrases]).toEqual(['cafes']);
    expect([...buildPhraseGrammar(["don't pay"], lexicon, { garbageWeight: 1e-12 })!.phrases]).toEqual(["don't pay"]);
  });

  it('parsing in slices (as loadLexicon does, to keep calls in progress on time) gives the same dictionary', async () => {
    const text = 'read R EH D\nread(2) R IY D\n\nbad\nyes Y EH S\nno N OW\ncafes K AH F EY Z\n';
    const sliced = await Lexicon.parseInSlices(text, 2);
    const whole = Lexicon.parse(text);
    for (const word of ['read', 'yes', 'no', 'cafes', 'bad']) expect(sliced.pronunciations(word)).toEqual(whole.pronunciations(word));
    expect(sliced.pronunciations('read')).toEqual(['R EH D', 'R IY D']);
    expect(sliced.has('bad')).toBe(false);
  });

  it('builds a closed grammar when the garbage weight is 0, and refuses weights it cannot write', () => {
    const closed = buildPhraseGrammar(['yes', 'no'], lexicon, { garbageWeight: 0 })!;
    expect(closed.jsgf).toContain('public <utterance> = <phrase>;');
    expect(closed.jsgf).not.toContain('<garbage>');
    expect(closed.dictionary).toBe('yes Y EH S\nno N OW\n');
    for (const bad of [1e-21, 2, -1, Number.NaN]) {
      expect(() => buildPhraseGrammar(['yes'], lexicon, { garbageWeight: bad })).toThrow(RangeError);
    }
  });
});

describe('interpretHypothesis', () => {
  const grammar = buildPhraseGrammar(['Pay my bill', 'yes'], lexicon, { garbageWeight: 1e-12 })!;

  it('returns the phrase the decoder printed, as normalised words', () => {
    expect(interpretHypothesis('pay my bill', grammar)).toBe('pay my bill');
    expect(interpretHypothesis('  yes ', grammar)).toBe('yes');
  });

  it("returns '' for the garbage path, fillers, or anything that is not a whole phrase", () => {
    expect(interpretHypothesis('__w_the __p_ae __p_n', grammar)).toBe('');
    expect(interpretHypothesis('<sil> [NOISE]', grammar)).toBe('');
    expect(interpretHypothesis('', grammar)).toBe('');
    expect(interpretHypothesis('pay my', grammar)).toBe('');
  });

  it('strips garbage around a phrase', () => {
    expect(interpretHypothesis('__p_t pay my bill __w_the', grammar)).toBe('pay my bill');
  });

  it('heardWords keeps phrase and garbage words as said, and drops phones and fillers', () => {
    expect(heardWords('<s> __w_i __w_would __w_like __p_ah book a table __w_for </s>')).toBe('i would like book a table for');
    expect(heardWords('[NOISE] __p_m __p_hh')).toBe('');
  });
});
