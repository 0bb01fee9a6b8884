import { createRequire } from 'node:module';
import { CallgateError, fail, type Parsed } from '../../errors.js';
import { isSampleRate, samplesPerFrame, type SampleRate } from '../types.js';
import type { AudioDecoder, AudioEncoder } from './AudioCodec.js';

/**
 * Opus (RFC 6716, RTP per RFC 7587) on top of the libopus 1.4 wasm build that npm `opusscript` ships.
 *
 * We call opusscript's wasm module directly instead of its JS wrapper (`OpusScript` in index.js),
 * because the wrapper has two defects that break a gateway with many legs:
 * - it builds its PCM views with `HEAPU16.subarray(pointer, …)`, i.e. at twice the byte address it
 *   malloc'ed, so encode/decode write PCM into memory that belongs to someone else;
 * - it keeps those views for the object's life, and the wasm memory grows once a few hundred codecs
 *   exist: every codec created before the growth then throws "detached ArrayBuffer" on each call
 *   (reproduced with 400 instances).
 * Here every buffer is malloc'ed at its own size and the heap views are read afresh on each call.
 *
 * The handler's calling convention (opusscript src/opusscript_encoder.cpp): `_encode(ptr, n, out, frameSize)`
 * reads n int16 slots holding one byte each (low, high, low, high …) and packs them in place;
 * `_decode(ptr, len, out)` writes each decoded sample as two int16 slots (low byte, high byte).
 */

// ── libopus constants (opus_defines.h) ───────────────────────────────────────────────────────────
const OPUS_SET_BITRATE = 4002;
const OPUS_SET_MAX_BANDWIDTH = 4004;
const OPUS_SET_COMPLEXITY = 4010;
const OPUS_SET_INBAND_FEC = 4012;
const OPUS_SET_PACKET_LOSS_PERC = 4014;
/** GET requests take a pointer into the wasm heap (the ctl is variadic; a wasm pointer is an int). */
export const OPUS_GET_BITRATE = 4003;
export const OPUS_GET_MAX_BANDWIDTH = 4005;
export const OPUS_GET_COMPLEXITY = 4011;
export const OPUS_GET_INBAND_FEC = 4013;
export const OPUS_GET_PACKET_LOSS_PERC = 4015;
export const OPUS_GET_LOOKAHEAD = 4027;

const APPLICATION_CODES = { voip: 2048, audio: 2049, lowdelay: 2051 } as const;
const BANDWIDTH_CODES = { narrowband: 1101, mediumband: 1102, wideband: 1103, superwideband: 1104, fullband: 1105 } as const;
const OPUS_ERRORS: Readonly<Record<number, string>> = {
  [-1]: 'bad argument',
  [-2]: 'buffer too small',
  [-3]: 'internal error',
  [-4]: 'invalid packet',
  [-5]: 'unimplemented',
  [-6]: 'invalid state',
  [-7]: 'memory allocation failed',
};

/** RTP clock for Opus is 48 kHz whatever rate the PCM has (RFC 7587 §4.1). */
export const OPUS_CLOCK_RATE = 48000;
/** Largest payload accepted for decoding: opusscript's own packet limit (3 × 1276 bytes). */
export const OPUS_MAX_PAYLOAD_BYTES = 3828;
/** Largest PCM one `_decode` call may write: 120 ms at 48 kHz, two int16 slots per sample. */
const DECODE_OUT_BYTES = 5760 * 2 * 2;

export type OpusApplication = keyof typeof APPLICATION_CODES;
export type OpusBandwidth = keyof typeof BANDWIDTH_CODES;

