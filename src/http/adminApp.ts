import rateLimit from '@fastify/rate-limit';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyReply, type HTTPMethods } from 'fastify';
import type { Logger } from 'pino';
import { CallgateError, isCallgateError } from '../errors.js';
import { rootLogger } from '../log.js';
import { FliteWorkerPool } from '../providers/flite/FliteWorkerPool.js';
import { defaultFliteOptions } from '../providers/fliteTts.js';
import { CallRecordStore } from '../tenants/CallRecordStore.js';
import { isRedisOutage } from '../tenants/storeUtil.js';
import { CallTokenStore } from '../tenants/CallTokenStore.js';
import { ApiKeyStore } from '../tenants/ApiKeyStore.js';
import { CallLimiter } from '../tenants/CallLimiter.js';
import { CallUrlStore } from '../tenants/CallUrlStore.js';
import { NumberStore } from '../tenants/NumberStore.js';
import { DeviceBindingStore } from '../tenants/DeviceBindingStore.js';
import { DeviceStore } from '../tenants/DeviceStore.js';
import type { Redis } from '../tenants/redisClient.js';
import { SecretBox } from '../tenants/secrets.js';
import { TenantStore } from '../tenants/TenantStore.js';
import { stripUndefined } from '../util/options.js';
import { addAuth, defaultRateLimitOptions, type Access, type RateLimitOptions } from './auth.js';
import { acceptEmptyJsonBody } from './emptyJsonBody.js';
import { DOCS_PREFIX, registerOpenApi } from './openapi.js';
import { addSecurityHeaders, applySecurityHeaders } from './securityHeaders.js';
import { callRoutes } from './routes/calls.js';
import { callTokenRoutes, type CallTokenRouteOptions } from './routes/callTokens.js';
import { callUrlRoutes } from './routes/callUrls.js';
import type { OutboundDialer, PreviewSpeech, RouteContext, WebRtcAnswerer } from './routes/context.js';
import { webrtcRoutes, type WebRtcRouteOptions } from './routes/webrtc.js';
import { webPhoneRoutes, type WebPhoneOptions } from './webPhone.js';
import { landingRoutes } from './landing.js';
import { roomPageRoutes } from './roomPage.js';
import { roomRoutes } from './routes/rooms.js';
import { RoomStore } from '../tenants/RoomStore.js';
import type { RoomHub } from '../rooms/RoomHub.js';
import type { RoomSignalling } from '../webrtc/RoomSignalling.js';
import { keyRoutes } from './routes/keys.js';
import { numberRoutes } from './routes/numbers.js';
import { tenantRoutes } from './routes/tenants.js';
import { recordRoutes } from './routes/records.js';
import { trunkRoutes } from './routes/trunks.js';
import { deviceRoutes } from './routes/devices.js';

/**
 * The admin API (`/v1`): what operators and tenants use to configure callgate. Every error has one
 * shape, `{ code, message, details? }`, with a stable code from src/errors.ts. Who may call what is in
 * auth.ts; the OpenAPI page (`/docs`) in openapi.ts; the routes by resource in routes/.
 */
export interface AdminAppOptions {
  /** Connected client; the app builds its stores on it and never closes it. */
  readonly redis: Redis;
  /** Key prefix (see redisClient.ts). */
  readonly prefix: string;
  /** Encrypts provider keys and trunk passwords; by default reads CALLGATE_SECRET_KEY when first needed. */
  readonly secrets?: SecretBox;
  /** `CALLGATE_ADMIN_TOKEN`: the bearer token that may do everything. */
  readonly adminToken: string;
  /** Where the web door is reachable (`https://calls.example.com`); call URLs come back as `${publicBaseUrl}/c/<slug>`. */
  readonly publicBaseUrl?: string;
  /** Told after every write to a tenant's config (`'*'` after a trunk write), so every gateway's TenantCache drops its copy. */
  readonly invalidate?: (tenantId: string) => Promise<void>;
  readonly rateLimit?: Partial<RateLimitOptions>;
  /** The public call-token route's per-IP limit, and how long a token lives (CallTokenStore's `ttlMs`). */
  readonly callTokens?: Partial<CallTokenRouteOptions> & { readonly ttlMs?: number };
  readonly logger?: Logger;
  /** The SIP door's outbound dialler, for `POST /v1/calls`; without it that route answers 503. */
  readonly dialer?: OutboundDialer;
  /** The direct WebRTC door, for `POST /v1/webrtc/offer`; without it that route is not served. */
  readonly webrtc?: WebRtcAnswerer;
  readonly webrtcRoute?: Partial<WebRtcRouteOptions>;
  /** The web phone page's SIP mode (SIP.js over WS to drachtio); direct WebRTC when unset. */
  readonly webPhone?: Partial<WebPhoneOptions>;
  /**
   * What speaks greeting previews; the caller keeps and closes it. Unset: the app starts its own
   * one-worker flite pool on the first preview and closes it with the app.
   */
  readonly previewSpeech?: PreviewSpeech;
  /** The rooms whose audio this gateway holds and their pages' signalling; absent: the API manages rooms, joins are refused. */
  readonly rooms?: { readonly hub: RoomHub; readonly signalling: RoomSignalling };
  /** The call URL the landing page's "Try the demo call" opens (`demo` when the demo tenant is seeded); none: no such link. */
  readonly demoSlug?: string;
}

