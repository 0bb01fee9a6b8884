import { CallgateError } from '../../errors.js';
import type { NumberRoute } from '../../tenants/schema.js';
import type { Device, DeviceWithSecret } from '../../tenants/DeviceStore.js';
import type { NumberStore, PublicTrunk } from '../../tenants/NumberStore.js';
import type { Trunk } from '../../tenants/schema.js';
import { maskSecret } from '../../tenants/secrets.js';
import { parseDigestAuthorization, sameRequestUri, type DigestAuth, type DigestCredentials } from './DigestAuth.js';
import type { AuthFailureOutcome, AuthLockState, AuthSubject } from '../../tenants/SipAuthFailureStore.js';
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

/** Who is calling, once proven. */
export type CallSource =
  /** A carrier or PBX, by its source address (`auth: 'ip'`) or its digest credentials too (`'digest'`). */
  | { readonly kind: 'trunk'; readonly trunk: PublicTrunk; readonly auth: 'ip' | 'digest' }
  /** A web phone over SIP-over-WS(S), with a call token from a call URL's page. */
  | { readonly kind: 'web'; readonly callUrl: RedeemedCallUrl }
  /** A tenant's own device (desk phone, softphone), by its digest credentials, from any address. */
  | { readonly kind: 'device'; readonly device: Device };

/** What a redeemed call token says about its call URL. */
export interface RedeemedCallUrl {
  readonly slug: string;
  readonly tenantId: string;
  readonly variables: Readonly<Record<string, string>>;
}

/** The call-token store as the SIP door uses it (src/tenants/CallTokenStore.ts). */
export interface CallTokenRedeemer {
  redeem(token: string): Promise<RedeemedCallUrl>;
}

/** Failed digest attempts, counted cluster-wide (src/tenants/SipAuthFailureStore.ts). */
export interface AuthFailureCounter {
  check(subject: AuthSubject): Promise<AuthLockState>;
  fail(subject: AuthSubject): Promise<AuthFailureOutcome>;
  succeeded(subject: AuthSubject): Promise<void>;
}

/** A lockout a failed attempt just started (for the log line and the metric). */
export interface AuthLockout {
  readonly scope: 'user' | 'source';
  readonly username: string;
  readonly source: string;
  readonly lockoutMs: number;
}

/** A tenant's devices as the SIP door reads them (src/tenants/DeviceStore.ts). */
export interface DeviceDirectory {
  /** The device a digest username (or a From user) names, with its password; undefined when none. */
  forAuth(username: string): Promise<DeviceWithSecret | undefined>;
  /** Whether there is any device at all. */
  any(): Promise<boolean>;
}

/** What checking a digest answer needs: the nonces, and the cluster-wide failure counts. */
export interface DigestDeps {
  readonly digest: DigestAuth;
  /** Counts failed digest attempts and locks out a guessed username or a guessing source. */
  readonly authFailures: AuthFailureCounter;
  /** Told of each lockout as it starts. */
  readonly onLockout?: (lockout: AuthLockout) => void;
}

export interface SourceDeps {
  readonly numbers: NumberStore;
  /** A tenant's devices: absent, only trunks (and web phones) may call. */
  readonly devices?: DeviceDirectory;
  /**
   * Told when a source no trunk covers is challenged (there are devices, so any address may be one):
   * such challenges count towards ignoring the source, as its 403s did before devices.
   */
  readonly onStrangerChallenge?: (source: string) => void;
  readonly digest: DigestAuth;
  /** Counts failed digest attempts and locks out a guessed username or a guessing source. */
  readonly authFailures: AuthFailureCounter;
  /** Told of each lockout as it starts. */
  readonly onLockout?: (lockout: AuthLockout) => void;
  /** Absent: web-phone calls over SIP are refused. */
  readonly tokens?: CallTokenRedeemer;
}

/** The header a web phone's INVITE carries its call token in. */
export const CALL_TOKEN_HEADER = 'X-Call-Token';

/**
 * Who is calling:
 * - a web phone (WS/WSS transport) must carry a call token; the token, not the address, identifies it;
 * - a device: the digest username, or before the challenge the From user, names one of the tenants'
 *   devices. It is challenged wherever it calls from, even from an address a trunk without credentials
 *   covers (issue 25: such a trunk silently turned digest off for devices on its address);
 * - otherwise the trunks whose CIDRs hold the source address: one without credentials is enough
 *   (carriers authenticate by IP); when all of them have credentials (a PBX, a trunk that must also
 *   authenticate, a device modelled as a trunk), the INVITE is challenged (401) and the answer checked;
 * - an address no trunk covers is refused (403), unless the gateway has devices: then it is challenged,
 *   whatever the From says, so that a 401 tells no one which usernames exist.
 */
