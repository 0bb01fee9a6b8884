import { seqDiff } from './rtp/sequence.js';

export interface JitterBufferOptions {
  /**
   * How long a gap may stay open waiting for a reordered packet before it is declared lost.
   * Default 60 ms (three 20 ms frames): covers the reordering seen on real paths without making the
   * agent hear the caller late.
   */
  readonly windowMs: number;
  /** Packet duration used to turn the window into a depth; the agent leg is always 20 ms. */
  readonly packetMs: number;
  /**
   * A jump of more than this many packets ahead is a sender restart (new stream), not loss:
   * concealing seconds of "loss" would only delay the caller's live audio.
   */
  readonly maxGapPackets: number;
}

export const defaultJitterBufferOptions = {
  windowMs: 60,
  packetMs: 20,
  maxGapPackets: 50,
} as const satisfies JitterBufferOptions;

/** What the buffer releases, always in sequence order. */
export type JitterOutput<P> =
  | { readonly kind: 'packet'; readonly seq: number; readonly packet: P }
  /**
   * `count` consecutive packets will never come: the decoder should conceal them. `next` is the packet
   * right after the gap when it is already here (Opus in-band FEC can rebuild the last lost frame from it).
   */
  | { readonly kind: 'lost'; readonly firstSeq: number; readonly count: number; readonly next: P | undefined };

export interface JitterBufferStats {
  readonly released: number;
  readonly lost: number;
  readonly duplicates: number;
  /** Arrived after their slot was already given up as lost. */
  readonly late: number;
  readonly reordered: number;
  readonly restarts: number;
  readonly maxDepth: number;
}

interface Slot<P> {
  packet: P;
  arrivalMs: number;
}

/**
 * Reorders one inbound stream within a bounded window. In-order packets pass straight through (no added
 * latency: the consumer is a speech pipeline, not a playout device); only a gap holds later packets back,
 * for at most `windowMs`, after which the gap is reported as loss so the decoder conceals it.
 */
export class JitterBuffer<P> {
  private readonly options: JitterBufferOptions;
  private readonly depth: number;
  private readonly pending = new Map<number, Slot<P>>();
  /** Sequence number of the next packet to release; undefined until the first packet. */
  private nextSeq: number | undefined;
  /** Recently released or given-up sequence numbers (bitmap over the last 1024) to tell duplicates from late. */
  private readonly history = new Uint8Array(1024);
  private counters = { released: 0, lost: 0, duplicates: 0, late: 0, reordered: 0, restarts: 0, maxDepth: 0 };

  constructor(
    private readonly emit: (out: JitterOutput<P>) => void,
    options: Partial<JitterBufferOptions> = {},
  ) {
    this.options = { ...defaultJitterBufferOptions, ...options };
    this.depth = Math.max(1, Math.round(this.options.windowMs / this.options.packetMs));
  }

  /** Adds one packet that arrived at `arrivalMs` (monotonic); releases whatever became ready. */
  push(seq: number, packet: P, arrivalMs: number): void {
    if (this.nextSeq === undefined) {
      this.nextSeq = seq;
    }
    const d = seqDiff(seq, this.nextSeq);
    if (d < 0) {
      if (d < -this.history.length / 2) {
        this.restart(seq);
      } else {
        if (this.history[seq & 1023] === 1) this.counters.duplicates++;
        else this.counters.late++;
        return;
      }
    } else if (d > this.options.maxGapPackets) {
      this.restart(seq);
    }

    if (this.pending.has(seq)) {
      this.counters.duplicates++;
      return;
    }
    if (seq !== this.nextSeq) this.counters.reordered++;
    this.pending.set(seq, { packet, arrivalMs });
    if (this.pending.size > this.counters.maxDepth) this.counters.maxDepth = this.pending.size;
    this.drain(arrivalMs);
  }

  /** Releases gaps whose wait ran out; call it on the media clock so a stream that stops is not held. */
  poll(nowMs: number): void {
    this.drain(nowMs);
  }

  /** Releases everything still held (end of call), reporting the gaps in between as loss. */
  flush(): void {
    while (this.pending.size > 0) this.giveUpGap();
  }

  get size(): number {
    return this.pending.size;
  }

  /** The resolved reorder window: how long a held gap may wait before `poll` gives it up. */
  get windowMs(): number {
    return this.options.windowMs;
  }

  stats(): JitterBufferStats {
    return { ...this.counters };
  }

  private drain(nowMs: number): void {
    for (;;) {
      this.releaseInOrder();
      if (this.pending.size === 0) return;
      // A gap is open: give it up when the oldest waiting packet has waited the window out, or when the
      // buffer holds a window's worth of packets beyond it.
      let oldest = Infinity;
      for (const slot of this.pending.values()) if (slot.arrivalMs < oldest) oldest = slot.arrivalMs;
      if (nowMs - oldest < this.options.windowMs && this.pending.size < this.depth) return;
      this.giveUpGap();
    }
  }

  private releaseInOrder(): void {
    let seq = this.nextSeq;
    if (seq === undefined) return;
    for (let slot = this.pending.get(seq); slot !== undefined; slot = this.pending.get(seq)) {
      this.pending.delete(seq);
      this.history[seq & 1023] = 1;
      this.counters.released++;
      this.emit({ kind: 'packet', seq, packet: slot.packet });
      seq = (seq + 1) & 0xffff;
    }
    this.nextSeq = seq;
  }

  /** Declares the gap before the lowest held packet lost and moves past it. */
  private giveUpGap(): void {
    const from = this.nextSeq;
    if (from === undefined) return;
    let lowest = -1;
    let lowestDist = Infinity;
    for (const s of this.pending.keys()) {
      const dist = seqDiff(s, from);
      if (dist < lowestDist) {
        lowestDist = dist;
        lowest = s;
      }
    }
    if (lowest < 0 || lowestDist <= 0) return;
    for (let i = 0; i < lowestDist; i++) this.history[(from + i) & 1023] = 0;
    this.counters.lost += lowestDist;
    this.emit({ kind: 'lost', firstSeq: from, count: lowestDist, next: this.pending.get(lowest)?.packet });
    this.nextSeq = lowest;
    this.releaseInOrder();
  }

  /** The sender restarted its sequence: release what we hold and follow the new numbering. */
  private restart(seq: number): void {
    this.releaseHeldInArrivalOrder();
    this.history.fill(0);
    this.nextSeq = seq;
    this.counters.restarts++;
  }

  private releaseHeldInArrivalOrder(): void {
    const held = [...this.pending.entries()].sort((a, b) => a[1].arrivalMs - b[1].arrivalMs);
    this.pending.clear();
    for (const [seq, slot] of held) {
      this.counters.released++;
      this.emit({ kind: 'packet', seq, packet: slot.packet });
    }
  }
}
