import { randomBytes } from 'node:crypto';
import { CallgateError } from '../errors.js';
import { stripUndefined } from '../util/options.js';
import { defaultRedisOptions, keys, type Keys, type Redis } from './redisClient.js';
import { callUrlSchema, type CallUrl, type CallUrlInput } from './schema.js';
import { compact, invalid, LuaScript, mergePatch, parseOrThrow, scriptError } from './storeUtil.js';

/**
 * Call URLs (`/c/<slug>`): a link that starts a browser call to a tenant's agent, with greeting
 * variables, an expiry, a use limit and allowed page origins. The JSON lives at `callurl:<slug>`.
 *
 * Each URL gets a random, immutable `id` when it is made. A slug is only a name: deleted and made again
 * (by the same tenant or another) it names a new URL with a new id. What belongs to one URL is bound to
 * its id, not its slug: the use count (`callurl-id:<id>:uses`, apart from the JSON so an edit never
 * resets it) and the call tokens issued for it (CallTokenStore), which the new URL refuses.
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

const SLUG_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** 22 characters of 62: 131 bits, as unguessable as 16 bytes. */
const SLUG_CHARS = 22;

/**
 * A random slug of letters and digits only. base64url would be shorter to make, but its `-` and `_`
 * can start or end a slug, where a mail client or chat app cuts the link or a reader misses them.
 * Bytes of 248 and above are skipped so every character is equally likely (248 = 4 × 62).
 */
export function randomSlug(): string {
  let slug = '';
  while (slug.length < SLUG_CHARS) {
    for (const byte of randomBytes(SLUG_CHARS)) {
      if (byte < 248 && slug.length < SLUG_CHARS) slug += SLUG_ALPHABET[byte % 62];
    }
  }
  return slug;
}

/** A URL's id: 16 random bytes (22 base64url characters), so two URLs never share one however often a slug is re-made. */
const ID_BYTES = 16;

/**
 * What Redis holds: the validated call URL, its id, and the expiry in ms for the Lua check. `id` is
 * absent only on URLs made before URLs had ids; those keep counting uses by slug.
 */
type StoredCallUrl = CallUrl & { readonly id?: string; readonly expiresAtMs?: number; readonly createdAt: string };

export interface CallUrlView extends CallUrl {
  /** Immutable, random: tells this URL from one made later under the same slug. */
  readonly id?: string;
  readonly url: string;
  readonly uses: number;
  readonly createdAt: string;
}

export type CallUrlPatch = { [K in Exclude<keyof CallUrlInput, 'slug' | 'tenantId'>]?: CallUrlInput[K] | null } & {
  slug?: string;
  tenantId?: string;
  id?: string;
};

export interface CallUrlUse {
  readonly slug: string;
  readonly tenantId: string;
  readonly variables: Record<string, string>;
  /** Uses including this one. */
  readonly uses: number;
  /** The URL's id (absent for a URL made before ids). */
  readonly urlId?: string;
}

export interface UseOptions {
  /**
   * Refuse with CG_CALL_TOKEN_INVALID unless the slug still names the URL with this id ('' for a URL made
   * before ids): a token issued for a URL since deleted cannot start calls through its successor.
   */
  readonly urlId?: string;
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
 * The key of a URL's use count, built in Lua from `before{}after` templates (keys() stays the one
 * place key names are made): by its id, or by slug for a URL made before ids.
 */
const usesKeyLua = `
local function fill(template, value)
  local at = string.find(template, '{}', 1, true)
  return string.sub(template, 1, at - 1) .. value .. string.sub(template, at + 2)
end
local function usesKey(u, slug, byId, bySlug)
  if type(u.id) == 'string' then return fill(byId, u.id) end
  return fill(bySlug, slug)
end
`;

/**
 * The refusals shared by `check()` and `use()`, so the two can never disagree. Leaves `raw` (the JSON),
 * `countKey` and `uses` (so far) set. KEYS: callUrl. ARGV: now (ms), origin ('' when the request had
 * none), uses-by-id template, uses-by-slug template, slug, '1' to require the id in ARGV[7].
 */
