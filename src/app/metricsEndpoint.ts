import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { CallgateError, isCallgateError } from '../errors.js';
import { addSecurityHeaders } from '../http/securityHeaders.js';

/**
 * Who may read /metrics (issue 24, finding 9: it lists tenant ids and call volumes). Three ways, by
 * configuration (src/app/config.ts):
 * - `METRICS_PORT` set: /metrics moves to its own listener on `METRICS_HOST` (127.0.0.1 by default)
 *   and the public HTTP port no longer serves it; with `METRICS_TOKEN` also set, that listener wants
 *   the token too.
 * - only `METRICS_TOKEN` set: /metrics on the HTTP port wants `Authorization: Bearer <token>` from
 *   anyone, so a Prometheus elsewhere can scrape it.
 * - neither (the default): /metrics on the HTTP port answers loopback clients only. A Prometheus or a
 *   curl on the same host keeps working with no setup, and nothing leaks once HTTP_HOST exposes the
 *   port. A reverse proxy on the same host connects from loopback too: a request carrying a forwarding
 *   header (Forwarded, X-Forwarded-For, X-Real-IP) is not counted as local; a proxy that adds none must
 *   not forward /metrics, or set METRICS_TOKEN (docs/security.md).
 * The token is compared in constant time and never logged.
 */
export type MetricsAccess = { readonly kind: 'loopback' } | { readonly kind: 'token'; readonly token: string } | { readonly kind: 'open' };

export interface MetricsSource {
  readonly contentType: string;
  text(): Promise<string>;
}

const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip'] as const;

/** 127.0.0.0/8 and ::1, IPv4-mapped included. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return v4.startsWith('127.') || address === '::1';
}

/** The peer is this host and no proxy says the request came from elsewhere. */
export function isLocalRequest(request: FastifyRequest): boolean {
  // The socket's address, not request.ip: a trustProxy setting must never make a remote client local.
  return isLoopbackAddress(request.socket.remoteAddress) && FORWARDING_HEADERS.every((h) => request.headers[h] === undefined);
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Hashing both sides first makes the comparison constant-time whatever the lengths. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const given = header?.startsWith('Bearer ') ? header.slice(7) : '';
  return timingSafeEqual(digest(given), digest(token));
}

function check(access: MetricsAccess, request: FastifyRequest): void {
  if (access.kind === 'open') return;
  if (access.kind === 'token') {
    if (!bearerMatches(request.headers.authorization, access.token)) {
      throw new CallgateError('CG_HTTP_UNAUTHORIZED', 'missing or invalid metrics token (METRICS_TOKEN)');
    }
    return;
  }
  if (!isLocalRequest(request)) throw new CallgateError('CG_HTTP_FORBIDDEN', '/metrics answers loopback clients only; set METRICS_TOKEN or METRICS_PORT to scrape it from elsewhere');
}

/** Adds `GET /metrics` with its access rule (the app's `access: 'public'`: the rule here replaces the admin token). */
export function metricsRoute(app: FastifyInstance, access: MetricsAccess, source: MetricsSource): void {
  app.get('/metrics', {
    config: { access: 'public' },
    schema: { hide: true },
    handler: async (request, reply) => {
      try {
        check(access, request);
      } catch (err) {
        if (isCallgateError(err) && err.code === 'CG_HTTP_UNAUTHORIZED') reply.header('www-authenticate', 'Bearer realm="metrics"');
        throw err;
      }
      return reply.header('content-type', source.contentType).header('cache-control', 'no-store').send(await source.text());
    },
  });
}

export interface MetricsServer {
  /** `http://host:port` */
  readonly url: string;
  close(): Promise<void>;
}

/** The `METRICS_PORT` listener: /metrics and nothing else, errors in the API's one shape. */
export async function startMetricsServer(opts: { host: string; port: number; token: string | undefined; source: MetricsSource; logger: Logger }): Promise<MetricsServer> {
  const app = Fastify({ loggerInstance: opts.logger as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }) });
  addSecurityHeaders(app);
  app.setErrorHandler((err, request, reply) => {
    if (isCallgateError(err)) return reply.status(err.status).send(err.toJSON());
    request.log.error({ err: err instanceof Error ? err.message : String(err) }, 'metrics error');
    return reply.status(500).send(new CallgateError('CG_INTERNAL').toJSON());
  });
  app.setNotFoundHandler((request, reply) => reply.status(404).send(new CallgateError('CG_HTTP_NOT_FOUND', `${request.method} ${request.url.split('?')[0]}`).toJSON()));
  metricsRoute(app, opts.token === undefined ? { kind: 'open' } : { kind: 'token', token: opts.token }, opts.source);
  const url = await app.listen({ host: opts.host, port: opts.port });
  return { url, close: () => app.close() };
}
