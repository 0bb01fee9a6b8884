import { CallgateError } from '../../errors.js';
import type { AudioDecoder, AudioEncoder, CodecName } from './AudioCodec.js';
import { createG711Decoder, createG711Encoder } from './g711.js';
import { createOpusDecoder, createOpusEncoder, type OpusDecoderOptions, type OpusEncoderOptions } from './opus.js';

/**
 * The one place legs get codecs from. Callers name a codec; which implementation serves it is decided
 * here, so a native libopus binding can replace the opusscript one with a single registerCodec() call
 * at startup and no caller changes.
 */

/** Options each codec's factory takes. G.711 has nothing to tune. */
export interface CodecOptionMap {
  opus: { encoder: Partial<OpusEncoderOptions>; decoder: Partial<OpusDecoderOptions> };
  PCMU: { encoder: Record<string, never>; decoder: Record<string, never> };
  PCMA: { encoder: Record<string, never>; decoder: Record<string, never> };
}

export interface CodecFactory<C extends CodecName = CodecName> {
  createEncoder(options?: CodecOptionMap[C]['encoder']): AudioEncoder;
  createDecoder(options?: CodecOptionMap[C]['decoder']): AudioDecoder;
}

type Registry = { [C in CodecName]: CodecFactory<C> };

const builtIn: Registry = {
  opus: { createEncoder: (o) => createOpusEncoder(o), createDecoder: (o) => createOpusDecoder(o) },
  PCMU: { createEncoder: () => createG711Encoder('PCMU'), createDecoder: () => createG711Decoder('PCMU') },
  PCMA: { createEncoder: () => createG711Encoder('PCMA'), createDecoder: () => createG711Decoder('PCMA') },
};

const registry: Registry = { ...builtIn };

function factoryFor<C extends CodecName>(codec: C): CodecFactory<C> {
  // Names come from SDP at run time: guard against anything the type does not cover.
  if (!Object.hasOwn(registry, codec)) throw new CallgateError('CG_CODEC_UNSUPPORTED', String(codec));
  return registry[codec] as CodecFactory<C>;
}

export function createEncoder<C extends CodecName>(codec: C, options?: CodecOptionMap[C]['encoder']): AudioEncoder {
  return factoryFor(codec).createEncoder(options);
}

export function createDecoder<C extends CodecName>(codec: C, options?: CodecOptionMap[C]['decoder']): AudioDecoder {
  return factoryFor(codec).createDecoder(options);
}

/**
 * Serves `name` from `factory` from now on. Returns a function that puts back the previous factory
 * (tests use it; a process normally registers once at startup).
 */
export function registerCodec<C extends CodecName>(name: C, factory: CodecFactory<C>): () => void {
  if (!Object.hasOwn(builtIn, name)) throw new CallgateError('CG_CODEC_UNSUPPORTED', String(name));
  const previous = registry[name];
  (registry as Record<CodecName, CodecFactory>)[name] = factory as unknown as CodecFactory;
  return () => {
    (registry as Record<CodecName, CodecFactory>)[name] = previous as unknown as CodecFactory;
  };
}

/** Codec names that can be created, for SDP negotiation. */
export function supportedCodecs(): readonly CodecName[] {
  return Object.keys(registry) as CodecName[];
}
