import { z } from 'zod';
import { CallgateError } from '../errors.js';
import { stripUndefined } from '../util/options.js';
import { defaultRedisOptions, keys, type Keys, type Redis } from './redisClient.js';
import { line } from './schema.js';
import { SecretBox } from './secrets.js';
import { compact, invalid, LuaScript, parseOrThrow, redisFailure, scriptError } from './storeUtil.js';

/**
 * A tenant's SIP devices: desk phones and softphones that REGISTER and call with digest credentials
 * (issue 25). Unlike trunks (the operator's carriers, shared out by a list), a device is one tenant's
 * own object, made with the tenant's key.
 *
 * Redis: `device:<username>` → `{username, tenantId, displayName?, password: {enc}, createdAt, updatedAt}`,
 * a set per tenant (`tenant:<id>:devices`) and one for the gateway (`devices`). The username is unique
 * across the gateway because a REGISTER's digest username, the only thing it names, must lead to one
 * tenant. The password is encrypted like trunk passwords (SecretBox, CALLGATE_SECRET_KEY) because
 * digest needs it in clear to check an answer; the API never shows it, not even its last characters.
 */
export interface DeviceStoreOptions {
  readonly prefix: string;
}

export const defaultDeviceStoreOptions = {
  prefix: defaultRedisOptions.prefix,
} as const satisfies DeviceStoreOptions;

/**
 * What phones accept as an auth username and what a SIP user part carries without escaping: letters,
 * digits, `.`, `_`, `-`; case-sensitive, as SIP user parts and digest usernames are.
 */
export const DEVICE_USERNAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const username = z.string().regex(DEVICE_USERNAME, 'letters, digits, ".", "_" and "-", starting with a letter or digit, 1–64 characters');
/** 8+ characters, as trunk passwords: five guesses per lockout window make that unguessable. */
const password = line(8, 200);

export const deviceSchema = z
  .strictObject({
    username,
    password,
    /** How the device is shown in lists and call records ("Front desk"). */
    displayName: line(1, 100).optional(),
  })
  .refine((d) => d.password !== d.username, { path: ['password'], message: 'must not be the username' });
export type DeviceInput = z.input<typeof deviceSchema>;

/** PATCH: a new password, a new display name (`null` removes it); the username cannot change. */
export const devicePatchSchema = z.strictObject({
  username: username.optional(),
  password: password.optional(),
  displayName: line(1, 100).nullable().optional(),
});
export type DevicePatch = z.input<typeof devicePatchSchema>;

