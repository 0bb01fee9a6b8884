import { performance } from 'node:perf_hooks';
import type { MediaClock } from './MediaClock.js';
import { FRAME_MS, PIPELINE_RATE, samplesPerFrame } from './types.js';
import { dbfs } from './signal.js';

/**
 * A conference mixer: every 20 ms tick it takes one frame from each source and gives each port the sum
 * of everyone else's (mix-minus), so nobody hears themself. Written here rather than taken from npm:
 * the mixers there are for files or for Web Audio, not for 20 ms frames on a shared media clock.
 *
 * Sources are pulled, never waited for: a leg whose packets are late contributes silence for that tick
 * (its own small queue keeps it in order), so one bad network never delays what the others hear.
 */
export interface MixerOptions {
  /** A pushed source's queue beyond this many frames drops its oldest (bounded delay after a burst). */
  readonly maxQueuedFrames: number;
  /** A pushed source that ran dry waits for this many frames before it plays again (absorbs jitter). */
  readonly refillFrames: number;
  /**
   * A pushed source whose queue has kept `refillFrames` or more after every tick for this long drops
   * its quietest queued frame: a burst after a stall must not leave a standing delay.
   */
  readonly trimAfterMs: number;
  /** A frame louder than this counts as the source speaking (the pages' speaking indicators). */
  readonly speakingDbfs: number;
  /** Speaking ends after this long under the bar (words have gaps). */
  readonly speakingHangoverMs: number;
}

export const defaultMixerOptions = {
  /**
   * 3 (60 ms): packets arrive in bursts after a stall; beyond this the oldest are dropped, so a leg's
   * delay never grows past 60 ms of its own backlog.
   */
  maxQueuedFrames: 3,
  /**
   * 1: AudioLeg's jitter buffer has already reordered and concealed; packets land at any phase of the
   * mixer's tick, and one frame of slack covers that. More would add 20 ms of mouth-to-ear per frame.
   */
  refillFrames: 1,
  /** 200 ms: longer than packet jitter keeps a queue up, short enough that a stall's backlog is gone within a sentence. */
  trimAfterMs: 200,
  /** −45 dBFS: over a line's noise floor (−60…−50), under quiet speech (−35). */
  speakingDbfs: -45,
  /** 300 ms: the gaps between words stay "speaking". */
  speakingHangoverMs: 300,
} as const satisfies MixerOptions;

/** What a member hears: everyone, or only the members marked `human` (an agent does not hear other agents' audio). */
export type Hears = 'everyone' | 'humans';

export interface MemberInit {
  readonly id: string;
  /** Humans' audio reaches everyone; an agent's reaches those who hear `everyone`. */
  readonly human: boolean;
  readonly hears: Hears;
  /** This tick's frame from the member (an agent's next 20 ms), or undefined for silence. Pushed members leave it out. */
  readonly pull?: () => Int16Array | undefined;
  /** The member's mix-minus for this tick (16 kHz, 320 samples). Undefined when everyone else is silent. */
  readonly deliver: (frame: Int16Array | undefined) => void;
}

export interface MixerStats {
  readonly ticks: number;
  /** Time spent mixing one tick (all members), ms: p50, p99, max over the last 3000 ticks. */
  readonly tickMsP50: number;
  readonly tickMsP99: number;
  readonly tickMsMax: number;
  /** Frames dropped because a pushed member's queue was full. */
  readonly droppedFrames: number;
  /** Ticks a pushed member had nothing (late or silent legs). */
  readonly underruns: number;
  /** Frames dropped because a queue stood above its refill level (a stall's backlog). */
  readonly trimmedFrames: number;
}

export class MixerMember {
  private readonly queue: Int16Array[] = [];
  private refilling = true;
  speaking = false;
  private lastLoudAt = -Infinity;
  /** Sum of frame energy while speaking (the room's "who said that"). */
  energy = 0;
  /** Muted members contribute nothing (they still hear). */
  muted = false;
  /** Ticks in a row the queue kept more than the refill level. */
  private standing = 0;

  constructor(
    readonly init: MemberInit,
    private readonly mixer: Mixer,
  ) {}

  get id(): string {
    return this.init.id;
  }

  /** A 20 ms frame (16 kHz) from a pushed member (a human's leg). */
  push(frame: Int16Array): void {
    this.queue.push(frame);
    if (this.queue.length > this.mixer.options.maxQueuedFrames) {
      this.queue.shift();
      this.mixer.counters.droppedFrames++;
    }
  }

  /** @internal This tick's frame. */
  take(now: number): Int16Array | undefined {
    let frame: Int16Array | undefined;
    if (this.init.pull) frame = this.init.pull();
    else if (this.refilling) {
      if (this.queue.length >= this.mixer.options.refillFrames) {
        this.refilling = false;
        frame = this.queue.shift();
      }
    } else {
      frame = this.queue.shift();
      if (!frame) {
        this.refilling = true;
        this.mixer.counters.underruns++;
      }
    }
    this.trim();
    if (this.muted) frame = undefined;
    this.track(frame, now);
    return frame;
  }

