import type { Lexicon } from './lexicon.js';

/**
 * Phrase grammars for pocketsphinx: the tenant's expected phrases as a JSGF grammar, with a garbage path
 * beside them, and the small pronunciation dictionary the grammar needs.
 *
 * Why a garbage path: a closed grammar makes the decoder pick the nearest phrase for *any* speech
 * ("my name is John" came out as "pay my bill"). Beside the phrases the grammar offers a loop of
 * garbage units — the 39 English phones and ~100 short common words — each with a small prior
 * (`garbageWeight`) so that speech the phrases explain well still goes to the phrases.
 *
 * Measured on flite speech (4 voices, each through the telephone band and through 8 kHz µ-law): 8
 * phrases, 11 unrelated sentences, 5 near misses ("pay my rent", "check my order status", "cancel my
 * subscription", "talk to the manager", "hello"), 3 noises; each the first utterance of a fresh decoder,
 * the hardest case:
 *
 *   garbage path                          phrases exact   unrelated → ''   near misses → ''   noise → ''
 *   none (closed grammar)                     64/64            12/88              0/40            0/3
 *   phones, weight 1                          42/64            88/88             34/40            3/3
 *   phones, weight 1e-7                       58/64            85/88              8/40            3/3
 *   phones + words, weight 1e-8               54/64            88/88             19/40            3/3
 *   phones + words, weight 1e-12 (default)    59/64            88/88             14/40            3/3
 *   keyword spotting (-kws, 1e-2 per phone)   50/64            86/88             39/40            1/3
 *
 * Through this provider's streams the default gave 61/64, 86/88, 14/40, 3/3 on first utterances, and
 * 63/64, 88/88, 10/40 later in a call (normalisation adapted). The phrases missed are "yes"/"no" said
 * alone: with the band cut above 3.2 kHz the /s/ of "yes" is gone and a short garbage path fits as well.
 * Near misses are the weak spot: "pay my rent" shares most of its sounds with "pay my bill", and the
 * decoder's filler words (noise, silence) can absorb the part that differs. The same fillers often let
 * a phrase through from inside a longer sentence ("please tell me the opening hours of the store").
 */

export interface PhraseGrammarOptions {
  /**
   * Prior of one garbage unit, in (1e-20, 1]. Lower gives phrases more room (more phrases recognised,
   * more near misses accepted); 0 turns the garbage path off (a closed grammar).
   */
  readonly garbageWeight: number;
}

/** A grammar ready to be written next to the decoder, and how to read what the decoder prints. */
export interface PhraseGrammar {
  /** JSGF source for `-jsgf`. */
  readonly jsgf: string;
  /** Pronunciation dictionary for `-dict`: the phrase words and the garbage units. */
  readonly dictionary: string;
  /** The phrases as the decoder prints them: normalised words, e.g. "hi i'm ava from joe's pizza". */
  readonly phrases: ReadonlySet<string>;
  /** Words of the phrases the dictionary does not know; they are left out of the grammar. */
  readonly unknownWords: readonly string[];
}

/** Prefix of the garbage units' names; nothing a phrase normalises to can start with it. */
const GARBAGE_PREFIX = '__';

/** The CMU phone set the en-us acoustic model uses (fillers and silence excluded). */
const PHONES = [
  'AA', 'AE', 'AH', 'AO', 'AW', 'AY', 'B', 'CH', 'D', 'DH', 'EH', 'ER', 'EY', 'F', 'G', 'HH', 'IH', 'IY', 'JH', 'K',
  'L', 'M', 'N', 'NG', 'OW', 'OY', 'P', 'R', 'S', 'SH', 'T', 'TH', 'UH', 'UW', 'V', 'W', 'Y', 'Z', 'ZH',
] as const;

/**
 * Short, frequent English words as garbage units. Hand-picked (no package lists them for this purpose):
 * whole words give the garbage path realistic co-articulation that a loop of single phones lacks, and in
 * the measurement above they halved the near misses accepted.
 */
