import { createHash } from 'node:crypto';
import { CallgateError } from '../errors.js';
import { stripUndefined } from '../util/options.js';
import { defaultRedisOptions, keys, type Keys, type Redis } from './redisClient.js';
import { LuaScript } from './storeUtil.js';

/**
 * Failed SIP digest attempts, counted cluster-wide per username and per source address, with a
 * temporary lockout: without it a password could be guessed as fast as the per-source INVITE rate
 * allows (issue 24: fifty wrong guesses, each answered 403, then the right one let in).
 *
 * `maxFailures` failures within `windowMs` lock the username (or the source) for `lockoutMs`; each
 * further lockout of the same one within `strikeMemoryMs` lasts twice as long as the one before, up to
 * `maxLockoutMs` (the backoff). While locked, attempts are refused like wrong passwords and not
 * counted (the lockout is not extended by the attacker's own traffic, so the real device gets back in
 * once it ends). A success clears the username's count, never the source's: one good account must not
 * buy an attacker fresh guesses against others from the same address.
 *
 * Redis holds one hash per username or source, `sipauth:user:<sha256(username)>` and
 * `sipauth:source:<address>` (fields `until`, `start`, `fails`, `strikes`, `struck`, server-clock ms),
 * expiring with the last of its deadlines. Usernames are hashed: they are the caller's text, and key
 * names must neither grow with it nor keep it. Every check-and-change is one Lua script on the server's
 * clock, so all gateways share the counts and none needs a synchronised clock.
 */
export interface SipAuthFailureOptions {
  readonly prefix: string;
  /** Failed attempts within `windowMs` that lock a username or a source. */
  readonly maxFailures: number;
  /** How long failures are remembered towards a lockout (a fixed window from the first). */
  readonly windowMs: number;
  /** The first lockout's length. */
  readonly lockoutMs: number;
  /** The longest a lockout grows to when the same username or source is locked again and again. */
  readonly maxLockoutMs: number;
  /** How long a lockout is remembered for the backoff (the next one doubling). */
  readonly strikeMemoryMs: number;
  /** Longest a check may wait for Redis before the INVITE is answered 503. */
  readonly commandTimeoutMs: number;
}

export const defaultSipAuthFailureOptions = {
  prefix: defaultRedisOptions.prefix,
  /** 5: a device with a mistyped password fails a handful of times; a guesser needs thousands. */
  maxFailures: 5,
  /** 10 minutes: slow guessing (one try every couple of minutes) still adds up to a lockout. */
  windowMs: 10 * 60_000,
  /** 15 minutes: five guesses per quarter hour makes a real password unguessable; a locked device is back soon. */
  lockoutMs: 15 * 60_000,
  /** 4 hours: the backoff's cap (15, 30, 60, 120, 240 min), so a device an attacker keeps locking is not shut out for days. */
  maxLockoutMs: 4 * 60 * 60_000,
  /** 24 hours: a guesser back the next day starts the backoff again. */
  strikeMemoryMs: 24 * 60 * 60_000,
  /** 1 s, as the call limiter's: an INVITE should not wait longer on Redis. */
  commandTimeoutMs: 1000,
} as const satisfies SipAuthFailureOptions;

/** Who tried: the username in the Authorization header and the packet's source address. */
export interface AuthSubject {
  readonly username: string;
  readonly source: string;
}

/** Remaining lockout of each, in ms (0: not locked). */
export interface AuthLockState {
  readonly user: number;
  readonly source: number;
}

/** What a failed attempt caused: the lockouts it started now (ms; 0 for none). */
export type AuthFailureOutcome = AuthLockState;

const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** KEYS: user hash, source hash. Returns the remaining lockout of each (ms). */
const CHECK = `${NOW}
local out = {}
for i, key in ipairs(KEYS) do
  local u = tonumber(redis.call('HGET', key, 'until')) or 0
  if u > now then out[i] = u - now else out[i] = 0 end
end
return out`;

/**
 * KEYS: user hash, source hash. ARGV: maxFailures (user), maxFailures (source), windowMs, lockoutMs,
 * maxLockoutMs, strikeMemoryMs. Counts a failure against each key that is not locked; returns the
 * lockout each one started now (ms, 0 for none).
 */