/** `null` for a libopus setting means "do not send this CTL": libopus keeps its own default. */
export interface OpusEncoderOptions {
  /** PCM rate `encode` takes. The RTP clock stays 48000 regardless. */
  readonly sampleRate: SampleRate;
  /** Tuning libopus starts from: 'voip' favours intelligibility, 'audio' fidelity, 'lowdelay' drops SILK. */
  readonly application: OpusApplication;
  /** CPU/quality trade-off, 0 (cheapest) .. 10. */
  readonly complexity: number | null;
  /** Target bitrate in bits per second (6000 .. 510000). */
  readonly bitrateBps: number | null;
  /** Widest audio band the encoder may code. */
  readonly maxBandwidth: OpusBandwidth | null;
  /** Adds in-band FEC (SILK LBRR) so a receiver that decodes FEC can rebuild a lost frame from the next. */
  readonly inbandFec: boolean | null;
  /** Loss the encoder should expect, 0 .. 100 %: drives how much FEC it spends. */
  readonly expectedLossPercent: number | null;
}

/**
 * Defaults, chosen by measurement: libopus 1.4 (opusscript wasm), Node 20, one core of the shared 2-core
 * dev machine; 15 s of flite TTS speech at 16 kHz (two voices) in 20 ms frames, 24 kb/s unless noted;
 * "48k" rows feed the same speech upsampled. Decoded at 16 kHz and compared with the input after delay
 * alignment. SNR is the waveform SNR; SILK (voip) does not preserve the waveform, so it reads ~8 dB
 * whatever the setting. magSNR compares 512-point magnitude spectra per 20 ms (phase-blind: the noise
 * the codec adds) and LSD is the mean log-spectral distance; both track what a listener hears.
 *
 *   input  app    complexity  band cap  encode frames/s  kb/s   SNR dB  magSNR dB  LSD dB
 *   48k    audio  (libopus defaults, no CTLs)   2100–2400  50.4   23.4    35.1       4.27
 *   16k    voip   0           wideband  11 900          23.2   7.9     26.2       5.44
 *   16k    voip   1           wideband  10 400–11 200   22.2   7.9     25.4       5.46
 *   16k    voip   2           wideband   7 600          23.0   7.9     27.9       5.27
 *   16k    voip   3           wideband   6 900–7 000    21.9   7.9     27.5       5.32
 *   16k    voip   5           wideband   5 100–5 300    22.5   7.9     29.4       5.20
 *   16k    voip   10          wideband   2 600–2 800    22.8   7.8     30.6       5.11
 *   48k    voip   1           wideband   9 100          22.3   7.9     25.5       5.41
 *   48k    voip   5           wideband   4 800          22.5   7.8     29.5       5.19
 *   48k    voip   5           none       2 900          24.2   7.9     –          5.96
 *   48k    voip   10          none       2 600          22.8   7.8     –          5.09
 *   16k    audio  1           wideband  26 700          24.4   16.8    21.5       6.16
 *   16k    audio  5           wideband  11 800          24.4   19.6    24.8       6.10
 *   (16k voip c5 at 16 / 20 / 32 kb/s: LSD 6.30 / 5.70 / 4.32)
 *
 * - sampleRate 16000: TTS and the agent pipeline run at 16 kHz, so nothing is resampled on the way out.
 * - application 'voip': SILK for speech; 'audio' picks CELT at this rate, cheaper but ~5 dB worse magSNR.
 * - complexity 1 for live encoding: the density the gateway needs. Codec quality alone would pick 5 (the
 *   knee: within 1.2 dB magSNR of 10), but `npm run bench:media` with a quarter of the legs encoding live
 *   speech carries 200 full-duplex legs per process at complexity 1 (p99 lateness 3.6 ms, 77 % of a core)
 *   and saturates the core below 200 at 3 or 5 (docs/benchmarks.md). Complexity 1 costs 4 dB magSNR against
 *   5, still clean wideband speech. Prompts encoded once and cached (`promptOpusEncoderOptions`) cost
 *   nothing per call, so they use complexity 10.
 * - bitrateBps 24000: good wideband speech; the step from 20 to 24 kb/s is still clearly audible in LSD.
 * - maxBandwidth 'wideband': all a 16 kHz signal holds; at 48 kHz input it keeps the encoder out of the
 *   super-wideband hybrid modes (2 900 instead of 4 800 frames/s).
 * - inbandFec false / expectedLossPercent 0: FEC costs bitrate and only helps a receiver that decodes
 *   it; a leg can turn it on (options) when the remote's SDP says `useinbandfec=1` and reports loss.
 */