  private trim(): void {
    const { refillFrames, trimAfterMs } = this.mixer.options;
    // Right after a take the queue should be below the refill level (the next frame is still on its
    // way); a frame still waiting every tick for trimAfterMs is delay that stays.
    if (this.queue.length < refillFrames) {
      this.standing = 0;
      return;
    }
    if (++this.standing * FRAME_MS < trimAfterMs) return;
    // The quietest frame goes: a pause between words shortens, a syllable is not cut.
    let quietest = 0;
    let least = Infinity;
    for (let i = 0; i < this.queue.length; i++) {
      const level = dbfs(this.queue[i]!);
      if (level < least) {
        least = level;
        quietest = i;
      }
    }
    this.queue.splice(quietest, 1);
    this.mixer.counters.trimmedFrames++;
    this.standing = 0;
  }

  private track(frame: Int16Array | undefined, now: number): void {
    const level = frame ? dbfs(frame) : -Infinity;
    if (level > this.mixer.options.speakingDbfs) {
      this.lastLoudAt = now;
      this.energy += 10 ** (level / 10);
      if (!this.speaking) {
        this.speaking = true;
        this.mixer.speakingChanged(this, true);
      }
    } else if (this.speaking && now - this.lastLoudAt > this.mixer.options.speakingHangoverMs) {
      this.speaking = false;
      this.mixer.speakingChanged(this, false);
    }
  }
}

const FRAME = samplesPerFrame(PIPELINE_RATE);
const STATS_WINDOW = 3000;

export class Mixer {
  readonly options: MixerOptions;
  private members: MixerMember[] = [];
  private unsubscribe: (() => void) | undefined;
  /** @internal */
  readonly counters = { ticks: 0, droppedFrames: 0, underruns: 0, trimmedFrames: 0 };
  private readonly tickMs = new Float64Array(STATS_WINDOW);
  private readonly everyone = new Int32Array(FRAME);
  private readonly humans = new Int32Array(FRAME);
  private closed = false;

  constructor(
    private readonly clock: Pick<MediaClock, 'subscribe'>,
    options: Partial<MixerOptions> = {},
    /** Told when a member starts or stops speaking. */
    private readonly onSpeaking: (id: string, speaking: boolean) => void = () => undefined,
  ) {
    this.options = { ...defaultMixerOptions, ...options };
  }

  add(init: MemberInit): MixerMember {
    if (this.closed) throw new Error('mixer closed');
    if (this.members.some((m) => m.id === init.id)) throw new Error(`mixer member ${init.id} exists`);
    const member = new MixerMember(init, this);
    this.members = [...this.members, member];
    this.unsubscribe ??= this.clock.subscribe(() => this.tick());
    return member;
  }

  remove(id: string): void {
    this.members = this.members.filter((m) => m.id !== id);
    if (this.members.length === 0) this.stopClock();
  }

  get size(): number {
    return this.members.length;
  }

  /** @internal */
  speakingChanged(member: MixerMember, speaking: boolean): void {
    try {
      this.onSpeaking(member.id, speaking);
    } catch {
      // A listener's failure must not stop the room's audio.
    }
  }

  /** One 20 ms step: every member's frame in, every member's mix-minus out. Public for simulations. */
  tick(): void {
    const started = performance.now();
    const { everyone, humans } = this;
    everyone.fill(0);
    humans.fill(0);
    const members = this.members;
    const frames: (Int16Array | undefined)[] = new Array(members.length);
    for (let i = 0; i < members.length; i++) {
      const m = members[i]!;
      const f = m.take(started);
      frames[i] = f;
      if (!f) continue;
      const n = Math.min(FRAME, f.length);
      if (m.init.human) for (let s = 0; s < n; s++) humans[s]! += f[s]!;
      for (let s = 0; s < n; s++) everyone[s]! += f[s]!;
    }
    // People first: what an agent does with its frame (VAD, STT) must not hold up what people hear.
    for (let i = 0; i < members.length; i++) if (members[i]!.init.human) this.deliver(members[i]!, frames[i]);
    for (let i = 0; i < members.length; i++) if (!members[i]!.init.human) this.deliver(members[i]!, frames[i]);
    this.tickMs[this.counters.ticks % STATS_WINDOW] = performance.now() - started;
    this.counters.ticks++;
  }

  /** The member's mix: what it hears, less its own frame when that is in it. */
  private deliver(m: MixerMember, own: Int16Array | undefined): void {
    const base = m.init.hears === 'everyone' ? this.everyone : this.humans;
    const ownCounts = own !== undefined && (m.init.hears === 'everyone' || m.init.human);
    let out: Int16Array | undefined = new Int16Array(FRAME);
    let any = false;
    for (let s = 0; s < FRAME; s++) {
      let v = base[s]!;
      if (ownCounts) v -= own[s] ?? 0;
      if (v !== 0) any = true;
      out[s] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
    }
    if (!any) out = undefined;
    try {
      m.init.deliver(out);
    } catch {
      // One member's failure (a closed leg) is that member's; the others still get their audio.
    }
  }

  stats(): MixerStats {
    const n = Math.min(this.counters.ticks, STATS_WINDOW);
    const sorted = Array.from(this.tickMs.subarray(0, n)).sort((a, b) => a - b);
    const at = (q: number): number => (n === 0 ? 0 : sorted[Math.min(n - 1, Math.floor(q * n))]!);
    return { ticks: this.counters.ticks, tickMsP50: at(0.5), tickMsP99: at(0.99), tickMsMax: n ? sorted[n - 1]! : 0, droppedFrames: this.counters.droppedFrames, underruns: this.counters.underruns, trimmedFrames: this.counters.trimmedFrames };
  }

  close(): void {
    this.closed = true;
    this.members = [];
    this.stopClock();
  }

  private stopClock(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }
}
