/**
 * Cuts streaming LLM text into pieces worth sending to TTS on their own: whole sentences, and a first
 * clause early so the caller hears the reply start before the model has finished its first sentence.
 * Hand-written because the libraries for this (sentence tokenisers) work on whole texts, not deltas.
 */
export interface SentenceSplitterOptions {
  /**
   * The first piece of a reply may end at a comma/semicolon/colon once it has this many characters:
   * TTS on a clause starts audio sooner; later pieces wait for whole sentences, which sound better.
   */
  readonly firstClauseMinChars: number;
  /** A piece shorter than this is held and joined to the next ("OK." alone is a poor TTS request). */
  readonly minChars: number;
  /** A sentence running longer than this is cut at its last space, so TTS never waits on a run-on. */
  readonly maxChars: number;
}

export const defaultSentenceSplitterOptions = {
  /** ~3 words. */
  firstClauseMinChars: 16,
  /** "Yes." and "Sure!" stay whole; shorter fragments join the next sentence. */
  minChars: 4,
  /** ~40 words, ~12 s of speech. */
  maxChars: 240,
} as const satisfies SentenceSplitterOptions;

/**
 * Abbreviations whose period does not end a sentence (lower case, without the period). Not "no": in
 * speech "No." ends a sentence far more often than it abbreviates "number".
 */
const ABBREVIATIONS = new Set(['mr', 'mrs', 'ms', 'dr', 'prof', 'sr', 'jr', 'st', 'vs', 'etc', 'e.g', 'i.e', 'approx', 'tel', 'ave', 'inc', 'ltd']);

export class SentenceSplitter {
  private buffer = '';
  private emitted = 0;
  private readonly opts: SentenceSplitterOptions;

  constructor(options: Partial<SentenceSplitterOptions> = {}) {
    this.opts = { ...defaultSentenceSplitterOptions, ...options };
  }

  /** Adds a text delta; returns the pieces it completed (possibly none). */
  push(delta: string): string[] {
    // Leading whitespace is dropped as it arrives, not only after a cut: otherwise the spaces a stream
    // happens to deliver after a cut would count towards minChars/maxChars and move later cuts.
    this.buffer = (this.buffer + delta).replace(/^\s+/, '');
    const out: string[] = [];
    for (;;) {
      const cut = this.findCut();
      if (cut < 0) break;
      const piece = this.buffer.slice(0, cut).trim();
      this.buffer = this.buffer.slice(cut).replace(/^\s+/, '');
      if (piece) {
        out.push(piece);
        this.emitted++;
      }
    }
    return out;
  }

  /** The text model finished: whatever is left is the last piece. */
  flush(): string[] {
    const rest = this.buffer.trim();
    this.buffer = '';
    if (!rest) return [];
    this.emitted++;
    return [rest];
  }

  /** Index just past the end of the next complete piece in the buffer, or -1. */
  private findCut(): number {
    const b = this.buffer;
    for (let i = 0; i < b.length; i++) {
      const ch = b[i]!;
      const next = b[i + 1];
      // A boundary needs the following whitespace to have arrived: "3." may become "3.5".
      if (next === undefined) break;
      const followedBySpace = /\s/.test(next);
      if (ch === '\n' && i + 1 >= this.opts.minChars) return i + 1;
      if ((ch === '.' || ch === '!' || ch === '?') && followedBySpace) {
        if (i + 1 < this.opts.minChars) continue;
        if (ch === '.' && this.isAbbreviation(i)) continue;
        return i + 1;
      }
      if (this.emitted === 0 && (ch === ',' || ch === ';' || ch === ':') && followedBySpace && i + 1 >= this.opts.firstClauseMinChars) {
        return i + 1;
      }
      if (i + 1 >= this.opts.maxChars) {
        const space = b.lastIndexOf(' ', i);
        return space > 0 ? space : i + 1;
      }
    }
    return -1;
  }

  private isAbbreviation(periodIndex: number): boolean {
    const before = this.buffer.slice(0, periodIndex);
    const word = /([A-Za-z.]+)$/.exec(before)?.[1]?.toLowerCase();
    if (!word) return false;
    // Single capital letters are initials ("J. Smith").
    return ABBREVIATIONS.has(word) || /^[a-z]$/.test(word);
  }
}
