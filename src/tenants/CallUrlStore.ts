import { randomBytes } from 'node:crypto';
import { CallgateError } from '../errors.js';
import { stripUndefined } from '../util/options.js';
import { defaultRedisOptions, keys, type Keys, type Redis } from './redisClient.js';
import { callUrlSchema, type CallUrl, type CallUrlInput } from './schema.js';
import { compact, invalid, LuaScript, mergePatch, parseOrThrow, scriptError } from './storeUtil.js';

/**
 * Call URLs (`/c/<slug>`): a link that starts a browser call to a tenant's agent, with greeting
 * variables, an expiry, a use limit and allowed page origins. The JSON lives at `callurl:<slug>`, the
 * use count apart at `callurl:<slug>:uses` so an edit never resets it.
 */
export interface CallUrlStoreOptions {
  readonly prefix: string;
  /** Public base of the web door, e.g. `https://calls.example.com`; responses carry `${publicBaseUrl}/c/<slug>`. */
  readonly publicBaseUrl: string;
}

export const defaultCallUrlStoreOptions = {
  prefix: defaultRedisOptions.prefix,
  /** Empty: URLs are relative (`/c/<slug>`) until a deployment says where it is reachable. */
  publicBaseUrl: '',
} as const satisfies CallUrlStoreOptions;

/** 16 random bytes = 128 bits, 22 base64url characters: not guessable, short enough to paste. */
const TOKEN_BYTES = 16;

/** What Redis holds: the validated call URL plus the expiry in ms for the Lua check. */
type StoredCallUrl = CallUrl & { readonly expiresAtMs?: number; readonly createdAt: string };

export interface CallUrlView extends CallUrl {
  readonly url: string;
  readonly uses: number;
  readonly createdAt: string;
}

export type CallUrlPatch = { [K in Exclude<keyof CallUrlInput, 'slug' | 'tenantId'>]?: CallUrlInput[K] | null } & {
  slug?: string;
  tenantId?: string;
};

export interface CallUrlUse {
  readonly slug: string;
  readonly tenantId: string;
  readonly variables: Record<string, string>;
  /** Uses including this one. */
  readonly uses: number;
}

/** What `check()` finds: the URL could start a call now. */
export interface CallUrlCheck extends Omit<CallUrlUse, 'uses'> {
  /** Uses so far; the check counted none. */
  readonly uses: number;
}

/** KEYS: tenant, callUrl, tenantCallUrls. ARGV: json, slug. */
const createScript = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('CG_TENANT_NOT_FOUND') end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX') then return redis.error_reply('CG_CALL_URL_EXISTS') end
redis.call('SADD', KEYS[3], ARGV[2])
return 1
`);

/**
 * The refusals shared by `check()` and `use()`, so the two can never disagree. Leaves `raw` (the JSON)
 * and `uses` (so far) set. KEYS: callUrl, uses. ARGV: now (ms), origin ('' when the request had none).
 */
const refusals = `
local raw = redis.call('GET', KEYS[1])
if not raw then return redis.error_reply('CG_CALL_URL_NOT_FOUND') end
local u = cjson.decode(raw)
if u.enabled == false then return redis.error_reply('CG_CALL_URL_DISABLED') end
if type(u.expiresAtMs) == 'number' and tonumber(ARGV[1]) >= u.expiresAtMs then return redis.error_reply('CG_CALL_URL_EXPIRED') end
if type(u.allowedOrigins) == 'table' and #u.allowedOrigins > 0 then
  local allowed = false
  for _, o in ipairs(u.allowedOrigins) do if o == ARGV[2] then allowed = true end end
  if not allowed then return redis.error_reply('CG_CALL_URL_ORIGIN') end
end
local uses = tonumber(redis.call('GET', KEYS[2]) or '0')
if type(u.maxUses) == 'number' and uses >= u.maxUses then return redis.error_reply('CG_CALL_URL_EXHAUSTED') end
`;

/** The check and the count in one script, so no interleaving of concurrent calls can pass `maxUses`. */
const useScript = new LuaScript(`${refusals}
uses = redis.call('INCR', KEYS[2])
return {raw, uses}
`);

/** The same refusals without the count: a page may load many times and never call. */
const checkScript = new LuaScript(`${refusals}
return {raw, uses}
`);

/** KEYS: callUrl, uses, tenantCallUrls. ARGV: slug. */
const deleteScript = new LuaScript(`
local removed = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return removed
`);

/**
 * `https://a.example/` and `https://A.example` are one origin; browsers send the short form. Undefined
 * for what is not an origin (`null` from sandboxed frames, garbage), which then counts as no origin.
 */
