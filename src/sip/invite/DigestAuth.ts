import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { stripUndefined } from '../../util/options.js';
import { SipError } from '../SipError.js';

/**
 * SIP digest authentication (RFC 3261 §22 with RFC 2617's MD5 and qop=auth) for devices and trunks
 * that have credentials.
 *
 * Written here rather than taken from drachtio-mw-digest-auth: that middleware accepts any nonce
 * (a captured Authorization header can be replayed forever) and answers by itself, outside the INVITE
 * chain's one place for SIP responses. Nonces here are stateless, `time.hmac(time)` under a key the
 * gateways share, so any gateway behind the same drachtio can check a challenge another one issued,
 * and an old nonce is refused as stale (the client retries with a fresh challenge).
 */
export interface DigestAuthOptions {
  /** The realm in challenges; devices are configured with it. */
  readonly realm: string;
  /** How long a nonce is accepted after it was issued. */
  readonly nonceTtlMs: number;
  /** Key that signs nonces; gateways sharing one drachtio must share it. */
  readonly secret: Buffer;
}

export const defaultDigestAuthOptions = {
  realm: 'callgate',
  /** 5 minutes: long enough for a slow device to answer, short enough that a replay soon stops working. */
  nonceTtlMs: 5 * 60_000,
} as const satisfies Partial<DigestAuthOptions>;

/** What a client sent in its Authorization header. */
export interface DigestCredentials {
  readonly username: string;
  readonly realm: string;
  readonly nonce: string;
  readonly uri: string;
  readonly response: string;
  readonly algorithm?: string;
  readonly qop?: string;
  readonly nc?: string;
  readonly cnonce?: string;
}

