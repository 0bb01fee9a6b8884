import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { CallgateError } from '../errors.js';
import { rootLogger } from '../log.js';
import { keys, type Keys, type Redis } from './redisClient.js';
import { LuaScript, redisFailure } from './storeUtil.js';

/**
 * Cluster-wide limit on a tenant's concurrent calls. Each live call holds a lease: a member of the
 * tenant's sorted set `keys(prefix).activeCalls(tenantId)`, scored by the lease's expiry in Redis server
 * milliseconds. A gateway that dies stops renewing, so its calls drop out of the count once their leases
 * lapse — no cleanup job, no trust in any gateway's clock (every script reads `TIME` on the server).
 *
 * Every check-and-change runs as one Lua script, so 20 gateways racing for the last slot cannot overshoot.
 */

export interface CallLimiterOptions {
  /** Key prefix, as for `connectRedis` (`callgate:` in production, `testPrefix()` in tests). */
  readonly prefix: string;
  /** Lease length when a caller gives none. */
  readonly leaseMs: number;
  /** Longest a limiter command may wait for Redis (including while reconnecting) before it fails. */
  readonly commandTimeoutMs: number;
}

export const defaultCallLimiterOptions = {
  prefix: 'callgate:',
  /**
   * 30 s: a crashed gateway's calls stop counting within 30 s, while renewing every 10 s (leaseMs / 3)
   * survives two missed renewals — a Redis failover or a long GC pause — without losing a live call's slot.
   */
  leaseMs: 30_000,
  /**
   * 1 s: an INVITE should not wait longer than that on Redis; loopback commands take well under 1 ms.
   * Without it node-redis queues commands while reconnecting and a call setup could hang indefinitely.
   */
  commandTimeoutMs: 1000,
} as const satisfies CallLimiterOptions;

export type AcquireResult = { ok: true; active: number } | { ok: false; active: number; limit: number };

export interface LeaseOptions {
  /** Most concurrent calls the tenant may hold across the cluster. */
  readonly limit: number;
  /** Defaults to the limiter's `leaseMs`. The lease renews every leaseMs / 3. */
  readonly leaseMs?: number;
}

// Server time in ms. TIME is non-deterministic; Redis ≥ 5 replicates a script's effects, not the script,
// so reading it before writing is allowed. string.format('%d') keeps scores integral (tostring would use %.14g).
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)`;

// The key's own TTL follows the newest lease, so an idle tenant leaves no key behind.
const TOUCH = `local function touch(expiry)
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < expiry - now then redis.call('PEXPIRE', KEYS[1], expiry - now) end
end`;

/** KEYS: active set. ARGV: callId, limit, leaseMs. Returns {1, active} or {0, active}. */
const ACQUIRE = `${NOW}
${TOUCH}
local expiry = now + tonumber(ARGV[3])
local count = redis.call('ZCARD', KEYS[1])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if count >= tonumber(ARGV[2]) then return {0, count} end
  count = count + 1
