import type { FastifyRequest } from 'fastify';
import { CallgateError } from '../../errors.js';
import type { FliteWorkerPool } from '../../providers/flite/FliteWorkerPool.js';
import type { ApiKeyStore } from '../../tenants/ApiKeyStore.js';
import type { CallLimiter } from '../../tenants/CallLimiter.js';
import type { CallRecordStore } from '../../tenants/CallRecordStore.js';
import { normalizeOrigin, type CallUrlStore } from '../../tenants/CallUrlStore.js';
import type { DeviceBindingStore } from '../../tenants/DeviceBindingStore.js';
import type { DeviceStore } from '../../tenants/DeviceStore.js';
import type { NumberStore } from '../../tenants/NumberStore.js';
import type { TenantStore } from '../../tenants/TenantStore.js';
import type { RateLimitOptions } from '../auth.js';

/** What every route module gets: the stores, and the hook to call after a write to a tenant's config. */
export interface RouteContext {
  readonly tenants: TenantStore;
  readonly callUrls: CallUrlStore;
  readonly numbers: NumberStore;
  /** A tenant's SIP devices, and where they are registered. */
  readonly devices: DeviceStore;
  readonly bindings: DeviceBindingStore;
  readonly limiter: CallLimiter;
  readonly apiKeys: ApiKeyStore;
  readonly records: CallRecordStore;
  readonly rateLimit: RateLimitOptions;
  /** Places outbound calls (the SIP door's `dial`); absent when this process has no SIP door. */
  readonly dialer: OutboundDialer | undefined;
  /** Tell every gateway's TenantCache to drop the tenant (`'*'`: all of them). */
  readonly changed: (tenantId: string) => Promise<void>;
  /**
   * Speaks greeting previews. flite blocks its thread for 15–90 ms a sentence, so this is a worker pool:
   * on the main thread a preview would stall every live call's 20 ms media clock.
   */
  readonly previewSpeech: PreviewSpeech;
  /** PUBLIC_BASE_URL: where call URLs point. Unset: the scheme and host each request came to. */
  readonly publicBaseUrl: string | undefined;
}

/** What the greeting preview needs from a FliteWorkerPool (a bench swaps in the old main-thread path). */
export type PreviewSpeech = Pick<FliteWorkerPool, 'run'>;

/**
 * What `POST /v1/calls` needs from the SIP door. Declared here, implemented by SipGateway, so the
 * HTTP layer does not import the SIP one.
 */
export interface OutboundDialer {
  dial(req: { tenantId: string; variables?: Record<string, string> } & ({ to: string; trunk: string } | { device: string })): Promise<{ callId: string }>;
}

/** The direct WebRTC door as the HTTP layer sees it (implemented by src/webrtc/WebRtcDoor). */
export interface WebRtcAnswerer {
  answer(offer: { token: string; sdp: string; origin?: string; clientIp?: string }): Promise<{ callId: string; sdp: string }>;
}

/** The JSON body as an object, or 400: stores destructure bodies and must not see `null` or an array. */
export function objectBody(request: FastifyRequest): Record<string, unknown> {
  const body = request.body ?? {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new CallgateError('CG_HTTP_BAD_REQUEST', 'body must be a JSON object');
  return body as Record<string, unknown>;
}

/** A body field that names the tenant must match the path: a key for one tenant cannot write to another through it. */
export function withTenant(body: Record<string, unknown>, tenantId: string): Record<string, unknown> {
  if (body['tenantId'] !== undefined && body['tenantId'] !== tenantId) {
    throw new CallgateError('CG_HTTP_BAD_REQUEST', 'tenantId in the body differs from the path', { details: { path: tenantId } });
  }
  return { ...body, tenantId };
}

export function param(request: FastifyRequest, name: string): string {
  return (request.params as Record<string, string>)[name] ?? '';
}

/** The header the web phone sets when it runs in a frame: the origin of the page that frames it. */
export const EMBEDDER_HEADER = 'x-callgate-embedder';

/**
 * The origin a call-URL request is checked against. Usually the request's `Origin`. The web phone in
 * a call button's frame runs on this gateway's origin, so its requests carry ours; it reports the site
 * around it (`location.ancestorOrigins`, which the browser fills and the page cannot change) in
 * EMBEDDER_HEADER, and that is the origin checked. Only our own origin's claim counts: only our page
 * runs there, and a browser never lets another site set our Origin. A client outside a browser can
 * forge either header, as it always could forge Origin; the slug and the per-IP limits guard against it.
 */
export function pageOrigin(request: FastifyRequest, publicBaseUrl?: string): string | undefined {
  const origin = request.headers.origin;
  const embedder = request.headers[EMBEDDER_HEADER];
  if (origin && typeof embedder === 'string' && embedder !== '' && isOwnOrigin(origin, request.host, publicBaseUrl)) return embedder;
  return origin;
}

/**
 * This gateway's origin: the Host the request came to, or PUBLIC_BASE_URL's origin (behind a proxy
 * that rewrites Host, the page's Origin is the public one and the Host an internal one).
 */
function isOwnOrigin(origin: string, host: string, publicBaseUrl: string | undefined): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  return url.host === host || (publicBaseUrl !== undefined && normalizeOrigin(publicBaseUrl) === url.origin);
}
