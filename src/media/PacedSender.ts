import { randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { AudioDecoder, AudioEncoder } from './codecs/AudioCodec.js';
import type { ClockTick, MediaClock } from './MediaClock.js';
import { serializeRtp } from './rtp/RtpPacket.js';
import { stripUndefined } from '../util/options.js';
import { FRAME_MS } from './types.js';

/** What goes out while nothing is queued. */
export type SilenceMode = 'comfort' | 'none';

export interface PacedSenderOptions {
  /**
   * 'comfort' sends the encoder's precomputed silence payload every tick (keeps NAT bindings and
   * rtpengine's latching alive, and some carriers hang up on a silent stream); 'none' sends nothing.
   * Either way the RTP timestamp keeps advancing, as RFC 3550 §5.1 requires.
   */
  readonly silence: SilenceMode;
  /** A frame sent this late (ms past its tick, i.e. in a catch-up burst) counts in `lateFramesSent`. */
  readonly lateFrameMs: number;
  /** Enqueueing past this much audio (ms) is refused: a runaway producer must not eat the heap. */
  readonly maxQueueMs: number;
  /** Fixed SSRC; random (RFC 3550 §8) when undefined. */
  readonly ssrc: number | undefined;
  /** First sequence number; random (RFC 3550 §5.1, against known-plaintext) when undefined. */
  readonly initialSequence: number | undefined;
  /** First RTP timestamp; random when undefined. */
  readonly initialTimestamp: number | undefined;
  /**
   * Queued PCM frames encoded ahead of their tick, in the idle time after a tick's sends. The tick then
   * only sends ready payloads, so with hundreds of legs on one clock no leg's packet waits behind other
   * legs' encoding (measured: p99 lateness 17 ms → under 5 ms at 100 legs, docs/benchmarks.md).
   * 0 encodes each frame inside its tick.
   */
  readonly encodeAheadFrames: number;
  /**
   * When audio is queued on an idle sender, send its first frame at once instead of at the next tick,
   * using the timestamp of that tick (whose slot it then takes). The reply's first packet leaves with no
   * wait for tick alignment (up to 20 ms otherwise; docs/agent.md), and the timeline stays exact: later
   * frames go on their ticks as before.
   */
  readonly startTalkspurtAtOnce: boolean;
}

export const defaultPacedSenderOptions = {
  /** 'comfort': a continuous stream is what carriers and rtpengine expect. */
  silence: 'comfort',
  /** 20 ms: one whole frame late means the frame went out in a burst, not on its tick. */
  lateFrameMs: FRAME_MS,
  /** 10 minutes of audio. */
  maxQueueMs: 600_000,
  /** Random. */
  ssrc: undefined,
  /** Random. */
  initialSequence: undefined,
  /** Random. */
  initialTimestamp: undefined,
  /** 2 frames (40 ms): enough that a tick never waits on the encoder, little to discard on flush. */
  encodeAheadFrames: 2,
  /** On: the first packet of a reply is what latency is measured by. */
  startTalkspurtAtOnce: true,
} as const satisfies PacedSenderOptions;

export interface PacedSenderInit extends Partial<PacedSenderOptions> {
  readonly clock: MediaClock;
  /** The leg's encoder: PCM frames are encoded with it at tick time; its silence fills idle ticks. */
  readonly encoder: AudioEncoder;
  /** Negotiated payload type of the encoder's codec. */
  readonly payloadType: number;
  /** Hands one RTP datagram to the socket. Called from the clock's tick: keep it cheap, never block. */
  readonly send: (packet: Buffer) => void;
  /**
   * A decoder for the encoder's codec at its rate, made on the first duck: frames already encoded (a
   * cached prompt, or encoded ahead) are decoded, scaled and encoded again while the level is lowered.
   */
  readonly createDecoder?: () => AudioDecoder;
}

export interface PacedSenderStats {
  /** Every RTP packet sent, comfort silence included. */
  readonly packetsSent: number;
  /** RTP bytes (headers included) sent. */
  readonly bytesSent: number;
  /** Frames ever queued (PCM frames and encoded payloads alike; a PCM tail once it is padded or dropped). */
  readonly framesQueued: number;
  /** Queued frames that `flush()` dropped. */
  readonly framesDropped: number;
  /** Queued frames sent `lateFrameMs` or more after their tick was due. */
  readonly lateFramesSent: number;
  /** Ticks on which encoding a frame threw; comfort silence went out instead. */
  readonly encodeErrors: number;
  /** Ticks on which `send` threw. */
  readonly sendErrors: number;
}

export interface PacedSenderEvents {
  /** The first frame of a talkspurt has just been sent (the agent's "first packet out" mark). */
  talkspurt: [];
  /** The last queued frame has just been sent (not emitted by `flush()`). */
  drain: [];
  /** `send` or the encoder threw; the sender goes on with the next tick. */
  error: [err: unknown];
  /**
   * Once per 20 ms of media time: the audio payload that went out in that slot, or undefined for
   * silence (comfort noise, nothing, a hold). The echo canceller's reference: what the caller's phone
   * plays, in order, one frame per slot.
   */
  sent: [payload: Uint8Array | undefined];
}

/** A queued 20 ms frame: PCM to encode at tick time, or a payload already encoded (a cached prompt). */
type QueueItem = Int16Array | Uint8Array;

const isPcm = (item: QueueItem): item is Int16Array => item instanceof Int16Array;

/**
 * Sends one leg's outbound audio: one 20 ms RTP packet per tick of the shared MediaClock.
 *
 * Sequence numbers grow by one per packet sent; the timestamp grows by one frame per tick whether or
 * not a packet goes out, so silence and prompts stay on one continuous media timeline. The first packet
 * of each talkspurt (after idle ticks or a flush) carries the marker bit (RFC 3551 §4.1).
 */
export class PacedSender extends EventEmitter<PacedSenderEvents> {
  readonly ssrc: number;
  private readonly opts: PacedSenderOptions;
  private readonly encoder: AudioEncoder;
  private readonly payloadType: number;
  private readonly sendPacket: (packet: Buffer) => void;
  private readonly unsubscribe: () => void;
  private readonly maxQueueFrames: number;

  // A growable ring would be faster to dequeue from, but an array with a head index and occasional
  // compaction is as cheap per tick and simpler.
  private queue: QueueItem[] = [];
  private head = 0;
  /** PCM shorter than a frame, waiting for the rest of it from the next enqueuePcm(). */
  private partial: Int16Array | undefined;

  private seq: number;
  private timestamp: number;
  private talkspurtStart = true;
  /** The next tick's slot was taken by a talkspurt's first frame sent early (startTalkspurtAtOnce). */
  private slotTaken = false;
  private closed = false;
  private prepareImmediate: NodeJS.Immediate | undefined;

  /** Linear gain applied at send time (1: the audio as queued); see duck(). */
  private gain = 1;
  /** hold(): ticks send silence, the queue waits. */
  private holding = false;
  private decoder: AudioDecoder | undefined;
  private readonly createDecoder: (() => AudioDecoder) | undefined;

  private packets = 0;
  private bytes = 0;
  private queued = 0;
  private dropped = 0;
  private late = 0;
  private encodeErrs = 0;
  private sendErrs = 0;

  constructor(init: PacedSenderInit) {
    super();
    const { clock, encoder, payloadType, send, createDecoder, ...rest } = init;
    this.createDecoder = createDecoder;
    this.opts = { ...defaultPacedSenderOptions, ...stripUndefined(rest) };
    if (!Number.isInteger(payloadType) || payloadType < 0 || payloadType > 127) {
      throw new RangeError(`payloadType must be 0..127, got ${payloadType}`);
    }
    this.encoder = encoder;
    this.payloadType = payloadType;
    this.sendPacket = send;
    this.ssrc = (this.opts.ssrc ?? randomInt(0, 2 ** 32)) >>> 0;
    this.seq = (this.opts.initialSequence ?? randomInt(0, 2 ** 16)) & 0xffff;
    this.timestamp = (this.opts.initialTimestamp ?? randomInt(0, 2 ** 32)) >>> 0;
    this.maxQueueFrames = Math.floor(this.opts.maxQueueMs / FRAME_MS);
    this.unsubscribe = clock.subscribe(this.onTick);
  }

  /**
   * Queues PCM at the encoder's rate, of any length: it is cut into 20 ms frames, encoded one per tick.
   * A tail shorter than a frame waits for the next call, and is sent zero-padded if the queue runs dry
   * first (so the end of an utterance is never lost). Returns false, queuing nothing, when closed or full.
   */
  enqueuePcm(pcm: Int16Array): boolean {
    if (this.closed) return false;
    const n = this.encoder.frameSamples;
    let input = pcm;
    if (this.partial) {
      input = new Int16Array(this.partial.length + pcm.length);
      input.set(this.partial);
      input.set(pcm, this.partial.length);
    }
    const whole = Math.floor(input.length / n);
    if (this.queuedFrames + whole > this.maxQueueFrames) return false;
    // subarray views: the caller must not reuse the buffer it passed in (TTS chunks are fresh buffers).
    for (let i = 0; i < whole; i++) this.queue.push(input.subarray(i * n, (i + 1) * n));
    this.queued += whole;
    const rest = input.length - whole * n;
    this.partial = rest > 0 ? input.slice(whole * n) : undefined;
    this.maybeStartAtOnce();
    this.schedulePrepare();
    return true;
  }

  /**
   * Queues payloads already encoded with this leg's codec, one per 20 ms (a cached prompt: encoded once,
   * reused by every call). The payloads are not copied and must not change. Returns false when closed or full.
   */
  enqueueEncoded(payloads: readonly Uint8Array[]): boolean {
    if (this.closed) return false;
    if (this.queuedFrames + payloads.length > this.maxQueueFrames) return false;
    this.flushPartial();
    for (const p of payloads) this.queue.push(p);
    this.queued += payloads.length;
    this.maybeStartAtOnce();
    return true;
  }

  /** Frames waiting to be sent (a pending partial frame counts as one). */
  get queuedFrames(): number {
    return this.queue.length - this.head + (this.partial ? 1 : 0);
  }

  get queuedMs(): number {
    return this.queuedFrames * FRAME_MS;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Drops everything queued at once (barge-in) and returns how many ms of audio were dropped. The next
   * frame queued starts a new talkspurt (marker bit); the timeline itself goes on without a gap.
   */
  flush(): number {
    this.takePartial();
    const frames = this.queuedFrames;
    this.queue = [];
    this.head = 0;
    this.dropped += frames;
    this.talkspurtStart = true;
    return frames * FRAME_MS;
  }

  /**
   * Lowers (or restores, with 0) the level of everything sent from the next tick on, queued frames
   * included: the agent ducks under a caller who may be interrupting it while it decides whether they
   * are. Encoded frames are decoded, scaled and encoded again while ducked (a few hundred ms per
   * interruption); without a decoder for them they go out as they are.
   */
  duck(gainDb: number): void {
    this.gain = gainDb >= 0 ? 1 : 10 ** (gainDb / 20);
  }

  /**
   * Holds the queue (true): ticks send silence and nothing queued is lost; false sends it on from where
   * it stopped, as a new talkspurt. The agent pauses while it is not yet sure the caller is interrupting.
   */
  hold(on: boolean): void {
    if (this.holding === on) return;
    this.holding = on;
    if (on) this.talkspurtStart = true;
    else this.maybeStartAtOnce();
  }

  get held(): boolean {
    return this.holding;
  }

  stats(): PacedSenderStats {
    return {
      packetsSent: this.packets,
      bytesSent: this.bytes,
      framesQueued: this.queued,
      framesDropped: this.dropped,
      lateFramesSent: this.late,
      encodeErrors: this.encodeErrs,
      sendErrors: this.sendErrs,
    };
  }

  /** Stops sending and leaves the clock. Idempotent; queued frames are discarded (not counted as dropped). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    if (this.prepareImmediate) clearImmediate(this.prepareImmediate);
    this.prepareImmediate = undefined;
    this.queue = [];
    this.head = 0;
    this.partial = undefined;
    this.decoder?.close();
    this.decoder = undefined;
    this.removeAllListeners();
  }

  private readonly onTick = (tick: ClockTick): void => {
    if (this.closed) return;
    if (this.slotTaken) {
      // This tick's frame already went out early, with this tick's timestamp.
      this.slotTaken = false;
      this.timestamp = (this.timestamp + this.encoder.timestampIncrement) >>> 0;
      return;
    }
    const item = this.holding ? undefined : this.dequeue();
    if (item !== undefined) {
      if (tick.lateMs >= this.opts.lateFrameMs) this.late++;
      this.sendFrame(item);
    } else {
      this.talkspurtStart = true;
      if (this.opts.silence === 'comfort') this.emitPacket(false, this.encoder.silence);
      this.emit('sent', undefined);
    }
    // One frame of media time per tick, sent or not (RFC 3550 §5.1: the timestamp reflects sampling time).
    this.timestamp = (this.timestamp + this.encoder.timestampIncrement) >>> 0;
  };

  /** Sends one queued frame with the current timestamp (the caller advances it). */
  private sendFrame(item: QueueItem): void {
    // Normally already encoded by prepare(); inline only when the queue was filled inside this tick.
    const payload = this.gain !== 1 ? this.scaled(item) : isPcm(item) ? this.encode(item) : item;
    const marker = this.talkspurtStart;
    this.talkspurtStart = false;
    this.emitPacket(marker, payload);
    this.emit('sent', payload);
    if (marker && !this.closed) this.emit('talkspurt');
    if (this.queuedFrames === 0 && !this.closed) this.emit('drain');
    else this.schedulePrepare();
  }

  /** startTalkspurtAtOnce: the first whole frame queued on an idle sender goes out now, in the next tick's slot. */
  private maybeStartAtOnce(): void {
    if (!this.opts.startTalkspurtAtOnce || !this.talkspurtStart || this.slotTaken || this.closed || this.holding) return;
    // Only whole frames: a partial tail waits for the rest of its PCM (or for the tick that pads it).
    if (this.head >= this.queue.length) return;
    const item = this.dequeue()!;
    // The timestamp stays: the next tick owns it, and advances it when it finds its slot taken.
    this.slotTaken = true;
    this.sendFrame(item);
  }

  private encode(pcm: Int16Array): Uint8Array {
    try {
      return this.encoder.encode(pcm);
    } catch (err) {
      this.encodeErrs++;
      this.report(err);
      return this.encoder.silence;
    }
  }

  /** `item` at the ducked level, encoded. */
  private scaled(item: QueueItem): Uint8Array {
    let pcm: Int16Array;
    if (isPcm(item)) pcm = item.slice();
    else {
      if (!this.createDecoder) return item;
      this.decoder ??= this.createDecoder();
      const decoded = this.decoder.decode(item);
      if (!decoded.ok || decoded.value.length !== this.encoder.frameSamples) return item;
      pcm = decoded.value.slice();
    }
    const g = this.gain;
    for (let i = 0; i < pcm.length; i++) pcm[i] = Math.round(pcm[i]! * g);
    return this.encode(pcm);
  }

  /** Encodes in queue order, so the encoder's state always follows the order frames are sent in. */
  private schedulePrepare(): void {
    if (this.prepareImmediate || this.closed || this.opts.encodeAheadFrames <= 0) return;
    this.prepareImmediate = setImmediate(this.prepare);
  }

  private readonly prepare = (): void => {
    this.prepareImmediate = undefined;
    if (this.closed) return;
    const end = Math.min(this.queue.length, this.head + this.opts.encodeAheadFrames);
    for (let i = this.head; i < end; i++) {
      const item = this.queue[i]!;
      if (isPcm(item)) this.queue[i] = this.encode(item);
    }
  };

  private dequeue(): QueueItem | undefined {
    if (this.head < this.queue.length) {
      const item = this.queue[this.head]!;
      this.head++;
      if (this.head === this.queue.length) {
        this.queue = [];
        this.head = 0;
      } else if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      return item;
    }
    return this.takePartial();
  }

  /** An encoded prompt after PCM: the PCM tail must play before it, padded to a whole frame. */
  private flushPartial(): void {
    const frame = this.takePartial();
    if (frame) this.queue.push(frame);
  }

  /** The pending tail as a zero-padded frame; it counts as queued only now that it is a whole frame. */
  private takePartial(): Int16Array | undefined {
    if (!this.partial) return undefined;
    const frame = new Int16Array(this.encoder.frameSamples);
    frame.set(this.partial);
    this.partial = undefined;
    this.queued++;
    return frame;
  }

  private emitPacket(marker: boolean, payload: Uint8Array): void {
    const packet = serializeRtp(
      { marker, payloadType: this.payloadType, sequenceNumber: this.seq, timestamp: this.timestamp, ssrc: this.ssrc },
      payload,
    );
    this.seq = (this.seq + 1) & 0xffff;
    try {
      this.sendPacket(packet);
      this.packets++;
      this.bytes += packet.length;
    } catch (err) {
      this.sendErrs++;
      this.report(err);
    }
  }

  private report(err: unknown): void {
    // EventEmitter throws an unhandled 'error'; a leg without a listener must not take the clock down.
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}
