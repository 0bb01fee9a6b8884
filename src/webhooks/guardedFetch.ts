import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { guardedLookup, refusedLiteral } from '../util/destination.js';

/**
 * A `fetch` for clients that take one (the MCP SDK's Streamable HTTP transport), over node:http so that
 * every connection goes through `guardedLookup`: the address connected to is the address checked.
 * Node 20's global fetch resolves names itself and offers no such hook without undici's internals.
 * Responses stream (an MCP server answers with Server-Sent Events), and `init.signal` aborts.
 */
export type GuardedFetch = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** Kept-alive connections: one MCP session sends many requests. A pooled socket was checked when it connected. */
const KEEP_ALIVE = { keepAlive: true, maxSockets: 32, maxFreeSockets: 8, timeout: 60_000 } as const;
const HTTP_AGENT = new HttpAgent(KEEP_ALIVE);
const HTTPS_AGENT = new HttpsAgent(KEEP_ALIVE);

export function guardedFetch(allowPrivate: boolean): GuardedFetch {
  const lookup = guardedLookup(allowPrivate);
  return (input, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(String(input));
      const literal = refusedLiteral(url, allowPrivate);
      if (literal) return reject(literal);
      const signal = init.signal ?? undefined;
      if (signal?.aborted) return reject(signal.reason ?? new DOMException('aborted', 'AbortError'));
      const method = (init.method ?? 'GET').toUpperCase();
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((value, name) => (headers[name] = value));
      const body = typeof init.body === 'string' || init.body instanceof Uint8Array ? init.body : init.body == null ? undefined : String(init.body);
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(url, { method, headers, lookup: lookup as never, agent: url.protocol === 'https:' ? HTTPS_AGENT : HTTP_AGENT }, (res) => {
        const out = new Headers();
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) out.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
        const status = res.statusCode ?? 502;
        const empty = method === 'HEAD' || status === 204 || status === 304;
        if (empty) res.resume();
        resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, statusText: res.statusMessage ?? '', headers: out }));
      });
      const onAbort = (): void => {
        req.destroy();
        reject(signal?.reason ?? new DOMException('aborted', 'AbortError'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('close', () => signal?.removeEventListener('abort', onAbort));
      req.on('error', reject);
      req.end(body);
    });
}