const refusals = `${usesKeyLua}
local raw = redis.call('GET', KEYS[1])
if not raw then return redis.error_reply('CG_CALL_URL_NOT_FOUND') end
local u = cjson.decode(raw)
if ARGV[6] == '1' then
  local id = ''
  if type(u.id) == 'string' then id = u.id end
  if id ~= ARGV[7] then return redis.error_reply('CG_CALL_TOKEN_INVALID') end
end
if u.enabled == false then return redis.error_reply('CG_CALL_URL_DISABLED') end
if type(u.expiresAtMs) == 'number' and tonumber(ARGV[1]) >= u.expiresAtMs then return redis.error_reply('CG_CALL_URL_EXPIRED') end
if type(u.allowedOrigins) == 'table' and #u.allowedOrigins > 0 then
  local allowed = false
  for _, o in ipairs(u.allowedOrigins) do if o == ARGV[2] then allowed = true end end
  if not allowed then return redis.error_reply('CG_CALL_URL_ORIGIN') end
end
local countKey = usesKey(u, ARGV[5], ARGV[3], ARGV[4])
local uses = tonumber(redis.call('GET', countKey) or '0')
if type(u.maxUses) == 'number' and uses >= u.maxUses then return redis.error_reply('CG_CALL_URL_EXHAUSTED') end
`;

/** The check and the count in one script, so no interleaving of concurrent calls can pass `maxUses`. */
const useScript = new LuaScript(`${refusals}
uses = redis.call('INCR', countKey)
return {raw, uses}
`);

/** The same refusals without the count: a page may load many times and never call. */
const checkScript = new LuaScript(`${refusals}
return {raw, uses}
`);

/**
 * Replaces the JSON only while the slug still names the same URL (its id, '' for none): an edit read
 * before a delete and re-make must not overwrite the new URL. KEYS: callUrl. ARGV: json, id.
 */
const updateScript = new LuaScript(`
local raw = redis.call('GET', KEYS[1])
if not raw then return redis.error_reply('CG_CALL_URL_NOT_FOUND') end
local u = cjson.decode(raw)
local id = ''
if type(u.id) == 'string' then id = u.id end
if id ~= ARGV[2] then return redis.error_reply('CG_CALL_URL_NOT_FOUND') end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`);