end
redis.call('ZADD', KEYS[1], string.format('%d', expiry), ARGV[1])
touch(expiry)
return {1, count}`;

/** KEYS: active set. ARGV: callId, leaseMs. Returns 1, or 0 when the lease had lapsed or was released. */
const RENEW = `${NOW}
${TOUCH}
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local expiry = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'XX', string.format('%d', expiry), ARGV[1])
touch(expiry)
return 1`;

/** KEYS: active set. Returns the number of unexpired leases. */
const ACTIVE = `${NOW}
return redis.call('ZCARD', KEYS[1])`;

const scripts = { acquire: new LuaScript(ACQUIRE), renew: new LuaScript(RENEW), active: new LuaScript(ACTIVE) } as const;

function checkLeaseMs(leaseMs: number): void {
  if (!Number.isInteger(leaseMs) || leaseMs < 1) {
    throw new CallgateError('CG_CONFIG_INVALID', 'leaseMs must be a positive integer', { details: { leaseMs } });
  }
}

export class CallLimiter {
  readonly options: CallLimiterOptions;
  private readonly keys: Keys;

  constructor(
    private readonly redis: Redis,
    options: Partial<CallLimiterOptions> = {},
  ) {
    this.options = { ...defaultCallLimiterOptions, ...options };
    checkLeaseMs(this.options.leaseMs);
    this.keys = keys(this.options.prefix);
  }

  /** Takes a slot for `callId` unless the tenant already holds `limit` unexpired leases; re-acquiring renews. */
  async acquire(tenantId: string, callId: string, limit: number, leaseMs: number = this.options.leaseMs): Promise<AcquireResult> {
    if (!Number.isInteger(limit) || limit < 0) {
      throw new CallgateError('CG_CONFIG_INVALID', 'call limit must be a non-negative integer', { details: { tenantId, limit } });
    }
    checkLeaseMs(leaseMs);
    const reply = await this.run(scripts.acquire, tenantId, [callId, String(limit), String(leaseMs)]);
    const [ok, active] = reply as [number, number];
    return ok === 1 ? { ok: true, active } : { ok: false, active, limit };
  }

  /** Extends a held lease; false when it had already lapsed (or was released) — the slot may be someone else's now. */
  async renew(tenantId: string, callId: string, leaseMs: number = this.options.leaseMs): Promise<boolean> {
    checkLeaseMs(leaseMs);
    return (await this.run(scripts.renew, tenantId, [callId, String(leaseMs)])) === 1;
  }

  /** Frees the slot; false when the call held none. */
  async release(tenantId: string, callId: string): Promise<boolean> {
    const removed = await this.command(['ZREM', this.keys.activeCalls(tenantId), callId], tenantId);
    return removed === 1;
  }

  /** Unexpired leases the tenant holds across the cluster. */
  async active(tenantId: string): Promise<number> {
    return (await this.run(scripts.active, tenantId, [])) as number;
  }

  /**
   * Acquires and keeps renewing until `release()`. Throws CG_CALL_LIMIT_REACHED when the tenant is at its
   * limit, so a door maps the refusal in one place (SIP: 486/503, API: 429).
   */
  async lease(tenantId: string, callId: string, options: LeaseOptions): Promise<CallLease> {
    const leaseMs = options.leaseMs ?? this.options.leaseMs;
    const result = await this.acquire(tenantId, callId, options.limit, leaseMs);
    if (!result.ok) {
      throw new CallgateError('CG_CALL_LIMIT_REACHED', `tenant ${tenantId} has ${result.active} of ${result.limit} calls`, {
        details: { tenantId, active: result.active, limit: result.limit },
      });
    }
    return new CallLease(this, tenantId, callId, leaseMs, result.active);
  }

  /** A script on the tenant's active set, with the limiter's command timeout; no answer is CG_REDIS_UNAVAILABLE. */
  private async run(s: LuaScript, tenantId: string, args: string[]): Promise<unknown> {
    try {
      return await s.run(this.redis, [this.keys.activeCalls(tenantId)], args, { timeoutMs: this.options.commandTimeoutMs });
    } catch (err) {
      throw redisFailure(err, 'call limiter script', { details: { tenantId } });
    }
  }

  private async command(args: string[], tenantId: string): Promise<unknown> {
    try {
      return await this.redis.sendCommand(args, { timeout: this.options.commandTimeoutMs });
    } catch (err) {
      throw redisFailure(err, `call limiter ${args[0]}`, { details: { tenantId } });
    }
  }
}

export interface CallLeaseEvents {
  /** The lease lapsed or was released elsewhere: the call no longer counts and renewing stopped. */
  lost: [];
  /** One renewal could not reach Redis; the next tick tries again (the lease outlives two missed ticks). */
  renewError: [err: CallgateError];
}

/**
 * One call's slot, renewed every leaseMs / 3 until `release()`. Losing the lease does not end the call —
 * that is the owner's decision — so it is announced through `lost` and logged.
 */
export class CallLease extends EventEmitter<CallLeaseEvents> {
  private timer: NodeJS.Timeout | undefined;
  private released: Promise<void> | undefined;
  private renewing: Promise<void> | undefined;
  private readonly log: Logger;

  constructor(
    private readonly limiter: CallLimiter,
    readonly tenantId: string,
    readonly callId: string,
    readonly leaseMs: number,
    /** Calls the tenant held right after this one was admitted. */
    readonly activeAtStart: number,
  ) {
    super();
    this.log = rootLogger.child({ callId, tenant: tenantId });
    // A lease must never keep the process alive on its own: the call that owns it does.
    this.timer = setInterval(() => this.tick(), Math.max(1, Math.floor(leaseMs / 3))).unref();
  }

  get isActive(): boolean {
    return this.timer !== undefined;
  }

  /** Stops renewing and frees the slot. Idempotent; resolves once Redis has the release. */
  release(): Promise<void> {
    this.released ??= (async () => {
      this.stop();
      await this.renewing;
      await this.limiter.release(this.tenantId, this.callId);
    })();
    return this.released;
  }

  private tick(): void {
    // A slow Redis must not pile up renewals; skip a tick while one is in flight.
    if (this.renewing || !this.timer) return;
    this.renewing = this.limiter
      .renew(this.tenantId, this.callId, this.leaseMs)
      .then((held) => {
        if (held || !this.timer) return;
        this.stop();
        this.log.warn('call lease lapsed; the call no longer counts against the limit');
        this.emit('lost');
      })
      .catch((err: CallgateError) => {
        this.log.warn({ code: err.code, err: err.message }, 'call lease renewal failed');
        this.emit('renewError', err);
      })
      .finally(() => {
        this.renewing = undefined;
      });
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
