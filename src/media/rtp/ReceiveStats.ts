import { seqDiff } from './sequence.js';

/** Per-leg inbound statistics as RTCP would report them (RFC 3550 A.1, A.3, A.8). */
export interface ReceiveStatsSnapshot {
  readonly packets: number;
  readonly bytes: number;
  /** Packets expected from the sequence numbers seen minus packets received (A.3); never negative here. */
  readonly lost: number;
  readonly expected: number;
  /** Interarrival jitter (A.8) in milliseconds. */
  readonly jitterMs: number;
  /** Times the sender's SSRC or sequence restarted (re-INVITE, media server switch). */
  readonly restarts: number;
}

/**
 * A.1's limits: a jump of more than MAX_DROPOUT ahead, or MAX_MISORDER behind, is not loss or reordering
 * but a sender that restarted its sequence; two consecutive packets in the new run confirm it.
 */
const MAX_DROPOUT = 3000;
const MAX_MISORDER = 100;

export class ReceiveStats {
  private packets = 0;
  private bytes = 0;
  private received = 0;
  private baseExtSeq = 0;
  private maxExtSeq = 0;
  private cycles = 0;
  private badSeq = -1;
  private started = false;
  private restarts = 0;
  private ssrc = -1;
  /** Jitter in timestamp units, scaled as in A.8 (the /16 filter kept in floating point). */
  private jitter = 0;
  private lastTransit: number | undefined;
  private priorExpected = 0;
  private priorLost = 0;

  constructor(private readonly clockRate: number) {}

  /** `arrivalMs` on a monotonic clock. Duplicates count as received, as RFC 3550 does. */
  record(ssrc: number, seq: number, rtpTimestamp: number, arrivalMs: number, size: number): void {
    this.packets++;
    this.bytes += size;
    if (!this.started || ssrc !== this.ssrc) {
      if (this.started) this.restarts++;
      this.restart(ssrc, seq);
    } else {
      const maxSeq = this.maxExtSeq & 0xffff;
      const d = seqDiff(seq, maxSeq);
      if (d > 0 && d < MAX_DROPOUT) {
        if (seq < maxSeq) this.cycles += 0x10000;
        this.maxExtSeq = this.cycles + seq;
        this.badSeq = -1;
      } else if (d <= 0 && d >= -MAX_MISORDER) {
        // duplicate or reordered: counted as received below
      } else if (seq === this.badSeq) {
        this.restarts++;
        this.restart(ssrc, seq);
      } else {
        this.badSeq = (seq + 1) & 0xffff;
        return;
      }
    }
    this.received++;

    // A.8: transit = arrival − timestamp, both in timestamp units; J += (|D| − J)/16.
    const transit = (arrivalMs * this.clockRate) / 1000 - rtpTimestamp;
    if (this.lastTransit !== undefined) {
      let d = transit - this.lastTransit;
      // A timestamp wrap makes transit jump by 2^32: fold it back.
      if (d > 2 ** 31) d -= 2 ** 32;
      else if (d < -(2 ** 31)) d += 2 ** 32;
      this.jitter += (Math.abs(d) - this.jitter) / 16;
    }
    this.lastTransit = transit;
  }

  snapshot(): ReceiveStatsSnapshot {
    const expected = this.started ? this.maxExtSeq - this.baseExtSeq + 1 : 0;
    return {
      packets: this.packets,
      bytes: this.bytes,
      expected: this.priorExpected + expected,
      lost: this.priorLost + Math.max(0, expected - this.received),
      jitterMs: (this.jitter * 1000) / this.clockRate,
      restarts: this.restarts,
    };
  }

  private restart(ssrc: number, seq: number): void {
    // Keep what the previous run lost and expected: a restart must not hide loss from the call's totals.
    if (this.started) {
      const expected = this.maxExtSeq - this.baseExtSeq + 1;
      this.priorExpected += expected;
      this.priorLost += Math.max(0, expected - this.received);
    }
    this.ssrc = ssrc;
    this.started = true;
    this.cycles = 0;
    this.baseExtSeq = seq;
    this.maxExtSeq = seq;
    this.badSeq = -1;
    this.received = 0;
    this.lastTransit = undefined;
  }
}
