import { Counter, Histogram, Registry } from 'prom-client';
import { isCallgateError } from '../../errors.js';

export type ProviderKind = 'stt' | 'llm' | 'tts';

/** What went wrong, in the few classes an operator acts on differently. */
export type ProviderErrorKind = 'timeout' | 'auth' | 'rate_limited' | 'server' | 'connection' | 'other';

export function providerErrorKind(err: unknown): ProviderErrorKind {
  if (!isCallgateError(err)) return 'other';
  if (err.code.endsWith('_TIMEOUT')) return 'timeout';
  const details = (err.details ?? {}) as { status?: unknown; closeCode?: unknown };
  const status = details.status;
  if (typeof status === 'number') {
    if (status === 401 || status === 403) return 'auth';
    if (status === 429) return 'rate_limited';
    if (status >= 500) return 'server';
    return 'other';
  }
  // A WebSocket closed by the far end: 1011 is the server's own error (Deepgram's NET-0001); the rest
  // (1006 dropped, 1001 going away) are the connection's.
  if (typeof details.closeCode === 'number') return details.closeCode === 1011 ? 'server' : 'connection';
  return err.code === 'CG_STT_UNAVAILABLE' || /connection|socket/i.test(err.message) ? 'connection' : 'other';
}

/**
 * Per-provider metrics (prom-client): time to first result, errors by kind, fallbacks taken and
 * requests skipped by an open circuit. Registered on the registry the process exposes at /metrics.
 */
export class ProviderMetrics {
  readonly firstResult: Histogram<'kind' | 'provider'>;
  readonly errors: Counter<'kind' | 'provider' | 'error'>;
  readonly fallbacks: Counter<'kind' | 'from' | 'to'>;
  readonly skipped: Counter<'kind' | 'provider'>;

  constructor(readonly registry: Registry = new Registry()) {
    this.firstResult = new Histogram({
      name: 'callgate_provider_first_result_seconds',
      help: 'Request start to first result: first LLM token, first TTS audio, STT final text after the turn ended',
      labelNames: ['kind', 'provider'],
      buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10],
      registers: [registry],
    });
    this.errors = new Counter({
      name: 'callgate_provider_errors_total',
      help: 'Provider failures by kind of error (timeout, auth, rate_limited, server, connection, other)',
      labelNames: ['kind', 'provider', 'error'],
      registers: [registry],
    });
    this.fallbacks = new Counter({
      name: 'callgate_provider_fallbacks_total',
      help: 'Requests handed to the next provider in the chain',
      labelNames: ['kind', 'from', 'to'],
      registers: [registry],
    });
    this.skipped = new Counter({
      name: 'callgate_provider_skipped_total',
      help: 'Requests that skipped a provider because its circuit was open',
      labelNames: ['kind', 'provider'],
      registers: [registry],
    });
  }

  observeFirstResult(kind: ProviderKind, provider: string, ms: number): void {
    this.firstResult.observe({ kind, provider }, ms / 1000);
  }

  error(kind: ProviderKind, provider: string, err: unknown): void {
    this.errors.inc({ kind, provider, error: providerErrorKind(err) });
  }
}
