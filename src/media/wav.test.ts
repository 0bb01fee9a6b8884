import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CaptureError } from '../errors.js';
import { WAV_HEADER_BYTES, decodeWav, encodeWav, readWavFile, writeWavFile } from './wav.js';

function ramp(n: number): Int16Array {
  const s = new Int16Array(n);
  for (let i = 0; i < n; i++) s[i] = ((i * 977) % 65536) - 32768;
  return s;
}

/** Builds a RIFF file from chunks so each test states exactly the layout it exercises. */
function riff(chunks: Array<[string, Uint8Array]>, riffSizeOverride?: number): Uint8Array {
  const parts: Buffer[] = [];
  for (const [id, body] of chunks) {
    const head = Buffer.alloc(8);
    head.write(id, 0, 'latin1');
    head.writeUInt32LE(body.length, 4);
    parts.push(head, Buffer.from(body));
    if (body.length % 2) parts.push(Buffer.alloc(1));
  }
  const payload = Buffer.concat(parts);
  const head = Buffer.alloc(12);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(riffSizeOverride ?? payload.length + 4, 4);
  head.write('WAVE', 8, 'latin1');
  return Buffer.concat([head, payload]);
}

function fmtPcm(opts: { format?: number; channels?: number; rate?: number; bits?: number; blockAlign?: number; byteRate?: number } = {}): Buffer {
  const rate = opts.rate ?? 16000;
  const b = Buffer.alloc(16);
  b.writeUInt16LE(opts.format ?? 1, 0);
  b.writeUInt16LE(opts.channels ?? 1, 2);
  b.writeUInt32LE(rate, 4);
  b.writeUInt32LE(opts.byteRate ?? rate * 2, 8);
  b.writeUInt16LE(opts.blockAlign ?? 2, 12);
  b.writeUInt16LE(opts.bits ?? 16, 14);
  return b;
}

const PCM_GUID = Buffer.from('0100000000001000800000aa00389b71', 'hex');

function fmtExtensible(guid: Buffer = PCM_GUID, validBits = 16): Buffer {
  const ext = Buffer.alloc(24);
  ext.writeUInt16LE(22, 0);
  ext.writeUInt16LE(validBits, 2);
  ext.writeUInt32LE(4, 4); // channel mask: front centre
  guid.copy(ext, 8);
  return Buffer.concat([fmtPcm({ format: 0xfffe }), ext]);
}

function pcmBytes(samples: Int16Array): Buffer {
  const b = Buffer.alloc(samples.length * 2);
  samples.forEach((v, i) => b.writeInt16LE(v, 2 * i));
  return b;
}

