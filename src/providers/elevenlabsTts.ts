import { ElevenLabsClient, ElevenLabsError, ElevenLabsTimeoutError } from '@elevenlabs/elevenlabs-js';
import { CallgateError } from '../errors.js';
import { mulawToLinear } from '../media/codecs/g711.js';
import { stripUndefined } from '../util/options.js';
import { FirstByteDeadline } from './openaiClient.js';
import { isPermanentStatus } from './resilience/chain.js';
import type { TtsChunk, TtsProvider, TtsRequest } from './types.js';

/**
 * TTS through the official `@elevenlabs/elevenlabs-js` SDK's streaming endpoint, reading the chunked
 * body as it arrives. Protocol followed:
 * https://elevenlabs.io/docs/api-reference/text-to-speech/stream (`POST /v1/text-to-speech/{voice_id}/stream`,
 * `xi-api-key` header, JSON body `{ text, model_id }`, raw audio bytes back) and, for the `output_format`
 * query values, https://elevenlabs.io/docs/api-reference/text-to-speech/convert#request.query.output_format.
 *
 * `pcm_16000` (16 kHz s16le mono) is the pipeline's own rate, so by default nothing is decoded or
 * resampled. `ulaw_8000` is for accounts or setups that prefer telephone audio; it is expanded to 8 kHz
 * PCM here and resampled downstream like any other 8 kHz chunk.
 */
export type ElevenLabsOutputFormat = 'pcm_16000' | 'ulaw_8000';

export interface ElevenLabsTtsOptions {
  /** The SDK's default (https://api.elevenlabs.io) when undefined; a host root, without `/v1`. */
  readonly baseUrl: string | undefined;
  /** Per tenant, else `ELEVENLABS_API_KEY`. Never logged. */
  readonly apiKey: string;
  readonly modelId: string;
  readonly outputFormat: ElevenLabsOutputFormat;
  /** Used when the tenant's voice is not an ElevenLabs voice id (e.g. a flite name like 'slt'). */
  readonly defaultVoiceId: string;
  /** 0–4, the endpoint's `optimize_streaming_latency`; not sent when undefined (the server's default). */
  readonly optimizeStreamingLatency: number | undefined;
  /** No audio within this is CG_TTS_TIMEOUT. */
  readonly firstByteTimeoutMs: number;
  /** Once audio flows, a gap longer than this is CG_TTS_TIMEOUT. */
  readonly stallTimeoutMs: number;
  /** Retries the SDK may make before the first byte (408, 429 and 5xx, honouring Retry-After). */
  readonly maxRetries: number;
}

export const defaultElevenLabsTtsOptions = {
  baseUrl: undefined,
  /** Flash is ElevenLabs' lowest-latency model (~75 ms model time), which matters more than nuance mid-call. */
  modelId: 'eleven_flash_v2_5',
  outputFormat: 'pcm_16000',
  /** "Rachel", a premade voice every account has. */
  defaultVoiceId: '21m00Tcm4TlvDq8ikWAM',
  optimizeStreamingLatency: undefined,
  /** 2 s: a sentence's audio normally starts in a few hundred ms. */
  firstByteTimeoutMs: 2000,
  /** 5 s: audio streams faster than real time; seconds of nothing is a dead stream. */
  stallTimeoutMs: 5000,
  maxRetries: 1,
} as const satisfies Partial<ElevenLabsTtsOptions>;

/** ElevenLabs voice ids are 20 alphanumeric characters; nothing else is sent as one. */
const VOICE_ID = /^[A-Za-z0-9]{20}$/;

/** 256 entries built once: µ-law is a byte-per-sample lookup, cheaper than recomputing per sample. */
const MULAW_TABLE = Int16Array.from({ length: 256 }, (_, code) => mulawToLinear(code));

export class ElevenLabsTts implements TtsProvider {
  readonly name = 'elevenlabs';
  readonly options: ElevenLabsTtsOptions;
  private readonly client: ElevenLabsClient;

  constructor(options: Partial<ElevenLabsTtsOptions> & { apiKey: string }) {
    this.options = { ...defaultElevenLabsTtsOptions, ...stripUndefined(options) } as ElevenLabsTtsOptions;
    const o = this.options;
    this.client = new ElevenLabsClient({
      apiKey: o.apiKey,
      ...(o.baseUrl ? { baseUrl: o.baseUrl } : {}),
      maxRetries: o.maxRetries,
      // Per attempt and only until headers; FirstByteDeadline is the overall budget up to the first byte.
      timeoutInSeconds: o.firstByteTimeoutMs / 1000,
    });
  }

