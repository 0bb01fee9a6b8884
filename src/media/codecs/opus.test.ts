import { describe, expect, it } from 'vitest';
import {
  createOpusDecoder,
  createOpusEncoder,
  defaultOpusEncoderOptions,
  libopusDefaultEncoderOptions,
  OPUS_GET_BITRATE,
  OPUS_GET_COMPLEXITY,
  OPUS_GET_INBAND_FEC,
  OPUS_GET_MAX_BANDWIDTH,
  OPUS_GET_PACKET_LOSS_PERC,
  OPUS_MAX_PAYLOAD_BYTES,
  resolveOpusEncoderOptions,
  type OpusEncoderOptions,
} from './opus.js';
import { concatSamples } from '../signal.js';

/**
 * Speech-like test signal: a 140 Hz voice with 12 harmonics falling off at 6 dB/octave (a glottal
 * source), shaped by two formant-ish boosts, with a 4 Hz syllable-rate amplitude envelope.
 */
function speechLike(rate: number, n: number): Int16Array {
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    const f0 = 140 * (1 + 0.05 * Math.sin(2 * Math.PI * 1.5 * t));
    let v = 0;
    for (let h = 1; h <= 12; h++) {
      const f = f0 * h;
      const formant = 1 + 2 * Math.exp(-(((f - 600) / 200) ** 2)) + 1.5 * Math.exp(-(((f - 1400) / 300) ** 2));
      v += (formant / h) * Math.sin(2 * Math.PI * f0 * h * t + h);
    }
    const envelope = 0.55 + 0.45 * Math.sin(2 * Math.PI * 4 * t);
    out[i] = Math.round(3000 * envelope * v);
  }
  return out;
}

function frames(signal: Int16Array, size: number): Int16Array[] {
  const out: Int16Array[] = [];
  for (let i = 0; i + size <= signal.length; i += size) out.push(signal.subarray(i, i + size));
  return out;
}


/** Normalised cross-correlation at the best lag (the codec delays the signal by its lookahead). */
function bestCorrelation(reference: Int16Array, test: Int16Array, maxLag: number): { lag: number; correlation: number } {
  let best = { lag: 0, correlation: -1 };
  const n = reference.length - maxLag;
  for (let lag = 0; lag < maxLag; lag++) {
    let xy = 0;
    let xx = 0;
    let yy = 0;
    for (let i = 0; i < n; i++) {
      const x = reference[i] as number;
      const y = test[i + lag] as number;
      xy += x * y;
      xx += x * x;
      yy += y * y;
    }
    const c = xy / Math.sqrt(xx * yy);
    if (c > best.correlation) best = { lag, correlation: c };
  }
  return best;
}

function peak(x: Int16Array): number {
  let m = 0;
  for (const v of x) m = Math.max(m, Math.abs(v));
  return m;
}

function rms(x: Int16Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return Math.sqrt(s / x.length);
}