export async function identifySource(req: InviteRequest, deps: SourceDeps, now: number = Date.now()): Promise<CallSource> {
  if (req.transport === 'ws' || req.transport === 'wss') {
    const token = req.header(CALL_TOKEN_HEADER);
    if (!token || !deps.tokens) throw new SipError(403, 'Forbidden', {}, false, 'CG_CALL_TOKEN_INVALID');
    return { kind: 'web', callUrl: await deps.tokens.redeem(token) };
  }
  const creds = parseDigestAuthorization(req.header('authorization'));
  const claimed = creds?.username ?? userOf(req.from);
  const [trunks, device] = await Promise.all([deps.numbers.trunksForSourceWithSecrets(req.sourceAddress), claimed && deps.devices ? deps.devices.forAuth(claimed) : undefined]);
  const open = trunks.find((t) => !t.auth);
  if (open && !device) return { kind: 'trunk', trunk: publicTrunk(open), auth: 'ip' };
  const stranger = trunks.length === 0;
  if (stranger && !device && !(await deps.devices?.any())) throw new SipError(403, 'Forbidden');
  if (!creds) {
    if (stranger) deps.onStrangerChallenge?.(req.sourceAddress);
    throw deps.digest.challenge(now);
  }
  // A device's username is checked against the device; any other against the trunks covering the address.
  const trunk = device ? undefined : trunks.find((t) => t.auth?.username === creds.username);
  const password = device?.password ?? trunk?.auth?.password;
  await checkDigestAnswer({ method: 'INVITE', requestUri: req.uri, creds, source: req.sourceAddress }, password, deps, now);
  if (device) {
    const { password: _secret, ...shown } = device;
    return { kind: 'device', device: shown };
  }
  return { kind: 'trunk', trunk: publicTrunk(trunk!), auth: 'digest' };
}

/** One digest answer: the request it came with and where from. */
export interface DigestAttempt {
  readonly method: string;
  readonly requestUri: string;
  readonly creds: DigestCredentials;
  readonly source: string;
}

/**
 * Checks a digest answer against `password` (undefined: no such username, or one this request may not
 * use), counting failures towards the lockouts. Returns when it proves the password; throws a fresh
 * challenge for a stale or foreign nonce (not counted: it says nothing about the password) and the
 * same 403 for every refusal — a wrong password, an unknown user, an answer for another URI, a
 * locked-out username or source (right password or not) — after the same Redis round trips.
 */
export async function checkDigestAnswer(attempt: DigestAttempt, password: string | undefined, deps: DigestDeps, now: number = Date.now()): Promise<void> {
  const { creds } = attempt;
  deps.digest.checkNonce(creds, now);
  const subject = { username: creds.username, source: attempt.source };
  const locked = await deps.authFailures.check(subject);
  // The answer must be for this request (RFC 3261 §22.4): one computed for another URI is a wrong answer.
  // An unknown username is hashed against a dummy password so that it takes as long as a known one.
  const proven = deps.digest.proves(attempt.method, creds, password ?? UNKNOWN_USER_PASSWORD) && sameRequestUri(creds.uri, attempt.requestUri) && password !== undefined;
  if (!proven || locked.user > 0 || locked.source > 0) {
    const started = await deps.authFailures.fail(subject);
    for (const scope of ['user', 'source'] as const) {
      if (started[scope] > 0) deps.onLockout?.({ scope, username: creds.username, source: attempt.source, lockoutMs: started[scope] });
    }
    throw new SipError(403, 'Forbidden', {}, false, locked.user > 0 || locked.source > 0 ? 'CG_SIP_AUTH_LOCKED' : 'CG_SIP_FORBIDDEN');
  }
  await deps.authFailures.succeeded(subject);
}

/** Stands in for the password of a username no trunk has (never a real one: it is not a valid password). */
const UNKNOWN_USER_PASSWORD = '\u0000no such user';

/** The trunk without its password: nothing after this step needs it. */
function publicTrunk(trunk: Trunk): PublicTrunk {
  const { auth, ...rest } = trunk;
  return auth ? { ...rest, auth: { username: auth.username, password: maskSecret(auth.password) } } : rest;
}

/** The dialled number → its route: the Request-URI first, then the To header (some carriers rewrite one). */
export async function routeToNumber(req: InviteRequest, source: CallSource, numbers: NumberStore): Promise<NumberRoute> {
  // A web phone's token already names the call URL, and with it the tenant: what it dialled is moot.
  if (source.kind === 'web') return { number: `callurl:${source.callUrl.slug}`, tenantId: source.callUrl.tenantId };
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
  // A device calls its own tenant's numbers (whichever carrier they are pinned to); another tenant's
  // number is, to it, a number that does not exist.
  if (source.kind === 'device') {
    if (route.tenantId !== source.device.tenantId) throw new CallgateError('CG_NUMBER_NOT_FOUND', userOf(req.uri) ?? req.uri);
    return route;
  }
  // A number pinned to a trunk answers only calls from that trunk.
  if (route.trunk && route.trunk !== source.trunk.name) throw new SipError(403, 'Forbidden');
  return route;
}

/** The tenant, from this process's cache (served through a Redis outage when cached). */
export function tenantFor(route: NumberRoute, tenants: TenantCache): Promise<Tenant> {
  return tenants.get(route.tenantId);
}
