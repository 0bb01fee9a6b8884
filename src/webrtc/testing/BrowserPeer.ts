import { mixInto } from '../../media/testing/mix.js';
import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Audio, PeerConnection, type DataChannel, type Track } from 'node-datachannel';
import type { AudioDecoder, AudioEncoder } from '../../media/codecs/AudioCodec.js';
import { createDecoder, createEncoder } from '../../media/codecs/registry.js';
import { isRtcpPacket, parseRtp, serializeRtp } from '../../media/rtp/RtpPacket.js';
import { FRAME_MS } from '../../media/types.js';
import { applyRemoteDescription } from '../remoteDescription.js';

/**
 * A stand-in for a browser in tests: a libdatachannel PeerConnection with one sendrecv Opus track, as
 * Chrome or Firefox would offer it (ICE, DTLS-SRTP, rtcp-mux, one m=audio with a mid). It sends
 * hand-built RTP (libdatachannel encrypts it) and decodes the RTP it gets back (already decrypted).
 * Not for production: no jitter buffer, no RTCP, packets are decoded in arrival order.
 */

export interface BrowserPeerOptions {
  /** Local address ICE gathers on: only loopback candidates, as the tests run on loopback only. */
  readonly bindAddress: string;
  /** Opus payload type in the offer; 111 is what Chrome uses. */
  readonly payloadType: number;
  /** Rate the PCM handed to `play` has, and the rate received audio is decoded to. */
  readonly sampleRate: 16000 | 48000;
  /** Give up on ICE gathering (the offer) after this long. */
  readonly gatherTimeoutMs: number;
  /** Name in libdatachannel's logs. */
  readonly name: string;
  /** Open a data channel in the offer, as the web phone does for transcript events. */
  readonly dataChannel: boolean;
  /** Send a silence frame every 20 ms when nothing is queued, as a browser's open microphone does. */
  readonly sendSilence: boolean;
}

export const defaultBrowserPeerOptions = {
  bindAddress: '127.0.0.1',
  payloadType: 111,
  /** 48 kHz: what a browser's Opus runs at. */
  sampleRate: 48000,
  /** 2 s: gathering host candidates on loopback takes a few ms. */
  gatherTimeoutMs: 2000,
  name: 'browser',
  dataChannel: false,
  /** Off: most tests only need what they play to be sent. */
  sendSilence: false,
} as const satisfies BrowserPeerOptions;

const OPUS_CLOCK_RATE = 48000;
const TIMESTAMP_STEP = (OPUS_CLOCK_RATE * FRAME_MS) / 1000;

export interface BrowserPeerStats {
  readonly packetsSent: number;
  readonly packetsReceived: number;
  readonly decodeErrors: number;
}

export class BrowserPeer {
  readonly options: BrowserPeerOptions;
  /** Resolves when the track opens, i.e. ICE and the DTLS-SRTP handshake are done; rejects on failure. */
  readonly connected: Promise<void>;
  private readonly pc: PeerConnection;
  private readonly track: Track;
  private readonly encoder: AudioEncoder;
  private readonly decoder: AudioDecoder;
  private readonly received: Int16Array[] = [];
  /** performance.now() at which each frame of `received` arrived, and its payload's size in bytes. */
  private readonly receivedAt: { at: number; bytes: number }[] = [];
  /** performance.now() at which each played frame was sent, in order (silence frames not included). */
  private readonly playedAt: number[] = [];
  private readonly outbox: Int16Array[] = [];
  private readonly ssrc = randomInt(1, 2 ** 32 - 1);
  private sequenceNumber = randomInt(0, 0x10000);
  private timestamp = randomInt(0, 2 ** 32 - 1);
  private timer: NodeJS.Timeout | undefined;
  private counters = { packetsSent: 0, packetsReceived: 0, decodeErrors: 0 };
  private closed = false;
  /** The far side's audio coming back into the microphone (see `echo()`): frames waiting to be mixed in. */
  private echoLine: Int16Array[] | undefined;
  private echoGain = 0;
  private readonly channel: DataChannel | undefined;
  /** Text messages received on the data channel, in order. */
  readonly messages: string[] = [];