describe('Opus options', () => {
  it('defaults are the measured voice settings at 16 kHz', () => {
    expect(resolveOpusEncoderOptions()).toEqual(defaultOpusEncoderOptions);
    expect(defaultOpusEncoderOptions).toMatchObject({ sampleRate: 16000, application: 'voip', maxBandwidth: 'wideband' });
  });

  it('applies every CTL it is given, as libopus reports back', () => {
    const encoder = createOpusEncoder({ complexity: 3, bitrateBps: 20000, maxBandwidth: 'narrowband', inbandFec: true, expectedLossPercent: 10 });
    try {
      expect(encoder.getCtl(OPUS_GET_COMPLEXITY)).toBe(3);
      expect(encoder.getCtl(OPUS_GET_BITRATE)).toBe(20000);
      expect(encoder.getCtl(OPUS_GET_MAX_BANDWIDTH)).toBe(1101);
      expect(encoder.getCtl(OPUS_GET_INBAND_FEC)).toBe(1);
      expect(encoder.getCtl(OPUS_GET_PACKET_LOSS_PERC)).toBe(10);
    } finally {
      encoder.close();
    }
  });

  it('the defaults reach libopus', () => {
    const encoder = createOpusEncoder();
    try {
      expect(encoder.getCtl(OPUS_GET_COMPLEXITY)).toBe(1);
      expect(encoder.getCtl(OPUS_GET_BITRATE)).toBe(24000);
      expect(encoder.getCtl(OPUS_GET_MAX_BANDWIDTH)).toBe(1103);
      expect(encoder.getCtl(OPUS_GET_INBAND_FEC)).toBe(0);
    } finally {
      encoder.close();
    }
  });

  it('libopusDefaultEncoderOptions sets no CTL: libopus keeps its own values', () => {
    const encoder = createOpusEncoder(libopusDefaultEncoderOptions);
    try {
      expect(encoder.sampleRate).toBe(48000);
      expect(encoder.getCtl(OPUS_GET_COMPLEXITY)).toBe(9); // libopus 1.4's default
      expect(encoder.getCtl(OPUS_GET_MAX_BANDWIDTH)).toBe(1105); // fullband
      expect(encoder.getCtl(OPUS_GET_BITRATE)).not.toBe(24000); // automatic, not ours
    } finally {
      encoder.close();
    }
  });

  const bad: [string, Partial<Record<keyof OpusEncoderOptions, unknown>>][] = [
    ['complexity 11', { complexity: 11 }],
    ['complexity -1', { complexity: -1 }],
    ['complexity 2.5', { complexity: 2.5 }],
    ['bitrate 100', { bitrateBps: 100 }],
    ['bitrate 1e6', { bitrateBps: 1_000_000 }],
    ['bandwidth', { maxBandwidth: 'ultraband' }],
    ['application', { application: 'music' }],
    ['sampleRate 44100', { sampleRate: 44100 }],
    ['sampleRate 12000', { sampleRate: 12000 }],
    ['loss 101', { expectedLossPercent: 101 }],
    ['fec "yes"', { inbandFec: 'yes' }],
  ];
  it.each(bad)('rejects %s with CG_CODEC_OPTION_INVALID', (_name, options) => {
    expect(() => createOpusEncoder(options as Partial<OpusEncoderOptions>)).toThrow(expect.objectContaining({ code: 'CG_CODEC_OPTION_INVALID' }));
  });

  it('rejects a decoder rate Opus cannot produce', () => {
    expect(() => createOpusDecoder({ sampleRate: 44100 as 48000 })).toThrow(expect.objectContaining({ code: 'CG_CODEC_OPTION_INVALID' }));
  });
});

