import { describe, expect, it } from 'vitest';
import { CallgateError } from '../../errors.js';
import {
  alawToLinear,
  createG711Decoder,
  createG711Encoder,
  G711_MAX_PAYLOAD_BYTES,
  G711_SILENCE_BYTE,
  linearToAlaw,
  linearToMulaw,
  mulawToLinear,
} from './g711.js';

// Expected codes computed independently: µ-law with a transcription of the ITU-T G.191 reference
// ulaw_compress, A-law with CPython's audioop.lin2alaw (which agrees with G.191 for all inputs).
const MULAW_POINTS: [number, number][] = [
  [0, 0xff], [1, 0xff], [3, 0xff], [4, 0xfe], [5, 0xfe], [11, 0xfe], [12, 0xfd], [-1, 0x7f], [-4, 0x7f],
  [-5, 0x7e], [-12, 0x7e], [-13, 0x7d], [100, 0xf2], [-100, 0x73], [1000, 0xce], [-1000, 0x4e],
  [4095, 0xaf], [-4096, 0x2f], [8159, 0x9f], [-8160, 0x1f], [12345, 0x97], [-12345, 0x17],
  [32124, 0x80], [32635, 0x80], [32767, 0x80], [-32768, 0x00],
];
const ALAW_POINTS: [number, number][] = [
  [0, 0xd5], [1, 0xd5], [8, 0xd5], [-1, 0x55], [100, 0xd3], [-100, 0x53], [1000, 0xfa], [-1000, 0x7a],
  [4095, 0x9a], [-4096, 0x1a], [12345, 0xbd], [-12345, 0x3d], [32767, 0xaa], [-32768, 0x2a],
];
// Decoded values from the G.711 tables (segment end points and the smallest steps).
const MULAW_DECODED: [number, number][] = [
  [0xff, 0], [0x7f, 0], [0xfe, 8], [0x7e, -8], [0xf0, 120], [0x8f, 16764], [0x80, 32124], [0x00, -32124], [0x01, -31100],
];
const ALAW_DECODED: [number, number][] = [[0xd5, 8], [0x55, -8], [0xaa, 32256], [0x2a, -32256], [0xd4, 24], [0xc5, 264]];

function sine(n: number, freq: number, amplitude: number, rate = 8000): Int16Array {
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(amplitude * Math.sin((2 * Math.PI * freq * i) / rate));
  return out;
}

function snrDb(reference: Int16Array, test: Int16Array): number {
  let signal = 0;
  let noise = 0;
  for (let i = 0; i < reference.length; i++) {
    const r = reference[i] as number;
    signal += r * r;
    noise += (r - (test[i] as number)) ** 2;
  }
  return 10 * Math.log10(signal / noise);
}

/** Width of the quantisation interval a code stands for, on the 16-bit scale. */
function mulawStep(code: number): number {
  return 8 << ((~code >> 4) & 7);
}
function alawStep(code: number): number {
  const segment = ((code ^ 0x55) >> 4) & 7;
  return segment === 0 ? 16 : 16 << (segment - 1);
}

describe('G.711 code points', () => {
  it.each(MULAW_POINTS)('µ-law encodes %i as %i', (sample, code) => {
    expect(linearToMulaw(sample)).toBe(code);
  });
  it.each(ALAW_POINTS)('A-law encodes %i as %i', (sample, code) => {
    expect(linearToAlaw(sample)).toBe(code);
  });
  it.each(MULAW_DECODED)('µ-law decodes %i as %i', (code, value) => {
    expect(mulawToLinear(code)).toBe(value);
  });
  it.each(ALAW_DECODED)('A-law decodes %i as %i', (code, value) => {
    expect(alawToLinear(code)).toBe(value);
  });

  it('the encoder (64 Ki table) agrees with the segment algorithm for every 16-bit input', () => {
    const pcmu = createG711Encoder('PCMU');
    const pcma = createG711Encoder('PCMA');
    const all = new Int16Array(65536);
    for (let i = 0; i < 65536; i++) all[i] = i - 32768;
    let mismatches = 0;
    for (let f = 0; f < 65536; f += 160) {
      const frame = new Int16Array(160);
      frame.set(all.subarray(f, Math.min(f + 160, 65536)));
      const u = pcmu.encode(frame);
      const a = pcma.encode(frame);
      for (let i = 0; i < 160; i++) {
        if (u[i] !== linearToMulaw(frame[i] as number)) mismatches++;
        if (a[i] !== linearToAlaw(frame[i] as number)) mismatches++;
      }
    }
    expect(mismatches).toBe(0);
  });

  it('both laws are symmetric: -x-1 encodes as x with the sign bit flipped', () => {
    for (let x = 0; x < 32768; x += 7) {
      expect(linearToMulaw(-x - 1)).toBe(linearToMulaw(x) ^ 0x80);
      expect(linearToAlaw(-x - 1)).toBe(linearToAlaw(x) ^ 0x80);
    }
  });

  it('decoding is monotonic in the input (no code maps out of order)', () => {
    let prevU = -Infinity;
    let prevA = -Infinity;
    for (let x = -32768; x < 32768; x++) {
      const u = mulawToLinear(linearToMulaw(x));
      const a = alawToLinear(linearToAlaw(x));
      expect(u >= prevU && a >= prevA).toBe(true);
      prevU = u;
      prevA = a;
    }
  });
});

