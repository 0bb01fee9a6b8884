import { resolveAgentConfig, type AgentConfig, type AgentConfigInput } from '../agent/AgentConfig.js';
import { CallgateError } from '../errors.js';
import { stripUndefined } from '../util/options.js';
import { defaultRedisOptions, keys, type Keys, type Redis } from './redisClient.js';
import { tenantSchema, type Tenant, type TenantInput } from './schema.js';
import { maskSecret, SecretBox, type MaskedSecret } from './secrets.js';
import { maskSecrets, openSecrets, restoreMasked, sealSecrets } from './tenantSecrets.js';
import { checkDestination, DestinationRefused, privateDestinationsAllowed } from '../util/destination.js';
import { compact, invalid, LuaScript, mergePatch, parseOrThrow } from './storeUtil.js';

/**
 * Tenants as JSON in Redis (`tenant:<id>`, plus the `tenants` index set). Provider keys are encrypted
 * before they reach Redis; `get()` shows only that a key is set, `getWithSecrets()` is for the code that
 * calls the vendor.
 */
export interface TenantStoreOptions {
  /** Key prefix (see redisClient.ts). */
  readonly prefix: string;
  /** Page size of `list()` when the caller gives none. */
  readonly pageSize: number;
  /** Tool, MCP and call webhook URLs may point at private addresses (CALLGATE_WEBHOOK_ALLOW_PRIVATE). */
  readonly allowPrivateDestinations: boolean;
}

export const defaultTenantStoreOptions = {
  prefix: defaultRedisOptions.prefix,
  /** 50: one screen of an admin list; `list({ limit: Infinity })` gives all. */
  pageSize: 50,
  /** Off: a tenant must not aim the gateway at its own network (SSRF); the environment decides. */
  allowPrivateDestinations: privateDestinationsAllowed(),
} as const satisfies TenantStoreOptions;

/** A stored provider key: the ciphertext and, for the admin UI, its last four characters. */
interface StoredSecret {
  readonly enc: string;
  readonly last4: string;
}

type StoredTenant = Omit<Tenant, 'providerKeys'> & { providerKeys?: Record<string, StoredSecret> };

/** What the API returns: everything but the provider keys, which are masked. */
export type PublicTenant = Omit<Tenant, 'providerKeys'> & { providerKeys?: Record<string, MaskedSecret> };

/**
 * A partial update (JSON Merge Patch: `null` removes a field). In `providerKeys`, a string sets that
 * vendor's key and `null` removes it; vendors not named keep theirs.
 */
export type TenantPatch = { [K in Exclude<keyof TenantInput, 'providerKeys'>]?: TenantInput[K] | null } & {
  providerKeys?: Record<string, string | null> | null;
};

export interface ListOptions {
  readonly offset?: number;
  readonly limit?: number;
}

export interface Page<T> {
  readonly items: T[];
  readonly total: number;
}

/**
 * Deletes a tenant with its call URLs and numbers in one step, so nothing that routes to it is left.
 * Key names come from keys() as `before{}after` templates (ARGV), so the layout stays in one place.
 * KEYS: tenant, tenantIndex, tenantCallUrls, tenantNumbers. ARGV: id, callUrl template, uses-by-slug
 * template (URLs made before ids), number template, uses-by-id template.
 */
const deleteScript = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local function key(template, value)
  local at = string.find(template, '{}', 1, true)
  return string.sub(template, 1, at - 1) .. value .. string.sub(template, at + 2)
end
for _, slug in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local urlKey = key(ARGV[2], slug)
  local raw = redis.call('GET', urlKey)
  if raw then
    local u = cjson.decode(raw)
    if type(u.id) == 'string' then redis.call('DEL', key(ARGV[5], u.id)) end
  end
  redis.call('DEL', urlKey, key(ARGV[3], slug))