const GARBAGE_WORDS = [
  'the', 'a', 'an', 'and', 'to', 'of', 'in', 'is', 'it', 'i', 'you', 'that', 'he', 'was', 'for', 'on', 'are', 'with',
  'as', 'his', 'they', 'be', 'at', 'one', 'have', 'this', 'from', 'or', 'had', 'by', 'not', 'but', 'what', 'all',
  'were', 'we', 'when', 'your', 'can', 'said', 'there', 'use', 'each', 'which', 'she', 'do', 'how', 'their', 'if',
  'will', 'up', 'other', 'about', 'out', 'many', 'then', 'them', 'these', 'so', 'some', 'her', 'would', 'make',
  'like', 'him', 'into', 'time', 'has', 'look', 'two', 'more', 'write', 'go', 'see', 'number', 'no', 'way', 'could',
  'people', 'my', 'than', 'first', 'water', 'been', 'call', 'who', 'oil', 'its', 'now', 'find', 'long', 'down', 'day',
  'did', 'get', 'come', 'made', 'may', 'part', 'yes', 'please',
] as const;

const SMALL_NUMBERS = [
  'zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve',
  'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen',
] as const;
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'] as const;
const DIGITS = SMALL_NUMBERS.slice(0, 10);

/** English words for 0 ≤ n < 1 000 000 000, the way a caller would say them ("two hundred five"). */
function numberWords(n: number): string[] {
  if (n < 20) return [SMALL_NUMBERS[n] as string];
  if (n < 100) return n % 10 === 0 ? [TENS[n / 10] as string] : [TENS[Math.floor(n / 10)] as string, SMALL_NUMBERS[n % 10] as string];
  for (const [size, name] of [[1_000_000, 'million'], [1000, 'thousand'], [100, 'hundred']] as const) {
    if (n >= size) {
      const rest = n % size;
      return [...numberWords(Math.floor(n / size)), name, ...(rest === 0 ? [] : numberWords(rest))];
    }
  }
  return [];
}

/**
 * A number as spoken: amounts with thousands separators ("1,250") and short runs ("24", "2024") as
 * numbers; longer runs and runs with a leading zero (phone numbers, codes, "0800") digit by digit.
 */
function digitWords(token: string): string[] {
  const digits = token.replace(/,/g, '');
  const asNumber = token.includes(',') ? digits.length <= 9 : digits.length <= 4 && !(digits.length > 1 && digits.startsWith('0'));
  return asNumber ? numberWords(Number(digits)) : [...digits].map((d) => DIGITS[Number(d)] as string);
}

/**
 * The words a phrase is spoken as: lower case, accents and punctuation dropped, `&`/`%`/`+`/`@` and digits
 * spelled out, apostrophes kept inside words ("don't" is in the dictionary as such).
 */