describe('G.711 round trip', () => {
  it('error stays within half a quantisation step (one LSB more for negatives) inside the coder range', () => {
    let violations = 0;
    let worstU = 0;
    for (let x = -32000; x <= 32000; x++) {
      // G.191 decides negative values on their one's complement, which moves their levels by one LSB.
      const slack = x < 0 ? 1 : 0;
      const u = linearToMulaw(x);
      const a = linearToAlaw(x);
      const errU = Math.abs(x - mulawToLinear(u));
      const errA = Math.abs(x - alawToLinear(a));
      if (errU > mulawStep(u) / 2 + slack) violations++;
      if (errA > alawStep(a) / 2 + slack) violations++;
      worstU = Math.max(worstU, errU);
    }
    expect(violations).toBe(0);
    // The top µ-law segment is 1024 wide: the worst error is half of that, not something trivially small.
    expect(worstU).toBeGreaterThanOrEqual(500);
  });

  it('clips beyond the largest level instead of wrapping', () => {
    expect(mulawToLinear(linearToMulaw(32767))).toBe(32124);
    expect(mulawToLinear(linearToMulaw(-32768))).toBe(-32124);
    expect(alawToLinear(linearToAlaw(32767))).toBe(32256);
    expect(alawToLinear(linearToAlaw(-32768))).toBe(-32256);
  });

  it.each(['PCMU', 'PCMA'] as const)('%s keeps ~38 dB SNR on a -10 dBFS tone and frames round-trip', (codec) => {
    const encoder = createG711Encoder(codec);
    const decoder = createG711Decoder(codec);
    const tone = sine(1600, 1004, 10362);
    const out = new Int16Array(tone.length);
    for (let f = 0; f < 10; f++) {
      const payload = encoder.encode(tone.subarray(f * 160, f * 160 + 160));
      expect(payload.length).toBe(160);
      const decoded = decoder.decode(payload);
      if (!decoded.ok) throw new Error(decoded.code);
      out.set(decoded.value, f * 160);
    }
    const snr = snrDb(tone, out);
    expect(snr).toBeGreaterThan(35);
    expect(snr).toBeLessThan(45);
  });
});

