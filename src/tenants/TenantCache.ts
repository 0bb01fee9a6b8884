import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { CallgateError, isCallgateError } from '../errors.js';
import { rootLogger } from '../log.js';
import { keys, type Redis } from './redisClient.js';
import type { Tenant } from './schema.js';
import { redisFailure } from './storeUtil.js';
import type { TenantStore } from './TenantStore.js';

/**
 * Each gateway process keeps the tenants its calls use in memory: a call reads its tenant once at
 * setup, from here. Changes reach every process through a Redis pub/sub channel (an admin write
 * publishes the tenant id; every cache drops it), so a change is live everywhere within the time a
 * message takes (milliseconds; the issue asks for 1 s).
 *
 * When Redis is unreachable, tenants already cached keep being served for `staleMaxMs`, so calls for
 * active tenants still connect; others are refused with CG_REDIS_UNAVAILABLE (SIP 503 / HTTP 503).
 */
export interface TenantCacheOptions {
  readonly prefix: string;
  /** Entries are re-read after this even without an invalidation (a missed message heals itself). */
  readonly refreshMs: number;
  /** During an outage, how old a cached tenant may be and still be served. */
  readonly staleMaxMs: number;
  /** A Redis read slower than this counts as an outage (calls cannot wait on a reconnect). */
  readonly readTimeoutMs: number;
  readonly logger: Logger;
}

export const defaultTenantCacheOptions = {
  prefix: 'callgate:',
  /** 60 s. */
  refreshMs: 60_000,
  /** 10 minutes: long enough to ride out a Redis failover or restart, short enough not to serve a tenant that was closed long ago. */
  staleMaxMs: 10 * 60_000,
  /** 500 ms. */
  readTimeoutMs: 500,
  logger: rootLogger,
} as const satisfies TenantCacheOptions;

interface Entry {
  readonly tenant: Tenant;
  readonly loadedAt: number;
}

export class TenantCache {
  private readonly opts: TenantCacheOptions;
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<Tenant>>();
  private subscriber: Redis | undefined;
  private readonly channel: string;
  private counters = { hits: 0, misses: 0, stale: 0, invalidations: 0 };

  constructor(
    private readonly store: TenantStore,
    private readonly redis: Redis,
    options: Partial<TenantCacheOptions> = {},
  ) {
    this.opts = { ...defaultTenantCacheOptions, ...options };
    this.channel = keys(this.opts.prefix).invalidations();
  }

  /** Subscribes to invalidations (a second connection: a subscribed one can do nothing else). */
  async start(): Promise<void> {
    if (this.subscriber) return;
    const sub = this.redis.duplicate();
    sub.on('error', (err: Error) => this.opts.logger.debug({ err: err.message }, 'redis subscriber error'));
    // Back after a disconnect: invalidations may have been missed meanwhile, so start fresh.
    let connectedOnce = false;
    sub.on('ready', () => {
      if (connectedOnce) this.entries.clear();
      connectedOnce = true;
    });
    await sub.connect();
    await sub.subscribe(this.channel, (message: string) => {
      this.counters.invalidations++;
      if (message === '*') this.entries.clear();
      else this.entries.delete(message);
    });
    this.subscriber = sub;
  }

  /** The tenant for a new call: from memory when fresh, else from Redis; stale during an outage. */
  async get(id: string): Promise<Tenant> {
    const entry = this.entries.get(id);
    const now = performance.now();
    if (entry && now - entry.loadedAt < this.opts.refreshMs) {
      this.counters.hits++;
      return entry.tenant;
    }
    this.counters.misses++;
    try {
      return await this.load(id);
    } catch (err) {
      const outage = isCallgateError(err) && err.code === 'CG_REDIS_UNAVAILABLE';
      if (outage && entry && now - entry.loadedAt < this.opts.staleMaxMs) {
        this.counters.stale++;
        this.opts.logger.warn({ tenant: id, ageMs: Math.round(now - entry.loadedAt) }, 'redis unavailable: serving the cached tenant');
        return entry.tenant;
      }
      throw err;
    }
  }

  /** Tells every gateway (this one included) that a tenant changed; `'*'` for all. */
  async invalidate(id: string): Promise<void> {
    this.entries.delete(id);
    await this.redis.publish(this.channel, id);
  }

  stats(): { entries: number; hits: number; misses: number; stale: number; invalidations: number } {
    return { entries: this.entries.size, ...this.counters };
  }

  async close(): Promise<void> {
    const sub = this.subscriber;
    this.subscriber = undefined;
    if (sub) await sub.quit().catch(() => sub.destroy());
  }

  private load(id: string): Promise<Tenant> {
    const pending = this.inFlight.get(id);
    if (pending) return pending;
    const loading = withTimeout(this.store.getWithSecrets(id), this.opts.readTimeoutMs)
      .then((tenant) => {
        this.entries.set(id, { tenant, loadedAt: performance.now() });
        return tenant;
      })
      .finally(() => this.inFlight.delete(id));
    this.inFlight.set(id, loading);
    return loading;
  }
}

/** A read that errors for connection reasons or takes too long is an outage (CG_REDIS_UNAVAILABLE); see redisFailure. */
async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new CallgateError('CG_REDIS_UNAVAILABLE', `no answer within ${ms} ms`)), ms);
      }),
    ]);
  } catch (err) {
    throw redisFailure(err, 'tenant read');
  } finally {
    clearTimeout(timer);
  }
}
