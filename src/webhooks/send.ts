import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { DestinationRefused, guardedLookup, privateDestinationsAllowed, refusedLiteral } from '../util/destination.js';

/**
 * One outgoing request to a tenant's server: a tool webhook, a call webhook. Written over node:http
 * rather than fetch because the connection must go through `guardedLookup` (the address checked is the
 * address connected to) and the answer must be capped while it streams in; Node 20's fetch offers
 * neither without undici's internals.
 */
export interface SendOptions {
  readonly method: 'POST' | 'PUT' | 'PATCH';
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** The whole exchange, connect to last byte. */
  readonly timeoutMs: number;
  /** Bytes of answer kept; the rest is read and dropped (`truncated`). */
  readonly maxResponseBytes: number;
  readonly allowPrivate?: boolean;
  readonly signal?: AbortSignal;
}

export interface SendResult {
  readonly status: number;
  readonly body: string;
  readonly contentType: string | undefined;
  readonly truncated: boolean;
  readonly elapsedMs: number;
}

/** Why a request got no HTTP answer: `timeout`, `refused` (a non-public address), `network`, `aborted`. */
export class SendError extends Error {
  constructor(
    readonly kind: 'timeout' | 'refused' | 'network' | 'aborted',
    message: string,
  ) {
    super(message);
    this.name = 'SendError';
  }
}

/** Idle sockets are kept briefly: long enough for the next turn's tool call, short enough to hold little. */
const KEEP_ALIVE = { keepAlive: true, keepAliveMsecs: 1000, maxSockets: 64, maxFreeSockets: 16, timeout: 30_000 } as const;
const HTTP_AGENT = new HttpAgent(KEEP_ALIVE);
const HTTPS_AGENT = new HttpsAgent(KEEP_ALIVE);

export function send(url: string, o: SendOptions): Promise<SendResult> {
  const started = performance.now();
  const target = new URL(url);
  const literal = refusedLiteral(target, o.allowPrivate ?? privateDestinationsAllowed());
  if (literal) return Promise.reject(new SendError('refused', literal.message));
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<SendResult>((resolve, reject) => {
    let settled = false;
    const finish = (err: SendError | undefined, result?: SendResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(result!);
    };
    const req = request(
      target,
      {
        method: o.method,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(o.body), 'user-agent': 'callgate', ...o.headers },
        lookup: guardedLookup(o.allowPrivate ?? privateDestinationsAllowed()) as never,
        // Kept-alive connections: a tool called on every turn skips the TCP (and TLS) handshake. A pooled
        // socket was checked when it connected, and its address cannot change afterwards.
        agent: target.protocol === 'https:' ? HTTPS_AGENT : HTTP_AGENT,
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        let truncated = false;
        res.on('data', (chunk: Buffer) => {
          if (kept >= o.maxResponseBytes) return void (truncated = true);
          const room = o.maxResponseBytes - kept;
          if (chunk.length > room) truncated = true;
          chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
          kept += Math.min(chunk.length, room);
        });
        res.on('end', () =>
          finish(undefined, {
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            contentType: res.headers['content-type'],
            truncated,
            elapsedMs: performance.now() - started,
          }),
        );
        res.on('error', (err) => finish(new SendError('network', err.message)));
      },
    );
    const timer = setTimeout(() => {
      finish(new SendError('timeout', `no answer within ${o.timeoutMs} ms`));
      req.destroy();
    }, o.timeoutMs);
    const onAbort = (): void => {
      finish(new SendError('aborted', 'aborted'));
      req.destroy();
    };
    if (o.signal?.aborted) return onAbort();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err: Error & { code?: string }) => {
      if (err instanceof DestinationRefused) finish(new SendError('refused', err.message));
      else finish(new SendError('network', `${err.code ?? 'error'}: ${err.message}`.slice(0, 200)));
    });
    req.end(o.body);
  });
}
