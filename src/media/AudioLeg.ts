import { EventEmitter } from 'node:events';
import { CallgateError } from '../errors.js';
import type { AudioDecoder, AudioEncoder, CodecName } from './codecs/AudioCodec.js';
import { createDecoder, createEncoder } from './codecs/registry.js';
import { promptOpusEncoderOptions, type OpusEncoderOptions } from './codecs/opus.js';
import { DtmfReceiver } from './codecs/telephoneEvent.js';
import type { MediaClock } from './MediaClock.js';
import type { NegotiatedMedia } from './sdp.js';
import { PacedSender, type PacedSenderStats, type SilenceMode } from './PacedSender.js';
import { Resampler } from './Resampler.js';
import type { Logger } from 'pino';
import { callLogger } from '../log.js';
import { createRecorderFromEnv } from './capture/PcapRecorder.js';
import { RtpEndpoint, type RtpEndpointOptions, type RtpEndpointStats } from './RtpEndpoint.js';
import type { RtpPacket } from './rtp/RtpPacket.js';
import { PIPELINE_RATE, samplesPerFrame, type DtmfEvent, type SampleRate } from './types.js';

/** The codec and payload types negotiated for the leg (from `negotiate()` in sdp.ts, or set by hand). */
export interface LegCodec {
  readonly name: CodecName;
  readonly payloadType: number;
  /** Telephone-event PT and its clock rate, when the peer offered RFC 4733. */
  readonly telephoneEvent?: { readonly payloadType: number; readonly clockRate: number } | undefined;
}

/** Shared, never written: most frames leave no remainder, and allocating one per frame is waste. */
const NO_SAMPLES = new Int16Array(0);

/** The leg codec an SDP negotiation settled on (sdp.ts `negotiate`). */
export function legCodecFrom(negotiated: NegotiatedMedia): LegCodec {
  const te = negotiated.telephoneEvent;
  return {
    name: negotiated.codec.name,
    payloadType: negotiated.codec.pt,
    telephoneEvent: te ? { payloadType: te.pt, clockRate: te.clockRate } : undefined,
  };
}

export interface AudioLegOptions {
  /**
   * Rate Opus is decoded at. Default 16000, the pipeline rate: libopus decodes straight to it (SILK runs
   * at 16 kHz internally), which measured ~2.7× cheaper per frame than decoding at 48 kHz and
   * resampling down (docs/benchmarks.md). 48000 remains available for a consumer that wants fullband.
   */
  readonly opusDecodeRate: SampleRate;
  /** Opus encoder settings; defaults are the measured ones in codecs/opus.ts. */
  readonly opusEncoder: Partial<OpusEncoderOptions>;
  /** What goes out while the agent is silent (see PacedSender). */
  readonly silence: SilenceMode;
  /**
   * Longest run of lost frames concealed with the codec's PLC; beyond it the gap is filled with zeros,
   * because extrapolating speech for long would invent syllables the caller never said.
   */
  readonly maxConcealFrames: number;
}

export const defaultAudioLegOptions = {
  opusDecodeRate: 16000,
  opusEncoder: {},
  silence: 'comfort',
  /** 60 ms: Opus PLC stays natural for about that long. */
  maxConcealFrames: 3,
} as const satisfies AudioLegOptions;

export interface AudioLegEvents {
  /** 20 ms of caller audio, 16 kHz mono (320 samples), in order, with lost frames concealed. */
  audio: [frame: Int16Array];
  dtmf: [event: DtmfEvent];
  /** Everything queued for the caller has been sent. */
  drain: [];
  /** The first packet of a talkspurt (a prompt or reply after silence or a flush) has just been sent. */
  talkspurt: [];
  /** See `sentAudio()`. */
  sent: [frame: Int16Array];
  /** Final statistics, just before the leg's resources are released. */
  closing: [stats: AudioLegStats];
  closed: [];
}

export interface AudioLegStats {
  readonly endpoint: RtpEndpointStats;
  readonly sender: PacedSenderStats;
  readonly framesIn: number;
  readonly concealedFrames: number;
  readonly decodeErrors: number;
  readonly dtmfEvents: number;
}

/** An encoded prompt: encode once (the greeting, fixed phrases), send to every call without re-encoding. */
export interface EncodedPrompt {
  readonly codec: CodecName;
  readonly payloads: readonly Uint8Array[];
  readonly durationMs: number;
}

/**
 * One call leg's audio as the agent sees it: 16 kHz frames in (decoded, reordered, concealed), DTMF
 * events, and 16 kHz PCM or pre-encoded prompts out, paced on the shared media clock. The agent never
 * sees RTP, codecs or rates. Owns the endpoint, codecs and sender: `close()` closes them all.
 */
