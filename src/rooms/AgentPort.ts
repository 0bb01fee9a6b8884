import { EventEmitter } from 'node:events';
import type { CallMedia } from '../agent/CallSession.js';
import type { EncodedPrompt } from '../media/AudioLeg.js';
import { createDecoder } from '../media/codecs/registry.js';
import type { AudioDecoder } from '../media/codecs/AudioCodec.js';
import type { DtmfEvent } from '../media/types.js';
import { FRAME_MS, PIPELINE_RATE, samplesPerFrame } from '../media/types.js';

const FRAME = samplesPerFrame(PIPELINE_RATE);
/** 1 s of mix waiting for the agent at most. */
const MAX_HEARD = 50;

interface PortEvents {
  audio: [frame: Int16Array];
  dtmf: [event: DtmfEvent];
  drain: [];
  talkspurt: [];
}

/**
 * An AI participant's audio in a room, as its AgentSession sees a call: what it hears is the room's
 * mix for it (the people, without itself), and what it says is queued here and taken 20 ms a tick by
 * the mixer, only while the room gives it the floor (two agents never talk over each other).
 * It is a `CallMedia` like an AudioLeg, so the agent runs unchanged in a room.
 */
export class AgentPort extends EventEmitter<PortEvents> implements CallMedia {
  /** The prompts the agent plays (greeting, fixed phrases) are made for Opus, decoded here as they play. */
  readonly codec = { name: 'opus' as const };
  private queue: Int16Array[] = [];
  private offset = 0;
  private queuedSamples = 0;
  private gain = 1;
  private held = false;
  private talking = false;
  private decoder: AudioDecoder | undefined;
  private closed = false;
  /** Mix frames not yet handed to the session. */
  private heard: Int16Array[] = [];
  private handing: NodeJS.Immediate | undefined;

  constructor(
    /** Whether this agent may speak now; asked each tick while it has audio queued. */
    private readonly mayTalk: () => boolean,
  ) {
    super();
  }

  play(pcm: Int16Array): boolean {
    if (this.closed || pcm.length === 0) return false;
    this.queue.push(pcm);
    this.queuedSamples += pcm.length;
    return true;
  }

  playEncoded(prompt: EncodedPrompt): boolean {
    if (this.closed) return false;
    this.decoder ??= createDecoder('opus', { sampleRate: PIPELINE_RATE });
    for (const payload of prompt.payloads) {
      const pcm = this.decoder.decode(payload);
      this.play(pcm.ok ? pcm.value : this.decoder.conceal());
    }
    return true;
  }

  flush(): number {
    const ms = this.queuedMs;
    this.queue = [];
    this.offset = 0;
    this.queuedSamples = 0;
    this.endTalkspurt();
    return ms;
  }

  get queuedMs(): number {
    return (this.queuedSamples / FRAME) * FRAME_MS;
  }

  duck(gainDb: number): void {
    this.gain = gainDb === 0 ? 1 : 10 ** (gainDb / 20);
  }

  hold(on: boolean): void {
    this.held = on;
  }

  /** Whether it has something to say (held or not): the room keeps the floor for it. */
  get wantsFloor(): boolean {
    return this.queuedSamples > 0 && !this.held;
  }

  /** @internal The mixer's pull: this tick's 20 ms, or undefined. */
  next(): Int16Array | undefined {
    if (this.held || this.queuedSamples === 0 || !this.mayTalk()) return undefined;
    const out = new Int16Array(FRAME);
    let filled = 0;
    while (filled < FRAME && this.queue.length > 0) {
      const head = this.queue[0]!;
      const take = Math.min(FRAME - filled, head.length - this.offset);
      out.set(head.subarray(this.offset, this.offset + take), filled);
      filled += take;
      this.offset += take;
      if (this.offset >= head.length) {
        this.queue.shift();
        this.offset = 0;
      }
    }
    this.queuedSamples -= filled;
    if (this.gain !== 1) for (let i = 0; i < FRAME; i++) out[i] = Math.round(out[i]! * this.gain);
    if (!this.talking) {
      this.talking = true;
      this.emit('talkspurt');
    }
    if (this.queuedSamples === 0) {
      this.endTalkspurt();
      this.emit('drain');
    }
    return out;
  }

  /**
   * @internal The room's mix for this agent (silence as zeros: the agent's VAD wants every frame). Handed
   * on after the mixer's tick, not inside it: the agent's VAD and STT take ~0.1–0.5 ms a frame, and in
   * the tick they delayed every other room's mix (bench:rooms: 72 % of the tick's time).
   */
  hear(frame: Int16Array | undefined): void {
    if (this.closed) return;
    this.heard.push(frame ?? new Int16Array(FRAME));
    // Bounded: an event loop stalled for a second loses the oldest of it, not memory.
    if (this.heard.length > MAX_HEARD) this.heard.shift();
    this.handing ??= setImmediate(() => {
      this.handing = undefined;
      for (const f of this.heard.splice(0)) if (!this.closed) this.emit('audio', f);
    });
  }

  close(): void {
    this.closed = true;
    if (this.handing) clearImmediate(this.handing);
    this.handing = undefined;
    this.heard = [];
    this.flush();
    this.decoder?.close();
    this.decoder = undefined;
  }

  private endTalkspurt(): void {
    this.talking = false;
  }
}
