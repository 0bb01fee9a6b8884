import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { CallgateError } from '../errors.js';
import { stripUndefined } from '../util/options.js';
import { defaultRedisOptions, keys, type Keys, type Redis } from './redisClient.js';
import { line } from './schema.js';
import { LuaScript, parseOrThrow, scriptError } from './storeUtil.js';

/**
 * Per-tenant API keys. A key reads `cgk_<keyId>_<secret>`; Redis holds only its SHA-256, at
 * `apikey:<sha256hex>` → `{tenantId, keyId, name, createdAt}`, plus a hash per tenant
 * (`tenant:<id>:apikeys`, keyId → sha256hex) to list and revoke keys by id. The full key is shown once,
 * when it is made.
 *
 * SHA-256 rather than a slow password hash: the secret is 256 random bits, not a human password, so
 * there is nothing to brute-force, and a lookup by hash costs one Redis GET per request. Looking a key
 * up by its hash also leaks nothing through timing: the attacker does not control the hash's bytes.
 */
export interface ApiKeyStoreOptions {
  readonly prefix: string;
}

export const defaultApiKeyStoreOptions = {
  prefix: defaultRedisOptions.prefix,
} as const satisfies ApiKeyStoreOptions;

export const API_KEY_PREFIX = 'cgk_';
/** 6 bytes = 12 hex digits: unique enough per deployment to name a key in logs and lists; not secret. */
const KEY_ID_BYTES = 6;
/** 32 bytes = 256 bits of secret, 43 base64url characters. */
const SECRET_BYTES = 32;
const KEY_PATTERN = /^cgk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export const apiKeyInputSchema = z.strictObject({
  /** What the key is for ("billing export"), shown in lists. */
  name: line(1, 100).optional(),
});
export type ApiKeyInput = z.input<typeof apiKeyInputSchema>;

export interface ApiKeyInfo {
  readonly keyId: string;
  readonly tenantId: string;
  readonly name?: string;
  readonly createdAt: string;
}

export interface CreatedApiKey extends ApiKeyInfo {
  /** The full key: returned by `create()` only, never stored or shown again. */
  readonly key: string;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** KEYS: tenant, apikey, tenantApiKeys. ARGV: json, keyId, hash. */
const createScript = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('CG_TENANT_NOT_FOUND') end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
return 1
`);

/** KEYS: tenantApiKeys. ARGV: keyId, apikey template ('{}' for the hash). */
const deleteScript = new LuaScript(`
local hash = redis.call('HGET', KEYS[1], ARGV[1])
if not hash then return 0 end
local at = string.find(ARGV[2], '{}', 1, true)
redis.call('DEL', string.sub(ARGV[2], 1, at - 1) .. hash .. string.sub(ARGV[2], at + 2))
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
`);

/** KEYS: tenantApiKeys. ARGV: apikey template. Returns how many keys were revoked. */
const deleteAllScript = new LuaScript(`
local at = string.find(ARGV[1], '{}', 1, true)
local hashes = redis.call('HVALS', KEYS[1])
for _, hash in ipairs(hashes) do
  redis.call('DEL', string.sub(ARGV[1], 1, at - 1) .. hash .. string.sub(ARGV[1], at + 2))
end
redis.call('DEL', KEYS[1])
return #hashes
`);

export class ApiKeyStore {
  readonly #redis: Redis;
  readonly #keys: Keys;

  constructor(redis: Redis, options: Partial<ApiKeyStoreOptions> = {}) {
    this.#redis = redis;
    this.#keys = keys({ ...defaultApiKeyStoreOptions, ...stripUndefined(options) }.prefix);
  }

  /** Makes a key for an existing tenant (CG_TENANT_NOT_FOUND otherwise). The result is the only copy of the key. */
  async create(tenantId: string, input: ApiKeyInput = {}): Promise<CreatedApiKey> {
    const { name } = parseOrThrow(apiKeyInputSchema, input, 'API key');
    const keyId = randomBytes(KEY_ID_BYTES).toString('hex');
    const key = `${API_KEY_PREFIX}${keyId}_${randomBytes(SECRET_BYTES).toString('base64url')}`;
    const hash = hashApiKey(key);
    const info: ApiKeyInfo = { keyId, tenantId, ...(name === undefined ? {} : { name }), createdAt: new Date().toISOString() };
    try {
      await createScript.run(this.#redis, [this.#keys.tenant(tenantId), this.#keys.apiKey(hash), this.#keys.tenantApiKeys(tenantId)], [JSON.stringify(info), keyId, hash]);
    } catch (err) {
      throw scriptError(err, () => tenantId);
    }
    return { ...info, key };
  }

  /** The key's owner, or undefined for anything that is not a live key (malformed, unknown or revoked). */
  async verify(key: string): Promise<ApiKeyInfo | undefined> {
    const m = KEY_PATTERN.exec(key);
    if (!m) return undefined;
    const raw = await this.#redis.get(this.#keys.apiKey(hashApiKey(key)));
    if (raw === null) return undefined;
    const info = JSON.parse(raw) as ApiKeyInfo;
    // The id in the key must be the stored one: a record can only be reached by its own key anyway,
    // so this guards against a corrupted store rather than an attacker.
    return info.keyId === m[1] ? info : undefined;
  }

  /** The tenant's keys, oldest first, without secrets. */
  async list(tenantId: string): Promise<ApiKeyInfo[]> {
    const byId = await this.#redis.hGetAll(this.#keys.tenantApiKeys(tenantId));
    const hashes = Object.values(byId);
    if (hashes.length === 0) return [];
    const raws = await this.#redis.mGet(hashes.map((h) => this.#keys.apiKey(h)));
    return raws
      .flatMap((r) => (r === null ? [] : [JSON.parse(r) as ApiKeyInfo]))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.keyId.localeCompare(b.keyId));
  }

  /** Revokes one key at once (the next request with it gets 401). CG_API_KEY_NOT_FOUND when the tenant has no such key. */
  async delete(tenantId: string, keyId: string): Promise<void> {
    const removed = await deleteScript.run(this.#redis, [this.#keys.tenantApiKeys(tenantId)], [keyId, this.#keys.apiKey('{}')]);
    if (removed !== 1) throw new CallgateError('CG_API_KEY_NOT_FOUND', keyId, { details: { keyId } });
  }

  /** Revokes every key of the tenant (when the tenant is deleted). Returns how many there were. */
  async deleteAll(tenantId: string): Promise<number> {
    return (await deleteAllScript.run(this.#redis, [this.#keys.tenantApiKeys(tenantId)], [this.#keys.apiKey('{}')])) as number;
  }
}