function expectMalformed(bytes: Uint8Array, reason: RegExp): void {
  let caught: unknown;
  try {
    decodeWav(bytes);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(CaptureError);
  expect((caught as CaptureError).code).toBe('CG_WAV_MALFORMED');
  expect((caught as CaptureError).message).toMatch(reason);
}

describe('encodeWav', () => {
  it('writes the canonical 44-byte header', () => {
    const out = encodeWav({ samples: Int16Array.of(1, -2, 32767), sampleRate: 8000 });
    expect(out.length).toBe(WAV_HEADER_BYTES + 6);
    expect(out.subarray(0, 44).toString('hex')).toBe(
      '52494646' + '2a000000' + '57415645' + '666d7420' + '10000000' + '0100' + '0100' + '401f0000' + '803e0000' + '0200' + '1000' + '64617461' + '06000000',
    );
    expect(out.subarray(44).toString('hex')).toBe('0100feffff7f');
  });

  it('rejects a sample rate it cannot write', () => {
    expect(() => encodeWav({ samples: new Int16Array(1), sampleRate: 0 })).toThrow(CaptureError);
    expect(() => encodeWav({ samples: new Int16Array(1), sampleRate: 16000.5 })).toThrow(CaptureError);
  });
});

describe('decodeWav', () => {
  it('round-trips samples and rate exactly', () => {
    const samples = ramp(16001);
    const back = decodeWav(encodeWav({ samples, sampleRate: 16000 }));
    expect(back.sampleRate).toBe(16000);
    expect(back.samples).toEqual(samples);
  });

  it('round-trips an empty file', () => {
    const back = decodeWav(encodeWav({ samples: new Int16Array(0), sampleRate: 48000 }));
    expect(back.samples.length).toBe(0);
    expect(back.sampleRate).toBe(48000);
  });

  it('reads from a Uint8Array view at an odd offset of a larger buffer', () => {
    const file = encodeWav({ samples: ramp(10), sampleRate: 16000 });
    const big = new Uint8Array(file.length + 3);
    big.set(file, 1);
    expect(decodeWav(big.subarray(1, 1 + file.length)).samples).toEqual(ramp(10));
  });

  it('skips LIST and odd-sized chunks, honouring the pad byte', () => {
    const samples = ramp(7);
    const list = Buffer.from('INFOISFT\x05\x00\x00\x00flite\x00', 'latin1');
    const odd = Buffer.from([1, 2, 3]);
    const bytes = riff([['fmt ', fmtPcm()], ['LIST', list], ['junk', odd], ['data', pcmBytes(samples)]]);
    expect(decodeWav(bytes).samples).toEqual(samples);
  });

  it('reads WAVE_FORMAT_EXTENSIBLE with the PCM subformat', () => {
    const samples = ramp(5);
    const bytes = riff([['fmt ', fmtExtensible()], ['data', pcmBytes(samples)]]);
    expect(decodeWav(bytes)).toEqual({ samples, sampleRate: 16000 });
  });

  it('ignores bytes after the RIFF chunk', () => {
    const file = encodeWav({ samples: ramp(4), sampleRate: 16000 });
    const withTrailer = Buffer.concat([file, Buffer.from('trailing garbage')]);
    expect(decodeWav(withTrailer).samples).toEqual(ramp(4));
  });

  it('reads and writes files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'callgate-wav-'));
    try {
      const path = join(dir, 'a.wav');
      await writeWavFile(path, { samples: ramp(100), sampleRate: 16000 });
      expect(await readWavFile(path)).toEqual({ samples: ramp(100), sampleRate: 16000 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('rejects with a precise reason', () => {
    const good = pcmBytes(ramp(4));
    it.each<[string, () => Uint8Array, RegExp]>([
      ['too short', () => new Uint8Array(11), /shorter than the 12-byte RIFF header/],
      ['not RIFF', () => Buffer.from('RIFX\x10\x00\x00\x00WAVE', 'latin1'), /not "RIFF"/],
      ['not WAVE', () => Buffer.from('RIFF\x04\x00\x00\x00AVI ', 'latin1'), /not "WAVE"/],
      ['no fmt', () => riff([['data', good]]), /data chunk comes before the fmt chunk/],
      ['fmt only', () => riff([['fmt ', fmtPcm()]]), /no data chunk/],
      ['empty RIFF', () => riff([]), /no fmt chunk/],
      ['two fmt', () => riff([['fmt ', fmtPcm()], ['fmt ', fmtPcm()], ['data', good]]), /more than one fmt/],
      ['short fmt', () => riff([['fmt ', fmtPcm().subarray(0, 14)], ['data', good]]), /fmt chunk is 14 bytes/],
      ['IEEE float', () => riff([['fmt ', fmtPcm({ format: 3, bits: 32, blockAlign: 4, byteRate: 64000 })], ['data', good]]), /format tag 0x0003 is not PCM/],
      ['A-law', () => riff([['fmt ', fmtPcm({ format: 6 })], ['data', good]]), /format tag 0x0006/],
      ['stereo', () => riff([['fmt ', fmtPcm({ channels: 2, blockAlign: 4, byteRate: 64000 })], ['data', good]]), /2 channels, expected mono/],
      ['8-bit', () => riff([['fmt ', fmtPcm({ bits: 8, blockAlign: 1, byteRate: 16000 })], ['data', good]]), /8 bits per sample/],
      ['rate 0', () => riff([['fmt ', fmtPcm({ rate: 0 })], ['data', good]]), /sample rate 0 Hz is out of range/],
      ['bad byte rate', () => riff([['fmt ', fmtPcm({ byteRate: 1234 })], ['data', good]]), /byte rate 1234 does not match/],
      ['bad block align', () => riff([['fmt ', fmtPcm({ blockAlign: 3 })], ['data', good]]), /block align 3/],
      ['extensible non-PCM', () => riff([['fmt ', fmtExtensible(Buffer.from('0300000000001000800000aa00389b71', 'hex'))], ['data', good]]), /subformat is not PCM/],
      ['extensible 24 valid bits', () => riff([['fmt ', fmtExtensible(PCM_GUID, 24)], ['data', good]]), /24 valid bits/],
      ['extensible too short', () => riff([['fmt ', fmtExtensible().subarray(0, 30)], ['data', good]]), /needs 40/],
      ['odd data', () => riff([['fmt ', fmtPcm()], ['data', good.subarray(0, 7)]]), /not a whole number of 16-bit samples/],
      ['tiny RIFF size', () => riff([['fmt ', fmtPcm()], ['data', good]], 2), /RIFF size 2 is too small/],
    ])('%s', (_name, make, reason) => expectMalformed(make(), reason));

    it('a data chunk that claims more bytes than the file holds (no huge allocation)', () => {
      const bytes = Buffer.from(riff([['fmt ', fmtPcm()], ['data', good]]));
      bytes.writeUInt32LE(0xfffffff0, 40); // data size
      bytes.writeUInt32LE(0xfffffff8, 4); // RIFF size
      expectMalformed(bytes, /"data" chunk at byte 36 declares 4294967280 bytes but only 8 remain/);
    });

    it('a truncated file', () => {
      const file = encodeWav({ samples: ramp(100), sampleRate: 16000 });
      expectMalformed(file.subarray(0, 100), /"data" chunk at byte 36 declares 200 bytes but only 56 remain/);
    });

    it('a chunk header running past a RIFF size that is smaller than the file', () => {
      const file = Buffer.from(encodeWav({ samples: ramp(100), sampleRate: 16000 }));
      file.writeUInt32LE(40, 4); // RIFF now ends inside the data chunk
      expectMalformed(file, /declares 200 bytes but only 4 remain/);
    });
  });
});