export const defaultOpusEncoderOptions = {
  sampleRate: 16000,
  application: 'voip',
  complexity: 1,
  bitrateBps: 24000,
  maxBandwidth: 'wideband',
  inbandFec: false,
  expectedLossPercent: 0,
} as const satisfies OpusEncoderOptions;

/** For prompts encoded once and replayed to every call (greeting, apologies): best quality, cost paid once. */
export const promptOpusEncoderOptions = {
  ...defaultOpusEncoderOptions,
  complexity: 10,
} as const satisfies OpusEncoderOptions;

/** libopus exactly as created (48 kHz, 'audio', no CTL at all): the baseline the benchmark compares with. */
export const libopusDefaultEncoderOptions = {
  sampleRate: 48000,
  application: 'audio',
  complexity: null,
  bitrateBps: null,
  maxBandwidth: null,
  inbandFec: null,
  expectedLossPercent: null,
} as const satisfies OpusEncoderOptions;

export interface OpusDecoderOptions {
  /** PCM rate `decode` returns. libopus decodes straight to any of these, no resampler needed. */
  readonly sampleRate: SampleRate;
}

export const defaultOpusDecoderOptions = {
  /** 48 kHz: full quality for whatever the remote sends; a 16 kHz consumer should ask for 16000. */
  sampleRate: 48000,
} as const satisfies OpusDecoderOptions;

// ── the wasm module ──────────────────────────────────────────────────────────────────────────────

interface NativeHandler {
  _encode(input: number, samples: number, output: number, frameSize: number): number;
  _decode(input: number, bytes: number, output: number): number;
  _encoder_ctl(request: number, arg: number): number;
  _decoder_ctl(request: number, arg: number): number;
}

interface NativeModule {
  readonly HEAPU8: Uint8Array;
  readonly HEAPU16: Uint16Array;
  readonly HEAP32: Int32Array;
  _malloc(bytes: number): number;
  _free(pointer: number): void;
  readonly OpusScriptHandler: {
    new (sampleRate: number, channels: number, application: number): NativeHandler;
    destroy_handler(handler: NativeHandler): void;
  };
}

let nativeModule: NativeModule | undefined;

/** Instantiated on first use (the wasm compiles synchronously in Node); one heap for all codecs. */
function opusNative(): NativeModule {
  if (!nativeModule) {
    const require = createRequire(import.meta.url);
    const factory = require('opusscript/build/opusscript_native_wasm.js') as () => NativeModule;
    nativeModule = factory();
  }
  return nativeModule;
}

/** What must be released for one handler; kept apart from the codec so a finalizer can hold it. */
interface NativeResources {
  readonly handler: NativeHandler;
  readonly pointers: number[];
}

function release(resources: NativeResources): void {
  const native = opusNative();
  native.OpusScriptHandler.destroy_handler(resources.handler);
  for (const pointer of resources.pointers) native._free(pointer);
}

/** A codec dropped without close() would leak wasm heap forever (the JS GC cannot see into it). */
const finalizer = new FinalizationRegistry<NativeResources>(release);

function opusErrorName(code: number): string {
  return OPUS_ERRORS[code] ?? `error ${code}`;
}

/** Reads an encoder CTL value (GET request). For tests and diagnostics, not for hot paths. */
function getEncoderCtl(handler: NativeHandler, request: number): number {
  const native = opusNative();
  const pointer = native._malloc(4);
  try {
    const rc = handler._encoder_ctl(request, pointer);
    if (rc < 0) throw new CallgateError('CG_CODEC_OPTION_INVALID', `opus ctl ${request}: ${opusErrorName(rc)}`);
    return opusNative().HEAP32[pointer >> 2] as number;
  } finally {
    native._free(pointer);
  }
}

// ── options ──────────────────────────────────────────────────────────────────────────────────────

function invalid(detail: string): CallgateError {
  return new CallgateError('CG_CODEC_OPTION_INVALID', `opus ${detail}`);
}

