/**
 * What callers say to show they are listening, not to take the turn ("uh-huh", "okay", "right"): said
 * over the agent, these words keep it talking (adaptive barge-in, src/agent/InterruptionJudge.ts).
 * Per language (the tag's primary subtag); a tenant's `turn.backchannels` replaces the list.
 * Hand-written: no maintained package lists backchannels, and the lists are short.
 */
const LEXICON: Readonly<Record<string, readonly string[]>> = {
  en: [
    'yeah', 'yes', 'yep', 'yup', 'ya', 'uh huh', 'uh-huh', 'mhm', 'mm hmm', 'mm-hmm', 'hmm', 'mm', 'um', 'uh', 'ok', 'okay',
    'right', 'sure', 'i see', 'got it', 'alright', 'all right', 'cool', 'great', 'oh', 'ah', 'wow', 'really', 'exactly',
    'true', 'nice', 'good', 'fine', 'go on', 'i know', 'of course', 'indeed', 'totally', 'perfect', 'gotcha',
  ],
  es: ['sí', 'si', 'vale', 'claro', 'ajá', 'aja', 'ya', 'bueno', 'mhm', 'ok', 'okay', 'exacto', 'entiendo', 'perfecto', 'ah', 'oh'],
  de: ['ja', 'genau', 'okay', 'ok', 'mhm', 'stimmt', 'richtig', 'achso', 'ach so', 'klar', 'gut', 'aha', 'ah', 'oh', 'jawohl'],
  fr: ['oui', "d'accord", 'ouais', 'ok', 'okay', 'mhm', 'voilà', 'bien sûr', 'exactement', 'ah', 'oh', 'bon', 'je vois'],
  it: ['sì', 'si', 'va bene', 'certo', 'ok', 'okay', 'mhm', 'esatto', 'capito', 'ah', 'oh', 'già'],
  pt: ['sim', 'tá', 'ta', 'certo', 'claro', 'ok', 'okay', 'mhm', 'entendi', 'exato', 'ah', 'oh', 'uhum'],
};

/** The backchannel words of `language` (BCP 47); English when the language has no list. */
export function backchannelsFor(language: string): readonly string[] {
  const primary = language.toLowerCase().split(/[-_]/)[0] ?? 'en';
  return LEXICON[primary] ?? LEXICON['en']!;
}

/** Lower case, punctuation gone, hyphens as spaces: "Uh-huh." and "uh huh" compare equal. */
function normalise(text: string): string {
  return text
    .toLowerCase()
    .replace(/[-‐–—]/g, ' ')
    .replace(/[^\p{L}\p{N}' ]+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Tells backchannels from the start of a real interruption, by the words heard so far. */
export class BackchannelLexicon {
  private readonly entries: ReadonlySet<string>;
  /** Longest entry, in words: a text is matched greedily against entries up to this length. */
  private readonly maxWords: number;

  constructor(words: readonly string[]) {
    const entries = words.map(normalise).filter((w) => w.length > 0);
    this.entries = new Set(entries);
    this.maxWords = Math.max(1, ...entries.map((e) => e.split(' ').length));
  }

  /** Every word of `text` belongs to a backchannel ("yeah okay", "uh huh right"); false for ''. */
  covers(text: string): boolean {
    const words = normalise(text).split(' ').filter((w) => w.length > 0);
    if (words.length === 0) return false;
    let i = 0;
    outer: while (i < words.length) {
      for (let n = Math.min(this.maxWords, words.length - i); n >= 1; n--) {
        if (this.entries.has(words.slice(i, i + n).join(' '))) {
          i += n;
          continue outer;
        }
      }
      return false;
    }
    return true;
  }
}
