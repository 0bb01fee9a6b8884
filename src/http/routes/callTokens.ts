import type { FastifyInstance } from 'fastify';
import type { CallTokenStore } from '../../tenants/CallTokenStore.js';
import { stripUndefined } from '../../util/options.js';
import type { IceServer } from '../../webrtc/iceServers.js';
import { enforce } from '../auth.js';
import { objectSchema, params, responses } from '../openapi.js';
import { pageOrigin, param } from './context.js';

/**
 * The one public API route: the web phone, loaded from a call URL, asks for a call token here before
 * it shows its Call button, and presents the token when the call starts. No admin token (the page has
 * none); what guards it is the call URL's own rules, checked against the page's `Origin` header, and a
 * per-IP limit much tighter than the admin API's.
 */
export interface CallTokenRouteOptions {
  /** Tokens per `windowMs` for one client IP, on top of the app-wide per-IP limit. */
  readonly perIp: number;
  readonly windowMs: number;
  /** PUBLIC_BASE_URL: this gateway's own origin as pages see it (context.ts `pageOrigin`). */
  readonly publicBaseUrl?: string | undefined;
  /**
   * The ICE servers for the page that asked (src/webrtc/iceServers.ts `iceServersFor`: ICE_SERVERS and
   * its own TURN credential), made per request; none: an empty list, the page uses its own addresses.
   */
  readonly iceServers?: (() => readonly IceServer[]) | undefined;
}

export const defaultCallTokenRouteOptions = {
  /**
   * 30 a minute per IP: a page asks once per load (and again when a token runs out), so an office of
   * callers behind one NAT fits, while probing slugs from one address stays at one every 2 s.
   */
  perIp: 30,
  /** One minute. */
  windowMs: 60_000,
} as const satisfies CallTokenRouteOptions;

const issued = objectSchema('A call token: present it once, before `expiresAt`, to start a call.', {
  token: { type: 'string', description: '22 base64url characters' },
  expiresAt: { type: 'string', format: 'date-time' },
  iceServers: {
    type: 'array',
    description:
      "The page's RTCPeerConnection `iceServers` (STUN/TURN): the gateway's configured servers and, with TURN REST configured, a TURN entry whose time-limited " +
      '`username` (`<expiry unix seconds>:<id>`) and `credential` are this page\'s own. Empty when none are configured.',
    items: {
      type: 'object',
      properties: { urls: { type: 'array', items: { type: 'string' } }, username: { type: 'string' }, credential: { type: 'string' } },
      required: ['urls'],
    },
  },
});

export function callTokenRoutes(app: FastifyInstance, store: CallTokenStore, options: Partial<CallTokenRouteOptions> = {}): void {
  const o: CallTokenRouteOptions = { ...defaultCallTokenRouteOptions, ...stripUndefined(options) };
  const perIp = app.createRateLimit({ max: o.perIp, timeWindow: o.windowMs, keyGenerator: (req) => `calltoken:${req.ip}` });

  app.post('/v1/call-urls/:slug/token', {
    config: { access: 'public' },
    // The route takes no body: a public route should not parse a megabyte for nothing.
    bodyLimit: 1024,
    onRequest: (request, reply) => enforce(perIp, request, reply),
    // Pages on other sites (a URL's allowed origins) must be able to read the answer, errors included.
    // `*` gives nothing away: the Origin header, which a page cannot forge, is what the store checks,
    // and no cookie or credential rides on the request. A body-less POST needs no preflight.
    onSend: async (_request, reply, payload) => {
      reply.header('access-control-allow-origin', '*');
      return payload;
    },
    schema: {
      tags: ['call tokens'],
      summary: 'Issue a call token for a call URL (public: the web phone calls it when the page loads)',
      description:
        "No authentication. Send no body. The page's `Origin` header must be one of the URL's allowed origins (when it lists any). " +
        'Checks that the URL is enabled, unexpired and has uses left without counting a use; the use is counted when the token starts a call. ' +
        'Refusals: CG_CALL_URL_NOT_FOUND 404, CG_CALL_URL_DISABLED 403, CG_CALL_URL_ORIGIN 403, CG_CALL_URL_EXPIRED 410, CG_CALL_URL_EXHAUSTED 410, CG_HTTP_RATE_LIMITED 429.',
      security: [],
      params: params('slug'),
      response: responses({ 201: issued }),
    },
    handler: async (request, reply) => {
      const { token, expiresAt } = await store.issue(param(request, 'slug'), { origin: pageOrigin(request, o.publicBaseUrl) });
      // no-store: the answer carries a TURN credential as well as the token.
      return reply.status(201).header('cache-control', 'no-store').send({ token, expiresAt, iceServers: o.iceServers?.() ?? [] });
    },
  });
}
