import { afterEach, describe, expect, it } from 'vitest';
import type { Parsed } from '../../errors.js';
import type { AudioDecoder, AudioEncoder, CodecName } from './AudioCodec.js';
import { createDecoder, createEncoder, registerCodec, supportedCodecs, type CodecFactory } from './registry.js';

const restore: (() => void)[] = [];
afterEach(() => {
  while (restore.length > 0) restore.pop()?.();
});

describe('codec registry', () => {
  it('creates the built-in codecs by their SDP names', () => {
    const pcmu = createEncoder('PCMU');
    const pcma = createDecoder('PCMA');
    const opus = createEncoder('opus');
    const opusDecoder = createDecoder('opus', { sampleRate: 16000 });
    expect([pcmu.codec, pcmu.clockRate]).toEqual(['PCMU', 8000]);
    expect([pcma.codec, pcma.sampleRate]).toEqual(['PCMA', 8000]);
    expect([opus.codec, opus.clockRate, opus.sampleRate]).toEqual(['opus', 48000, 16000]);
    expect(opusDecoder.sampleRate).toBe(16000);
    for (const c of [pcmu, pcma, opus, opusDecoder]) c.close();
  });

  it('passes options through to the codec', () => {
    const encoder = createEncoder('opus', { sampleRate: 48000, complexity: 1 });
    expect(encoder.frameSamples).toBe(960);
    encoder.close();
    expect(() => createEncoder('opus', { complexity: 42 })).toThrow(expect.objectContaining({ code: 'CG_CODEC_OPTION_INVALID' }));
  });

  it('rejects a name it does not know (names come from SDP at run time)', () => {
    expect(() => createEncoder('G722' as CodecName)).toThrow(expect.objectContaining({ code: 'CG_CODEC_UNSUPPORTED' }));
    expect(() => createDecoder('toString' as CodecName)).toThrow(expect.objectContaining({ code: 'CG_CODEC_UNSUPPORTED' }));
    expect(() => registerCodec('G729' as CodecName, {} as CodecFactory)).toThrow(expect.objectContaining({ code: 'CG_CODEC_UNSUPPORTED' }));
  });

  it('a registered factory replaces the built-in one for every caller, and can be undone', () => {
    const made: string[] = [];
    const fakeEncoder: AudioEncoder = {
      codec: 'opus',
      sampleRate: 48000,
      clockRate: 48000,
      frameSamples: 960,
      timestampIncrement: 960,
      silence: Uint8Array.of(0xf8, 0xff, 0xfe),
      encode: () => Uint8Array.of(1),
      close: () => undefined,
    };
    const fakeDecoder: AudioDecoder = {
      codec: 'opus',
      sampleRate: 16000,
      clockRate: 48000,
      frameSamples: 320,
      decode: (): Parsed<Int16Array> => ({ ok: true, value: new Int16Array(320) }),
      conceal: () => new Int16Array(320),
      close: () => undefined,
    };
    const native: CodecFactory<'opus'> = {
      createEncoder: (options) => {
        made.push(`encoder ${JSON.stringify(options ?? {})}`);
        return fakeEncoder;
      },
      createDecoder: (options) => {
        made.push(`decoder ${JSON.stringify(options ?? {})}`);
        return fakeDecoder;
      },
    };
    const undo = registerCodec('opus', native);
    restore.push(undo);

    expect(createEncoder('opus', { complexity: 2 })).toBe(fakeEncoder);
    expect(createDecoder('opus', { sampleRate: 16000 })).toBe(fakeDecoder);
    expect(made).toEqual(['encoder {"complexity":2}', 'decoder {"sampleRate":16000}']);
    // Other codecs are untouched.
    expect(createEncoder('PCMU').codec).toBe('PCMU');

    undo();
    const real = createEncoder('opus');
    expect(real).not.toBe(fakeEncoder);
    expect(real.silence.length).toBeGreaterThan(0);
    real.close();
  });

  it('lists what it can create', () => {
    expect([...supportedCodecs()].sort()).toEqual(['PCMA', 'PCMU', 'opus']);
  });
});
