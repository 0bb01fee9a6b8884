import { CallgateError } from '../errors.js';
import { stripUndefined } from '../util/options.js';
import { defaultRedisOptions, keys, type Keys, type Redis } from './redisClient.js';
import { LuaScript, redisFailure, scriptError } from './storeUtil.js';

/**
 * Where a registered device can be reached (RFC 3261 §10, the registrar's location service), shared
 * by every gateway on the Redis: a REGISTER taken by one gateway lets any of them call the device.
 *
 * `device:<username>:bindings` is a hash, one field per binding (its `+sip.instance` when the phone
 * sends one, else its Contact URI), each value JSON with the Contact, the address and port the
 * REGISTER really came from (a phone behind NAT puts its private address in its Contact: we call the
 * public one), the Call-ID/CSeq that set it and when it expires. Expiry is on Redis's clock (one Lua
 * script per change, as SipAuthFailureStore), expired bindings are dropped as they are met, and the
 * hash itself expires with its last binding, so a device that stops registering leaves nothing behind.
 */
export interface DeviceBindingOptions {
  readonly prefix: string;
  /**
   * Most bindings one device keeps. A phone that restarts often registers a new Contact each time
   * (baresip adds a random suffix) while the old one lives out its expiry; past the cap the binding
   * nearest its end goes, so a device cannot grow a hash without limit.
   */
  readonly maxBindings: number;
  /** Longest a Redis command may wait before the REGISTER or the call fails with 503 / CG_REDIS_UNAVAILABLE. */
  readonly commandTimeoutMs: number;
}

export const defaultDeviceBindingOptions = {
  prefix: defaultRedisOptions.prefix,
  /** 10: a phone, a softphone on a laptop and one on a mobile with room for their restarts. */
  maxBindings: 10,
  /** 1 s, as the call limiter's and the digest lockout's. */
  commandTimeoutMs: 1000,
} as const satisfies DeviceBindingOptions;

export type BindingTransport = 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';

/** The address a request really came from (the packet's, not what the phone wrote in it). */
export interface BindingSource {
  readonly address: string;
  readonly port: number;
  readonly transport: BindingTransport;
}

export interface Binding {
  /** The hash field: `+sip.instance` when given, else the Contact URI. */
  readonly key: string;
  /** The Contact URI as the phone registered it (the Request-URI of calls to it). */
  readonly contact: string;
  readonly source: BindingSource;
  readonly callId: string;
  readonly cseq: number;
  readonly userAgent?: string;
  /** Epoch ms (Redis's clock). */
  readonly registeredAt: number;
  readonly expiresAt: number;
}

/** One Contact of a REGISTER: `expiresS` 0 removes it. */
export interface ContactChange {
  readonly contact: string;
  readonly expiresS: number;
  readonly instance?: string;
}

export interface BindingUpdate {
  readonly username: string;
  readonly callId: string;
  readonly cseq: number;
  /** The contacts to add, refresh or remove; `'*'` removes every binding (`Contact: *`, `Expires: 0`). */
  readonly contacts: readonly ContactChange[] | '*';
  readonly source: BindingSource;
  readonly userAgent?: string;
}

/** What a device has now, and Redis's clock when it was read (for the `expires` left on each). */
export interface BindingsNow {
  readonly bindings: Binding[];
  readonly now: number;
}

const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** Drops the expired bindings of KEYS[1]; leaves `live` (field → binding) and `latest` (the last expiry). */
const SWEEP = `local live, latest = {}, 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local b = cjson.decode(all[i + 1])
  if b.expiresAt <= now then redis.call('HDEL', KEYS[1], all[i]) else live[all[i]] = b; if b.expiresAt > latest then latest = b.expiresAt end end
end`;

/**
 * KEYS: bindings, device. ARGV: callId, cseq, maxBindings, userAgent, source JSON, '*' or 'list', then
 * (key, contact, expiresS) triples. Returns {now, binding JSON…}. RFC 3261 §10.3: a binding set by the
 * same Call-ID with a CSeq as high or higher is newer than this request (reordered or replayed): the
 * whole request is refused (STALE) and nothing changes.
 */