const FAIL = `${NOW}
local window, lockout, cap, memory = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = 0
  local h = redis.call('HMGET', key, 'until', 'start', 'fails', 'strikes', 'struck')
  local lockedUntil = tonumber(h[1]) or 0
  if lockedUntil <= now then
    local start, fails = tonumber(h[2]), tonumber(h[3]) or 0
    local strikes, struck = tonumber(h[4]) or 0, tonumber(h[5]) or 0
    if not start or now - start >= window then start = now; fails = 0 end
    fails = fails + 1
    local keep = 0
    if fails >= tonumber(ARGV[i]) then
      if now - struck >= memory then strikes = 0 end
      strikes = strikes + 1
      local locked = math.min(cap, lockout * 2 ^ (strikes - 1))
      struck = now
      redis.call('HSET', key, 'until', string.format('%d', now + locked), 'strikes', strikes, 'struck', string.format('%d', now))
      redis.call('HDEL', key, 'start', 'fails')
      out[i] = locked
      keep = locked
    else
      redis.call('HSET', key, 'start', string.format('%d', start), 'fails', fails)
      keep = start + window - now
    end
    if strikes > 0 then keep = math.max(keep, struck + memory - now) end
    redis.call('PEXPIRE', key, string.format('%d', math.max(1, keep)))
  end
end
return out`;

const checkScript = new LuaScript(CHECK);
const failScript = new LuaScript(FAIL);

export class SipAuthFailureStore {
  readonly options: SipAuthFailureOptions;
  readonly #redis: Redis;
  readonly #keys: Keys;

  constructor(redis: Redis, options: Partial<SipAuthFailureOptions> = {}) {
    this.#redis = redis;
    this.options = { ...defaultSipAuthFailureOptions, ...stripUndefined(options) };
    const { maxFailures, windowMs, lockoutMs, maxLockoutMs } = this.options;
    if (!(maxFailures >= 1) || !(windowMs >= 1) || !(lockoutMs >= 1) || !(maxLockoutMs >= lockoutMs)) {
      throw new RangeError(`SipAuthFailureStore: maxFailures, windowMs, lockoutMs ≥ 1 and maxLockoutMs ≥ lockoutMs (got ${maxFailures}, ${windowMs}, ${lockoutMs}, ${maxLockoutMs})`);
    }
    this.#keys = keys(this.options.prefix);
  }

  /** How long each of them is still locked out (0: not). */
  async check(subject: AuthSubject): Promise<AuthLockState> {
    const [user, source] = (await this.#run(checkScript, subject, [], 'check')) as [number, number];
    return { user, source };
  }

  /** Counts one failed attempt against the username and the source (unless locked already). */
  async fail(subject: AuthSubject): Promise<AuthFailureOutcome> {
    const o = this.options;
    // One threshold for both (the script takes one per key, should they ever need to differ).
    const args = [o.maxFailures, o.maxFailures, o.windowMs, o.lockoutMs, o.maxLockoutMs, o.strikeMemoryMs].map(String);
    const [user, source] = (await this.#run(failScript, subject, args, 'fail')) as [number, number];
    return { user, source };
  }

  /** The username proved its password: its failures so far are forgiven (its lockout history is kept). */
  async succeeded(subject: AuthSubject): Promise<void> {
    await this.#command(['HDEL', this.#keys.sipAuth('user', usernameId(subject.username)), 'start', 'fails'], 'success');
  }

  /** Ends a lockout and forgets the history of one username or source (an operator's unlock). */
  async clear(scope: 'user' | 'source', value: string): Promise<void> {
    await this.#command(['DEL', this.#keys.sipAuth(scope, scope === 'user' ? usernameId(value) : value)], 'clear');
  }

  #subjectKeys(subject: AuthSubject): string[] {
    return [this.#keys.sipAuth('user', usernameId(subject.username)), this.#keys.sipAuth('source', subject.source)];
  }

  async #run(script: LuaScript, subject: AuthSubject, args: string[], what: string): Promise<unknown> {
    try {
      return await script.run(this.#redis, this.#subjectKeys(subject), args, { timeoutMs: this.options.commandTimeoutMs });
    } catch (err) {
      throw new CallgateError('CG_REDIS_UNAVAILABLE', `SIP auth failures ${what} failed`, { cause: err });
    }
  }

  async #command(args: string[], what: string): Promise<unknown> {
    try {
      return await this.#redis.sendCommand(args, { timeout: this.options.commandTimeoutMs });
    } catch (err) {
      throw new CallgateError('CG_REDIS_UNAVAILABLE', `SIP auth failures ${what} failed`, { cause: err });
    }
  }
}

/** A username as its key names it: a fixed-length digest of the caller's text. */
export function usernameId(username: string): string {
  return createHash('sha256').update(username).digest('hex').slice(0, 32);
}