export function normalizeOrigin(value: string): string | undefined {
  try {
    const origin = new URL(value).origin;
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}

export class CallUrlStore {
  readonly #redis: Redis;
  readonly #keys: Keys;
  readonly #options: CallUrlStoreOptions;

  constructor(redis: Redis, options: Partial<CallUrlStoreOptions> = {}) {
    this.#redis = redis;
    this.#options = { ...defaultCallUrlStoreOptions, ...stripUndefined(options) };
    this.#keys = keys(this.#options.prefix);
  }

  /** Creates a call URL; without a slug, a random 22-character token is made. The tenant must exist. */
  async create(input: CallUrlInput): Promise<CallUrlView> {
    const parsed = parseOrThrow(callUrlSchema, input, 'call URL');
    const slug = parsed.slug ?? randomBytes(TOKEN_BYTES).toString('base64url');
    const stored = toStored({ ...parsed, slug }, new Date().toISOString());
    const k = this.#keys;
    try {
      await createScript.run(this.#redis, [k.tenant(stored.tenantId), k.callUrl(slug), k.tenantCallUrls(stored.tenantId)], [JSON.stringify(stored), slug]);
    } catch (err) {
      throw scriptError(err, (code) => (code === 'CG_TENANT_NOT_FOUND' ? stored.tenantId : slug));
    }
    return this.#view(stored, 0);
  }

  async get(slug: string): Promise<CallUrlView> {
    const [raw, uses] = await Promise.all([this.#redis.get(this.#keys.callUrl(slug)), this.#redis.get(this.#keys.callUrlUses(slug))]);
    if (raw === null) throw notFound(slug);
    return this.#view(JSON.parse(raw) as StoredCallUrl, Number(uses ?? 0));
  }

  async listByTenant(tenantId: string): Promise<CallUrlView[]> {
    const slugs = (await this.#redis.sMembers(this.#keys.tenantCallUrls(tenantId))).sort();
    if (slugs.length === 0) return [];
    const [raws, uses] = await Promise.all([
      this.#redis.mGet(slugs.map((s) => this.#keys.callUrl(s))),
      this.#redis.mGet(slugs.map((s) => this.#keys.callUrlUses(s))),
    ]);
    return raws.flatMap((raw, i) => (raw === null ? [] : [this.#view(JSON.parse(raw) as StoredCallUrl, Number(uses[i] ?? 0))]));
  }

  /** Merge-patches and re-validates. Slug and tenant cannot change (make a new URL instead); uses are kept. */
  async update(slug: string, patch: CallUrlPatch): Promise<CallUrlView> {
    if (patch.slug !== undefined && patch.slug !== slug) throw invalid('call URL', 'slug', 'cannot be changed');
    const current = await this.get(slug);
    if (patch.tenantId !== undefined && patch.tenantId !== current.tenantId) throw invalid('call URL', 'tenantId', 'cannot be changed');
    const { url: _url, uses, createdAt, ...fields } = current;
    const merged = mergePatch(fields, patch);
    const parsed = parseOrThrow(callUrlSchema, merged, 'call URL');
    const stored = toStored({ ...parsed, slug }, createdAt);
    const set = await this.#redis.set(this.#keys.callUrl(slug), JSON.stringify(stored), { condition: 'XX' });
    if (set === null) throw notFound(slug);
    return this.#view(stored, uses);
  }

  async delete(slug: string): Promise<void> {
    const raw = await this.#redis.get(this.#keys.callUrl(slug));
    if (raw === null) throw notFound(slug);
    const { tenantId } = JSON.parse(raw) as StoredCallUrl;
    const k = this.#keys;
    const removed = await deleteScript.run(this.#redis, [k.callUrl(slug), k.callUrlUses(slug), k.tenantCallUrls(tenantId)], [slug]);
    if (removed !== 1) throw notFound(slug);
  }

  /**
   * Starts a call through the URL: refuses a disabled, expired or used-up URL or a page origin not
   * allowed, otherwise counts the use. Throws CG_CALL_URL_{NOT_FOUND,DISABLED,EXPIRED,ORIGIN,EXHAUSTED}.
   */
  async use(slug: string, origin?: string, now: number = Date.now()): Promise<CallUrlUse> {
    return this.#run(useScript, slug, origin, now);
  }

  /**
   * What `use()` would refuse, without counting a use: for a page that may start a call later (call
   * tokens). Throws the same codes as `use()`.
   */
  async check(slug: string, origin?: string, now: number = Date.now()): Promise<CallUrlCheck> {
    return this.#run(checkScript, slug, origin, now);
  }

  async #run(script: LuaScript, slug: string, origin: string | undefined, now: number): Promise<CallUrlUse> {
    const k = this.#keys;
    let reply: unknown;
    try {
      reply = await script.run(this.#redis, [k.callUrl(slug), k.callUrlUses(slug)], [String(now), origin === undefined ? '' : (normalizeOrigin(origin) ?? '')]);
    } catch (err) {
      throw scriptError(err, () => slug);
    }
    const [raw, uses] = reply as [string, number];
    const stored = JSON.parse(raw) as StoredCallUrl;
    return { slug, tenantId: stored.tenantId, variables: stored.variables, uses };
  }

  #view(stored: StoredCallUrl, uses: number): CallUrlView {
    const { expiresAtMs: _ms, ...rest } = stored;
    return { ...rest, url: `${this.#options.publicBaseUrl.replace(/\/+$/, '')}/c/${stored.slug}`, uses };
  }
}

function toStored(callUrl: CallUrl, createdAt: string): StoredCallUrl {
  const allowedOrigins = callUrl.allowedOrigins.map((o) => normalizeOrigin(o) ?? o);
  const expiresAtMs = callUrl.expiresAt === undefined ? undefined : Date.parse(callUrl.expiresAt);
  return compact({ ...callUrl, allowedOrigins, expiresAtMs, createdAt });
}

function notFound(slug: string): CallgateError {
  return new CallgateError('CG_CALL_URL_NOT_FOUND', slug, { details: { slug } });
}
