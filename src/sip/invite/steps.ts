import { CallgateError } from '../../errors.js';
import type { CallLease, CallLimiter } from '../../tenants/CallLimiter.js';
import type { NumberRoute } from '../../tenants/schema.js';
import type { NumberStore, PublicTrunk } from '../../tenants/NumberStore.js';
import type { TenantCache } from '../../tenants/TenantCache.js';
import type { Tenant } from '../../tenants/schema.js';
import { SipError } from '../SipError.js';
import { uriOf, userOf, type InviteRequest } from './InviteRequest.js';

/**
 * The INVITE chain, one small step per concern (drachtio-srf's middleware style). Each step either
 * returns what the next needs or throws (a SipError, or a CallgateError that `sipErrorFrom` maps).
 */

/**
 * Known SIP scanners (sipvicious "friendly-scanner", sipcli, …). They get no answer at all: any
 * response tells them something is listening and invites the brute force that follows.
 */
const SCANNER_USER_AGENTS = /friendly-scanner|sipvicious|sipcli|sip-scan|sundayddr|iWar|VaxSIPUserAgent|smap|pplsip/i;

export function rejectScanners(req: InviteRequest): void {
  const ua = req.header('user-agent') ?? '';
  if (SCANNER_USER_AGENTS.test(ua)) throw new SipError(403, 'Forbidden', {}, true);
}

export type CallSource = { readonly kind: 'trunk'; readonly trunk: PublicTrunk };

/** Who is calling: a trunk, recognised by its source address. Unknown sources are refused. */
export async function identifySource(req: InviteRequest, numbers: NumberStore): Promise<CallSource> {
  const trunk = await numbers.trunkForSource(req.sourceAddress);
  if (trunk) return { kind: 'trunk', trunk };
  // Web-phone calls over WSS (call tokens) and registered devices (digest) come with their issues.
  throw new SipError(403, 'Forbidden');
}

/** The dialled number → its route: the Request-URI first, then the To header (some carriers rewrite one). */
export async function routeToNumber(req: InviteRequest, source: CallSource, numbers: NumberStore): Promise<NumberRoute> {
  let route: NumberRoute | undefined;
  for (const candidate of [req.uri, uriOf(req.to)]) {
    const user = userOf(candidate);
    for (const key of [candidate, user, user && /^\d{7,15}$/.test(user) ? `+${user}` : undefined]) {
      if (!key) continue;
      route = await numbers.resolve(key).catch((err: unknown) => {
        if (err instanceof CallgateError && err.code === 'CG_NUMBER_NOT_FOUND') return undefined;
        throw err;
      });
      if (route) break;
    }
    if (route) break;
  }
  if (!route) throw new CallgateError('CG_NUMBER_NOT_FOUND', userOf(req.uri) ?? req.uri);
  // A number pinned to a trunk answers only calls from that trunk.
  if (route.trunk && route.trunk !== source.trunk.name) throw new SipError(403, 'Forbidden');
  return route;
}

/** The tenant, from this process's cache (served through a Redis outage when cached). */
export function tenantFor(route: NumberRoute, tenants: TenantCache): Promise<Tenant> {
  return tenants.get(route.tenantId);
}

/** A slot under the tenant's cluster-wide call limit, held (and renewed) for the whole call. */
export function reserveLine(req: InviteRequest, tenant: Tenant, limiter: CallLimiter): Promise<CallLease> {
  return limiter.lease(tenant.id, req.callId, { limit: tenant.maxConcurrentCalls });
}