describe('Opus encode/decode', () => {
  it('describes its framing: 48 kHz RTP clock whatever the PCM rate', () => {
    const e16 = createOpusEncoder();
    const e48 = createOpusEncoder({ sampleRate: 48000 });
    const d = createOpusDecoder();
    const d16 = createOpusDecoder({ sampleRate: 16000 });
    expect([e16.codec, e16.sampleRate, e16.clockRate, e16.frameSamples, e16.timestampIncrement]).toEqual(['opus', 16000, 48000, 320, 960]);
    expect([e48.sampleRate, e48.frameSamples, e48.timestampIncrement]).toEqual([48000, 960, 960]);
    expect([d.codec, d.sampleRate, d.clockRate, d.frameSamples]).toEqual(['opus', 48000, 48000, 960]);
    expect([d16.sampleRate, d16.frameSamples]).toEqual([16000, 320]);
    for (const c of [e16, e48, d, d16]) c.close();
  });

  it('speech-like audio survives a 16 kHz round trip (correlated, same level, ~delay of the lookahead)', () => {
    const encoder = createOpusEncoder();
    const decoder = createOpusDecoder({ sampleRate: 16000 });
    const input = speechLike(16000, 16000 * 2);
    const decoded: Int16Array[] = [];
    let bytes = 0;
    for (const frame of frames(input, 320)) {
      const packet = encoder.encode(frame);
      bytes += packet.length;
      const result = decoder.decode(packet);
      if (!result.ok) throw new Error(result.code);
      expect(result.value.length).toBe(320);
      decoded.push(result.value);
    }
    const output = concatSamples(decoded);
    const { lag, correlation } = bestCorrelation(input.subarray(1600), output.subarray(1600), 400);
    // Measured 0.84 (deterministic); SILK does not copy the waveform, so 1.0 is not expected.
    expect(correlation).toBeGreaterThan(0.8);
    expect(lag).toBeGreaterThan(50);
    expect(lag).toBeLessThan(200);
    expect(Math.abs(20 * Math.log10(rms(output.subarray(1600)) / rms(input.subarray(1600))))).toBeLessThan(2);
    // Measured 16 kb/s: VBR spends less than the 24 kb/s target on this very regular signal.
    const kbps = (bytes * 8) / 2 / 1000;
    expect(kbps).toBeGreaterThan(15);
    expect(kbps).toBeLessThan(30);
    encoder.close();
    decoder.close();
  });

  it('decodes to 48 kHz by default (960 samples per 20 ms packet)', () => {
    const encoder = createOpusEncoder();
    const decoder = createOpusDecoder();
    const input = speechLike(16000, 320 * 20);
    let last: Int16Array = new Int16Array(0);
    for (const frame of frames(input, 320)) {
      const result = decoder.decode(encoder.encode(frame));
      if (!result.ok) throw new Error(result.code);
      last = result.value;
    }
    expect(last.length).toBe(960);
    expect(rms(last)).toBeGreaterThan(500);
    encoder.close();
    decoder.close();
  });

  it('a 48 kHz encoder takes 960-sample frames', () => {
    const encoder = createOpusEncoder({ sampleRate: 48000 });
    const packet = encoder.encode(speechLike(48000, 960));
    expect(packet.length).toBeGreaterThan(0);
    expect(() => encoder.encode(new Int16Array(320))).toThrow(expect.objectContaining({ code: 'CG_CODEC_BAD_FRAME' }));
    encoder.close();
  });

  it('decode fails softly on empty, oversized and garbage payloads, and never throws', () => {
    const decoder = createOpusDecoder();
    expect(decoder.decode(new Uint8Array(0))).toMatchObject({ ok: false, code: 'CG_CODEC_DECODE_FAILED' });
    expect(decoder.decode(new Uint8Array(OPUS_MAX_PAYLOAD_BYTES + 1))).toMatchObject({ ok: false, code: 'CG_CODEC_DECODE_FAILED' });
    // Code 3 (arbitrary frame count) claiming 63 frames of 20 ms: more than 120 ms, invalid per RFC 6716.
    expect(decoder.decode(Uint8Array.of(0x0b, 0x3f, 1, 2, 3))).toMatchObject({ ok: false, code: 'CG_CODEC_DECODE_FAILED' });
    let seed = 7;
    let failures = 0;
    for (let i = 0; i < 300; i++) {
      const payload = new Uint8Array(1 + (i % 200));
      for (let k = 0; k < payload.length; k++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        payload[k] = seed >>> 24;
      }
      const result = decoder.decode(payload);
      if (!result.ok) failures++;
      else expect(result.value.length % 120).toBe(0); // whole 2.5 ms units at 48 kHz
    }
    expect(failures).toBeGreaterThan(0);
    decoder.close();
  });
});