describe('G.711 codec objects', () => {
  it.each(['PCMU', 'PCMA'] as const)('%s silence is 160 bytes of encoded digital zero and decodes to zero-ish', (codec) => {
    const encoder = createG711Encoder(codec);
    const byte = codec === 'PCMU' ? 0xff : 0xd5;
    expect(G711_SILENCE_BYTE[codec]).toBe(byte);
    expect(encoder.silence.length).toBe(160);
    expect(encoder.silence.every((b) => b === byte)).toBe(true);
    expect(Array.from(encoder.encode(new Int16Array(160)))).toEqual(Array.from(encoder.silence));
    const decoded = createG711Decoder(codec).decode(encoder.silence);
    expect(decoded.ok && decoded.value.every((s) => Math.abs(s) <= 8)).toBe(true);
  });

  it('describes itself as 8 kHz, 160 samples per 20 ms', () => {
    const e = createG711Encoder('PCMA');
    const d = createG711Decoder('PCMA');
    expect([e.codec, e.sampleRate, e.clockRate, e.frameSamples, e.timestampIncrement]).toEqual(['PCMA', 8000, 8000, 160, 160]);
    expect([d.codec, d.sampleRate, d.clockRate, d.frameSamples]).toEqual(['PCMA', 8000, 8000, 160]);
  });

  it('encode rejects a frame of the wrong size', () => {
    const e = createG711Encoder('PCMU');
    expect(() => e.encode(new Int16Array(159))).toThrow(CallgateError);
    try {
      e.encode(new Int16Array(320));
    } catch (err) {
      expect((err as CallgateError).code).toBe('CG_CODEC_BAD_FRAME');
    }
  });

  it('decode accepts other ptimes and fails softly on empty or oversized payloads', () => {
    const d = createG711Decoder('PCMU');
    const ten = d.decode(new Uint8Array(80).fill(0xff));
    expect(ten.ok && ten.value.length).toBe(80);
    expect(d.decode(new Uint8Array(0))).toMatchObject({ ok: false, code: 'CG_CODEC_DECODE_FAILED' });
    expect(d.decode(new Uint8Array(G711_MAX_PAYLOAD_BYTES + 1))).toMatchObject({ ok: false, code: 'CG_CODEC_DECODE_FAILED' });
  });

  it('conceal repeats the last frame fading out, then gives silence, and resets on a good packet', () => {
    const encoder = createG711Encoder('PCMU');
    const decoder = createG711Decoder('PCMU');
    const frame = sine(160, 500, 8000);
    const good = decoder.decode(encoder.encode(frame));
    if (!good.ok) throw new Error(good.code);
    const peak = (a: Int16Array): number => a.reduce((m, s) => Math.max(m, Math.abs(s)), 0);
    const p0 = peak(good.value);
    const lost = [decoder.conceal(), decoder.conceal(), decoder.conceal(), decoder.conceal(), decoder.conceal()];
    const peaks = lost.map(peak);
    expect(lost.every((f) => f.length === 160)).toBe(true);
    expect(peaks[0]).toBeGreaterThan(0.5 * p0);
    expect(peaks[0]).toBeLessThan(p0);
    expect(peaks[1]).toBeLessThan(peaks[0] as number);
    expect(peaks[2]).toBeLessThan(peaks[1] as number);
    expect(peaks[3]).toBe(0);
    expect(peaks[4]).toBe(0);
    // The concealed frame is the last frame scaled, not noise.
    const ratio = (lost[0]?.[5] ?? 0) / (good.value[5] ?? 1);
    expect(ratio).toBeCloseTo(0.8, 1);
    // After a good packet the fade starts again from the top.
    decoder.decode(encoder.encode(frame));
    expect(peak(decoder.conceal())).toBeGreaterThan(0.5 * p0);
  });

  it('conceal after short packets still fades the newest 20 ms', () => {
    const decoder = createG711Decoder('PCMA');
    const encoder = createG711Encoder('PCMA');
    const frame = sine(160, 300, 5000);
    const payload = encoder.encode(frame);
    decoder.decode(payload.subarray(0, 80));
    decoder.decode(payload.subarray(80));
    const concealed = decoder.conceal();
    const direct = createG711Decoder('PCMA').decode(payload);
    if (!direct.ok) throw new Error(direct.code);
    expect(concealed[10]).toBe(Math.round((direct.value[10] as number) * 0.8));
    expect(concealed[150]).toBe(Math.round((direct.value[150] as number) * 0.8));
  });

  it('close is idempotent and a closed codec reports CG_CODEC_CLOSED', () => {
    const e = createG711Encoder('PCMU');
    const d = createG711Decoder('PCMU');
    e.close();
    e.close();
    d.close();
    d.close();
    expect(() => e.encode(new Int16Array(160))).toThrow(expect.objectContaining({ code: 'CG_CODEC_CLOSED' }));
    expect(d.decode(new Uint8Array(160))).toMatchObject({ ok: false, code: 'CG_CODEC_CLOSED' });
    expect(() => d.conceal()).toThrow(expect.objectContaining({ code: 'CG_CODEC_CLOSED' }));
  });
});