  constructor(options: Partial<BrowserPeerOptions> = {}) {
    const o: BrowserPeerOptions = { ...defaultBrowserPeerOptions, ...options };
    this.options = o;
    this.encoder = createEncoder('opus', { sampleRate: o.sampleRate });
    this.decoder = createDecoder('opus', { sampleRate: o.sampleRate });
    this.pc = new PeerConnection(o.name, { iceServers: [], bindAddress: o.bindAddress });

    const audio = new Audio('0', 'SendRecv');
    audio.addOpusCodec(o.payloadType);
    // A browser announces its sending SSRC; rtpengine and the answerer may use it to match the stream.
    audio.addSSRC(this.ssrc, `${o.name}-cname`, 'stream', 'audio');
    this.track = this.pc.addTrack(audio);
    if (o.dataChannel) {
      this.channel = this.pc.createDataChannel('events');
      this.channel.onMessage((msg) => {
        if (typeof msg === 'string') this.messages.push(msg);
      });
    }

    let fail: (err: Error) => void = () => {};
    this.connected = new Promise<void>((resolve, reject) => {
      fail = reject;
      this.track.onOpen(() => resolve());
    });
    // A rejection nobody awaits yet (the test may be still signalling) must not crash the run.
    this.connected.catch(() => {});
    this.track.onError((err) => fail(new Error(`${o.name}: track error: ${err}`)));
    this.pc.onStateChange((state) => {
      if (state === 'failed' || state === 'closed') fail(new Error(`${o.name}: peer connection ${state} before the track opened`));
    });
    this.track.onMessage((msg) => this.onRtp(msg));
  }

