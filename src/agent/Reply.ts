import { FRAME_MS } from '../media/types.js';

/**
 * Bookkeeping for one thing the agent says (a reply, a prompt): which pieces of text were queued as
 * how much audio, so that after a barge-in we know what the caller actually heard (history keeps only
 * that) and where to resume after a false interruption (the interrupted piece, from its start).
 */
export interface ReplyPiece {
  readonly text: string;
  /** Audio queued for it; 0 while it is still being synthesised. */
  durationMs: number;
}

export class Reply {
  readonly pieces: ReplyPiece[] = [];
  /** Text spoken before this reply started, when it resumes an interrupted one (for history). */
  readonly prefix: string;
  /** The model asked to end the call after this reply. */
  hangupAfter = false;
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
  get fullText(): string {
    return joinText([this.prefix, ...this.pieces.filter((p) => p.durationMs > 0).map((p) => p.text)]);
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
        parts.push(piece.text);
        at += piece.durationMs;
        continue;
      }
      const words = piece.text.split(/\s+/);
      const share = Math.max(0, (playedMs - at) / piece.durationMs);
      const heard = words.slice(0, Math.floor(words.length * share));
      if (heard.length > 0) parts.push(`${heard.join(' ')}…`);
      break;
    }
    return joinText(parts);
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