function isIntIn(value: unknown, min: number, max: number): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

/** Merges over the defaults (an `undefined` field keeps the default) and checks every value. */
export function resolveOpusEncoderOptions(options: Partial<OpusEncoderOptions> = {}): OpusEncoderOptions {
  const merged: Record<string, unknown> = { ...defaultOpusEncoderOptions };
  for (const [key, value] of Object.entries(options)) if (value !== undefined) merged[key] = value;
  const o = merged as unknown as OpusEncoderOptions;
  if (!isSampleRate(o.sampleRate)) throw invalid(`sampleRate ${String(o.sampleRate)}`);
  if (!Object.hasOwn(APPLICATION_CODES, o.application)) throw invalid(`application ${String(o.application)}`);
  if (o.complexity !== null && !isIntIn(o.complexity, 0, 10)) throw invalid(`complexity ${String(o.complexity)}`);
  if (o.bitrateBps !== null && !isIntIn(o.bitrateBps, 6000, 510000)) throw invalid(`bitrateBps ${String(o.bitrateBps)}`);
  if (o.maxBandwidth !== null && !Object.hasOwn(BANDWIDTH_CODES, o.maxBandwidth)) throw invalid(`maxBandwidth ${String(o.maxBandwidth)}`);
  if (o.inbandFec !== null && typeof o.inbandFec !== 'boolean') throw invalid(`inbandFec ${String(o.inbandFec)}`);
  if (o.expectedLossPercent !== null && !isIntIn(o.expectedLossPercent, 0, 100)) {
    throw invalid(`expectedLossPercent ${String(o.expectedLossPercent)}`);
  }
  return {
    sampleRate: o.sampleRate,
    application: o.application,
    complexity: o.complexity,
    bitrateBps: o.bitrateBps,
    maxBandwidth: o.maxBandwidth,
    inbandFec: o.inbandFec,
    expectedLossPercent: o.expectedLossPercent,
  };
}

export function resolveOpusDecoderOptions(options: Partial<OpusDecoderOptions> = {}): OpusDecoderOptions {
  const sampleRate = options.sampleRate ?? defaultOpusDecoderOptions.sampleRate;
  if (!isSampleRate(sampleRate)) throw invalid(`decoder sampleRate ${String(sampleRate)}`);
  return { sampleRate };
}

function applyCtls(handler: NativeHandler, o: OpusEncoderOptions): void {
  const set = (request: number, value: number, name: string): void => {
    const rc = handler._encoder_ctl(request, value);
    if (rc < 0) throw invalid(`${name} ${value} rejected by libopus: ${opusErrorName(rc)}`);
  };
  if (o.complexity !== null) set(OPUS_SET_COMPLEXITY, o.complexity, 'complexity');
  if (o.bitrateBps !== null) set(OPUS_SET_BITRATE, o.bitrateBps, 'bitrateBps');
  if (o.maxBandwidth !== null) set(OPUS_SET_MAX_BANDWIDTH, BANDWIDTH_CODES[o.maxBandwidth], 'maxBandwidth');
  if (o.inbandFec !== null) set(OPUS_SET_INBAND_FEC, o.inbandFec ? 1 : 0, 'inbandFec');
  if (o.expectedLossPercent !== null) set(OPUS_SET_PACKET_LOSS_PERC, o.expectedLossPercent, 'expectedLossPercent');
}

// ── encoder ──────────────────────────────────────────────────────────────────────────────────────

/** One packet of 20 ms digital silence per distinct options: 200 legs share it instead of each encoding one. */
const silenceCache = new Map<string, Uint8Array>();

/**
 * The packet a settled encoder emits for digital silence. The first frames of a fresh encoder differ
 * (it is still ramping its state), so a few frames are encoded and the last one kept.
 */