  /** Creates the offer and waits for ICE gathering, so the SDP carries its candidates (no trickle). */
  async createOffer(): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    const gathered = new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.options.name}: ICE gathering took over ${this.options.gatherTimeoutMs} ms`)), this.options.gatherTimeoutMs);
      this.pc.onGatheringStateChange((state) => {
        if (state === 'complete') {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    this.pc.setLocalDescription('offer');
    // Gathering may complete before we look: then the timer must not fire later as an unhandled rejection.
    if (this.pc.gatheringState() !== 'complete') await gathered;
    else clearTimeout(timer);
    const local = this.pc.localDescription();
    if (!local) throw new Error(`${this.options.name}: no local description after gathering`);
    // Sent without its ICE candidates: the far side then learns our address from our own checks, which
    // start only once the answer is applied. With them, its checks and DTLS handshake could reach
    // libdatachannel while it was still applying the answer: no fingerprint to verify yet ("certificate
    // verify failed"), the connection closed, and setAnswer threw "Got a remote candidate without ICE
    // transport" — about 1 call in 20 here. Browsers queue early handshakes; this peer cannot. The door's
    // handling of offers with candidates is what the Chromium tests (tests/webrtc/browser.test.ts) cover.
    return local.sdp.replace(/^a=(?:candidate:|end-of-candidates)[^\r\n]*\r?\n/gm, '');
  }

  /** Applies the answer to our offer; ICE checks and then DTLS start from here. */
  async setAnswer(sdp: string): Promise<void> {
    await applyRemoteDescription(this.pc, sdp, 'answer');
  }

  /**
   * Queues PCM at `options.sampleRate` to send, one 20 ms packet per 20 ms as a browser would (a burst
   * would land in the far side's jitter buffer as late or overflowing packets). A last partial frame
   * is padded with silence.
   */
  play(pcm: Int16Array): void {
    this.queue(pcm);
  }

  /**
   * As `play`, and resolves with the send time (performance.now()) of each of its frames once they
   * have all left: a barge-in benchmark's onset is the first of them.
   */
  async playTimed(pcm: Int16Array): Promise<number[]> {
    const first = this.playedAt.length + this.outbox.length;
    const last = first + this.queue(pcm);
    while (this.playedAt.length < last) {
      if (this.closed) throw new Error(`${this.options.name}: closed before its audio was sent`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.playedAt.slice(first, last);
  }

  /**
   * A speakerphone: what arrives comes back into the microphone `delayMs` later, `gainDb` down (negative),
   * mixed with whatever is played. `undefined` turns it off.
   */
  echo(path: { readonly delayMs: number; readonly gainDb: number } | undefined): void {
    if (!path) {
      this.echoLine = undefined;
      return;
    }
    this.echoGain = 10 ** (path.gainDb / 20);
    this.echoLine = Array.from({ length: Math.round(path.delayMs / FRAME_MS) }, () => new Int16Array(this.encoder.frameSamples));
    this.startSending();
  }

  /** Starts the 20 ms sender without queueing audio (with `sendSilence`, the open microphone). */
  startSending(): void {
    this.timer ??= setInterval(() => this.sendNext(), FRAME_MS);
  }

  /** Queues `pcm` as frames; returns how many. */
  private queue(pcm: Int16Array): number {
    const n = this.encoder.frameSamples;
    let frames = 0;
    for (let at = 0; at < pcm.length; at += n) {
      const frame = new Int16Array(n);
      frame.set(pcm.subarray(at, at + n));
      this.outbox.push(frame);
      frames++;
    }
    this.startSending();
    return frames;
  }

  /** Each decoded frame with its arrival time (performance.now()) and Opus payload size, in arrival order. */
  receivedFrames(): { at: number; bytes: number; pcm: Int16Array }[] {
    return this.received.map((pcm, i) => ({ ...this.receivedAt[i]!, pcm }));
  }

  /** Everything decoded so far, in arrival order, at `options.sampleRate`. */
  receivedAudio(): Int16Array {
    const out = new Int16Array(this.received.reduce((n, f) => n + f.length, 0));
    let at = 0;
    for (const f of this.received) {
      out.set(f, at);
      at += f.length;
    }
    return out;
  }

  stats(): BrowserPeerStats {
    return { ...this.counters };
  }

  /** Stops sending, closes the track and the connection, frees the codecs. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.outbox.length = 0;
    this.channel?.close();
    this.track.close();
    this.pc.close();
    this.encoder.close();
    this.decoder.close();
  }

  private sendNext(): void {
    // Until the track opens there is no SRTP context; a browser would not send yet either.
    if (!this.closed && !this.track.isOpen()) return;
    const played = this.outbox.shift();
    let frame = played ?? (this.options.sendSilence || this.echoLine ? new Int16Array(this.encoder.frameSamples) : undefined);
    const echoed = this.echoLine?.shift();
    if (frame && echoed) frame = mixInto(frame, echoed, this.echoGain);
    if (!frame || this.closed) {
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    const payload = this.encoder.encode(frame);
    const packet = serializeRtp(
      { marker: this.counters.packetsSent === 0, payloadType: this.options.payloadType, sequenceNumber: this.sequenceNumber, timestamp: this.timestamp, ssrc: this.ssrc },
      payload,
    );
    this.sequenceNumber = (this.sequenceNumber + 1) & 0xffff;
    this.timestamp = (this.timestamp + TIMESTAMP_STEP) >>> 0;
    if (this.track.sendMessageBinary(packet)) this.counters.packetsSent++;
    if (played) this.playedAt.push(performance.now());
  }

  private onRtp(msg: Buffer): void {
    // With rtcp-mux the same track also delivers the far side's RTCP.
    if (this.closed || isRtcpPacket(msg)) return;
    const parsed = parseRtp(msg);
    if (!parsed.ok || parsed.value.payloadType !== this.options.payloadType) return;
    this.counters.packetsReceived++;
    const decoded = this.decoder.decode(parsed.value.payload);
    if (decoded.ok) {
      if (this.echoLine && this.echoLine.length < 50) this.echoLine.push(decoded.value);
      this.received.push(decoded.value);
      this.receivedAt.push({ at: performance.now(), bytes: parsed.value.payload.length });
    } else {
      this.counters.decodeErrors++;
    }
  }
}

