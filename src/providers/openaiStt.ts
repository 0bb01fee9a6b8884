import { EventEmitter } from 'node:events';
import OpenAI, { toFile } from 'openai';
import { CallgateError } from '../errors.js';
import { encodeWav } from '../media/wav.js';
import { PIPELINE_RATE } from '../media/types.js';
import { stripUndefined } from '../util/options.js';
import { FirstByteDeadline, openAiClient, openAiErrorDetails, type OpenAiClientOptions } from './openaiClient.js';
import type { SttProvider, SttStream, SttStreamEvents, SttStreamOptions } from './types.js';

/**
 * Speech to text through the official `openai` SDK's transcription endpoint, one request per caller
 * turn: the agent's endpointing decides when a turn ends, and `finalize()` sends that turn's audio as
 * a 16 kHz WAV. No interim results (the endpoint has none for uploaded files); the turn's words arrive
 * once, after the upload. Any OpenAI-compatible server with `/audio/transcriptions` works (a local
 * whisper server through `OPENAI_BASE_URL`). Protocol followed:
 * https://platform.openai.com/docs/api-reference/audio/createTranscription (multipart/form-data with
 * `file`, `model`, `language`, `prompt`; JSON `{ text }` back).
 */
export interface OpenAiSttOptions extends OpenAiClientOptions {
  readonly model: string;
  /** No transcript within this after `finalize()` is CG_STT_TIMEOUT. */
  readonly timeoutMs: number;
  /** A turn longer than this keeps only its last part (the endpoint caps uploads; callers rarely talk this long). */
  readonly maxTurnMs: number;
}

export const defaultOpenAiSttOptions = {
  baseURL: undefined,
  model: 'gpt-4o-mini-transcribe',
  /** 3 s: a short turn transcribes in well under a second; beyond 3 s the caller is left waiting. */
  timeoutMs: 3000,
  /** 60 s. */
  maxTurnMs: 60_000,
  maxRetries: 1,
} as const satisfies Partial<OpenAiSttOptions>;

export class OpenAiStt implements SttProvider {
  readonly name = 'openai-stt';
  readonly options: OpenAiSttOptions;
  private readonly client: OpenAI;

  constructor(options: Partial<OpenAiSttOptions> & { apiKey: string }) {
    this.options = { ...defaultOpenAiSttOptions, ...stripUndefined(options) } as OpenAiSttOptions;
    this.client = openAiClient(this.options, this.options.timeoutMs);
  }

  open(options: SttStreamOptions): Promise<SttStream> {
    return Promise.resolve(new OpenAiSttStream(this.client, this.options, options));
  }
}

class OpenAiSttStream extends EventEmitter<SttStreamEvents> implements SttStream {
  private frames: Int16Array[] = [];
  private samples = 0;
  private closed = false;
  private readonly closing = new AbortController();
  private readonly maxSamples: number;

  constructor(
    private readonly client: OpenAI,
    private readonly opts: OpenAiSttOptions,
    private readonly stream: SttStreamOptions,
  ) {
    super();
    this.maxSamples = Math.round((opts.maxTurnMs / 1000) * PIPELINE_RATE);
  }

  push(frame: Int16Array): void {
    if (this.closed) return;
    this.frames.push(frame.slice());
    this.samples += frame.length;
    while (this.samples > this.maxSamples && this.frames.length > 1) this.samples -= this.frames.shift()!.length;
  }

  async finalize(): Promise<string> {
    const frames = this.frames;
    const total = this.samples;
    this.frames = [];
    this.samples = 0;
    if (this.closed || total === 0) return '';
    const pcm = new Int16Array(total);
    let at = 0;
    for (const f of frames) {
      pcm.set(f, at);
      at += f.length;
    }
    const deadline = new FirstByteDeadline(this.closing.signal, this.opts.timeoutMs);
    try {
      const file = await toFile(encodeWav({ sampleRate: PIPELINE_RATE, samples: pcm }), 'turn.wav', { type: 'audio/wav' });
      // The tenant's phrases steer recognition of names and menu words, as the endpoint's `prompt` allows.
      const prompt = this.stream.phrases.slice(0, 50).join(', ');
      const result = await this.client.audio.transcriptions.create(
        { file, model: this.opts.model, language: this.stream.language.split('-')[0]!, response_format: 'json', ...(prompt ? { prompt } : {}) },
        { signal: deadline.signal },
      );
      deadline.arrived();
      const text = result.text.trim();
      if (text) this.emit('result', { text, final: true });
      return text;
    } catch (err) {
      if (this.closed) return '';
      if (deadline.timedOut || err instanceof OpenAI.APIConnectionTimeoutError) {
        throw new CallgateError('CG_STT_TIMEOUT', `no transcript within ${this.opts.timeoutMs} ms`, { cause: err });
      }
      throw new CallgateError('CG_STT_FAILED', `${err instanceof OpenAI.APIError ? (err.status ?? 'connection') : 'connection'}: ${err instanceof Error ? err.message : String(err)}`.slice(0, 300), {
        cause: err,
        details: openAiErrorDetails(err),
      });
    } finally {
      deadline.dispose();
    }
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.frames = [];
      this.closing.abort();
    }
    return Promise.resolve();
  }
}
