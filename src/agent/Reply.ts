import { FRAME_MS } from '../media/types.js';

/**
 * Bookkeeping for one thing the agent says (a reply, a prompt): which pieces of text were queued as
 * how much audio, so that after a barge-in we know what the caller actually heard (history keeps only
 * that) and where to resume after a false interruption (the interrupted piece, from its start).
 */
export interface ReplyPiece {
  /** A speech-to-speech model's piece grows as its transcript comes; a cascade's is fixed. */
  text: string;
  /** Audio queued for it; 0 while it is still being synthesised. */
  durationMs: number;
  /** Its synthesis failed after some of its audio: the caller heard only the start of it. */
  cutShort?: true;
}

/** Speech rate assumed for a cut-short piece when the reply has no whole piece to measure it by (~14 chars/s). */
const DEFAULT_MS_PER_CHAR = 70;

export class Reply {
  readonly pieces: ReplyPiece[] = [];
  /** Text spoken before this reply started, when it resumes an interrupted one (for history). */
  readonly prefix: string;
  /** The model asked to end the call after this reply. */
  hangupAfter = false;
  /** Text of this reply the model's history already holds (what it said before calling tools). */
  historyHas = '';
  private queuedTotalMs = 0;

  constructor(readonly turn: number, prefix = '') {
    this.prefix = prefix;
  }

  /** A piece of text is known (it may not have audio yet). */
  addPiece(text: string): ReplyPiece {
    const piece = { text, durationMs: 0 };
    this.pieces.push(piece);
    return piece;
  }

  /** Audio for a piece went into the leg's queue. */
  addAudio(piece: ReplyPiece, durationMs: number): void {
    piece.durationMs += durationMs;
    this.queuedTotalMs += durationMs;
  }

  get queuedMs(): number {
    return this.queuedTotalMs;
  }

  /** Everything that got audio (a piece whose synthesis failed was never heard). */
  /** Synthesis of `piece` failed after some of its audio had been queued. */
  cutShort(piece: ReplyPiece): void {
    if (piece.durationMs > 0) piece.cutShort = true;
  }

  /** What of `spokenText` the history does not hold yet: all of it, less what was said before tool calls. */
  notInHistory(spokenText: string): string {
    const had = this.historyHas.trim();
    if (!had) return spokenText;
    const squash = (t: string): string => t.replace(/\s+/g, ' ').trim();
    const spoken = squash(spokenText);
    const before = squash(had);
    return spoken.startsWith(before) ? spoken.slice(before.length).trim() : spokenText;
  }

  get fullText(): string {
    return joinText([this.prefix, ...this.pieces.filter((p) => p.durationMs > 0).map((p) => (p.cutShort ? this.heardOf(p, 1) : p.text))]);
  }

  /**
   * What the caller heard after `playedMs` of this reply: whole pieces, then the words of the piece
   * under way in proportion to its played share (speech rate is even enough within one sentence).
   */
  spokenText(playedMs: number): string {
    const parts = [this.prefix];
    let at = 0;
    for (const piece of this.pieces) {
      // Never heard: its synthesis failed (what follows, e.g. the apology, may still have played) or is
      // still under way (then nothing after it has audio either).
      if (piece.durationMs === 0) continue;
      if (at + piece.durationMs <= playedMs + FRAME_MS / 2) {
        parts.push(piece.cutShort ? this.heardOf(piece, 1) : piece.text);
        at += piece.durationMs;
        continue;
      }
      parts.push(this.heardOf(piece, Math.max(0, (playedMs - at) / piece.durationMs)));
      break;
    }
    return joinText(parts);
  }

  /**
   * The words of `piece` heard when `share` of its queued audio played: in proportion, with an ellipsis
   * when cut. A cut-short piece's whole length is unknown, so its audio's share of the text is estimated
   * from this reply's speech rate.
   */
  private heardOf(piece: ReplyPiece, share: number): string {
    let fraction = share;
    if (piece.cutShort) {
      const whole = this.pieces.filter((p) => p.durationMs > 0 && !p.cutShort);
      const chars = whole.reduce((n, p) => n + p.text.length, 0);
      const msPerChar = chars > 0 ? whole.reduce((n, p) => n + p.durationMs, 0) / chars : DEFAULT_MS_PER_CHAR;
      fraction = Math.min(1, share * (piece.durationMs / (piece.text.length * msPerChar)));
    }
    if (fraction >= 1 && !piece.cutShort) return piece.text;
    const words = piece.text.split(/\s+/);
    const heard = words.slice(0, Math.min(words.length - (piece.cutShort ? 1 : 0), Math.floor(words.length * fraction)));
    return heard.length > 0 ? `${heard.join(' ')}…` : '';
  }

  /** Where to resume after `playedMs`: the pieces from the interrupted one on, and what came before. */
  resumePoint(playedMs: number): { readonly before: string; readonly remaining: readonly string[] } {
    let at = 0;
    let i = 0;
    for (; i < this.pieces.length; i++) {
      const d = this.pieces[i]!.durationMs;
      if (d === 0 || at + d > playedMs + FRAME_MS / 2) break;
      at += d;
    }
    return {
      before: joinText([this.prefix, ...this.pieces.slice(0, i).map((p) => p.text)]),
      remaining: this.pieces.slice(i).map((p) => p.text),
    };
  }
}

export function joinText(parts: readonly string[]): string {
  return parts.filter((p) => p.trim() !== '').join(' ').trim();
}