function silencePacket(options: OpusEncoderOptions): Uint8Array {
  const key = JSON.stringify(options);
  let packet = silenceCache.get(key);
  if (!packet) {
    const encoder = new OpusEncoder(options, new Uint8Array(0));
    const zeros = new Int16Array(encoder.frameSamples);
    for (let i = 0; i < 10; i++) packet = encoder.encode(zeros);
    encoder.close();
    packet = packet as Uint8Array;
    silenceCache.set(key, packet);
  }
  return packet;
}

class OpusEncoder implements AudioEncoder {
  readonly codec = 'opus';
  readonly sampleRate: SampleRate;
  readonly clockRate = OPUS_CLOCK_RATE;
  readonly frameSamples: number;
  readonly timestampIncrement = samplesPerFrame(OPUS_CLOCK_RATE);
  readonly silence: Uint8Array;
  readonly options: OpusEncoderOptions;
  private resources: NativeResources | undefined;
  private readonly input: number;
  private readonly output: number;

  constructor(options: OpusEncoderOptions, silence?: Uint8Array) {
    this.options = options;
    this.sampleRate = options.sampleRate;
    this.frameSamples = samplesPerFrame(options.sampleRate);
    const native = opusNative();
    const handler = new native.OpusScriptHandler(options.sampleRate, 1, APPLICATION_CODES[options.application]);
    this.input = native._malloc(this.frameSamples * 4);
    this.output = native._malloc(OPUS_MAX_PAYLOAD_BYTES);
    this.resources = { handler, pointers: [this.input, this.output] };
    try {
      applyCtls(handler, options);
    } catch (err) {
      release(this.resources);
      this.resources = undefined;
      throw err;
    }
    finalizer.register(this, this.resources, this);
    this.silence = silence ?? silencePacket(options);
  }

  encode(pcm: Int16Array): Uint8Array {
    const resources = this.resources;
    if (!resources) throw new CallgateError('CG_CODEC_CLOSED', 'opus encoder');
    const n = this.frameSamples;
    if (pcm.length !== n) throw new CallgateError('CG_CODEC_BAD_FRAME', `opus at ${this.sampleRate} Hz needs ${n} samples, got ${pcm.length}`);
    const native = opusNative();
    const slots = native.HEAPU16;
    const base = this.input >> 1;
    for (let i = 0; i < n; i++) {
      const s = pcm[i] as number;
      slots[base + 2 * i] = s & 0xff;
      slots[base + 2 * i + 1] = (s >> 8) & 0xff;
    }
    const length = resources.handler._encode(this.input, n, this.output, n);
    if (length < 0) throw new CallgateError('CG_CODEC_ENCODE_FAILED', `opus: ${opusErrorName(length)}`);
    return native.HEAPU8.slice(this.output, this.output + length);
  }

  /** Reads a libopus GET ctl (e.g. OPUS_GET_BITRATE) to confirm what the encoder really runs with. */
  getCtl(request: number): number {
    if (!this.resources) throw new CallgateError('CG_CODEC_CLOSED', 'opus encoder');
    return getEncoderCtl(this.resources.handler, request);
  }

  close(): void {
    if (!this.resources) return;
    finalizer.unregister(this);
    release(this.resources);
    this.resources = undefined;
  }
}

// ── decoder ──────────────────────────────────────────────────────────────────────────────────────

/**
 * A TOC byte asking for 20 ms in the mode and band of `toc`, with no frame data. libopus treats a frame
 * of length 0 as a lost frame and conceals exactly the duration the TOC names (the DTX path). An empty
 * payload would also conceal, but opusscript asks for 120 ms then: measured 640 µs instead of 115 µs,
 * and the decoder's state runs 100 ms ahead of the stream.
 */
function concealmentToc(toc: number): number {
  const config = toc >> 3;
  let twentyMs: number;
  if (config < 12) twentyMs = (config & ~3) | 1; // SILK NB/MB/WB: 10, 20, 40, 60 ms
  else if (config < 16) twentyMs = (config & ~1) | 1; // hybrid SWB/FB: 10, 20 ms
  else twentyMs = (config & ~3) | 3; // CELT NB/WB/SWB/FB: 2.5, 5, 10, 20 ms
  return (twentyMs << 3) | (toc & 0x04); // frame-count code 0: one frame
}

