import OpenAI from 'openai';
import { CallgateError } from '../errors.js';
import { stripUndefined } from '../util/options.js';
import { FirstByteDeadline, openAiClient, openAiErrorDetails, type OpenAiClientOptions } from './openaiClient.js';
import type { TtsChunk, TtsProvider, TtsRequest } from './types.js';

/**
 * TTS through the official `openai` SDK's speech endpoint, asking for raw PCM (24 kHz mono s16le) so
 * nothing needs decoding, and reading the body as it streams. Protocol followed:
 * https://platform.openai.com/docs/api-reference/audio/createSpeech (`response_format: "pcm"`, chunked
 * HTTP body).
 */
export interface OpenAiTtsOptions extends OpenAiClientOptions {
  readonly model: string;
  /** Used when the tenant's voice is not one of this vendor's. */
  readonly defaultVoice: string;
  /** No audio within this is CG_TTS_TIMEOUT. */
  readonly firstByteTimeoutMs: number;
  /** Once audio flows, a gap longer than this is CG_TTS_TIMEOUT. */
  readonly stallTimeoutMs: number;
}

export const defaultOpenAiTtsOptions = {
  baseURL: undefined,
  model: 'gpt-4o-mini-tts',
  defaultVoice: 'alloy',
  /** 2 s: a sentence's audio normally starts in a few hundred ms. */
  firstByteTimeoutMs: 2000,
  /** 5 s: audio streams faster than real time; seconds of nothing is a dead stream. */
  stallTimeoutMs: 5000,
  maxRetries: 1,
} as const satisfies Partial<OpenAiTtsOptions>;

/** The voices the speech endpoint documents. */
export const OPENAI_VOICES = ['alloy', 'ash', 'ballad', 'coral', 'echo', 'fable', 'nova', 'onyx', 'sage', 'shimmer', 'verse'] as const;

/** `response_format: pcm` is 24 kHz, 16-bit little-endian, mono. */
const PCM_RATE = 24_000;

export class OpenAiTts implements TtsProvider {
  readonly name = 'openai-tts';
  readonly options: OpenAiTtsOptions;
  private readonly client: OpenAI;

  constructor(options: Partial<OpenAiTtsOptions> & { apiKey: string }) {
    this.options = { ...defaultOpenAiTtsOptions, ...stripUndefined(options) } as OpenAiTtsOptions;
    this.client = openAiClient(this.options, this.options.firstByteTimeoutMs);
  }

  async *synthesize(request: TtsRequest): AsyncIterable<TtsChunk> {
    if (request.text.trim() === '') return;
    const deadline = new FirstByteDeadline(request.signal, this.options.firstByteTimeoutMs, this.options.stallTimeoutMs);
    const voice = (OPENAI_VOICES as readonly string[]).includes(request.voice) ? request.voice : this.options.defaultVoice;
    try {
      const response = await this.client.audio.speech.create({ model: this.options.model, voice, input: request.text, response_format: 'pcm' }, { signal: deadline.signal });
      if (!response.body) throw new CallgateError('CG_TTS_FAILED', 'speech response has no body');
      // An odd byte can end one network chunk; it is carried into the next so samples stay aligned.
      let carry: Buffer = Buffer.alloc(0);
      for await (const part of response.body as unknown as AsyncIterable<Uint8Array>) {
        deadline.arrived();
        const bytes = carry.length > 0 ? Buffer.concat([carry, part]) : Buffer.from(part);
        const even = bytes.length - (bytes.length % 2);
        carry = bytes.subarray(even);
        if (even === 0) continue;
        const samples = new Int16Array(even / 2);
        for (let i = 0; i < samples.length; i++) samples[i] = bytes.readInt16LE(i * 2);
        yield { samples, sampleRate: PCM_RATE };
      }
      // A body can end quietly when its signal aborts, our deadline's included.
      if (deadline.timedOut) throw new Error('deadline passed');
    } catch (err) {
      if (request.signal.aborted) return;
      if (err instanceof CallgateError) throw err;
      if (deadline.timedOut || err instanceof OpenAI.APIConnectionTimeoutError) {
        const why = deadline.stalled ? `audio stalled for ${this.options.stallTimeoutMs} ms` : `no audio within ${this.options.firstByteTimeoutMs} ms`;
        throw new CallgateError('CG_TTS_TIMEOUT', why, { cause: err });
      }
      const status = err instanceof OpenAI.APIError ? err.status : undefined;
      throw new CallgateError('CG_TTS_FAILED', `${status ?? 'connection'}: ${err instanceof Error ? err.message : String(err)}`.slice(0, 300), {
        cause: err,
        details: openAiErrorDetails(err),
      });
    } finally {
      deadline.dispose();
    }
  }
}
