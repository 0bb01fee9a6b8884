import OpenAI from 'openai';
import { stripUndefined } from '../util/options.js';

/** What every OpenAI-SDK provider is configured with. */
export interface OpenAiClientOptions {
  /** `OPENAI_BASE_URL`; the SDK's default (api.openai.com) when undefined. */
  readonly baseURL: string | undefined;
  /** Per tenant, else `OPENAI_API_KEY`. Never logged. */
  readonly apiKey: string;
  /** Retries the SDK may make before the first byte (429 and 5xx, with its backoff). */
  readonly maxRetries: number;
}

/** The SDK client, with its request timeout set to the provider's first-byte budget. */
export function openAiClient(o: OpenAiClientOptions, firstByteTimeoutMs: number): OpenAI {
  return new OpenAI({ apiKey: o.apiKey, ...(o.baseURL ? { baseURL: o.baseURL } : {}), maxRetries: o.maxRetries, timeout: firstByteTimeoutMs });
}

/**
 * One streaming request's abort signal: aborts when the caller's does (barge-in, hangup) and when no
 * first byte came within `timeoutMs`. `arrived()` once data flows stops the clock; `dispose()` (in a
 * finally) releases the listener and closes the connection if reading stopped early.
 */
export class FirstByteDeadline {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private expired = false;
  private readonly onCallerAbort = (): void => this.controller.abort();

  constructor(
    private readonly caller: AbortSignal,
    timeoutMs: number,
  ) {
    caller.addEventListener('abort', this.onCallerAbort, { once: true });
    this.timer = setTimeout(() => {
      this.expired = true;
      this.controller.abort();
    }, timeoutMs);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The deadline, not the caller, ended the request. */
  get timedOut(): boolean {
    return this.expired;
  }

  arrived(): void {
    clearTimeout(this.timer);
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.caller.removeEventListener('abort', this.onCallerAbort);
    this.controller.abort();
  }
}

/**
 * What the fallback chain needs from an SDK error: the HTTP status, the server's `retry-after`, and
 * `permanent` for 4xx other than 429 (a bad key or model will not get better by retrying; 429 and 5xx may).
 */
export function openAiErrorDetails(err: unknown): { status?: number; retryAfter?: string; permanent?: true } {
  if (!(err instanceof OpenAI.APIError)) return {};
  const status = err.status;
  const retryAfter = err.headers?.get?.('retry-after') ?? undefined;
  const permanent = status !== undefined && status < 500 && status !== 429 ? (true as const) : undefined;
  return stripUndefined({ status, retryAfter, permanent });
}