end
for _, number in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  redis.call('DEL', key(ARGV[4], number))
end
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
`);

export class TenantStore {
  readonly #redis: Redis;
  readonly #secrets: SecretBox;
  readonly #keys: Keys;
  readonly #options: TenantStoreOptions;

  constructor(redis: Redis, secrets: SecretBox = new SecretBox(), options: Partial<TenantStoreOptions> = {}) {
    this.#redis = redis;
    this.#secrets = secrets;
    this.#options = { ...defaultTenantStoreOptions, ...stripUndefined(options) };
    this.#keys = keys(this.#options.prefix);
  }

  async create(input: TenantInput): Promise<PublicTenant> {
    const tenant = parseOrThrow(tenantSchema, input, 'tenant');
    await this.#checkDestinations(tenant);
    const stored = this.#seal(tenant, undefined, tenant.providerKeys ?? {});
    const [set] = await this.#redis
      .multi()
      .set(this.#keys.tenant(tenant.id), JSON.stringify(stored), { condition: 'NX' })
      .sAdd(this.#keys.tenantIndex(), tenant.id)
      .exec();
    if (set === null) throw new CallgateError('CG_TENANT_EXISTS', tenant.id, { details: { id: tenant.id } });
    return toPublic(stored);
  }

  async get(id: string): Promise<PublicTenant> {
    return toPublic(await this.#load(id));
  }

  async exists(id: string): Promise<boolean> {
    return (await this.#redis.exists(this.#keys.tenant(id))) === 1;
  }

  /** The tenant with provider keys decrypted: for the gateway's provider calls only, never for the API. */
  async getWithSecrets(id: string): Promise<Tenant> {
    const stored = await this.#load(id);
    const { providerKeys, ...sealed } = stored;
    const rest = openSecrets<Omit<Tenant, 'providerKeys'>>(sealed, this.#secrets);
    if (!providerKeys) return rest as Tenant;
    const plain = Object.fromEntries(Object.entries(providerKeys).map(([name, s]) => [name, this.#secrets.decrypt(s.enc)]));
    return { ...rest, providerKeys: plain } as Tenant;
  }

  /**
   * Applies `patch` and validates the whole result, so a change cannot leave a tenant that would have
   * been refused at create. Last writer wins between two concurrent updates of one tenant.
   */
  async update(id: string, patch: TenantPatch): Promise<PublicTenant> {
    if (patch.id !== undefined && patch.id !== id) throw invalid('tenant', 'id', 'cannot be changed');
    const stored = await this.#load(id);
    const { providerKeys: storedKeys, ...fields } = stored;
    const { providerKeys: keyPatch, ...fieldPatch } = patch;
    // A map of vendor → key (or null), or null for none: a bare string would be read as one "key" per character.
    if (keyPatch !== undefined && keyPatch !== null && (typeof keyPatch !== 'object' || Array.isArray(keyPatch))) {
      throw invalid('tenant', 'providerKeys', 'must be an object of provider name → key (or null to remove one)');
    }
    for (const [name, value] of Object.entries(keyPatch ?? {})) {
      if (value !== null && typeof value !== 'string') throw invalid('tenant', `providerKeys.${name}`, 'must be a string, or null to remove it');
    }
    const newKeys: Record<string, string> = {};
    for (const [name, value] of Object.entries(keyPatch ?? {})) if (typeof value === 'string') newKeys[name] = value;
    // Secrets the API showed masked and the client sent back unchanged keep their stored values.
    const candidate = restoreMasked<Record<string, unknown>>(mergePatch(openSecrets<object>(fields, this.#secrets), fieldPatch) as object, openSecrets<object>(fields, this.#secrets));
    const tenant = parseOrThrow(tenantSchema, { ...candidate, id, providerKeys: newKeys }, 'tenant');
    await this.#checkDestinations(tenant);

    const kept: Record<string, StoredSecret> = keyPatch === null ? {} : { ...storedKeys };
    for (const [name, value] of Object.entries(keyPatch ?? {})) if (value === null) delete kept[name];
    const next = this.#seal(tenant, kept, newKeys);
    // XX: a tenant deleted meanwhile stays deleted rather than coming back without its call URLs.
    const set = await this.#redis.set(this.#keys.tenant(id), JSON.stringify(next), { condition: 'XX' });
    if (set === null) throw notFound(id);
    return toPublic(next);
  }

  /** Deletes the tenant, its call URLs and its numbers. */
  async delete(id: string): Promise<void> {
    const k = this.#keys;
    const deleted = await deleteScript.run(
      this.#redis,
      [k.tenant(id), k.tenantIndex(), k.tenantCallUrls(id), k.tenantNumbers(id)],
      [id, k.callUrl('{}'), k.legacyCallUrlUses('{}'), k.number('{}'), k.callUrlUses('{}')],
    );
    if (deleted !== 1) throw notFound(id);
  }

  /** Tenants sorted by id, `limit` at a time (Infinity for all). */
  async list(options: ListOptions = {}): Promise<Page<PublicTenant>> {
    const offset = Math.max(0, Math.floor(options.offset ?? 0));
    const limit = options.limit ?? this.#options.pageSize;
    const index = this.#keys.tenantIndex();
    const [total, ids] = await Promise.all([
      this.#redis.sCard(index),
      this.#redis.sort(index, { ALPHA: true, ...(Number.isFinite(limit) ? { LIMIT: { offset, count: Math.max(0, Math.floor(limit)) } } : {}) }),
    ]);
    const wanted = Number.isFinite(limit) ? ids : ids.slice(offset);
    if (wanted.length === 0) return { items: [], total };
    const raw = await this.#redis.mGet(wanted.map((id) => this.#keys.tenant(id)));
    // A tenant deleted between SORT and MGET is skipped rather than failing the page.
    const items = raw.filter((r): r is string => r !== null).map((r) => toPublic(JSON.parse(r) as StoredTenant));
    return { items, total };
  }

  async #load(id: string): Promise<StoredTenant> {
    const raw = await this.#redis.get(this.#keys.tenant(id));
    if (raw === null) throw notFound(id);
    return JSON.parse(raw) as StoredTenant;
  }

  /** Every URL the gateway would call for this tenant must be public (unless allowed): 400 naming the field. */
  async #checkDestinations(tenant: Tenant): Promise<void> {
    if (this.#options.allowPrivateDestinations) return;
    const urls: [string, string][] = [
      ...(tenant.tools ?? []).map((t, i): [string, string] => [`tools.${i}.webhook.url`, t.webhook.url]),
      ...(tenant.mcpServers ?? []).map((m, i): [string, string] => [`mcpServers.${i}.url`, m.url]),
      ...(['callStart', 'callEnd'] as const).flatMap((k): [string, string][] => (tenant.webhooks?.[k] ? [[`webhooks.${k}.url`, tenant.webhooks[k].url]] : [])),
    ];
    await Promise.all(
      urls.map(([path, url]) =>
        checkDestination(url, false).catch((err: unknown) => {
          throw err instanceof DestinationRefused ? invalid('tenant', path, err.reason) : err;
        }),
      ),
    );
  }

  #seal(tenant: Tenant, kept: Record<string, StoredSecret> | undefined, plain: Record<string, string>): StoredTenant {
    const { providerKeys: _plain, ...open } = tenant;
    const rest = sealSecrets<typeof open>(open, this.#secrets);
    const sealed: Record<string, StoredSecret> = { ...kept };
    for (const [name, value] of Object.entries(plain)) sealed[name] = { enc: this.#secrets.encrypt(value), last4: maskSecret(value).last4 };
    const stored: StoredTenant = Object.keys(sealed).length > 0 ? { ...rest, providerKeys: sealed } : rest;
    return compact(stored);
  }
}

function notFound(id: string): CallgateError {
  return new CallgateError('CG_TENANT_NOT_FOUND', id, { details: { id } });
}

function toPublic(stored: StoredTenant): PublicTenant {
  const { providerKeys, ...sealed } = stored;
  const rest = maskSecrets<typeof sealed>(sealed);
  if (!providerKeys) return rest;
  return { ...rest, providerKeys: Object.fromEntries(Object.entries(providerKeys).map(([name, s]) => [name, { set: true, last4: s.last4 }])) };
}

/**
 * What the agent gets for a call to this tenant: its resolved config, and the greeting's variables. The
 * tenant's own names (`agentName`, `business`) win over a call URL's variables of the same name, so a
 * link cannot make the agent introduce itself as another business.
 */
export function agentConfigFor(
  tenant: Tenant | PublicTenant,
  variables: Readonly<Record<string, string>> = {},
): { config: AgentConfig; variables: Record<string, string> } {
  const input: AgentConfigInput = {
    tenantId: tenant.id,
    greeting: tenant.greeting,
    systemPrompt: tenant.systemPrompt,
    language: tenant.language,
    voice: tenant.voice,
    intents: tenant.intents,
    fallbackReply: tenant.fallbackReply,
    reprompt: tenant.reprompt,
    didNotCatch: tenant.didNotCatch,
    apology: tenant.apology,
    unavailableMessage: tenant.unavailableMessage,
    shutdownMessage: tenant.shutdownMessage,
    maxCallDurationMs: tenant.maxCallDurationMs,
    providers: tenant.providers,
    turn: tenant.turn,
    goodbye: tenant.goodbye,
  };
  return {
    config: resolveAgentConfig(input),
    variables: { ...variables, agentName: tenant.agentName, business: tenant.displayName },
  };
}