  /** The tenant's voice when it is an ElevenLabs voice id, else the configured default. */
  voiceIdFor(voice: string): string {
    return VOICE_ID.test(voice) ? voice : this.options.defaultVoiceId;
  }

  async *synthesize(request: TtsRequest): AsyncIterable<TtsChunk> {
    // An already-aborted signal never fires its event, so FirstByteDeadline would not see it.
    if (request.text.trim() === '' || request.signal.aborted) return;
    const o = this.options;
    const deadline = new FirstByteDeadline(request.signal, o.firstByteTimeoutMs, o.stallTimeoutMs);
    const ulaw = o.outputFormat === 'ulaw_8000';
    try {
      const body = await untilAborted(
        this.client.textToSpeech.stream(
          this.voiceIdFor(request.voice),
          { text: request.text, modelId: o.modelId, outputFormat: o.outputFormat, ...(o.optimizeStreamingLatency === undefined ? {} : { optimizeStreamingLatency: o.optimizeStreamingLatency }) },
          { abortSignal: deadline.signal },
        ),
        deadline.signal,
      );
      // An odd byte can end one network chunk; it is carried into the next so samples stay aligned.
      let carry: Buffer = Buffer.alloc(0);
      for await (const part of body) {
        deadline.arrived();
        if (part.length === 0) continue;
        if (ulaw) {
          const samples = new Int16Array(part.length);
          for (let i = 0; i < part.length; i++) samples[i] = MULAW_TABLE[part[i] as number] as number;
          yield { samples, sampleRate: 8000 };
          continue;
        }
        const bytes = carry.length > 0 ? Buffer.concat([carry, part]) : Buffer.from(part.buffer, part.byteOffset, part.byteLength);
        const even = bytes.length - (bytes.length % 2);
        carry = bytes.subarray(even);
        if (even === 0) continue;
        const samples = new Int16Array(even / 2);
        for (let i = 0; i < samples.length; i++) samples[i] = bytes.readInt16LE(i * 2);
        yield { samples, sampleRate: 16000 };
      }
      // A body can end quietly when its signal aborts, our deadline's included.
      if (deadline.timedOut) throw new Error('deadline passed');
    } catch (err) {
      if (request.signal.aborted) return;
      if (err instanceof CallgateError) throw err;
      if (deadline.timedOut || err instanceof ElevenLabsTimeoutError) {
        const why = deadline.stalled ? `audio stalled for ${o.stallTimeoutMs} ms` : `no audio within ${o.firstByteTimeoutMs} ms`;
        throw new CallgateError('CG_TTS_TIMEOUT', why, { cause: err });
      }
      throw failure(err);
    } finally {
      deadline.dispose();
    }
  }
}

/**
 * Settles with `promise`, or rejects as soon as `signal` aborts. The SDK sleeps out a retry's backoff
 * (up to a 60 s Retry-After) without watching its abort signal; barge-in and the first-byte deadline
 * must not wait for that sleep.
 */
function untilAborted<T>(promise: PromiseLike<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** CG_TTS_FAILED with what a fallback needs: the status, when to retry, and whether retrying can help. */
function failure(err: unknown): CallgateError {
  const status = err instanceof ElevenLabsError ? err.statusCode : undefined;
  const retryAfter = err instanceof ElevenLabsError ? retryAfterSeconds(err.rawResponse?.headers.get('retry-after') ?? null) : undefined;
  // A 4xx other than 429 (bad key, unknown voice, quota, invalid text) fails the same way next time.
  const permanent = isPermanentStatus(status);
  const detail = err instanceof ElevenLabsError ? bodyMessage(err.body) : err instanceof Error ? err.message : String(err);
  return new CallgateError('CG_TTS_FAILED', `${status ?? 'connection'}${detail ? `: ${detail}` : ''}`.slice(0, 300), {
    cause: err,
    details: stripUndefined({ status, retryAfter, permanent }),
  });
}

/** Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
function retryAfterSeconds(value: string | null): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

/** ElevenLabs errors are `{ detail: { status, message } }` or `{ detail: string }`; other bodies are not echoed. */
function bodyMessage(body: unknown): string | undefined {
  const detail = typeof body === 'object' && body !== null ? (body as { detail?: unknown }).detail : undefined;
  if (typeof detail === 'string') return detail;
  if (typeof detail === 'object' && detail !== null) {
    const message = (detail as { message?: unknown }).message;
    if (typeof message === 'string') return message;
  }
  return undefined;
}