export class AudioLeg extends EventEmitter<AudioLegEvents> {
  readonly codec: LegCodec;
  private readonly decoder: AudioDecoder;
  private readonly encoder: AudioEncoder;
  private readonly sender: PacedSender;
  private readonly inResampler: Resampler | undefined;
  private readonly outResampler: Resampler | undefined;
  private readonly dtmf: DtmfReceiver | undefined;
  private readonly options: AudioLegOptions;
  /** Decoded samples not yet making a whole 20 ms pipeline frame (peers may send 30/40/60 ms packets). */
  private pending: Int16Array = NO_SAMPLES;
  private readonly frameSamples = samplesPerFrame(PIPELINE_RATE);
  private counters = { framesIn: 0, concealedFrames: 0, decodeErrors: 0, dtmfEvents: 0 };
  private closing: Promise<void> | undefined;
  /** Decodes sent payloads for 'sent' listeners (created on the first one). */
  private sentDecoder: AudioDecoder | undefined;

  constructor(
    readonly endpoint: RtpEndpoint,
    codec: LegCodec,
    clock: MediaClock,
    options: Partial<AudioLegOptions> = {},
  ) {
    super();
    this.codec = codec;
    this.options = { ...defaultAudioLegOptions, ...options };
    this.decoder =
      codec.name === 'opus' ? createDecoder('opus', { sampleRate: this.options.opusDecodeRate }) : createDecoder(codec.name);
    this.encoder = codec.name === 'opus' ? createEncoder('opus', this.options.opusEncoder) : createEncoder(codec.name);
    this.inResampler = this.decoder.sampleRate === PIPELINE_RATE ? undefined : new Resampler(this.decoder.sampleRate, PIPELINE_RATE);
    this.outResampler = this.encoder.sampleRate === PIPELINE_RATE ? undefined : new Resampler(PIPELINE_RATE, this.encoder.sampleRate);
    this.dtmf = codec.telephoneEvent ? new DtmfReceiver() : undefined;
    this.sender = new PacedSender({
      clock,
      encoder: this.encoder,
      payloadType: codec.payloadType,
      silence: this.options.silence,
      send: (packet) => endpoint.send(packet),
      createDecoder: () => (codec.name === 'opus' ? createDecoder('opus', { sampleRate: this.encoder.sampleRate }) : createDecoder(codec.name)),
    });
    this.sender.on('drain', () => this.emit('drain'));
    this.sender.on('talkspurt', () => this.emit('talkspurt'));
    endpoint.on('packet', (p) => this.onPacket(p));
    endpoint.on('lost', (count, next) => this.onLost(count, next));
  }

  /** Queues 16 kHz mono PCM for the caller (any length; encoded frame by frame at send time). */
  play(pcm: Int16Array): boolean {
    return this.sender.enqueuePcm(this.outResampler ? this.outResampler.process(pcm) : pcm);
  }

  /** Queues a prompt encoded earlier with `encodePrompt` for this leg's codec. */
  playEncoded(prompt: EncodedPrompt): boolean {
    if (prompt.codec !== this.codec.name) {
      throw new CallgateError('CG_CODEC_UNSUPPORTED', `prompt is ${prompt.codec}, leg is ${this.codec.name}`);
    }
    return this.sender.enqueueEncoded(prompt.payloads);
  }

  /** Barge-in: drops everything queued for the caller at once; returns the milliseconds dropped. */
  flush(): number {
    return this.sender.flush();
  }

  get queuedMs(): number {
    return this.sender.queuedMs;
  }

  /** Lowers what the caller hears by `gainDb` (negative) from the next packet on; 0 restores it. */
  duck(gainDb: number): void {
    this.sender.duck(gainDb);
  }

  /** Pauses (true) or resumes (false) what is queued for the caller; nothing queued is lost. */
  hold(on: boolean): void {
    this.sender.hold(on);
  }

  stats(): AudioLegStats {
    return { endpoint: this.endpoint.stats(), sender: this.sender.stats(), ...this.counters };
  }

  /**
   * `listener` gets 20 ms of what the caller's phone plays, 16 kHz mono, one frame per 20 ms slot (zeros
   * for silence): the sent payloads decoded again, codec and ducking included — the echo canceller's
   * reference. Nothing is decoded until the first listener. Returns the way to stop listening.
   */
  sentAudio(listener: (frame: Int16Array) => void): () => void {
    if (!this.sentDecoder) this.startSentAudio();
    this.on('sent', listener);
    return () => this.off('sent', listener);
  }

