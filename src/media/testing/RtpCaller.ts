import { mixInto } from './mix.js';
import type dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { createDecoder, createEncoder } from '../codecs/registry.js';
import { sharedMediaClock, type MediaClock } from '../MediaClock.js';
import { portAllocatorFor, type PortRange } from '../PortAllocator.js';
import { resample } from '../Resampler.js';
import { parseRtp, serializeRtp } from '../rtp/RtpPacket.js';
import { concatSamples } from '../signal.js';

/**
 * A phone's media for barge-in tests and benchmarks, on one raw UDP socket, so what is timed is what
 * the caller's socket sends and receives (no jitter buffer or pacer of ours in between): PCMU every
 * 20 ms on the media clock, comfort silence between utterances as phones send, and every agent packet
 * logged with its arrival time, whether it carried sound, and its audio.
 */
export interface RtpCallerOptions {
  /** Where the socket's port comes from (keep apart from rtpengine's and the agent's ranges). */
  readonly portRange: PortRange;
  readonly clock: MediaClock;
  readonly ssrc: number;
}

export const defaultRtpCallerOptions = {
  /** A range no test file's or benchmark's rtpengine or agent legs use. */
  portRange: { min: 53500, max: 53999 },
  clock: sharedMediaClock(),
  ssrc: 0xca11e4,
} as const satisfies RtpCallerOptions;

/** One agent packet as it reached the caller. */
export interface HeardPacket {
  /** performance.now() on arrival. */
  readonly at: number;
  /**
   * Any byte other than μ-law's two silence codes: the agent's comfort silence is digital silence, and
   * its voices (FakeTts, flite) have a noise floor, so every packet of an utterance counts, pauses included.
   */
  readonly sound: boolean;
  /** The payload decoded, 8 kHz. */
  readonly pcm: Int16Array;
}

const PCMU_SILENCE = new Set([0xff, 0x7f]);

export class RtpCaller {
  readonly heard: HeardPacket[] = [];
  private readonly script: Int16Array[] = [];
  /** Send time of every scripted (speech) frame, in order. */
  private readonly sentAt: number[] = [];
  private readonly encoder = createEncoder('PCMU');
  private readonly decoder = createDecoder('PCMU');
  private seq = 0;
  private ts = 0;
  private target: { address: string; port: number } | undefined;
  private unsubscribe: (() => void) | undefined;
  private closed = false;
  /** The agent's audio coming back into the microphone (see `echo()`), 8 kHz frames waiting to be mixed in. */
  private echoLine: Int16Array[] | undefined;
  private echoGain = 0;

  private constructor(
    private readonly socket: dgram.Socket,
    readonly port: number,
    private readonly release: () => void,
    private readonly options: RtpCallerOptions,
  ) {
    socket.on('message', (msg) => {
      const p = parseRtp(msg);
      if (!p.ok || p.value.payloadType !== 0) return;
      const payload = p.value.payload;
      const decoded = this.decoder.decode(payload);
      const pcm = decoded.ok ? decoded.value : new Int16Array(0);
      if (this.echoLine && this.echoLine.length < 50 && pcm.length === 160) this.echoLine.push(pcm);
      this.heard.push({ at: performance.now(), sound: payload.some((b) => !PCMU_SILENCE.has(b)), pcm });
    });
    socket.on('error', () => undefined);
  }

  static async open(options: Partial<RtpCallerOptions> = {}): Promise<RtpCaller> {
    const o: RtpCallerOptions = { ...defaultRtpCallerOptions, ...options };
    const allocator = portAllocatorFor(o.portRange);
    const { socket, port } = await allocator.bind('127.0.0.1');
    return new RtpCaller(socket, port, () => allocator.release(port), o);
  }

  get address(): { address: string; port: number } {
    return { address: '127.0.0.1', port: this.port };
  }

  /** Starts sending to `target` (rtpengine's or the agent's port): silence until something is said. */
  start(target: { address: string; port: number }): void {
    this.target = target;
    this.unsubscribe ??= this.options.clock.subscribe(() => this.tick());
  }

  /**
   * Queues 16 kHz speech after whatever is still queued; resolves with the send times of its 20 ms
   * frames (the first is the onset), once the first `framesWanted` (all by default) have left.
   */
  speak(pcm16k: Int16Array, framesWanted?: number): Promise<number[]> {
    const pcm8k = resample(pcm16k, 16000, 8000);
    const first = this.script.length;
    for (let off = 0; off < pcm8k.length; off += 160) {
      const f = new Int16Array(160);
      f.set(pcm8k.subarray(off, off + 160));
      this.script.push(f);
    }
    const last = framesWanted === undefined ? this.script.length : Math.min(this.script.length, first + framesWanted);
    return new Promise((resolve, reject) => {
      const check = setInterval(() => {
        if (this.sentAt.length >= last) {
          clearInterval(check);
          resolve(this.sentAt.slice(first, last));
        } else if (this.closed) {
          clearInterval(check);
          reject(new Error('caller closed before its speech was sent'));
        }
      }, 5);
    });
  }

  /** A speakerphone: what arrives comes back `delayMs` later, `gainDb` down, mixed with what is said. */
  echo(path: { readonly delayMs: number; readonly gainDb: number } | undefined): void {
    this.echoGain = path ? 10 ** (path.gainDb / 20) : 0;
    this.echoLine = path ? Array.from({ length: Math.round(path.delayMs / 20) }, () => new Int16Array(160)) : undefined;
  }

  /** Arrival time of the first agent packet with sound after `t`. */
  firstSoundAfter(t: number): number | undefined {
    return this.heard.find((h) => h.sound && h.at > t)?.at;
  }

  /** Arrival time of the last agent packet with sound before `t` (before now by default). */
  lastSoundBefore(t = Infinity): number | undefined {
    for (let i = this.heard.length - 1; i >= 0; i--) {
      const h = this.heard[i]!;
      if (h.at < t && h.sound) return h.at;
    }
    return undefined;
  }

  /** What arrived between `from` and `to` (performance.now() times), 8 kHz, in arrival order. */
  audio(from = -Infinity, to = Infinity): Int16Array {
    return concatSamples(this.heard.filter((h) => h.at >= from && h.at < to).map((h) => h.pcm));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    this.encoder.close();
    this.decoder.close();
    this.socket.close();
    this.release();
  }

  private tick(): void {
    if (!this.target || this.closed) return;
    const frame = this.script[this.sentAt.length];
    const echoed = this.echoLine?.shift();
    const mixed = echoed ? mixInto(frame ?? new Int16Array(160), echoed, this.echoGain) : frame;
    const payload = mixed ? this.encoder.encode(mixed) : this.encoder.silence;
    const packet = serializeRtp({ marker: false, payloadType: 0, sequenceNumber: this.seq, timestamp: this.ts, ssrc: this.options.ssrc }, payload);
    this.seq = (this.seq + 1) & 0xffff;
    this.ts = (this.ts + 160) >>> 0;
    this.socket.send(packet, this.target.port, this.target.address);
    if (frame) this.sentAt.push(performance.now());
  }
}