describe('Opus silence and concealment', () => {
  it('silence is a tiny cached packet, shared by encoders with the same options, that decodes to silence', () => {
    const a = createOpusEncoder();
    const b = createOpusEncoder();
    const other = createOpusEncoder({ sampleRate: 48000, maxBandwidth: 'fullband' });
    expect(a.silence).toBe(b.silence);
    expect(a.silence.length).toBeLessThan(12);
    expect(other.silence).not.toBe(a.silence);
    const decoder = createOpusDecoder();
    for (let i = 0; i < 5; i++) {
      const result = decoder.decode(a.silence);
      if (!result.ok) throw new Error(result.code);
      expect(result.value.length).toBe(960);
      expect(peak(result.value)).toBeLessThanOrEqual(4);
    }
    for (const c of [a, b, other, decoder]) c.close();
  });

  it('creating many encoders does not encode silence again (cache hit is cheap)', () => {
    createOpusEncoder({ complexity: 7 }).close(); // fills the cache for these options
    const start = performance.now();
    const encoders = Array.from({ length: 50 }, () => createOpusEncoder({ complexity: 7 }));
    const perEncoderMs = (performance.now() - start) / 50;
    for (const e of encoders) e.close();
    // Encoding 10 frames of silence would cost ~2 ms; creating the encoder alone is ~0.1 ms.
    expect(perEncoderMs).toBeLessThan(1.5);
  });

  it('conceal continues the voice for a lost packet, fades over a longer gap, and gives exactly one frame', () => {
    const encoder = createOpusEncoder();
    const decoder = createOpusDecoder({ sampleRate: 16000 });
    const input = speechLike(16000, 320 * 25);
    let last: Int16Array = new Int16Array(0);
    for (const frame of frames(input, 320)) {
      const result = decoder.decode(encoder.encode(frame));
      if (result.ok) last = result.value;
    }
    const concealed = [decoder.conceal(), decoder.conceal(), decoder.conceal(), decoder.conceal(), decoder.conceal(), decoder.conceal()];
    expect(concealed.every((f) => f.length === 320)).toBe(true);
    expect(rms(concealed[0] as Int16Array)).toBeGreaterThan(0.3 * rms(last));
    expect(rms(concealed[5] as Int16Array)).toBeLessThan(rms(concealed[0] as Int16Array));
    // Decoding carries on normally after the gap.
    const after = decoder.decode(encoder.encode(input.subarray(0, 320)));
    expect(after.ok && after.value.length).toBe(320);
    encoder.close();
    decoder.close();
  });

  it('conceal before any packet is silence', () => {
    const decoder = createOpusDecoder();
    const frame = decoder.conceal();
    expect(frame.length).toBe(960);
    expect(peak(frame)).toBe(0);
    decoder.close();
  });

  it('conceal(next) ignores `next`: opusscript cannot decode in-band FEC', () => {
    const encoder = createOpusEncoder({ inbandFec: true, expectedLossPercent: 20 });
    const d1 = createOpusDecoder();
    const d2 = createOpusDecoder();
    const packets = frames(speechLike(16000, 320 * 12), 320).map((f) => encoder.encode(f));
    for (const p of packets.slice(0, 10)) {
      d1.decode(p);
      d2.decode(p);
    }
    const plain = d1.conceal();
    const withNext = d2.conceal(packets[11]);
    expect(Array.from(withNext)).toEqual(Array.from(plain));
    for (const c of [encoder, d1, d2]) c.close();
  });
});

describe('Opus lifecycle', () => {
  it('close is idempotent and a closed codec reports CG_CODEC_CLOSED', () => {
    const encoder = createOpusEncoder();
    const decoder = createOpusDecoder();
    const packet = encoder.encode(new Int16Array(320));
    encoder.close();
    encoder.close();
    decoder.close();
    decoder.close();
    expect(() => encoder.encode(new Int16Array(320))).toThrow(expect.objectContaining({ code: 'CG_CODEC_CLOSED' }));
    expect(decoder.decode(packet)).toMatchObject({ ok: false, code: 'CG_CODEC_CLOSED' });
    expect(() => decoder.conceal()).toThrow(expect.objectContaining({ code: 'CG_CODEC_CLOSED' }));
  });

  it('hundreds of live codecs (wasm heap growth) neither break nor disturb each other', () => {
    // opusscript's own wrapper fails both ways here: its views detach when the heap grows, and it
    // writes PCM at twice the address it allocated. Our binding must give identical packets.
    const input = frames(speechLike(16000, 320 * 6), 320);
    const first = createOpusEncoder();
    const firstDecoder = createOpusDecoder();
    const crowd: { close(): void }[] = [];
    for (let i = 0; i < 250; i++) crowd.push(createOpusEncoder(), createOpusDecoder());
    // Interleave work on the crowd with work on the first pair.
    const fromFirst: number[][] = [];
    for (const [k, frame] of input.entries()) {
      const packet = first.encode(frame);
      fromFirst.push(Array.from(packet));
      const d = firstDecoder.decode(packet);
      expect(d.ok).toBe(true);
      const other = crowd[(k * 37) % crowd.length] as { encode?: (p: Int16Array) => Uint8Array };
      other.encode?.(frame);
    }
    const reference = createOpusEncoder();
    const fromReference = input.map((f) => Array.from(reference.encode(f)));
    expect(fromFirst).toEqual(fromReference);
    for (const c of crowd) c.close();
    for (const c of [first, firstDecoder, reference]) c.close();
  });
});
