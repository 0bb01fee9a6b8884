import { dbfs } from '../media/signal.js';
import { FRAME_MS, PIPELINE_RATE, samplesPerFrame } from '../media/types.js';

/**
 * Keeps the agent from hearing itself. On phone lines the far end's hybrid (or a speakerphone) returns
 * part of the agent's voice, typically 10–30 dB down, a few to a few hundred ms later. While the agent
 * speaks, an inbound frame counts as the caller only if it is louder than the loudest frame the agent
 * sent within the echo window, minus a margin: its echo cannot be, a caller talking over it usually is.
 *
 * Cheaper and steadier than an adaptive echo canceller, which needs the exact send/receive alignment
 * that a jitter buffer and a far-end transcoder blur; the price is that a caller must speak at a level
 * comparable to the agent's to interrupt it, which callers who interrupt do.
 */
export interface EchoGuardOptions {
  /** How far below the agent's level caller speech may be and still count. Echo 20 dB down stays out. */
  readonly marginDb: number;
  /** Echo path delay covered: outbound frames this recent set the bar. */
  readonly windowMs: number;
}

export const defaultEchoGuardOptions = {
  /** 14 dB: rejects hybrid echo (ITU-T G.168 assumes ≥ 6 dB loss, phone lines typically give 15–25). */
  marginDb: 14,
  /** 250 ms: loopback and carriers add 20–150 ms of echo delay, plus a reverberation tail. */
  windowMs: 250,
} as const satisfies EchoGuardOptions;

/** Per-frame RMS levels (dBFS) of 16 kHz PCM, 20 ms frames; a short tail counts as a frame. */
export function frameLevels(pcm: Int16Array): Float32Array {
  const n = samplesPerFrame(PIPELINE_RATE);
  const levels = new Float32Array(Math.ceil(pcm.length / n));
  for (let i = 0; i < levels.length; i++) levels[i] = dbfs(pcm, { start: i * n, end: (i + 1) * n });
  return levels;
}

interface Segment {
  /** When its first frame is sent (ms, the guard's clock). */
  readonly startMs: number;
  readonly levels: Float32Array;
}

export class EchoGuard {
  private readonly opts: EchoGuardOptions;
  private segments: Segment[] = [];
  /** Levels of audio held back by a pause (see held()). */
  private waiting = new Float32Array(0);
  /** The agent's level was lowered by `db` for frames sent from `fromMs` until `toMs` (see ducked()). */
  private duck: { fromMs: number; toMs: number; db: number } | undefined;

  constructor(options: Partial<EchoGuardOptions> = {}) {
    this.opts = { ...defaultEchoGuardOptions, ...options };
  }

  /** Audio was queued for the caller and starts playing at `startMs` (now plus what was queued before it). */
  queued(levels: Float32Array, startMs: number): void {
    this.segments.push({ startMs, levels });
  }

  /** Everything queued was dropped (barge-in flush): what was already sent may still echo back. */
  flushed(nowMs: number): void {
    this.waiting = new Float32Array(0);
    this.segments = this.segments
      .filter((s) => s.startMs < nowMs)
      .map((s) => ({ startMs: s.startMs, levels: s.levels.subarray(0, Math.min(s.levels.length, Math.ceil((nowMs - s.startMs) / FRAME_MS))) }));
  }

  /**
   * The level an inbound frame at `nowMs` must reach to count as the caller: the loudest agent frame
   * sent in the echo window minus the margin; -Infinity when the agent has been silent for the window.
   */
  thresholdDbfs(nowMs: number): number {
    const from = nowMs - this.opts.windowMs;
    let loudest = -Infinity;
    let keep = 0;
    for (const s of this.segments) {
      const endMs = s.startMs + s.levels.length * FRAME_MS;
      if (endMs < from) continue; // entirely older than the window: forget it
      this.segments[keep++] = s;
      const first = Math.max(0, Math.floor((from - s.startMs) / FRAME_MS));
      const last = Math.min(s.levels.length - 1, Math.floor((nowMs - s.startMs) / FRAME_MS));
      for (let i = first; i <= last; i++) loudest = Math.max(loudest, s.levels[i]! + this.gainAt(s.startMs + i * FRAME_MS));
    }
    this.segments.length = keep;
    return loudest - this.opts.marginDb;
  }

  /** True while some queued or recently sent agent audio can still echo. */
  active(nowMs: number): boolean {
    return this.thresholdDbfs(nowMs) > -Infinity;
  }

  /**
   * The agent paused at `nowMs` (adaptive barge-in): what was not yet sent waits, and is expected again
   * from `resumed()` on. Without this, a caller talking on through the pause would be judged against
   * echo of audio that never went out.
   */
  held(nowMs: number): void {
    const waiting: Float32Array[] = [];
    for (const s of this.segments) {
      const sent = Math.max(0, Math.min(s.levels.length, Math.ceil((nowMs - s.startMs) / FRAME_MS)));
      if (sent < s.levels.length) waiting.push(s.levels.subarray(sent));
    }
    this.flushed(nowMs);
    const total = waiting.reduce((n, l) => n + l.length, 0);
    this.waiting = new Float32Array(total);
    let at = 0;
    for (const l of waiting) {
      this.waiting.set(l, at);
      at += l.length;
    }
  }

  /**
   * The agent's voice is lowered by `db` (negative) from `nowMs` on, or restored (0): its echo is as much
   * quieter, so a caller talking over a ducked agent counts sooner. Levels stay as queued (prompt levels
   * are shared between calls); the gain applies by send time.
   */
  ducked(db: number, nowMs: number): void {
    if (db < 0) this.duck = { fromMs: nowMs, toMs: Infinity, db };
    else if (this.duck && this.duck.toMs === Infinity) this.duck.toMs = nowMs;
  }

  private gainAt(sentMs: number): number {
    const d = this.duck;
    return d && sentMs >= d.fromMs && sentMs < d.toMs ? d.db : 0;
  }

  /** The paused audio plays again from `nowMs`. */
  resumed(nowMs: number): void {
    if (this.waiting.length > 0) this.segments.push({ startMs: nowMs, levels: this.waiting });
    this.waiting = new Float32Array(0);
  }

  reset(): void {
    this.segments = [];
    this.waiting = new Float32Array(0);
  }
}