/** A device as the API shows it: never its password. */
export interface Device {
  readonly username: string;
  readonly tenantId: string;
  readonly displayName?: string;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** For the SIP door's digest check only: the password in clear. */
export interface DeviceWithSecret extends Device {
  readonly password: string;
}

interface StoredDevice extends Device {
  readonly password: { readonly enc: string };
}

/** KEYS: tenant, device, tenantDevices, deviceIndex. ARGV: json, username. */
const createScript = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('CG_TENANT_NOT_FOUND') end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX') then return redis.error_reply('CG_DEVICE_EXISTS') end
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[2])
return 1
`);

/**
 * KEYS: device, tenantDevices, deviceIndex, bindings. ARGV: username, tenant id. Only the owner's
 * device goes (another tenant's reads as absent); its registrations go with it.
 */
const deleteScript = new LuaScript(`
local raw = redis.call('GET', KEYS[1])
if not raw or cjson.decode(raw).tenantId ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1], KEYS[4])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
`);

/** KEYS: device. ARGV: json, tenant id. Replaces the owner's device (a deleted one stays deleted). */
const updateScript = new LuaScript(`
local raw = redis.call('GET', KEYS[1])
if not raw or cjson.decode(raw).tenantId ~= ARGV[2] then return redis.error_reply('CG_DEVICE_NOT_FOUND') end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`);

export class DeviceStore {
  readonly #redis: Redis;
  readonly #secrets: SecretBox;
  readonly #keys: Keys;

  constructor(redis: Redis, secrets: SecretBox = new SecretBox(), options: Partial<DeviceStoreOptions> = {}) {
    this.#redis = redis;
    this.#secrets = secrets;
    this.#keys = keys({ ...defaultDeviceStoreOptions, ...stripUndefined(options) }.prefix);
  }

  /** A device for the tenant; the tenant must exist and the username be free across the gateway. */
  async create(tenantId: string, input: DeviceInput): Promise<Device> {
    const parsed = parseOrThrow(deviceSchema, input, 'device');
    const now = new Date().toISOString();
    const stored: StoredDevice = compact({
      username: parsed.username,
      tenantId,
      ...(parsed.displayName === undefined ? {} : { displayName: parsed.displayName }),
      password: { enc: this.#secrets.encrypt(parsed.password) },
      createdAt: now,
      updatedAt: now,
    });
    const k = this.#keys;
    try {
      await createScript.run(this.#redis, [k.tenant(tenantId), k.device(parsed.username), k.tenantDevices(tenantId), k.deviceIndex()], [JSON.stringify(stored), parsed.username]);
    } catch (err) {
      const e = scriptError(err, (code) => (code === 'CG_TENANT_NOT_FOUND' ? tenantId : parsed.username));
      if (e instanceof CallgateError && e.code === 'CG_DEVICE_EXISTS') throw new CallgateError('CG_DEVICE_EXISTS', parsed.username, { details: { username: parsed.username } });
      throw redisFailure(e, 'device create');
    }
    return toPublic(stored);
  }

  /** The tenant's device; another tenant's reads as absent (CG_DEVICE_NOT_FOUND), as a missing one. */
  async get(tenantId: string, name: string): Promise<Device> {
    return toPublic(await this.#owned(tenantId, name));
  }

  async list(tenantId: string): Promise<Device[]> {
    const names = (await this.#redis.sMembers(this.#keys.tenantDevices(tenantId))).sort();
    if (names.length === 0) return [];
    const raws = await this.#redis.mGet(names.map((n) => this.#keys.device(n)));
    return raws.flatMap((r) => {
      if (r === null) return [];
      const d = JSON.parse(r) as StoredDevice;
      return d.tenantId === tenantId ? [toPublic(d)] : [];
    });
  }

  /** A new password or display name; `username` may be sent only unchanged. */
  async update(tenantId: string, name: string, patch: DevicePatch): Promise<Device> {
    const parsed = parseOrThrow(devicePatchSchema, patch, 'device');
    if (parsed.username !== undefined && parsed.username !== name) throw invalid('device', 'username', 'cannot be changed (delete the device and make a new one)');
    if (parsed.password !== undefined && parsed.password === name) throw invalid('device', 'password', 'must not be the username');
    const current = await this.#owned(tenantId, name);
    const { displayName: _old, ...rest } = current;
    const displayName = parsed.displayName === undefined ? current.displayName : (parsed.displayName ?? undefined);
    const next: StoredDevice = compact({
      ...rest,
      ...(displayName === undefined ? {} : { displayName }),
      ...(parsed.password === undefined ? {} : { password: { enc: this.#secrets.encrypt(parsed.password) } }),
      updatedAt: new Date().toISOString(),
    });
    try {
      await updateScript.run(this.#redis, [this.#keys.device(name)], [JSON.stringify(next), tenantId]);
    } catch (err) {
      throw redisFailure(scriptError(err, () => name), 'device update');
    }
    return toPublic(next);
  }

  /** Deletes the device and its registrations: its phone's next REGISTER or call is refused. */
  async delete(tenantId: string, name: string): Promise<void> {
    if (!DEVICE_USERNAME.test(name)) throw notFound(name);
    const k = this.#keys;
    const removed = await deleteScript.run(this.#redis, [k.device(name), k.tenantDevices(tenantId), k.deviceIndex(), k.deviceBindings(name)], [name, tenantId]);
    if (removed !== 1) throw notFound(name);
  }

  /** Every device of a deleted tenant (so a tenant made again under the id starts with none). */
  async deleteAll(tenantId: string): Promise<number> {
    let removed = 0;
    for (const name of await this.#redis.sMembers(this.#keys.tenantDevices(tenantId))) {
      const k = this.#keys;
      removed += Number(await deleteScript.run(this.#redis, [k.device(name), k.tenantDevices(tenantId), k.deviceIndex(), k.deviceBindings(name)], [name, tenantId]));
    }
    await this.#redis.del(this.#keys.tenantDevices(tenantId));
    return removed;
  }

  /**
   * The device a digest username names, with its password in clear, or undefined: for the SIP door's
   * authentication only. A username no device could have is answered without a Redis lookup.
   */
  async forAuth(name: string): Promise<DeviceWithSecret | undefined> {
    if (!DEVICE_USERNAME.test(name)) return undefined;
    const raw = await this.#redis.get(this.#keys.device(name));
    if (raw === null) return undefined;
    const stored = JSON.parse(raw) as StoredDevice;
    return { ...toPublic(stored), password: this.#secrets.decrypt(stored.password.enc) };
  }

  /** Whether the gateway has any device (then SIP requests from unknown addresses are challenged, not refused). */
  async any(): Promise<boolean> {
    return (await this.#redis.sCard(this.#keys.deviceIndex())) > 0;
  }

  async #owned(tenantId: string, name: string): Promise<StoredDevice> {
    if (!DEVICE_USERNAME.test(name)) throw notFound(name);
    const raw = await this.#redis.get(this.#keys.device(name));
    const stored = raw === null ? undefined : (JSON.parse(raw) as StoredDevice);
    if (!stored || stored.tenantId !== tenantId) throw notFound(name);
    return stored;
  }
}

function toPublic(stored: StoredDevice): Device {
  const { password: _secret, ...rest } = stored;
  return rest;
}

function notFound(name: string): CallgateError {
  return new CallgateError('CG_DEVICE_NOT_FOUND', undefined, { details: { username: name.slice(0, 64) } });
}
