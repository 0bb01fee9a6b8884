import OpenAI from 'openai';
import { stripUndefined } from '../util/options.js';
import { isPermanentStatus } from './resilience/chain.js';

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
 * One streaming request's abort signal: aborts when the caller's does (barge-in, hangup), when no first
 * byte came within `timeoutMs`, and, once data flows, when it stops flowing for `stallTimeoutMs` (a
 * reply that stops halfway would otherwise hold the caller in silence until the call ends). Call
 * `arrived()` for each piece of data; `dispose()` (in a finally) releases the listener and closes the
 * connection if reading stopped early.
 */
export class FirstByteDeadline {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout;
  private expired = false;
  private flowing = false;
  private readonly onCallerAbort = (): void => this.controller.abort();

  constructor(
    private readonly caller: AbortSignal,
    timeoutMs: number,
    private readonly stallTimeoutMs?: number,
  ) {
    caller.addEventListener('abort', this.onCallerAbort, { once: true });
    this.timer = this.arm(timeoutMs);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The deadline, not the caller, ended the request. */
  get timedOut(): boolean {
    return this.expired;
  }

  /** It timed out after data had started to flow. */
  get stalled(): boolean {
    return this.expired && this.flowing;
  }

  arrived(): void {
    if (this.flowing) {
      if (this.stallTimeoutMs !== undefined) this.timer.refresh();
      return;
    }
    this.flowing = true;
    clearTimeout(this.timer);
    // From the first byte on, the budget is the stall budget, restarted by each piece of data.
    if (this.stallTimeoutMs !== undefined) this.timer = this.arm(this.stallTimeoutMs);
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.caller.removeEventListener('abort', this.onCallerAbort);
    this.controller.abort();
  }

  private arm(ms: number): NodeJS.Timeout {
    return setTimeout(() => {
      this.expired = true;
      this.controller.abort();
    }, ms);
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
  const permanent = isPermanentStatus(status) ? (true as const) : undefined;
  return stripUndefined({ status, retryAfter, permanent });
}
