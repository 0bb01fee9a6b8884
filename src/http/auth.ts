import { timingSafeEqual } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CallgateError } from '../errors.js';
import type { ApiKeyStore } from '../tenants/ApiKeyStore.js';

/**
 * Who may call what. Every route declares `config.access`:
 * - `public`: no token (the OpenAPI page and its JSON);
 * - `admin`: the admin token only (tenant lists and creation, keys, trunks, number writes);
 * - `tenant`: the admin token, or a key of the tenant named by the route's `:id`.
 * A route that declares nothing is admin-only, so a forgotten declaration fails closed.
 */
export type Access = 'public' | 'admin' | 'tenant';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
}

export type Principal = { readonly kind: 'admin' } | { readonly kind: 'tenant'; readonly tenantId: string; readonly keyId: string };

export interface RateLimitOptions {
  /** Requests per `windowMs` for one principal (the admin token, or one tenant key). */
  readonly perKey: number;
  /** Greeting previews per `windowMs` for one principal (each costs a speech synthesis). */
  readonly previewPerKey: number;
  /** Requests per `windowMs` from one client IP, authenticated or not (counted before the token is checked). */
  readonly perIp: number;
  readonly windowMs: number;
  /** Failed authentications are logged at most once per client IP per this window; the line carries how many were not. */
  readonly authFailureLogWindowMs: number;
  /** Client IPs whose failures are tracked for that at once; past it the longest-tracked is forgotten. */
  readonly authFailureLogMaxIps: number;
}

export const defaultRateLimitOptions = {
  /**
   * 600 a minute (10/s) per key: far above what a dashboard or a provisioning script needs, low
   * enough that one leaked or runaway key cannot keep Redis busy for every other tenant.
   */
  perKey: 600,
  /**
   * 1200 a minute per IP: twice the per-key limit, so a host running a couple of keys (or an office
   * behind one NAT) is not cut off first, while token guessing from one address stays at 20/s.
   */
  perIp: 1200,
  /**
   * 30 a minute per key for the greeting preview: flite synthesises on the event loop (~50–150 ms a
   * greeting), so 600 previews a minute would keep a core busy; 30 is plenty for someone editing a greeting.
   */
  previewPerKey: 30,
  /** One minute. */
  windowMs: 60_000,
  /**
   * One minute: someone guessing tokens shows up in the log within a minute, and a flood from one
   * address (up to `perIp` a minute) costs one line a minute, not one per guess.
   */
  authFailureLogWindowMs: 60_000,
  /** 10 000 addresses: a few hundred KB at most, and a spray from more addresses still logs, only less grouped. */
  authFailureLogMaxIps: 10_000,
} as const satisfies RateLimitOptions;

/**
 * RFC 7235 credentials: the scheme is case-insensitive (`bearer`, `BEARER`), one or more spaces, then
 * the token (token68, e.g. base64url). Anything else is no credentials.
 */
const BEARER = /^bearer[ \t]+([^\s]+)[ \t]*$/i;

/** The token of an `Authorization: Bearer <token>` header; undefined when there is none or it is malformed. */
export function bearerToken(header: string | undefined): string | undefined {
  return header === undefined ? undefined : BEARER.exec(header)?.[1];
}

/**
 * Decides which failed authentications are logged: the first from an IP in each window, the rest
 * counted and reported with the next logged one. Bounded: past `maxIps` addresses the oldest entry goes.
 */
export class AuthFailureLog {
  readonly #seen = new Map<string, { since: number; suppressed: number }>();
  constructor(
    private readonly windowMs: number,
    private readonly maxIps: number,
  ) {}