  private startSentAudio(): void {
    const name = this.codec.name;
    // Opus decodes straight to 16 kHz; G.711 is 8 kHz and is resampled like the caller's audio.
    const decoder = name === 'opus' ? createDecoder('opus', { sampleRate: PIPELINE_RATE }) : createDecoder(name);
    const up = decoder.sampleRate === PIPELINE_RATE ? undefined : new Resampler(decoder.sampleRate, PIPELINE_RATE);
    this.sentDecoder = decoder;
    this.sender.on('sent', (payload) => {
      if (this.listenerCount('sent') === 0) return;
      const frame = new Int16Array(this.frameSamples);
      const decoded = payload ? decoder.decode(payload) : undefined;
      // Our own encoder's output fails to decode only through a bug: that slot is silence then.
      if (decoded?.ok) frame.set((up ? up.process(decoded.value) : decoded.value).subarray(0, this.frameSamples));
      this.emit('sent', frame);
    });
  }

  /** Stops sending, reports a DTMF key still held, closes codecs and the endpoint. Idempotent. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.emit('closing', this.stats());
    this.sender.close();
    const held = this.dtmf?.flush();
    if (held) this.emitDtmf(held);
    this.decoder.close();
    this.encoder.close();
    this.sentDecoder?.close();
    this.closing = this.endpoint.close().then(() => {
      this.emit('closed');
      this.removeAllListeners();
    });
    return this.closing;
  }

  private onPacket(packet: RtpPacket): void {
    const te = this.codec.telephoneEvent;
    if (te && packet.payloadType === te.payloadType) {
      const events = this.dtmf!.feed(packet.timestamp, packet.marker, packet.payload, te.clockRate);
      if (events.ok) for (const e of events.value) this.emitDtmf(e);
      return;
    }
    if (packet.payloadType !== this.codec.payloadType) return;
    const decoded = this.decoder.decode(packet.payload);
    if (!decoded.ok) {
      // Counted and concealed: a corrupt payload must not leave a hole in the caller's timeline.
      this.counters.decodeErrors++;
      this.pushDecoded(this.decoder.conceal());
      return;
    }
    this.pushDecoded(decoded.value);
  }

  private onLost(count: number, next: RtpPacket | undefined): void {
    const nextPayload = next && next.payloadType === this.codec.payloadType ? next.payload : undefined;
    for (let i = 0; i < count; i++) {
      this.counters.concealedFrames++;
      const conceal = i < this.options.maxConcealFrames;
      this.pushDecoded(conceal ? this.decoder.conceal(i === count - 1 ? nextPayload : undefined) : new Int16Array(this.decoder.frameSamples));
    }
  }

  private pushDecoded(pcm: Int16Array): void {
    const at16k = this.inResampler ? this.inResampler.process(pcm) : pcm;
    let buf = at16k;
    if (this.pending.length > 0) {
      buf = new Int16Array(this.pending.length + at16k.length);
      buf.set(this.pending);
      buf.set(at16k, this.pending.length);
    }
    let offset = 0;
    while (buf.length - offset >= this.frameSamples) {
      this.counters.framesIn++;
      this.emit('audio', buf.subarray(offset, offset + this.frameSamples));
      offset += this.frameSamples;
    }
    this.pending = offset === buf.length ? NO_SAMPLES : buf.slice(offset);
  }

  private emitDtmf(event: DtmfEvent): void {
    this.counters.dtmfEvents++;
    this.emit('dtmf', event);
  }
}

export interface OpenAudioLegOptions {
  readonly callId: string;
  /** Which leg of the call (e.g. 'caller'); names the capture file. */
  readonly legId: string;
  readonly codec: LegCodec;
  readonly clock: MediaClock;
  readonly endpoint?: Partial<RtpEndpointOptions>;
  readonly leg?: Partial<AudioLegOptions>;
  /** Where CAPTURE_DIR is read from; default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly logger?: Logger;
}

/**
 * Opens a call leg the way front doors do: an RtpEndpoint from the port range, recorded to
 * `<CAPTURE_DIR>/<callId>-<legId>.pcap` when CAPTURE_DIR is set, and a summary logged when it closes.
 */
export async function openAudioLeg(opts: OpenAudioLegOptions): Promise<AudioLeg> {
  const endpoint = await openLegEndpoint({ ...opts, clockRate: opts.codec.name === 'opus' ? 48000 : 8000 });
  return audioLegOn(endpoint, opts);
}

/**
 * The RtpEndpoint half of `openAudioLeg`, for a door that must put a port in an offer before it
 * knows the codec (an outbound call): the leg is made on it with `audioLegOn` once the answer is in.
 */
export async function openLegEndpoint(opts: Omit<OpenAudioLegOptions, 'codec' | 'clock' | 'leg'> & { readonly clockRate: number }): Promise<RtpEndpoint> {
  const log = callLogger({ callId: opts.callId, legId: opts.legId }, opts.logger);
  const tap = createRecorderFromEnv(opts.env ?? process.env, { callId: opts.callId, legId: opts.legId }, {
    onError: (err) => log.warn({ code: err.code, err: err.message }, 'call capture failed; the call goes on without it'),
  });
  return RtpEndpoint.open({ clockRate: opts.clockRate, ...opts.endpoint, ...(tap ? { tap } : {}) });
}

/** An AudioLeg on an open endpoint, with the summary logged when it closes. */
export function audioLegOn(endpoint: RtpEndpoint, opts: Omit<OpenAudioLegOptions, 'endpoint' | 'env'>): AudioLeg {
  const log = callLogger({ callId: opts.callId, legId: opts.legId }, opts.logger);
  const leg = new AudioLeg(endpoint, opts.codec, opts.clock, opts.leg);
  log.debug({ localPort: endpoint.localAddress.port, codec: opts.codec.name }, 'leg open');
  leg.once('closing', (stats) => {
    const { received, jitterBuffer, sent, droppedTotal } = stats.endpoint;
    log.info(
      {
        codec: opts.codec.name,
        packetsIn: received.packets,
        lost: received.lost,
        jitterMs: Math.round(received.jitterMs * 10) / 10,
        late: jitterBuffer.late,
        duplicates: jitterBuffer.duplicates,
        packetsOut: sent.packets,
        dropped: droppedTotal,
        concealedFrames: stats.concealedFrames,
        dtmfEvents: stats.dtmfEvents,
      },
      'leg closed',
    );
  });
  return leg;
}

/**
 * Encodes 16 kHz PCM once into a leg codec's payloads, for prompts that every call plays (greeting,
 * apologies, goodbye). Each call then sends cached packets: no encoder time per call.
 */
export function encodePrompt(
  pcm: Int16Array,
  codec: CodecName,
  opusEncoder: Partial<OpusEncoderOptions> = promptOpusEncoderOptions,
): EncodedPrompt {
  const job = promptEncoding(pcm, codec, opusEncoder);
  while (!job.step(Number.POSITIVE_INFINITY));
  return job.result();
}

/**
 * `encodePrompt` in slices, yielding to the event loop between them: a prompt first needed during live
 * calls (a new tenant's greeting) must not hold up other calls' 20 ms packets. Opus at prompt quality
 * costs ~0.2 ms a frame, so a 5 s prompt in one go would block the loop for ~50 ms.
 */
export async function encodePromptAsync(
  pcm: Int16Array,
  codec: CodecName,
  opusEncoder: Partial<OpusEncoderOptions> = promptOpusEncoderOptions,
  framesPerSlice = 25,
): Promise<EncodedPrompt> {
  const job = promptEncoding(pcm, codec, opusEncoder);
  while (!job.step(framesPerSlice)) await new Promise<void>((resolve) => setImmediate(resolve));
  return job.result();
}

/** One prompt being encoded: `step(n)` encodes up to n frames and says whether it is done. */
function promptEncoding(pcm: Int16Array, codec: CodecName, opusEncoder: Partial<OpusEncoderOptions>) {
  const encoder = codec === 'opus' ? createEncoder('opus', opusEncoder) : createEncoder(codec);
  const payloads: Uint8Array[] = [];
  let input: Int16Array;
  try {
    input = encoder.sampleRate === PIPELINE_RATE ? pcm : new Resampler(PIPELINE_RATE, encoder.sampleRate).process(pcm);
  } catch (err) {
    encoder.close();
    throw err;
  }
  const n = encoder.frameSamples;
  let offset = 0;
  let closed = false;
  return {
    step(maxFrames: number): boolean {
      try {
        for (let i = 0; i < maxFrames && offset < input.length; i++, offset += n) {
          let frame = input.subarray(offset, offset + n);
          if (frame.length < n) {
            const padded = new Int16Array(n);
            padded.set(frame);
            frame = padded;
          }
          payloads.push(Uint8Array.from(encoder.encode(frame)));
        }
      } catch (err) {
        encoder.close();
        closed = true;
        throw err;
      }
      const done = offset >= input.length;
      if (done && !closed) {
        encoder.close();
        closed = true;
      }
      return done;
    },
    result(): EncodedPrompt {
      return { codec, payloads, durationMs: payloads.length * 20 };
    },
  };
}