/** `Digest a="b", c=d` → {a: 'b', c: 'd'}; undefined when it is not a digest header with the fields we need. */
export function parseDigestAuthorization(header: string | undefined): DigestCredentials | undefined {
  if (!header || !/^\s*digest\s+/i.test(header)) return undefined;
  const fields: Record<string, string> = {};
  const re = /([a-z][a-z0-9-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/gi;
  for (const m of header.replace(/^\s*digest\s+/i, '').matchAll(re)) fields[m[1]!.toLowerCase()] = m[2] ?? m[3] ?? '';
  const { username, realm, nonce, uri, response } = fields;
  if (!username || realm === undefined || !nonce || !uri || !response) return undefined;
  return stripUndefined({ username, realm, nonce, uri, response, algorithm: fields.algorithm, qop: fields.qop, nc: fields.nc, cnonce: fields.cnonce }) as DigestCredentials;
}

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

/** The response a client with this password would send (RFC 2617 §3.2.2.1, MD5, qop auth or none). */
export function digestResponse(method: string, creds: Omit<DigestCredentials, 'response'>, password: string): string {
  const ha1 = md5(`${creds.username}:${creds.realm}:${password}`);
  const ha2 = md5(`${method}:${creds.uri}`);
  return creds.qop ? md5(`${ha1}:${creds.nonce}:${creds.nc ?? ''}:${creds.cnonce ?? ''}:${creds.qop}:${ha2}`) : md5(`${ha1}:${creds.nonce}:${ha2}`);
}

export class DigestAuth {
  readonly options: DigestAuthOptions;

  constructor(options: Partial<DigestAuthOptions> = {}) {
    this.options = { ...defaultDigestAuthOptions, secret: randomBytes(32), ...stripUndefined(options) };
  }

  /** The 401 that asks the client to authenticate (`stale`: its nonce was good but old). */
  challenge(now: number = Date.now(), stale = false): SipError {
    const value = `Digest realm="${this.options.realm}", nonce="${this.nonce(now)}", algorithm=MD5, qop="auth"${stale ? ', stale=true' : ''}`;
    return new SipError(401, 'Unauthorized', { 'WWW-Authenticate': value });
  }

  /**
   * Checks credentials against a password. Returns normally when they prove it; throws a fresh
   * challenge for a stale or foreign nonce, and 403 for a wrong answer. (The INVITE step uses the two
   * halves, `checkNonce` and `proves`, so that failures can be counted between them.)
   */
  verify(method: string, creds: DigestCredentials, password: string, now: number = Date.now()): void {
    this.checkNonce(creds, now);
    if (!this.proves(method, creds, password)) throw new SipError(403, 'Forbidden');
  }

  /**
   * Throws a fresh challenge for an answer to a nonce we did not issue, an old one (`stale=true`, so
   * the client retries without asking its user), or another algorithm than MD5. None of these says
   * anything about the password, so none counts as a failed attempt.
   */
  checkNonce(creds: DigestCredentials, now: number = Date.now()): void {
    if (creds.algorithm && creds.algorithm.toUpperCase() !== 'MD5') throw this.challenge(now);
    const age = this.nonceAge(creds.nonce, now);
    if (age === undefined) throw this.challenge(now);
    if (age > this.options.nonceTtlMs) throw this.challenge(now, true);
  }

  /** Whether the answer proves `password` (our realm, the right hash; compared in constant time). */
  proves(method: string, creds: DigestCredentials, password: string): boolean {
    const a = Buffer.from(digestResponse(method, creds, password));
    const b = Buffer.from(creds.response.toLowerCase());
    const same = a.length === b.length && timingSafeEqual(a, b);
    return same && creds.realm === this.options.realm;
  }

  private nonce(now: number): string {
    const time = now.toString(36);
    return `${time}.${this.sign(time)}`;
  }

  /** Milliseconds since the nonce was issued, or undefined if we did not issue it. */
  private nonceAge(nonce: string, now: number): number | undefined {
    const [time, mac] = nonce.split('.');
    if (!time || !mac) return undefined;
    const expected = Buffer.from(this.sign(time));
    const given = Buffer.from(mac);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
    const issued = parseInt(time, 36);
    return Number.isFinite(issued) && issued <= now ? now - issued : undefined;
  }

  private sign(time: string): string {
    return createHmac('sha256', this.options.secret).update(time).digest('base64url').slice(0, 22);
  }
}

/**
 * Whether a digest answer's `uri` names the request it came with (RFC 3261 §22.4, RFC 2617 §3.2.2.5):
 * an answer computed for another Request-URI must not open this one. SIP URIs are compared as
 * RFC 3261 §19.1.4 says, in its essentials: scheme and host without regard to case, the user part
 * exactly (after %-decoding), a port only equal to the same port, parameters present in both equal
 * (case-insensitively), and `user`, `ttl`, `method`, `maddr`, `transport` present in one only → no
 * match. Anything that does not parse as a SIP or tel URI matches only itself exactly.
 */
export function sameRequestUri(digestUri: string, requestUri: string): boolean {
  const a = digestUri.trim();
  const b = requestUri.trim();
  if (a === b) return true;
  const x = parseSipUri(a);
  const y = parseSipUri(b);
  if (!x || !y) return false;
  if (x.scheme !== y.scheme || x.user !== y.user || x.hostport !== y.hostport || x.headers !== y.headers) return false;
  for (const name of new Set([...x.params.keys(), ...y.params.keys()])) {
    const p = x.params.get(name);
    const q = y.params.get(name);
    if (p !== undefined && q !== undefined ? p !== q : STRICT_URI_PARAMS.has(name)) return false;
  }
  return true;
}

/** Parameters that must be in both URIs or neither (RFC 3261 §19.1.4). */
const STRICT_URI_PARAMS = new Set(['user', 'ttl', 'method', 'maddr', 'transport']);

interface SipUriParts {
  readonly scheme: string;
  readonly user: string | undefined;
  readonly hostport: string;
  readonly params: ReadonlyMap<string, string>;
  readonly headers: string;
}

function parseSipUri(uri: string): SipUriParts | undefined {
  const m = /^(sips?|tel):(?:([^@;?]*(?:;[^@?]*)?)@)?([^;?]+)((?:;[^?]*)?)((?:\?.*)?)$/i.exec(uri);
  if (!m) return undefined;
  let user: string | undefined;
  try {
    user = m[2] === undefined ? undefined : decodeURIComponent(m[2]);
  } catch {
    return undefined;
  }
  const params = new Map<string, string>();
  for (const p of m[4]!.split(';').slice(1)) {
    const [name, value = ''] = p.split('=', 2);
    params.set(name!.trim().toLowerCase(), value.trim().toLowerCase());
  }
  return { scheme: m[1]!.toLowerCase(), user, hostport: m[3]!.toLowerCase(), params, headers: m[5]! };
}
