import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { rootLogger } from '../log.js';
import { defaultRedisOptions, keys, type Keys, type Redis } from '../tenants/redisClient.js';
import { LuaScript } from '../tenants/storeUtil.js';
import { hostOf } from './callStart.js';
import { send, SendError } from './send.js';
import { signedHeaders } from './sign.js';

/**
 * At-least-once delivery of webhooks that must arrive (call.ended), through Redis so a delivery survives
 * the gateway that queued it:
 * - `enqueue()` stores the delivery (a hash: tenant, call, URL, body, created, attempts — never a secret)
 *   and makes it due now in one sorted set, before anything is sent;
 * - every gateway's worker polls that set and claims due entries in one script that moves each one's
 *   due time a lease ahead, so two gateways never send one entry at the same moment, and an entry whose
 *   gateway died mid-send is due again once the lease runs out;
 * - each try is signed afresh with the tenant's current secret and carries the same delivery id;
 *   a 2xx deletes the entry; anything else is retried with exponential backoff until the delivery is
 *   older than `maxAgeMs`, then dropped with an error log.
 * All times that decide when an entry is due are Redis's clock (TIME in the scripts), so gateways with
 * skewed clocks agree.
 */
export interface DeliveryQueueOptions {
  /** Key prefix, as for `connectRedis`. */
  readonly prefix: string;
  /** How often the worker looks for due entries. */
  readonly pollMs: number;
  /** Entries one gateway sends at once; a poll claims only what fits. */
  readonly maxInFlight: number;
  /** A claimed entry is due again after this long unless its sender reports back. Must exceed `timeoutMs`. */
  readonly leaseMs: number;
  /** One try, connect to last byte. */
  readonly timeoutMs: number;
  /** Bytes of a receiver's answer read (kept only for the log: the status decides). */
  readonly maxResponseBytes: number;
  /** Wait after the first failed try; doubles after each further one, up to `maxDelayMs`. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** Each wait is scaled by a random factor in [1 − jitter, 1 + jitter]. */
  readonly jitter: number;
  /** A delivery that fails once it is this old is dropped. */
  readonly maxAgeMs: number;
  /** Longest one Redis command may take; an enqueue that fails waits in memory for the next poll. */
  readonly commandTimeoutMs: number;
  /** Deliveries held in memory while Redis cannot take them; beyond it the oldest is dropped (error log). */
  readonly maxPending: number;
  /** How long `stop()` lets tries in flight finish before aborting them (an aborted one is due again at once). */
  readonly stopTimeoutMs: number;
}

export const defaultDeliveryQueueOptions = {
  prefix: defaultRedisOptions.prefix,
  /** 500 ms: a call.ended leaves within half a second of the hang-up, for a ZRANGEBYSCORE per poll. */
  pollMs: 500,
  /**
   * 16: a slow receiver ties up at most 16 sockets. With a backlog (a receiver back from an outage), each
   * finished try claims the next at once rather than waiting for the poll, so a healthy receiver is sent
   * hundreds a second.
   */
  maxInFlight: 16,
  /** 60 s: six times `timeoutMs`, so an entry is never sent twice at once by a slow but living gateway. */
  leaseMs: 60_000,
  /** 10 s: a receiver that stores the event and answers takes milliseconds; a slow one is tried again. */
  timeoutMs: 10_000,
  /** 4 KiB: enough for an error page's first lines in the log. */
  maxResponseBytes: 4096,
  /** 2 s doubling to 1 h: a receiver restarting is caught within seconds, one down for a day costs ~30 tries. */
  baseDelayMs: 2000,
  maxDelayMs: 3_600_000,
  /** ±10 %: deliveries that failed together (a receiver outage) do not all come back in the same poll. */
  jitter: 0.1,
  /** 25 h: the "at least 24 h" plus an hour for the last try's backoff. */
  maxAgeMs: 25 * 3_600_000,
  /** 1 s, as for the other stores: a healthy loopback Redis answers in well under 1 ms. */
  commandTimeoutMs: 1000,
  /** 10 000: minutes of a busy gateway's hang-ups, a few tens of MB at most. */
  maxPending: 10_000,
  /** 5 s: a try in flight at shutdown usually finishes, rather than being sent again by the next gateway. */
  stopTimeoutMs: 5000,
} as const satisfies DeliveryQueueOptions;

/** What is sent; the signature is added at each try. */
export interface Delivery {
  /** X-Callgate-Delivery, the same on every try (receivers deduplicate by it); default: a fresh UUID. */
  readonly id?: string;
  readonly tenantId: string;
  /** For the logs. */
  readonly callId: string;
  readonly url: string;
  /** The JSON body, exactly as it is signed and sent. */
  readonly body: string;
}

