/**
 * When the caller's turn is over: how much silence after their last word ends it, given what is known
 * at that moment. `TurnDetector` asks on every silent frame, so the answer may change as the STT's text
 * arrives. Implementations: `FixedSilence` (the tenant's endpointing, whatever was said) and
 * `TextEndOfTurn` (the default: the words decide). A model-based detector (a turn model run on the
 * audio or the text) implements the same interface.
 */
export interface TurnSoFar {
  /**
   * The STT's text of the turn so far: interim results, or the text of a look taken at a pause;
   * undefined while nothing is known (no interim results, no look yet), '' when it heard no words.
   */
  readonly text: string | undefined;
  /** The engine's words as heard, when its text is a matched phrase or nothing (pocketsphinx). */
  readonly heard?: string | undefined;
  /** The engine said the speech ended (Deepgram's speech_final / UtteranceEnd). */
  readonly vendorEnd: boolean;
}

export interface EndOfTurn {
  /** Silence after the last speech frame that ends the turn. */
  silenceNeededMs(turn: TurnSoFar): number;
  /** The longest silence it ever asks for (the stall timer for audio that stops arriving uses it). */
  readonly maxSilenceMs: number;
}

export class FixedSilence implements EndOfTurn {
  constructor(readonly maxSilenceMs: number) {}
  silenceNeededMs(): number {
    return this.maxSilenceMs;
  }
}

export interface TextEndOfTurnOptions {
  /** A finished sentence or question (or the engine's own end of speech). */
  readonly finishedMs: number;
  /** Nothing known yet (no text): the tenant's endpointing. */
  readonly unknownMs: number;
  /** Speech with no words in it so far: a mumble, or the first half of something the engine will get whole. */
  readonly noWordsMs: number;
  /** An unfinished clause ("a table for", "my number is five five five"). */
  readonly unfinishedMs: number;
}

/** Words after which a sentence cannot end (English): articles, prepositions, conjunctions, "is"… */
const OPEN_ENDINGS = new Set([
  'a', 'an', 'the', 'for', 'to', 'of', 'in', 'on', 'at', 'by', 'with', 'from', 'about', 'into', 'onto', 'than', 'like',
  'and', 'or', 'but', 'so', 'because', 'if', 'when', 'that', 'which', 'who', 'whose', 'where', 'while', 'as', 'then',
  'is', 'are', 'was', 'were', 'am', 'be', 'been', 'being', 'will', 'would', 'can', 'could', 'should', 'shall', 'may',
  'might', 'must', 'do', 'does', 'did', 'have', 'has', 'had', 'my', 'your', 'our', 'their', 'his', 'her', 'its',
  'this', 'these', 'those', 'some', 'any', 'no', 'very', 'i', "i'm", "i'd", "i'll", 'we', "we're", "it's", 'um', 'uh',
  'er', 'erm', 'just', 'maybe', 'also', 'need', 'want', 'let', "let's", 'please',
]);

/** Spoken and written numbers: a caller reading digits pauses between groups. */
const NUMBER_WORD =
  /^(?:\d+|zero|oh|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|double|triple)$/;

/** The text stops where a sentence cannot: an open word, a run of numbers, a comma or a dash. */
export function unfinishedClause(text: string): boolean {
  const trimmed = text.trim();
  if (trimmed === '') return false;
  if (/[,;:\-–—…]$/.test(trimmed) || /\.\.\.$/.test(trimmed)) return true;
  if (/[.?!]$/.test(trimmed)) return false;
  const words = trimmed.toLowerCase().replace(/[^\p{L}\p{N}' ]+/gu, ' ').split(/\s+/).filter(Boolean);
  const last = words.at(-1);
  if (last === undefined) return false;
  if (OPEN_ENDINGS.has(last)) return true;
  // "five five five", "my number is 0 7 9": one number word after another is a sequence still being read.
  const prev = words.at(-2);
  return NUMBER_WORD.test(last) && prev !== undefined && NUMBER_WORD.test(prev);
}

export class TextEndOfTurn implements EndOfTurn {
  readonly maxSilenceMs: number;

  constructor(private readonly opts: TextEndOfTurnOptions) {
    this.maxSilenceMs = Math.max(opts.finishedMs, opts.unknownMs, opts.noWordsMs, opts.unfinishedMs);
  }

  silenceNeededMs(turn: TurnSoFar): number {
    const { text, heard } = turn;
    // The words as heard count only beside a text: with none, they are the engine's guesses at sounds it
    // could not place (often short function words), not a clause.
    const heardOpen = heard !== undefined && text !== undefined && text.trim() !== '' && unfinishedClause(heard);
    if ((text !== undefined && unfinishedClause(text)) || heardOpen) return this.opts.unfinishedMs;
    if (turn.vendorEnd) return this.opts.finishedMs;
    if (text === undefined) return this.opts.unknownMs;
    if (text.trim() === '') return this.opts.noWordsMs;
    return this.opts.finishedMs;
  }
}
