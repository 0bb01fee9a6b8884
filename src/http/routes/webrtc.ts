import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parseOrThrow } from '../../tenants/storeUtil.js';
import { enforce } from '../auth.js';
import { jsonSchema, objectSchema, responses } from '../openapi.js';
import { objectBody, pageOrigin, type WebRtcAnswerer } from './context.js';

/**
 * The direct WebRTC door's signalling: the web phone posts its offer (ICE gathered, no trickle) with
 * the call token it got at page load, and gets the gateway's answer. Public like the token route, and
 * guarded the same way: the token (single use, bound to the page's origin) and a per-IP limit.
 */
export interface WebRtcRouteOptions {
  /** Offers per `windowMs` for one client IP. */
  readonly perIp: number;
  readonly windowMs: number;
  /** PUBLIC_BASE_URL: this gateway's own origin as pages see it (context.ts `pageOrigin`). */
  readonly publicBaseUrl?: string | undefined;
}

export const defaultWebRtcRouteOptions = {
  /** 30 a minute: each offer is a call, and each call needs a fresh token anyway. */
  perIp: 30,
  windowMs: 60_000,
} as const satisfies WebRtcRouteOptions;

const offerSchema = z.object({ token: z.string().min(1).max(200), sdp: z.string().min(1).max(32 * 1024) }).strict();
const answered = objectSchema("The gateway's answer; apply it with setRemoteDescription.", {
  callId: { type: 'string' },
  sdp: { type: 'string' },
  type: { type: 'string', enum: ['answer'] },
});

export function webrtcRoutes(app: FastifyInstance, door: WebRtcAnswerer, options: Partial<WebRtcRouteOptions> = {}): void {
  const o: WebRtcRouteOptions = { ...defaultWebRtcRouteOptions, ...options };
  const perIp = app.createRateLimit({ max: o.perIp, timeWindow: o.windowMs, keyGenerator: (req) => `webrtc-offer:${req.ip}` });
  // Pages embedded on other sites post JSON, which needs a CORS preflight; the token and its origin
  // binding, not the browser's same-origin rule, are what guard the route.
  const cors = async (_request: unknown, reply: { header(k: string, v: string): unknown }, payload: unknown): Promise<unknown> => {
    reply.header('access-control-allow-origin', '*');
    return payload;
  };
  app.options('/v1/webrtc/offer', {
    config: { access: 'public' },
    schema: { hide: true },
    handler: async (_request, reply) =>
      reply
        .header('access-control-allow-origin', '*')
        .header('access-control-allow-methods', 'POST')
        .header('access-control-allow-headers', 'content-type')
        .header('access-control-max-age', '600')
        .code(204)
        .send(),
  });
  app.post('/v1/webrtc/offer', {
    config: { access: 'public' },
    // A gathered browser offer is 2–6 KB; the schema caps the SDP at 32 KiB.
    bodyLimit: 64 * 1024,
    onRequest: (request, reply) => enforce(perIp, request, reply),
    onSend: cors,
    schema: {
      tags: ['web phone'],
      summary: "Start a browser call: post the page's WebRTC offer with its call token, get the answer",
      description:
        'No authentication besides the call token (single use; the `Origin` header must match the one it was issued to). ' +
        'The offer must be WebRTC (UDP/TLS/RTP/SAVPF, fingerprint, ICE credentials) with Opus, ICE gathered. ' +
        'Refusals: CG_CALL_TOKEN_INVALID 401, CG_CALL_URL_* 403/410, CG_CALL_LIMIT_REACHED 429, CG_SDP_MALFORMED 400, other CG_SDP_* 422, CG_HTTP_RATE_LIMITED 429.',
      security: [],
      body: jsonSchema(offerSchema),
      response: responses({ 201: answered }),
    },
    handler: async (request, reply) => {
      const { token, sdp } = parseOrThrow(offerSchema, objectBody(request), 'offer', 'CG_HTTP_BAD_REQUEST');
      // No Origin header is no origin, not any: a token issued to a page's origin is refused without one
      // ('null', the opaque origin, normalises to none, which matches only a token issued without an Origin).
      const answer = await door.answer({ token, sdp, origin: pageOrigin(request, o.publicBaseUrl) || 'null', clientIp: request.ip });
      return reply.status(201).header('cache-control', 'no-store').send({ callId: answer.callId, sdp: answer.sdp, type: 'answer' });
    },
  });
}
