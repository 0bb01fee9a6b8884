import { createHash, randomBytes } from 'node:crypto';
import { CallgateError } from '../errors.js';
import { stripUndefined } from '../util/options.js';
import { CallUrlStore, normalizeOrigin, type CallUrlUse } from './CallUrlStore.js';
import { defaultRedisOptions, keys, type Keys, type Redis } from './redisClient.js';
import { compact } from './storeUtil.js';

/**
 * Short-lived, single-use tokens that let a page opened from a call URL (`/c/<slug>`) start one call.
 * The page gets a token when it loads (`issue`); the door that starts the call presents it (`redeem`:
 * the `X-Call-Token` header of a SIP INVITE over WSS, or the body of the direct WebRTC offer).
 *
 * Issuing checks the URL (enabled, expiry, origin, uses left) without counting a use, so page loads
 * that never call burn nothing; redeeming consumes the token and counts the use through
 * `CallUrlStore.use()`, so `maxUses` holds at call time however many tokens were handed out.
 *
 * Redis holds `calltoken:<sha256(token)>` → `{slug, urlId, tenantId, origin?, expiresAtMs}` with a PX
 * expiry: a dump of Redis holds no token that could start a call. A token is bound to the URL's id, not
 * its slug: once the URL is deleted, a URL made again under the slug (by any tenant) refuses it.
 */
export interface CallTokenStoreOptions {
  readonly prefix: string;
  /** How long an issued token can start a call. */
  readonly ttlMs: number;
}

export const defaultCallTokenStoreOptions = {
  prefix: defaultRedisOptions.prefix,
  /** 2 minutes: a page is loaded and its Call button pressed well within that; a leaked token dies soon. */
  ttlMs: 120_000,
} as const satisfies CallTokenStoreOptions;

/** 16 bytes = 128 bits, 22 base64url characters: not guessable within a token's lifetime. */
const TOKEN_BYTES = 16;
/** Longer input is no token of ours: refused before hashing or asking Redis (it may come from a SIP header). */
const MAX_TOKEN_CHARS = 64;

export interface IssueOptions {
  /** The page's `Origin` header; checked against the URL's allowed origins and bound to the token. */
  readonly origin?: string | undefined;
  readonly now?: number;
}

export interface IssuedCallToken {
  readonly token: string;
  /** ISO 8601. */
  readonly expiresAt: string;
  readonly tenantId: string;
  readonly slug: string;
}

export interface RedeemOptions {
  /** The call URL the door is starting a call for, when it knows one: a token for another URL is refused. */
  readonly slug?: string | undefined;
  /** The origin the door saw the call come from, when it knows one: a token issued to another origin is refused. */
  readonly origin?: string | undefined;
  readonly now?: number;
}

export type RedeemedCallToken = CallUrlUse & {
  /** The page origin the token was issued to (normalised), absent when the page sent none. */
  readonly origin?: string;
};

interface StoredCallToken {
  readonly slug: string;
  /** The id of the URL the token was issued for; absent for a URL made before ids (and tokens issued before them). */
  readonly urlId?: string;
  readonly tenantId: string;
  readonly origin?: string;
  readonly expiresAtMs: number;
}

export function hashCallToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export class CallTokenStore {
  readonly #redis: Redis;
  readonly #keys: Keys;
  readonly #options: CallTokenStoreOptions;
  readonly #urls: CallUrlStore;

  constructor(redis: Redis, options: Partial<CallTokenStoreOptions> = {}) {
    this.#redis = redis;
    this.#options = { ...defaultCallTokenStoreOptions, ...stripUndefined(options) };
    this.#keys = keys(this.#options.prefix);
    this.#urls = new CallUrlStore(redis, { prefix: this.#options.prefix });
  }

  /**
   * A token for one call through `slug`, if the URL could start a call now. Throws
   * CG_CALL_URL_{NOT_FOUND,DISABLED,EXPIRED,ORIGIN,EXHAUSTED}; counts no use.
   */
  async issue(slug: string, options: IssueOptions = {}): Promise<IssuedCallToken> {
    const now = options.now ?? Date.now();
    const origin = options.origin === undefined ? undefined : normalizeOrigin(options.origin);
    const { tenantId, urlId } = await this.#urls.check(slug, origin, now);
    const token = randomBytes(TOKEN_BYTES).toString('base64url');
    const expiresAtMs = now + this.#options.ttlMs;
    const stored: StoredCallToken = compact({ slug, urlId, tenantId, origin, expiresAtMs });
    await this.#redis.set(this.#keys.callToken(hashCallToken(token)), JSON.stringify(stored), {
      expiration: { type: 'PX', value: this.#options.ttlMs },
    });
    return { token, expiresAt: new Date(expiresAtMs).toISOString(), tenantId, slug };
  }

  /**
   * Consumes the token and counts a use of its call URL. Throws CG_CALL_TOKEN_INVALID for a token that
   * is unknown, expired, already used, for another URL or origin than the door says, or for a URL since
   * deleted (even if its slug names a new URL now); then the
   * URL's own refusals (CG_CALL_URL_*) as `use()` gives them. A token refused by its URL is still
   * consumed: it was presented once, and single use means once.
   */
  async redeem(token: string, options: RedeemOptions = {}): Promise<RedeemedCallToken> {
    const now = options.now ?? Date.now();
    if (token.length === 0 || token.length > MAX_TOKEN_CHARS) throw invalidToken();
    // GETDEL: of concurrent redeems of one token, exactly one gets the value.
    const raw = await this.#redis.getDel(this.#keys.callToken(hashCallToken(token)));
    if (raw === null) throw invalidToken();
    const stored = JSON.parse(raw) as StoredCallToken;
    // Redis expires the key on its own clock; this check lets `now` decide too (and tests pass it).
    if (now >= stored.expiresAtMs) throw invalidToken();
    // From here the token was real: a refusal is a call attempt of the tenant's, which gets a record.
    const attempt = { tenantId: stored.tenantId, slug: stored.slug };
    if (options.slug !== undefined && options.slug !== stored.slug) throw refusedFor(invalidToken(), attempt);
    if (options.origin !== undefined && normalizeOrigin(options.origin) !== stored.origin) throw refusedFor(invalidToken(), attempt);
    let use: Awaited<ReturnType<CallUrlStore['use']>>;
    try {
      use = await this.#urls.use(stored.slug, stored.origin, now, { urlId: stored.urlId ?? '' });
    } catch (err) {
      throw err instanceof CallgateError ? refusedFor(err, attempt) : err;
    }
    return stored.origin === undefined ? use : { ...use, origin: stored.origin };
  }
}

const refusedAttempt = Symbol('callgate.refusedCallAttempt');

/** Which tenant's call URL a redeem refusal was for; kept off the error's enumerable fields (never sent to the client). */
function refusedFor(err: CallgateError, attempt: { tenantId: string; slug: string }): CallgateError {
  Object.defineProperty(err, refusedAttempt, { value: attempt, enumerable: false });
  return err;
}

/**
 * For an error from `redeem()` of a real token (its URL used up, disabled or expired, the wrong
 * origin): the tenant and call URL it was for, so the door can record the refused call. Undefined for
 * an unknown or expired token, which names no one.
 */
export function refusedCallAttempt(err: unknown): { readonly tenantId: string; readonly slug: string } | undefined {
  return err instanceof CallgateError ? (err as unknown as Record<symbol, { tenantId: string; slug: string } | undefined>)[refusedAttempt] : undefined;
}

/** No detail: which of unknown, expired or used would tell a guesser something. */
function invalidToken(): CallgateError {
  return new CallgateError('CG_CALL_TOKEN_INVALID');
}