/** CELT fullband 20 ms mono: used before any packet arrived (libopus then returns silence). */
const FIRST_CONCEALMENT_TOC = 0xf8;

class OpusDecoder implements AudioDecoder {
  readonly codec = 'opus';
  readonly sampleRate: SampleRate;
  readonly clockRate = OPUS_CLOCK_RATE;
  readonly frameSamples: number;
  private resources: NativeResources | undefined;
  private readonly input: number;
  private readonly output: number;
  private lastToc = FIRST_CONCEALMENT_TOC;
  private readonly concealPacket = new Uint8Array(1);

  constructor(options: OpusDecoderOptions) {
    this.sampleRate = options.sampleRate;
    this.frameSamples = samplesPerFrame(options.sampleRate);
    const native = opusNative();
    // The handler always holds an encoder too; the application code is irrelevant for decoding.
    const handler = new native.OpusScriptHandler(options.sampleRate, 1, APPLICATION_CODES.voip);
    this.input = native._malloc(OPUS_MAX_PAYLOAD_BYTES);
    this.output = native._malloc(DECODE_OUT_BYTES);
    this.resources = { handler, pointers: [this.input, this.output] };
    finalizer.register(this, this.resources, this);
  }

  decode(payload: Uint8Array): Parsed<Int16Array> {
    if (!this.resources) return fail('CG_CODEC_CLOSED', 'opus decoder');
    if (payload.length === 0) return fail('CG_CODEC_DECODE_FAILED', 'empty opus payload');
    if (payload.length > OPUS_MAX_PAYLOAD_BYTES) return fail('CG_CODEC_DECODE_FAILED', `opus payload of ${payload.length} bytes`);
    const decoded = this.run(payload);
    if (decoded.ok) this.lastToc = payload[0] as number;
    return decoded;
  }

  /**
   * libopus packet-loss concealment for one 20 ms frame. `next` is ignored: recovering the lost frame
   * from the next packet's in-band FEC needs opus_decode(…, decode_fec = 1), which opusscript's handler
   * does not expose (its _decode passes 0). A native binding registered in registry.ts can use it.
   */
  conceal(_next?: Uint8Array): Int16Array {
    if (!this.resources) throw new CallgateError('CG_CODEC_CLOSED', 'opus decoder');
    this.concealPacket[0] = concealmentToc(this.lastToc);
    const decoded = this.run(this.concealPacket);
    const frame = new Int16Array(this.frameSamples);
    // A failure here (not seen in practice) must not stop the leg: silence stands in for the frame.
    if (decoded.ok) frame.set(decoded.value.subarray(0, this.frameSamples));
    return frame;
  }

  close(): void {
    if (!this.resources) return;
    finalizer.unregister(this);
    release(this.resources);
    this.resources = undefined;
  }

  private run(payload: Uint8Array): Parsed<Int16Array> {
    const resources = this.resources as NativeResources;
    const native = opusNative();
    let samples: number;
    try {
      native.HEAPU8.set(payload, this.input);
      samples = resources.handler._decode(this.input, payload.length, this.output);
    } catch (err) {
      return fail('CG_CODEC_DECODE_FAILED', `opus: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (samples < 0) return fail('CG_CODEC_DECODE_FAILED', `opus: ${opusErrorName(samples)}`);
    const slots = native.HEAPU16;
    const base = this.output >> 1;
    const pcm = new Int16Array(samples);
    for (let i = 0; i < samples; i++) pcm[i] = (slots[base + 2 * i] as number) | ((slots[base + 2 * i + 1] as number) << 8);
    return { ok: true, value: pcm };
  }
}

export type { OpusEncoder, OpusDecoder };

export function createOpusEncoder(options: Partial<OpusEncoderOptions> = {}): OpusEncoder {
  return new OpusEncoder(resolveOpusEncoderOptions(options));
}

export function createOpusDecoder(options: Partial<OpusDecoderOptions> = {}): OpusDecoder {
  return new OpusDecoder(resolveOpusDecoderOptions(options));
}