/** One try's outcome, for metrics. */
export interface DeliveryResult {
  readonly deliveryId: string;
  readonly tenantId: string;
  readonly callId: string;
  /** 1 for the first try. */
  readonly attempt: number;
  /** delivered: a 2xx; retry: due again in `nextInMs`; dropped: too old (or no secret any more). */
  readonly outcome: 'delivered' | 'retry' | 'dropped';
  readonly status?: number;
  /** Why a try failed without an HTTP answer: a SendError kind, or `secret` when the tenant's secret could not be read. */
  readonly error?: SendError['kind'] | 'secret';
  readonly elapsedMs: number;
  readonly nextInMs?: number;
}

export interface DeliveryQueueDeps {
  /**
   * The tenant's current webhook secret, read at each try so a rotated secret signs the retries and no
   * secret is ever stored with the delivery. undefined: the tenant has none any more (deleted, webhooks
   * removed) and the delivery is dropped rather than sent unsigned; a rejection is retried later.
   */
  readonly secretFor: (tenantId: string) => Promise<string | undefined>;
  readonly logger?: Logger;
  readonly onResult?: (result: DeliveryResult) => void;
}

/** A claimed entry (internal; exported for tests that play a gateway dying after its claim). */
export interface ClaimedDelivery {
  readonly id: string;
  readonly tenantId: string;
  readonly callId: string;
  readonly url: string;
  readonly body: string;
  /** Redis time (ms) when it was enqueued. */
  readonly createdAtMs: number;
  /** This try's number, 1 for the first. */
  readonly attempt: number;
  /** Redis time (ms) of the claim. */
  readonly claimedAtMs: number;
  readonly token: string;
}

// ─── Lua ─────────────────────────────────────────────────────────────────────────────────────────

const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** KEYS: due, delivery. ARGV: id, tenantId, callId, url, body, ttlMs. Returns Redis's now (ms). */
const ENQUEUE = `${NOW}
redis.call('HSET', KEYS[2], 'tenantId', ARGV[2], 'callId', ARGV[3], 'url', ARGV[4], 'body', ARGV[5], 'createdAt', now, 'attempts', 0)
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('ZADD', KEYS[1], 'NX', now, ARGV[1])
return now`;

/**
 * KEYS: due. ARGV: delivery key prefix, max, leaseMs, claim token. Takes up to `max` due entries, each
 * made due again a lease from now and marked with the token. Returns {now, {id, tenantId, callId, url,
 * body, createdAt, attempts}…}. An id whose hash has expired is removed.
 */
const CLAIM = `${NOW}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {now}
for _, id in ipairs(ids) do
  local key = ARGV[1] .. id
  if redis.call('EXISTS', key) == 0 then
    redis.call('ZREM', KEYS[1], id)
  else
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), id)
    local attempts = redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('HSET', key, 'claim', ARGV[4])
    local f = redis.call('HMGET', key, 'tenantId', 'callId', 'url', 'body', 'createdAt')
    table.insert(out, {id, f[1], f[2], f[3], f[4], f[5], attempts})
  end
end
return out`;

/**
 * KEYS: due, delivery. ARGV: id, token, delayMs, last error. Reschedules only while the claim is still
 * ours: after the lease another gateway may hold it, and its outcome is the one that counts.
 */
const RETRY = `if redis.call('HGET', KEYS[2], 'claim') ~= ARGV[2] then return 0 end
${NOW}
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], 'lastError', ARGV[4])
return 1`;

/** KEYS: due, delivery. ARGV: id. Delivered or given up: gone, whoever holds the claim. */
const REMOVE = `redis.call('ZREM', KEYS[1], ARGV[1])
return redis.call('DEL', KEYS[2])`;

const scripts = { enqueue: new LuaScript(ENQUEUE), claim: new LuaScript(CLAIM), retry: new LuaScript(RETRY), remove: new LuaScript(REMOVE) } as const;

// ─── The queue ───────────────────────────────────────────────────────────────────────────────────

export class DeliveryQueue {
  private readonly o: DeliveryQueueOptions;
  private readonly k: Keys;
  private readonly log: Logger;
  /** Deliveries Redis could not take yet, oldest first. */
  private readonly pending: (Delivery & { readonly id: string })[] = [];
  private readonly inFlight = new Map<string, { done: Promise<void>; abort: AbortController }>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private running = false;
  private lastPollError = 0;
  /** The last poll filled every free slot: more may be due, so a finished try polls again at once. */
  private backlog = false;