export function normalisePhrase(text: string): string[] {
  const spelled = text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[\u2018\u2019`]/g, "'")
    .replace(/&/g, ' and ')
    .replace(/%/g, ' percent ')
    .replace(/\+/g, ' plus ')
    .replace(/@/g, ' at ')
    .replace(/(\d)([a-z])/g, '$1 $2')
    .replace(/([a-z])(\d)/g, '$1 $2');
  const words: string[] = [];
  // Numbers with thousands separators, or runs of letters, digits and apostrophes.
  for (const [raw] of spelled.matchAll(/\d{1,3}(?:,\d{3})+(?!\d)|[a-z0-9']+/g)) {
    const token = raw.replace(/^'+|'+$/g, '');
    if (token.length === 0) continue;
    if (/^[\d,]+$/.test(token)) words.push(...digitWords(token));
    else words.push(token);
  }
  return words;
}

/** `word` as the dictionary knows it, or undefined: "it's" as is, "acme's" → "acmes" if that is listed. */
function dictionaryWord(word: string, lexicon: Lexicon): string | undefined {
  if (lexicon.has(word)) return word;
  const bare = word.replace(/'/g, '');
  return bare !== word && lexicon.has(bare) ? bare : undefined;
}

/** A JSGF weight without exponent notation, which the sphinxbase JSGF parser rejects. */
function jsgfWeight(weight: number): string {
  return weight.toFixed(20).replace(/0+$/, '').replace(/\.$/, '');
}

/**
 * Builds the grammar for `phrases`. Words the dictionary does not know are left out (listed in
 * `unknownWords`); a phrase left with no words is dropped. Returns undefined when no phrase is usable,
 * so the caller can fall back to the general language model.
 */
export function buildPhraseGrammar(phrases: readonly string[], lexicon: Lexicon, options: PhraseGrammarOptions): PhraseGrammar | undefined {
  const { garbageWeight } = options;
  if (!(garbageWeight === 0 || (garbageWeight > 1e-20 && garbageWeight <= 1))) {
    throw new RangeError(`garbageWeight ${garbageWeight} is outside (1e-20, 1] and not 0`);
  }
  const byText = new Set<string>();
  const unknown = new Set<string>();
  const used = new Set<string>();
  for (const phrase of phrases) {
    const words: string[] = [];
    for (const word of normalisePhrase(phrase)) {
      const known = dictionaryWord(word, lexicon);
      if (known === undefined) unknown.add(word);
      else words.push(known);
    }
    if (words.length === 0) continue;
    const text = words.join(' ');
    byText.add(text);
    for (const w of words) used.add(w);
  }
  if (byText.size === 0) return undefined;

  const dictionary: string[] = [];
  const addWord = (name: string, pronunciations: readonly string[]): void => {
    pronunciations.forEach((phones, i) => dictionary.push(i === 0 ? `${name} ${phones}` : `${name}(${i + 1}) ${phones}`));
  };
  for (const word of used) addWord(word, lexicon.pronunciations(word) ?? []);

  const lines = ['#JSGF V1.0;', 'grammar callgate;'];
  const phraseRule = `<phrase> = ${[...byText.keys()].join(' | ')};`;
  if (garbageWeight === 0) {
    lines.push('public <utterance> = <phrase>;', phraseRule);
  } else {
    const units: string[] = [];
    for (const phone of PHONES) {
      const name = `${GARBAGE_PREFIX}p_${phone.toLowerCase()}`;
      units.push(name);
      addWord(name, [phone]);
    }
    for (const word of GARBAGE_WORDS) {
      // A phrase word as garbage would let the garbage path say the phrase itself.
      const first = lexicon.pronunciations(word)?.[0];
      if (used.has(word) || first === undefined) continue;
      const name = `${GARBAGE_PREFIX}w_${word}`;
      units.push(name);
      addWord(name, [first]);
    }
    const weight = jsgfWeight(garbageWeight);
    lines.push(
      'public <utterance> = <phrase> | <garbage>;',
      phraseRule,
      '<garbage> = <unit>+;',
      `<unit> = ${units.map((u) => `/${weight}/ ${u}`).join(' | ')};`,
    );
  }
  return { jsgf: `${lines.join('\n')}\n`, dictionary: `${dictionary.join('\n')}\n`, phrases: byText, unknownWords: [...unknown] };
}

/**
 * What one decoder line means: a phrase, as normalised words, or '' when the utterance took the garbage
 * path (or was only noise). Normalised rather than as the tenant wrote it, like every STT's output: the
 * agent matches words, and the general model's output has the same form.
 */
/** The decoder's words as heard: phrase words and garbage words ("__w_for" → "for"); phones and fillers left out. */
export function heardWords(line: string): string {
  const wordUnit = `${GARBAGE_PREFIX}w_`;
  return line
    .split(/\s+/)
    .map((w) => (w.startsWith(wordUnit) ? w.slice(wordUnit.length) : w))
    .filter((w) => w.length > 0 && !w.startsWith(GARBAGE_PREFIX) && !w.startsWith('<') && !w.startsWith('['))
    .join(' ');
}

export function interpretHypothesis(line: string, grammar: PhraseGrammar): string {
  const text = line
    .split(/\s+/)
    .filter((w) => w.length > 0 && !w.startsWith(GARBAGE_PREFIX) && !w.startsWith('<') && !w.startsWith('['))
    .join(' ');
  return grammar.phrases.has(text) ? text : '';
}