/** Shortest admin token accepted: a guessable token would open every tenant. */
export const MIN_ADMIN_TOKEN_CHARS = 24;

export interface AdminRoute {
  readonly method: string;
  readonly url: string;
  readonly access: Access;
}

const routeTables = new WeakMap<object, AdminRoute[]>();

/** Every route the app serves, with who may call it (for tests and a route listing). */
export function adminRoutes(app: AdminApp): readonly AdminRoute[] {
  return routeTables.get(app) ?? [];
}

export async function buildAdminApp(options: AdminAppOptions): Promise<AdminApp> {
  if (options.adminToken.length < MIN_ADMIN_TOKEN_CHARS) {
    throw new CallgateError('CG_CONFIG_INVALID', `CALLGATE_ADMIN_TOKEN must be at least ${MIN_ADMIN_TOKEN_CHARS} characters`);
  }
  const { redis, prefix } = options;
  const limits: RateLimitOptions = { ...defaultRateLimitOptions, ...stripUndefined(options.rateLimit ?? {}) };
  const secrets = options.secrets ?? new SecretBox();
  // Its own pool, not the live calls' (ProviderRegistry's FliteTtsProvider): that pool is one worker with
  // one FIFO queue, so a burst of previews (limited per key, not per gateway) would sit in front of live
  // callers' next sentences and they would hear the delay. Previews are an operator tool: one worker,
  // started by the first preview (no thread for a gateway nobody previews on), so at most one preview
  // synthesises at a time and they queue behind each other, never behind a call or a call behind them.
  // Same flite, voice, maxChars and tempDir as fliteTts.synthesize() on the main thread: the same bytes.
  const ownPreviewPool = options.previewSpeech
    ? undefined
    : new FliteWorkerPool({
        size: 1,
        workerData: { maxChars: defaultFliteOptions.maxChars, tempDir: defaultFliteOptions.tempDir },
        logger: (options.logger ?? rootLogger).child({ provider: 'flite', use: 'greeting-preview' }),
      });
  const ctx: RouteContext = {
    tenants: new TenantStore(redis, secrets, { prefix }),
    callUrls: new CallUrlStore(redis, { prefix, ...stripUndefined({ publicBaseUrl: options.publicBaseUrl }) }),
    numbers: new NumberStore(redis, secrets, { prefix }),
    devices: new DeviceStore(redis, secrets, { prefix }),
    bindings: new DeviceBindingStore(redis, { prefix }),
    limiter: new CallLimiter(redis, { prefix }),
    apiKeys: new ApiKeyStore(redis, { prefix }),
    records: new CallRecordStore(redis, { prefix }),
    rateLimit: limits,
    dialer: options.dialer,
    changed: async (tenantId) => {
      await options.invalidate?.(tenantId);
    },
    previewSpeech: options.previewSpeech ?? (ownPreviewPool as FliteWorkerPool),
    publicBaseUrl: options.publicBaseUrl,
  };

  const app = createFastify(options.logger ?? rootLogger);
  // curl's `-H 'content-type: application/json'` on a DELETE with no body is not a malformed request.
  acceptEmptyJsonBody(app);
  // First, so every route and plugin below (swagger-ui, the web phone, /metrics) gets the headers.
  addSecurityHeaders(app);
  const routes: AdminRoute[] = [];
  routeTables.set(app, routes);
  app.addHook('onRoute', (route) => {
    // swagger-ui's own routes (page, JSON, static files) are the public part.
    if (route.url === DOCS_PREFIX || route.url.startsWith(`${DOCS_PREFIX}/`)) route.config = { ...route.config, access: 'public' };
    const access = route.config?.access ?? 'admin';
    for (const method of ([] as HTTPMethods[]).concat(route.method)) routes.push({ method, url: route.url, access });
  });

  // Bodies are validated by the stores' zod schemas (see openapi.ts); route schemas are documentation,
  // so neither ajv validation nor schema-driven serialization (which drops unlisted fields) runs.
  app.setValidatorCompiler(() => () => true);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  app.setErrorHandler((err: FastifyError | CallgateError, request, reply) => {
    if (isCallgateError(err)) return reply.status(err.status).send(err.toJSON());
    const status = (err as FastifyError).statusCode;
    if ((err as FastifyError).validation || (status !== undefined && status >= 400 && status < 500)) {
      // Fastify's own refusals (malformed JSON, wrong content type, body too large) in the one shape,
      // keeping the status a client acts on: 413 means "send less", 415 "send JSON", not "fix a field".
      const code = status === 413 ? 'CG_HTTP_BODY_TOO_LARGE' : status === 415 ? 'CG_HTTP_UNSUPPORTED_MEDIA_TYPE' : 'CG_HTTP_BAD_REQUEST';
      const e = new CallgateError(code, err.message, { details: { reason: (err as FastifyError).code } });
      return reply.status(e.status).send(e.toJSON());
    }
    if (isRedisOutage(err)) {
      const e = new CallgateError('CG_REDIS_UNAVAILABLE', err.message);
      return reply.status(e.status).send(e.toJSON());
    }
    request.log.error({ err: err.message, url: request.url }, 'admin API error');
    return reply.status(500).send(new CallgateError('CG_INTERNAL').toJSON());
  });
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send(new CallgateError('CG_HTTP_NOT_FOUND', `${request.method} ${request.url.split('?')[0]}`).toJSON());
  });

  // `global: false`: the limits are applied by the auth hook, per IP before the token is checked and per
  // key after, rather than by one route-level hook keyed on only one of the two. In memory, per process:
  // behind N gateways a key gets N times the limit, which still stops a runaway client.
  await app.register(rateLimit, { global: false });
  addAuth(app, { adminToken: options.adminToken, apiKeys: ctx.apiKeys, rateLimit: limits });
  await registerOpenApi(app);

  tenantRoutes(app, ctx);
  callUrlRoutes(app, ctx);
  numberRoutes(app, ctx);
  keyRoutes(app, ctx);
  callRoutes(app, ctx);
  trunkRoutes(app, ctx);
  deviceRoutes(app, ctx);
  recordRoutes(app, ctx);
  callTokenRoutes(app, new CallTokenStore(redis, { prefix, ...stripUndefined({ ttlMs: options.callTokens?.ttlMs }) }), { ...options.callTokens, publicBaseUrl: options.publicBaseUrl });
  if (options.webrtc) webrtcRoutes(app, options.webrtc, { ...options.webrtcRoute, publicBaseUrl: options.publicBaseUrl });
  webPhoneRoutes(app, ctx, options.webPhone);
  const roomStore = options.rooms?.hub.store ?? new RoomStore(redis, { prefix });
  roomRoutes(app, ctx, { store: roomStore, hub: options.rooms?.hub });
  await roomPageRoutes(app, { store: roomStore, tenants: ctx.tenants, signalling: options.rooms?.signalling });
  landingRoutes(app, { demoSlug: options.demoSlug, publicBaseUrl: options.publicBaseUrl });
  // The record store listens on the shared client for reconnects; it must stop when the app does.
  app.addHook('onClose', async () => {
    await ctx.records.close();
    await ownPreviewPool?.close();
  });
  return app;
}

export type AdminApp = Awaited<ReturnType<typeof createFastify>>;
function createFastify(logger: Logger) {
  // As FastifyBaseLogger so the instance is the plain FastifyInstance the route modules take.
  return Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    // The router refuses a path parameter over 100 characters (414) or a bad %-escape (400) before any
    // hook or error handler runs; without this those answers have Fastify's own shape and code.
    frameworkErrors: (err: FastifyError, _request: unknown, reply: FastifyReply) => {
      // These answers skip every hook, the security headers' included.
      applySecurityHeaders(reply);
      reply.status(400).send(new CallgateError('CG_HTTP_BAD_REQUEST', err.message, { details: { reason: err.code } }).toJSON());
    },
  });
}