const registerScript = new LuaScript(`${NOW}
if redis.call('EXISTS', KEYS[2]) == 0 then return redis.error_reply('CG_DEVICE_NOT_FOUND') end
${SWEEP}
local callId, cseq, max = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local function stale(b) return b.callId == callId and b.cseq >= cseq end
if ARGV[6] == '*' then
  for _, b in pairs(live) do if stale(b) then return redis.error_reply('STALE') end end
  redis.call('DEL', KEYS[1])
  return {tostring(now)}
end
for i = 7, #ARGV, 3 do
  local b = live[ARGV[i]]
  if b and stale(b) then return redis.error_reply('STALE') end
end
local source = cjson.decode(ARGV[5])
for i = 7, #ARGV, 3 do
  local key, expires = ARGV[i], tonumber(ARGV[i + 2])
  if expires == 0 then
    redis.call('HDEL', KEYS[1], key)
    live[key] = nil
  else
    local b = { key = key, contact = ARGV[i + 1], source = source, callId = callId, cseq = cseq, registeredAt = now, expiresAt = now + expires * 1000 }
    if ARGV[4] ~= '' then b.userAgent = ARGV[4] end
    redis.call('HSET', KEYS[1], key, cjson.encode(b))
    live[key] = b
  end
end
local list = {}
for _, b in pairs(live) do list[#list + 1] = b end
table.sort(list, function(a, b) return a.expiresAt > b.expiresAt end)
for i = max + 1, #list do redis.call('HDEL', KEYS[1], list[i].key); list[i] = nil end
local out, latest = {tostring(now)}, 0
for _, b in ipairs(list) do out[#out + 1] = cjson.encode(b); if b.expiresAt > latest then latest = b.expiresAt end end
if latest > now then redis.call('PEXPIRE', KEYS[1], string.format('%d', latest - now)) else redis.call('DEL', KEYS[1]) end
return out
`);

/** KEYS: bindings. Returns {now, binding JSON…} of the live ones. */
const readScript = new LuaScript(`${NOW}
${SWEEP}
local out = {tostring(now)}
for _, b in pairs(live) do out[#out + 1] = cjson.encode(b) end
return out
`);

export class DeviceBindingStore {
  readonly options: DeviceBindingOptions;
  readonly #redis: Redis;
  readonly #keys: Keys;

  constructor(redis: Redis, options: Partial<DeviceBindingOptions> = {}) {
    this.#redis = redis;
    this.options = { ...defaultDeviceBindingOptions, ...stripUndefined(options) };
    if (!(this.options.maxBindings >= 1)) throw new RangeError(`DeviceBindingStore: maxBindings ≥ 1 (got ${this.options.maxBindings})`);
    this.#keys = keys(this.options.prefix);
  }

  /**
   * Applies a REGISTER's contacts and returns the device's bindings after it. Throws
   * CG_DEVICE_NOT_FOUND for a device deleted meanwhile, and a `StaleRegistration` for a request older
   * than what set a binding.
   */
  async register(update: BindingUpdate): Promise<BindingsNow> {
    const k = this.#keys;
    const triples = update.contacts === '*' ? [] : update.contacts.flatMap((c) => [c.instance ?? c.contact, c.contact, String(Math.max(0, Math.floor(c.expiresS)))]);
    const args = [update.callId, String(update.cseq), String(this.options.maxBindings), update.userAgent ?? '', JSON.stringify(update.source), update.contacts === '*' ? '*' : 'list', ...triples];
    try {
      return parse(await registerScript.run(this.#redis, [k.deviceBindings(update.username), k.device(update.username)], args, { timeoutMs: this.options.commandTimeoutMs }));
    } catch (err) {
      if (err instanceof Error && /^(?:ERR )?STALE/.test(err.message)) throw new StaleRegistration();
      throw redisFailure(scriptError(err, () => update.username), 'device registration');
    }
  }

  /** The device's live bindings, the latest to expire first. */
  async bindings(username: string): Promise<BindingsNow> {
    try {
      return parse(await readScript.run(this.#redis, [this.#keys.deviceBindings(username)], [], { timeoutMs: this.options.commandTimeoutMs }));
    } catch (err) {
      throw redisFailure(err, 'device bindings');
    }
  }
}

/** A REGISTER older than the one that set a binding (same Call-ID, CSeq not higher): RFC 3261 §10.3 step 7. */
export class StaleRegistration extends Error {
  override name = 'StaleRegistration';
  constructor() {
    super('REGISTER is older than the binding it would change');
  }
}

function parse(reply: unknown): BindingsNow {
  if (!Array.isArray(reply) || reply.length === 0) throw new CallgateError('CG_INTERNAL', 'device bindings: unexpected reply');
  const [now, ...rest] = reply as string[];
  const bindings = rest.map((r) => JSON.parse(r) as Binding).sort((a, b) => b.expiresAt - a.expiresAt);
  return { bindings, now: Number(now) };
}