  constructor(
    private readonly redis: Redis,
    private readonly deps: DeliveryQueueDeps,
    options: Partial<DeliveryQueueOptions> = {},
  ) {
    this.o = { ...defaultDeliveryQueueOptions, ...options };
    if (this.o.leaseMs <= this.o.timeoutMs) throw new RangeError(`DeliveryQueue: leaseMs (${this.o.leaseMs}) must exceed timeoutMs (${this.o.timeoutMs})`);
    this.k = keys(this.o.prefix);
    this.log = deps.logger ?? rootLogger;
  }

  /**
   * Stores the delivery and makes it due now; returns its id. While Redis cannot take it, it waits in
   * memory (bounded) and is stored by the next poll: nothing is sent before it is in Redis.
   */
  async enqueue(delivery: Delivery): Promise<string> {
    const d = { ...delivery, id: delivery.id ?? randomUUID() };
    try {
      await this.store(d);
    } catch (err) {
      this.hold(d, err);
    }
    return d.id;
  }

  /** Starts polling for due entries. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Stops polling; tries in flight get `stopTimeoutMs`, then are aborted (and due again at once). */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.polling;
    const all = (): Promise<unknown> => Promise.all([...this.inFlight.values()].map((f) => f.done));
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([all().then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), this.o.stopTimeoutMs)))]);
    clearTimeout(timer);
    if (!finished) {
      for (const f of this.inFlight.values()) f.abort.abort();
      await all();
    }
    // One last chance for what waited in memory for Redis.
    while (this.pending.length > 0) {
      try {
        await this.store(this.pending[0]!);
        this.pending.shift();
      } catch {
        this.log.error({ deliveries: this.pending.length }, 'webhook deliveries never reached Redis: lost at shutdown');
        break;
      }
    }
  }

  /** Entries in memory waiting for Redis, and tries in flight. */
  stats(): { pending: number; inFlight: number } {
    return { pending: this.pending.length, inFlight: this.inFlight.size };
  }

  /** @internal Claims up to `max` due entries; the worker's first step, exported for tests. */
  async claimDue(max: number): Promise<ClaimedDelivery[]> {
    const token = randomUUID();
    const reply = (await scripts.claim.run(this.redis, [this.k.webhookDue()], [this.k.webhookDelivery(''), String(max), String(this.o.leaseMs), token], {
      timeoutMs: this.o.commandTimeoutMs,
    })) as [number, ...[string, string, string, string, string, string, number][]];
    const [now, ...rows] = reply;
    return rows.map(([id, tenantId, callId, url, body, createdAt, attempts]) => ({
      id,
      tenantId,
      callId,
      url,
      body,
      createdAtMs: Number(createdAt),
      attempt: Number(attempts),
      claimedAtMs: Number(now),
      token,
    }));
  }

  private async store(d: Delivery & { readonly id: string }): Promise<void> {
    // The hash outlives the last try by a lease and an hour, so an entry lost from the set cannot linger.
    const ttlMs = this.o.maxAgeMs + this.o.maxDelayMs + this.o.leaseMs + 3_600_000;
    await scripts.enqueue.run(this.redis, [this.k.webhookDue(), this.k.webhookDelivery(d.id)], [d.id, d.tenantId, d.callId, d.url, d.body, String(ttlMs)], {
      timeoutMs: this.o.commandTimeoutMs,
    });
  }

  private hold(d: Delivery & { readonly id: string }, err: unknown): void {
    this.pending.push(d);
    if (this.pending.length > this.o.maxPending) {
      const lost = this.pending.shift()!;
      this.log.error({ callId: lost.callId, tenant: lost.tenantId, deliveryId: lost.id }, 'webhook delivery lost: too many waiting for Redis');
    }
    this.log.warn({ callId: d.callId, tenant: d.tenantId, deliveryId: d.id, err: err instanceof Error ? err.message : String(err) }, 'webhook delivery waits in memory: Redis did not take it');
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.polling = this.poll().finally(() => {
        this.polling = undefined;
        this.schedule(this.o.pollMs);
      });
    }, ms);
    // The gateway's servers keep the process alive; a queue alone must not.
    this.timer.unref();
  }

  /** Polls now instead of at the next tick, when the last poll left entries behind. */
  private kick(): void {
    if (!this.running || this.polling || !this.backlog) return;
    clearTimeout(this.timer);
    this.schedule(0);
  }

  private async poll(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        await this.store(this.pending[0]!);
        this.pending.shift();
      }
      const room = this.o.maxInFlight - this.inFlight.size;
      if (room <= 0) return;
      const claimed = await this.claimDue(room);
      this.backlog = claimed.length === room;
      for (const c of claimed) {
        const abort = new AbortController();
        const done = this.attempt(c, abort.signal).finally(() => {
          this.inFlight.delete(c.id);
          this.kick();
        });
        this.inFlight.set(c.id, { done, abort });
      }
    } catch (err) {
      // A Redis outage: the next poll tries again; one warning a minute is enough to see it.
      const now = Date.now();
      if (now - this.lastPollError > 60_000) {
        this.lastPollError = now;
        this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'webhook queue: Redis unavailable; retrying');
      }
    }
  }

  /** One try of one claimed entry; never throws. */
  private async attempt(c: ClaimedDelivery, signal: AbortSignal): Promise<void> {
    const log = this.log.child({ callId: c.callId, tenant: c.tenantId, deliveryId: c.id });
    const started = performance.now();
    const base = { deliveryId: c.id, tenantId: c.tenantId, callId: c.callId, attempt: c.attempt };
    let status: number | undefined;
    let error: DeliveryResult['error'];
    let detail = '';
    try {
      let secret: string | undefined;
      try {
        secret = await this.deps.secretFor(c.tenantId);
      } catch (err) {
        error = 'secret';
        detail = err instanceof Error ? err.message : String(err);
      }
      if (!error && secret === undefined) {
        await this.remove(c);
        log.error({ attempt: c.attempt }, 'webhook delivery dropped: the tenant has no webhook secret any more');
        return this.report({ ...base, outcome: 'dropped', elapsedMs: performance.now() - started });
      }
      if (!error) {
        try {
          const answer = await send(c.url, {
            method: 'POST',
            headers: signedHeaders(secret, c.body, c.id),
            body: c.body,
            timeoutMs: this.o.timeoutMs,
            maxResponseBytes: this.o.maxResponseBytes,
            signal,
          });
          status = answer.status;
          detail = `HTTP ${answer.status}`;
        } catch (err) {
          error = err instanceof SendError ? err.kind : 'network';
          detail = err instanceof Error ? err.message : String(err);
        }
      }
      const elapsedMs = performance.now() - started;
      if (status !== undefined && status >= 200 && status <= 299) {
        await this.remove(c);
        log.info({ attempt: c.attempt, status, elapsedMs: Math.round(elapsedMs) }, 'webhook delivered');
        return this.report({ ...base, outcome: 'delivered', status, elapsedMs });
      }
      const ageMs = c.claimedAtMs + elapsedMs - c.createdAtMs;
      const failure = { ...(status !== undefined ? { status } : {}), ...(error ? { error } : {}) };
      if (ageMs >= this.o.maxAgeMs) {
        await this.remove(c);
        log.error({ attempt: c.attempt, ...failure, ageMs: Math.round(ageMs), host: hostOf(c.url) }, 'webhook delivery dropped: still failing after maxAgeMs');
        return this.report({ ...base, outcome: 'dropped', ...failure, elapsedMs });
      }
      // Stopping: an aborted try is due again at once, for whichever gateway polls next.
      const nextInMs = error === 'aborted' ? 0 : this.backoff(c.attempt);
      await scripts.retry.run(this.redis, [this.k.webhookDue(), this.k.webhookDelivery(c.id)], [c.id, c.token, String(nextInMs), detail.slice(0, 200)], {
        timeoutMs: this.o.commandTimeoutMs,
      });
      log.warn({ attempt: c.attempt, ...failure, nextInMs, host: hostOf(c.url), err: detail.slice(0, 200) }, 'webhook try failed; retrying');
      this.report({ ...base, outcome: 'retry', ...failure, elapsedMs, nextInMs });
    } catch (err) {
      // Redis failed us mid-try: the lease makes the entry due again, so nothing is lost.
      log.warn({ attempt: c.attempt, err: err instanceof Error ? err.message : String(err) }, 'webhook queue: could not record a try; due again after the lease');
    }
  }

  /** The wait after try number `attempt` failed: base · 2^(attempt−1), capped, with jitter. */
  backoff(attempt: number): number {
    const plain = Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** Math.min(attempt - 1, 40));
    return Math.round(plain * (1 + this.o.jitter * (2 * Math.random() - 1)));
  }

  private async remove(c: ClaimedDelivery): Promise<void> {
    await scripts.remove.run(this.redis, [this.k.webhookDue(), this.k.webhookDelivery(c.id)], [c.id], { timeoutMs: this.o.commandTimeoutMs });
  }

  private report(result: DeliveryResult): void {
    try {
      this.deps.onResult?.(result);
    } catch (err) {
      this.log.error({ err: err instanceof Error ? err.message : String(err) }, 'webhook result listener failed');
    }
  }
}
