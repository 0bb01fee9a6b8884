import { readFile } from 'node:fs/promises';
import { CallgateError } from '../../errors.js';

/**
 * The pronunciation dictionary (CMUdict as pocketsphinx ships it: `word PH ON ES`, variants as `word(2)`),
 * loaded once per path and shared by every stream. Grammar mode needs it to write a small dictionary
 * holding only the words it uses: pocketsphinx then starts in ~20 ms instead of parsing all 135 000
 * entries itself (~300 ms), and words missing from it are found before the engine starts.
 *
 * Measured: 125 000 words, ~120 ms to parse once, ~20 MB of heap.
 */
export class Lexicon {
  private constructor(private readonly entries: ReadonlyMap<string, readonly string[]>) {}

  /** Every pronunciation of `word` (lower case), in dictionary order; undefined when it is not listed. */
  pronunciations(word: string): readonly string[] | undefined {
    return this.entries.get(word);
  }

  has(word: string): boolean {
    return this.entries.has(word);
  }

  static parse(text: string): Lexicon {
    const entries = new Map<string, string[]>();
    for (const line of text.split('\n')) {
      const space = line.indexOf(' ');
      if (space <= 0) continue;
      let word = line.slice(0, space);
      const variant = word.indexOf('(');
      if (variant > 0) word = word.slice(0, variant);
      const phones = line.slice(space + 1).trim();
      if (phones.length === 0) continue;
      const list = entries.get(word);
      if (list) list.push(phones);
      else entries.set(word, [phones]);
    }
    return new Lexicon(entries);
  }
}

const loaded = new Map<string, Promise<Lexicon>>();

/** Loads (once per path) the dictionary at `path`. Rejects with CG_STT_UNAVAILABLE when it cannot be read. */
export function loadLexicon(path: string): Promise<Lexicon> {
  let lexicon = loaded.get(path);
  if (!lexicon) {
    lexicon = readFile(path, 'latin1').then(Lexicon.parse, (err: unknown) => {
      // Forget the failure so that a later call can succeed once the model package is installed.
      loaded.delete(path);
      throw new CallgateError('CG_STT_UNAVAILABLE', 'pocketsphinx pronunciation dictionary cannot be read', { cause: err, details: { path } });
    });
    loaded.set(path, lexicon);
  }
  return lexicon;
}
