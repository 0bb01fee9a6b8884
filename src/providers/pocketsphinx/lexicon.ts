import { readFile } from 'node:fs/promises';
import { CallgateError } from '../../errors.js';

/**
 * The pronunciation dictionary (CMUdict as pocketsphinx ships it: `word PH ON ES`, variants as `word(2)`),
 * loaded once per path and shared by every stream. Grammar mode needs it to write a small dictionary
 * holding only the words it uses: pocketsphinx then starts in ~20 ms instead of parsing all 135 000
 * entries itself (~300 ms), and words missing from it are found before the engine starts.
 *
 * Measured: 125 000 words, ~120 ms to parse once, ~20 MB of heap. `loadLexicon` parses in slices of a
 * few ms, yielding between them: parsed in one go, the first call of a process had its audio stalled
 * for those 120 ms (its greeting left late, so its own echo came back outside the echo guard's window).
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
    for (const line of text.split('\n')) addLine(entries, line);
    return new Lexicon(entries);
  }

  /** As `parse`, yielding to the event loop every `sliceLines` lines so calls in progress keep their timing. */
  static async parseInSlices(text: string, sliceLines = 5000): Promise<Lexicon> {
    const entries = new Map<string, string[]>();
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i += sliceLines) {
      for (const line of lines.slice(i, i + sliceLines)) addLine(entries, line);
      await new Promise((resolve) => setImmediate(resolve));
    }
    return new Lexicon(entries);
  }
}

/** One `word PH ON ES` line (variants `word(2)` join their word's list); blank and malformed lines are skipped. */
function addLine(entries: Map<string, string[]>, line: string): void {
  const space = line.indexOf(' ');
  if (space <= 0) return;
  let word = line.slice(0, space);
  const variant = word.indexOf('(');
  if (variant > 0) word = word.slice(0, variant);
  const phones = line.slice(space + 1).trim();
  if (phones.length === 0) return;
  const list = entries.get(word);
  if (list) list.push(phones);
  else entries.set(word, [phones]);
}

const loaded = new Map<string, Promise<Lexicon>>();

/** Loads (once per path) the dictionary at `path`. Rejects with CG_STT_UNAVAILABLE when it cannot be read. */
export function loadLexicon(path: string): Promise<Lexicon> {
  let lexicon = loaded.get(path);
  if (!lexicon) {
    lexicon = readFile(path, 'latin1').then((text) => Lexicon.parseInSlices(text), (err: unknown) => {
      // Forget the failure so that a later call can succeed once the model package is installed.
      loaded.delete(path);
      throw new CallgateError('CG_STT_UNAVAILABLE', 'pocketsphinx pronunciation dictionary cannot be read', { cause: err, details: { path } });
    });
    loaded.set(path, lexicon);
  }
  return lexicon;
}