/** KEYS: callUrl, tenantCallUrls. ARGV: slug, uses-by-id template, uses-by-slug template. */
const deleteScript = new LuaScript(`${usesKeyLua}
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
redis.call('DEL', KEYS[1], usesKey(cjson.decode(raw), ARGV[1], ARGV[2], ARGV[3]))
redis.call('SREM', KEYS[2], ARGV[1])
return 1
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

  /** Creates a call URL with a new id; without a slug, a random 22-character token is made. The tenant must exist. */
  async create(input: CallUrlInput): Promise<CallUrlView> {
    const parsed = parseOrThrow(callUrlSchema, input, 'call URL');
    const slug = parsed.slug ?? randomSlug();
    const stored = toStored({ ...parsed, slug }, randomBytes(ID_BYTES).toString('base64url'), new Date().toISOString());
    const k = this.#keys;
    try {
      await createScript.run(this.#redis, [k.tenant(stored.tenantId), k.callUrl(slug), k.tenantCallUrls(stored.tenantId)], [JSON.stringify(stored), slug]);
    } catch (err) {
      throw scriptError(err, (code) => (code === 'CG_TENANT_NOT_FOUND' ? stored.tenantId : slug));
    }
    return this.#view(stored, 0);
  }

  async get(slug: string): Promise<CallUrlView> {
    const raw = await this.#redis.get(this.#keys.callUrl(slug));
    if (raw === null) throw notFound(slug);
    const stored = JSON.parse(raw) as StoredCallUrl;
    // Read after the JSON: a count read first could belong to a URL deleted in between.
    return this.#view(stored, Number((await this.#redis.get(this.#usesKey(stored))) ?? 0));
  }

  async listByTenant(tenantId: string): Promise<CallUrlView[]> {
    const slugs = (await this.#redis.sMembers(this.#keys.tenantCallUrls(tenantId))).sort();
    if (slugs.length === 0) return [];
    const stored = (await this.#redis.mGet(slugs.map((s) => this.#keys.callUrl(s)))).flatMap((raw) => (raw === null ? [] : [JSON.parse(raw) as StoredCallUrl]));
    if (stored.length === 0) return [];
    const uses = await this.#redis.mGet(stored.map((u) => this.#usesKey(u)));
    return stored.map((u, i) => this.#view(u, Number(uses[i] ?? 0)));
  }

  /** Merge-patches and re-validates. Slug, tenant and id cannot change (make a new URL instead); uses are kept. */
  async update(slug: string, patch: CallUrlPatch): Promise<CallUrlView> {
    if (patch.slug !== undefined && patch.slug !== slug) throw invalid('call URL', 'slug', 'cannot be changed');
    const current = await this.get(slug);
    if (patch.tenantId !== undefined && patch.tenantId !== current.tenantId) throw invalid('call URL', 'tenantId', 'cannot be changed');
    if (patch.id !== undefined && patch.id !== current.id) throw invalid('call URL', 'id', 'cannot be changed');
    const { url: _url, uses, createdAt, id, ...fields } = current;
    const { id: _id, ...fieldPatch } = patch;
    const merged = mergePatch(fields, fieldPatch);
    const parsed = parseOrThrow(callUrlSchema, merged, 'call URL');
    const stored = toStored({ ...parsed, slug }, id, createdAt);
    try {
      await updateScript.run(this.#redis, [this.#keys.callUrl(slug)], [JSON.stringify(stored), id ?? '']);
    } catch (err) {
      throw scriptError(err, () => slug);
    }
    return this.#view(stored, uses);
  }

  async delete(slug: string): Promise<void> {
    const raw = await this.#redis.get(this.#keys.callUrl(slug));
    if (raw === null) throw notFound(slug);
    const { tenantId } = JSON.parse(raw) as StoredCallUrl;
    const k = this.#keys;
    const removed = await deleteScript.run(this.#redis, [k.callUrl(slug), k.tenantCallUrls(tenantId)], [slug, k.callUrlUses('{}'), k.legacyCallUrlUses('{}')]);
    if (removed !== 1) throw notFound(slug);
  }

  /**
   * Starts a call through the URL: refuses a disabled, expired or used-up URL or a page origin not
   * allowed, otherwise counts the use. Throws CG_CALL_URL_{NOT_FOUND,DISABLED,EXPIRED,ORIGIN,EXHAUSTED},
   * and CG_CALL_TOKEN_INVALID when `options.urlId` names another URL than the slug's.
   */
  async use(slug: string, origin?: string, now: number = Date.now(), options: UseOptions = {}): Promise<CallUrlUse> {
    return this.#run(useScript, slug, origin, now, options);
  }

  /**
   * What `use()` would refuse, without counting a use: for a page that may start a call later (call
   * tokens). Throws the same codes as `use()`.
   */
  async check(slug: string, origin?: string, now: number = Date.now(), options: UseOptions = {}): Promise<CallUrlCheck> {
    return this.#run(checkScript, slug, origin, now, options);
  }

  async #run(script: LuaScript, slug: string, origin: string | undefined, now: number, options: UseOptions): Promise<CallUrlUse> {
    const k = this.#keys;
    let reply: unknown;
    try {
      reply = await script.run(
        this.#redis,
        [k.callUrl(slug)],
        [
          String(now),
          origin === undefined ? '' : (normalizeOrigin(origin) ?? ''),
          k.callUrlUses('{}'),
          k.legacyCallUrlUses('{}'),
          slug,
          options.urlId === undefined ? '0' : '1',
          options.urlId ?? '',
        ],
      );
    } catch (err) {
      // No detail for a token refusal: which URL it was for is not the presenter's business.
      throw scriptError(err, (code) => (code === 'CG_CALL_TOKEN_INVALID' ? undefined : slug));
    }
    const [raw, uses] = reply as [string, number];
    const stored = JSON.parse(raw) as StoredCallUrl;
    const use = { slug, tenantId: stored.tenantId, variables: stored.variables, uses };
    return stored.id === undefined ? use : { ...use, urlId: stored.id };
  }

  #usesKey(stored: StoredCallUrl): string {
    return stored.id === undefined ? this.#keys.legacyCallUrlUses(stored.slug) : this.#keys.callUrlUses(stored.id);
  }

  #view(stored: StoredCallUrl, uses: number): CallUrlView {
    const { expiresAtMs: _ms, ...rest } = stored;
    return { ...rest, url: `${this.#options.publicBaseUrl.replace(/\/+$/, '')}/c/${stored.slug}`, uses };
  }
}

function toStored(callUrl: CallUrl, id: string | undefined, createdAt: string): StoredCallUrl {
  const allowedOrigins = callUrl.allowedOrigins.map((o) => normalizeOrigin(o) ?? o);
  const expiresAtMs = callUrl.expiresAt === undefined ? undefined : Date.parse(callUrl.expiresAt);
  return compact({ ...callUrl, id, allowedOrigins, expiresAtMs, createdAt });
}

function notFound(slug: string): CallgateError {
  return new CallgateError('CG_CALL_URL_NOT_FOUND', slug, { details: { slug } });
}
