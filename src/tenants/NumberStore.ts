import { BlockList, isIP } from 'node:net';
import { CallgateError } from '../errors.js';
import { stripUndefined } from '../util/options.js';
import { defaultRedisOptions, keys, type Keys, type Redis } from './redisClient.js';
import { z } from 'zod';
import { numberSchema, trunkAllows, trunkAuthSchema, trunkSchema, type NumberRoute, type Trunk } from './schema.js';
import { maskSecret, SecretBox, type MaskedSecret } from './secrets.js';
import { compact, invalid, LuaScript, mergePatch, parseOrThrow, scriptError } from './storeUtil.js';

/**
 * Numbers (E.164 or SIP URI → tenant, optionally only from one trunk) and trunks (the carriers' source
 * addresses and digest credentials). Trunk passwords are encrypted like provider keys.
 *
 * Trunks are the operator's, shared out by their `tenants` list: a tenant may dial out through a trunk
 * and pin its numbers to it only when the trunk lists it (or `*`). `trunkForTenant` is the check for
 * calls; pinning is checked in the same script that writes the number.
 */
export interface NumberStoreOptions {
  readonly prefix: string;
}

export const defaultNumberStoreOptions = {
  prefix: defaultRedisOptions.prefix,
} as const satisfies NumberStoreOptions;

type StoredTrunk = Omit<Trunk, 'auth'> & { auth?: { username: string; password: { enc: string; last4: string } } };
export type PublicTrunk = Omit<Trunk, 'auth'> & { auth?: { username: string; password: MaskedSecret } };
export type TrunkPatch = {
  sourceCidrs?: string[];
  tenants?: string[] | null;
  auth?: { username?: string; password?: string } | null;
  outbound?: Trunk['outbound'] | null;
  name?: string;
};

/** `auth` in a trunk patch: either field may be left out (the stored one is kept), nothing else may be in it. */
const authPatchSchema = z.strictObject({ auth: trunkAuthSchema.partial() });
export type NumberPatch = { tenantId?: string; trunk?: string | null; number?: string };

/**
 * One form per address, so `resolve()` finds what was saved however the INVITE spelled it: SIP URIs lose
 * their parameters and headers, scheme and host go to lower case (the user part is case-sensitive), and
 * `sips:` routes like `sip:`. E.164 is kept as it is.
 */
export function normalizeNumber(value: string): string {
  const m = /^(sips?):([^@;?\s]+)@([^;?\s]+)/i.exec(value.trim());
  if (!m) return value.trim();
  return `sip:${m[2]!}@${m[3]!.toLowerCase()}`;
}

/**
 * KEYS: tenant, number, tenantNumbers, trunk ('' pattern when none). ARGV: json, number, mode
 * ('create'|'update'), old tenantNumbers key, tenant id. A number may be pinned only to a trunk that
 * lists its tenant (or '*'), checked here so no trunk edit can slip between the check and the write.
 */
const putNumberScript = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('CG_TENANT_NOT_FOUND') end
if KEYS[4] ~= '' then
  local raw = redis.call('GET', KEYS[4])
  if not raw then return redis.error_reply('CG_TRUNK_NOT_FOUND') end
  local trunk = cjson.decode(raw)
  local allowed = false
  if type(trunk.tenants) == 'table' then
    for _, t in ipairs(trunk.tenants) do if t == '*' or t == ARGV[5] then allowed = true end end
  end
  if not allowed then return redis.error_reply('TRUNK_NOT_ALLOWED') end
end
if ARGV[3] == 'create' then
  if not redis.call('SET', KEYS[2], ARGV[1], 'NX') then return redis.error_reply('CG_NUMBER_EXISTS') end
else
  if not redis.call('SET', KEYS[2], ARGV[1], 'XX') then return redis.error_reply('CG_NUMBER_NOT_FOUND') end
  redis.call('SREM', ARGV[4], ARGV[2])