  /** A failure from `ip`: the count suppressed since the last line when this one is to be logged, else undefined. */
  note(ip: string, now: number = performance.now()): number | undefined {
    const entry = this.#seen.get(ip);
    if (entry && now - entry.since < this.windowMs) {
      entry.suppressed++;
      return undefined;
    }
    this.#seen.delete(ip);
    if (this.#seen.size >= this.maxIps) this.#seen.delete(this.#seen.keys().next().value!);
    this.#seen.set(ip, { since: now, suppressed: 0 });
    return entry?.suppressed ?? 0;
  }

  get size(): number {
    return this.#seen.size;
  }
}

const principals = new WeakMap<FastifyRequest, Principal>();

/** The caller of a request that passed the auth hook. Fails closed on a request that did not (a public route). */
export function principalOf(request: FastifyRequest): Principal {
  const principal = principals.get(request);
  if (!principal) throw new CallgateError('CG_HTTP_UNAUTHORIZED');
  return principal;
}

type Limiter = ReturnType<FastifyInstance['createRateLimit']>;

export interface AuthDeps {
  readonly adminToken: string;
  readonly apiKeys: ApiKeyStore;
  readonly rateLimit: RateLimitOptions;
}

/**
 * Adds the one onRequest hook that, in this order, limits per IP, authenticates, limits per key and
 * authorizes. Running before the body is parsed means a refused request costs no parsing. Needs
 * @fastify/rate-limit registered (with `global: false`) on `app`.
 */
export function addAuth(app: FastifyInstance, deps: AuthDeps): void {
  const token = Buffer.from(deps.adminToken);
  // Prefixed keys (ip:, key:, preview:): every limiter shares the plugin's in-memory store.
  const perIp: Limiter = app.createRateLimit({ max: deps.rateLimit.perIp, timeWindow: deps.rateLimit.windowMs, keyGenerator: (req) => `ip:${req.ip}` });
  const perKey = principalLimiter(app, 'key', deps.rateLimit.perKey, deps.rateLimit.windowMs);
  const failures = new AuthFailureLog(deps.rateLimit.authFailureLogWindowMs, deps.rateLimit.authFailureLogMaxIps);

  app.addHook('onRequest', async (request, reply) => {
    await enforce(perIp, request, reply);
    const access = request.routeOptions.config.access ?? 'admin';
    if (access === 'public') return;

    const header = request.headers.authorization;
    const given = bearerToken(header);
    const principal = given === undefined ? undefined : await authenticate(given, token, deps.apiKeys);
    if (!principal) {
      const suppressed = failures.note(request.ip);
      if (suppressed !== undefined) {
        // Who and where, never what: no header, no token, no query string (one could carry a token).
        const reason = header === undefined ? 'no credentials' : given === undefined ? 'not a Bearer token' : 'unknown token';
        const route = request.routeOptions.url ?? request.url.split('?')[0]!.slice(0, 200);
        request.log.warn({ ip: request.ip, method: request.method, route, reason, suppressed }, 'admin API authentication failed');
      }
      throw new CallgateError('CG_HTTP_UNAUTHORIZED');
    }
    principals.set(request, principal);
    await enforce(perKey, request, reply);

    // An unknown route says 404 to anyone authenticated: 403 there would only be noise.
    if (request.is404 || principal.kind === 'admin') return;
    if (access === 'admin') throw new CallgateError('CG_HTTP_FORBIDDEN', 'this route needs the admin token', { details: { tenantId: principal.tenantId } });
    const { id } = request.params as { id?: string };
    if (id !== principal.tenantId) throw new CallgateError('CG_HTTP_FORBIDDEN', undefined, { details: { tenantId: principal.tenantId } });
  });
}

function principalLimiter(app: FastifyInstance, name: string, max: number, windowMs: number): Limiter {
  return app.createRateLimit({
    max,
    timeWindow: windowMs,
    keyGenerator: (req) => {
      const p = principals.get(req);
      return `${name}:${p?.kind === 'tenant' ? p.keyId : 'admin'}`;
    },
  });
}

/** A preHandler that applies a further, tighter per-principal limit to one costly route. */
export function costlyRouteLimit(app: FastifyInstance, name: string, max: number, windowMs: number): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const limiter = principalLimiter(app, name, max, windowMs);
  return (request, reply) => enforce(limiter, request, reply);
}

async function authenticate(given: string, token: Buffer, apiKeys: ApiKeyStore): Promise<Principal | undefined> {
  const bytes = Buffer.from(given);
  // Constant time: the comparison must not tell an attacker how much of a guess was right.
  if (bytes.length === token.length && timingSafeEqual(bytes, token)) return { kind: 'admin' };
  const key = await apiKeys.verify(given);
  return key ? { kind: 'tenant', tenantId: key.tenantId, keyId: key.keyId } : undefined;
}

/** Refuses with CG_HTTP_RATE_LIMITED and a Retry-After header once `limiter` counts the request over. */
export async function enforce(limiter: Limiter, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const result = await limiter(request);
  if (result.isAllowed || !result.isExceeded) return;
  reply.header('retry-after', result.ttlInSeconds);
  throw new CallgateError('CG_HTTP_RATE_LIMITED', undefined, { details: { retryAfterS: result.ttlInSeconds, limit: result.max } });
}

/** Tenant keys may change their tenant but not what the operator sized for it. */
export function assertMayPatchTenant(principal: Principal, patch: Record<string, unknown>): void {
  if (principal.kind === 'tenant' && 'maxConcurrentCalls' in patch) {
    throw new CallgateError('CG_HTTP_FORBIDDEN', 'maxConcurrentCalls needs the admin token', { details: { field: 'maxConcurrentCalls' } });
  }
}