end
redis.call('SADD', KEYS[3], ARGV[2])
return 1
`);

/** KEYS: number, tenantNumbers. ARGV: number. */
const deleteNumberScript = new LuaScript(`
local removed = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return removed
`);

export class NumberStore {
  readonly #redis: Redis;
  readonly #secrets: SecretBox;
  readonly #keys: Keys;

  constructor(redis: Redis, secrets: SecretBox = new SecretBox(), options: Partial<NumberStoreOptions> = {}) {
    this.#redis = redis;
    this.#secrets = secrets;
    this.#keys = keys({ ...defaultNumberStoreOptions, ...stripUndefined(options) }.prefix);
  }

  // ── Numbers ─────────────────────────────────────────────────────────────────────────────────────

  /** Routes a number to a tenant. The tenant (and the trunk, if named) must exist. */
  async createNumber(input: NumberRoute): Promise<NumberRoute> {
    const route = this.#parseNumber(input);
    await this.#putNumber(route, 'create');
    return route;
  }

  async getNumber(number: string): Promise<NumberRoute> {
    const n = normalizeNumber(number);
    const raw = await this.#redis.get(this.#keys.number(n));
    if (raw === null) throw numberNotFound(n);
    return JSON.parse(raw) as NumberRoute;
  }

  async listNumbers(tenantId: string): Promise<NumberRoute[]> {
    const numbers = (await this.#redis.sMembers(this.#keys.tenantNumbers(tenantId))).sort();
    if (numbers.length === 0) return [];
    const raws = await this.#redis.mGet(numbers.map((n) => this.#keys.number(n)));
    return raws.flatMap((r) => (r === null ? [] : [JSON.parse(r) as NumberRoute]));
  }

  /** Moves the number to another tenant or trunk (`trunk: null` unpins it). */
  async updateNumber(number: string, patch: NumberPatch): Promise<NumberRoute> {
    const current = await this.getNumber(number);
    // A non-string `number` is left to the schema below, which names the type it wants.
    if (typeof patch.number === 'string' && normalizeNumber(patch.number) !== current.number) throw invalid('number', 'number', 'cannot be changed');
    const route = this.#parseNumber(mergePatch(current, patch) as NumberRoute);
    await this.#putNumber(route, 'update', current.tenantId);
    return route;
  }

  async deleteNumber(number: string): Promise<void> {
    const current = await this.getNumber(number);
    const removed = await deleteNumberScript.run(this.#redis, [this.#keys.number(current.number), this.#keys.tenantNumbers(current.tenantId)], [current.number]);
    if (removed !== 1) throw numberNotFound(current.number);
  }

  /**
   * The route for a dialled number. A SIP URI whose user part is E.164 (`sip:+14155550100@gw`) falls back
   * to that E.164 number, so carriers that send either form reach the same tenant.
   */
  async resolve(number: string): Promise<NumberRoute> {
    const n = normalizeNumber(number);
    const candidates = [n];
    const user = /^sip:(\+[1-9]\d{6,14})@/.exec(n)?.[1];
    if (user) candidates.push(user);
    const raws = await this.#redis.mGet(candidates.map((c) => this.#keys.number(c)));
    const hit = raws.find((r) => r !== null);
    if (!hit) throw numberNotFound(n);
    return JSON.parse(hit) as NumberRoute;
  }

  // ── Trunks ──────────────────────────────────────────────────────────────────────────────────────

  async createTrunk(input: Trunk): Promise<PublicTrunk> {
    const trunk = parseOrThrow(trunkSchema, input, 'trunk');
    // Numbers left pinned to a deleted trunk of this name must not pass to tenants the new one does not list.
    await this.#refusePinsOutside(trunk);
    const stored = this.#sealTrunk(trunk);
    const [set] = await this.#redis
      .multi()
      .set(this.#keys.trunk(trunk.name), JSON.stringify(stored), { condition: 'NX' })
      .sAdd(this.#keys.trunkIndex(), trunk.name)
      .exec();
    if (set === null) throw new CallgateError('CG_TRUNK_EXISTS', trunk.name, { details: { name: trunk.name } });
    return trunkToPublic(stored);
  }

  async getTrunk(name: string): Promise<PublicTrunk> {
    return trunkToPublic(await this.#loadTrunk(name));
  }

  /** With the digest password decrypted: for the SIP door's authentication only. */
  async getTrunkWithSecrets(name: string): Promise<Trunk> {
    return this.#unsealTrunk(await this.#loadTrunk(name));
  }

  async listTrunks(): Promise<PublicTrunk[]> {
    return (await this.#loadTrunks()).map(trunkToPublic);
  }

  /**
   * The trunk, if `tenantId` may use it (its `tenants` lists the tenant or `*`). A trunk that exists but
   * is not the tenant's is CG_TRUNK_NOT_FOUND with the same message as one that does not exist, so a
   * tenant learns nothing about other customers' carriers.
   */
  async trunkForTenant(name: string, tenantId: string): Promise<PublicTrunk> {
    const raw = await this.#redis.get(this.#keys.trunk(name));
    const stored = raw === null ? undefined : (JSON.parse(raw) as StoredTrunk);
    if (!stored || !trunkAllows(stored, tenantId)) throw trunkNotFound(name);
    return trunkToPublic(stored);
  }

  /**
   * Takes a deleted tenant off every trunk's list, so a tenant made again under its id starts with no
   * carrier (as it starts with no API key). Returns the trunks changed.
   */
  async removeTenantFromTrunks(tenantId: string): Promise<string[]> {
    const changed: string[] = [];
    for (const trunk of await this.#loadTrunks()) {
      if (!trunk.tenants?.includes(tenantId)) continue;
      const next = { ...trunk, tenants: trunk.tenants.filter((t) => t !== tenantId) };
      // XX: a trunk deleted meanwhile stays deleted.
      if ((await this.#redis.set(this.#keys.trunk(trunk.name), JSON.stringify(next), { condition: 'XX' })) !== null) changed.push(trunk.name);
    }
    return changed;
  }

  /** Merge-patches and re-validates. `auth.password` omitted keeps the stored one; `auth: null` removes credentials. */
  async updateTrunk(name: string, patch: TrunkPatch): Promise<PublicTrunk> {
    if (patch.name !== undefined && patch.name !== name) throw invalid('trunk', 'name', 'cannot be changed');
    const stored = await this.#loadTrunk(name);
    const { auth: storedAuth, ...fields } = stored;
    const { auth: authPatch, ...fieldPatch } = patch;
    const merged = mergePatch(fields, fieldPatch) as Record<string, unknown>;
    // Anything but an object or null (a string, an array) would otherwise read as "no password given".
    if (authPatch !== undefined && authPatch !== null && (typeof authPatch !== 'object' || Array.isArray(authPatch))) {
      throw invalid('trunk', 'auth', 'must be an object {username, password}, or null to remove credentials');
    }
    // auth is rebuilt from its two fields below: anything else in it (`realm`) would vanish unsaid.
    if (authPatch) parseOrThrow(authPatchSchema, { auth: authPatch }, 'trunk');
    let keepPassword: StoredTrunk['auth'] | undefined;
    if (authPatch === null) {
      // credentials removed
    } else if (authPatch === undefined) {
      keepPassword = storedAuth;
    } else if (authPatch.password === undefined) {
      if (!storedAuth) throw invalid('trunk', 'auth.password', 'is required when the trunk has no credentials yet');
      keepPassword = { ...storedAuth, username: authPatch.username ?? storedAuth.username };
    } else {
      merged['auth'] = { username: authPatch.username ?? storedAuth?.username, password: authPatch.password };
    }
    const trunk = parseOrThrow(trunkSchema, { ...merged, name }, 'trunk');
    await this.#refusePinsOutside(trunk, stored);
    const next: StoredTrunk = keepPassword && !trunk.auth ? compact({ ...this.#sealTrunk(trunk), auth: keepPassword }) : this.#sealTrunk(trunk);
    const set = await this.#redis.set(this.#keys.trunk(name), JSON.stringify(next), { condition: 'XX' });
    if (set === null) throw trunkNotFound(name);
    return trunkToPublic(next);
  }

  /** Numbers pinned to a deleted trunk stay, and match no caller until they are moved or unpinned. */
  async deleteTrunk(name: string): Promise<void> {
    const [removed] = await this.#redis.multi().del(this.#keys.trunk(name)).sRem(this.#keys.trunkIndex(), name).exec();
    if (Number(removed) !== 1) throw trunkNotFound(name);
  }

  /**
   * The trunk whose source CIDRs contain `ip` (the first by name when several overlap), or undefined.
   * node:net BlockList does the matching (IPv4 and IPv6 subnets, IPv4-mapped IPv6 included) rather than
   * hand-written bit arithmetic. Reads every trunk per call: fine for tens of trunks; cache it when
   * there are hundreds.
   */
  async trunkForSource(ip: string): Promise<PublicTrunk | undefined> {
    const [first] = await this.#trunksForSource(ip, 1);
    return first && trunkToPublic(first);
  }

  /**
   * Every trunk whose CIDRs contain `ip`, by name, with credentials decrypted: the SIP door checks a
   * digest answer against them. Not for the API (passwords in clear).
   */
  async trunksForSourceWithSecrets(ip: string): Promise<Trunk[]> {
    return (await this.#trunksForSource(ip)).map((t) => this.#unsealTrunk(t));
  }

  async #trunksForSource(ip: string, limit = Infinity): Promise<StoredTrunk[]> {
    const found: StoredTrunk[] = [];
    const family = isIP(ip);
    if (family === 0) return found;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    for (const trunk of await this.#loadTrunks()) {
      const list = new BlockList();
      for (const cidr of trunk.sourceCidrs) {
        const [net, bits] = cidr.split('/') as [string, string];
        const netFamily = isIP(net);
        if (netFamily === 0) continue;
        list.addSubnet(net, Number(bits), netFamily === 4 ? 'ipv4' : 'ipv6');
      }
      if (list.check(ip, type)) found.push(trunk);
      if (found.length >= limit) break;
    }
    return found;
  }

  /**
   * CG_TRUNK_IN_USE when numbers pinned to the trunk's name belong to tenants its `tenants` leaves out:
   * a pin is checked when it is made, and a trunk edit must not undo that. Reads every number (admin
   * writes to trunks are rare); a number pinned between this read and the trunk's write is the one gap.
   */
  async #refusePinsOutside(trunk: Trunk, before?: Pick<Trunk, 'tenants'>): Promise<void> {
    if (trunkAllows(trunk, '*')) return;
    // After an edit only tenants the trunk listed before can have pins (a pin needs the listing), unless
    // it listed none: a trunk from before `tenants` existed may carry anyone's pins.
    const listed = before?.tenants ?? [];
    const candidates = listed.length > 0 && !listed.includes('*') ? listed : await this.#redis.sMembers(this.#keys.tenantIndex());
    const outside: string[] = [];
    for (const tenantId of candidates) {
      if (trunkAllows(trunk, tenantId)) continue;
      for (const route of await this.listNumbers(tenantId)) if (route.trunk === trunk.name) outside.push(route.number);
    }
    if (outside.length > 0) {
      throw new CallgateError('CG_TRUNK_IN_USE', `${outside.length} number(s) pinned to ${trunk.name}`, { details: { trunk: trunk.name, numbers: outside.slice(0, 20) } });
    }
  }

  #parseNumber(input: unknown): NumberRoute {
    const route = parseOrThrow(numberSchema, input, 'number');
    return compact({ ...route, number: normalizeNumber(route.number) });
  }

  async #putNumber(route: NumberRoute, mode: 'create' | 'update', oldTenantId?: string): Promise<void> {
    const k = this.#keys;
    try {
      await putNumberScript.run(
        this.#redis,
        [k.tenant(route.tenantId), k.number(route.number), k.tenantNumbers(route.tenantId), route.trunk === undefined ? '' : k.trunk(route.trunk)],
        [JSON.stringify(route), route.number, mode, k.tenantNumbers(oldTenantId ?? route.tenantId), route.tenantId],
      );
    } catch (err) {
      if (err instanceof Error && /^(?:ERR )?TRUNK_NOT_ALLOWED/.test(err.message)) {
        throw invalid('number', 'trunk', `trunk '${route.trunk}' does not list tenant '${route.tenantId}' in its tenants; add it there first`);
      }
      throw scriptError(err, (code) => (code === 'CG_TENANT_NOT_FOUND' ? route.tenantId : code === 'CG_TRUNK_NOT_FOUND' ? route.trunk : route.number));
    }
  }

  async #loadTrunk(name: string): Promise<StoredTrunk> {
    const raw = await this.#redis.get(this.#keys.trunk(name));
    if (raw === null) throw trunkNotFound(name);
    return JSON.parse(raw) as StoredTrunk;
  }

  async #loadTrunks(): Promise<StoredTrunk[]> {
    const names = (await this.#redis.sMembers(this.#keys.trunkIndex())).sort();
    if (names.length === 0) return [];
    const raws = await this.#redis.mGet(names.map((n) => this.#keys.trunk(n)));
    return raws.flatMap((r) => (r === null ? [] : [JSON.parse(r) as StoredTrunk]));
  }

  #sealTrunk(trunk: Trunk): StoredTrunk {
    const { auth, ...rest } = trunk;
    if (!auth) return compact(rest);
    return compact({ ...rest, auth: { username: auth.username, password: { enc: this.#secrets.encrypt(auth.password), last4: maskSecret(auth.password).last4 } } });
  }

  #unsealTrunk(stored: StoredTrunk): Trunk {
    const { auth, ...rest } = stored;
    if (!auth) return rest;
    return { ...rest, auth: { username: auth.username, password: this.#secrets.decrypt(auth.password.enc) } };
  }
}

function trunkToPublic(stored: StoredTrunk): PublicTrunk {
  const { auth, ...rest } = stored;
  if (!auth) return rest;
  return { ...rest, auth: { username: auth.username, password: { set: true, last4: auth.password.last4 } } };
}

function numberNotFound(number: string): CallgateError {
  // The number itself goes in details, not the message: messages reach info-level logs.
  return new CallgateError('CG_NUMBER_NOT_FOUND', undefined, { details: { number } });
}

function trunkNotFound(name: string): CallgateError {
  return new CallgateError('CG_TRUNK_NOT_FOUND', name, { details: { name } });
}
