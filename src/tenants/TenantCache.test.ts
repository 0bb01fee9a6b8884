import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, deletePrefix, testPrefix, type Redis } from './redisClient.js';
import { SecretBox } from './secrets.js';
import { TenantCache } from './TenantCache.js';
import { TenantStore } from './TenantStore.js';
import { startRedis } from './testing/ownRedis.js';
import { describeWith } from '../../tests/support/tools.js';
import { pollUntil } from '../util/testing/wait.js';

const secretKey = randomBytes(32);

describe('TenantCache: two gateway instances on one Redis', () => {
  const prefix = testPrefix();
  let a: Redis;
  let b: Redis;
  let cacheA: TenantCache;
  let cacheB: TenantCache;
  let storeA: TenantStore;

  beforeAll(async () => {
    // Two connections, as two gateway processes would have.
    a = await connectRedis({ prefix });
    b = await connectRedis({ prefix });
    storeA = new TenantStore(a, new SecretBox(secretKey), { prefix });
    cacheA = new TenantCache(storeA, a, { prefix });
    cacheB = new TenantCache(new TenantStore(b, new SecretBox(secretKey), { prefix }), b, { prefix });
    await Promise.all([cacheA.start(), cacheB.start()]);
  });

  afterAll(async () => {
    await cacheA.close();
    await cacheB.close();
    await deletePrefix(a, prefix);
    await a.quit();
    await b.quit();
  });

  it('serves repeat reads from memory, and an update on one instance reaches the other within 1 s', async () => {
    await storeA.create({ id: 'shop', displayName: 'Shop', agentName: 'Ava' });
    expect((await cacheB.get('shop')).agentName).toBe('Ava');
    expect((await cacheB.get('shop')).agentName).toBe('Ava');
    expect(cacheB.stats()).toMatchObject({ hits: 1, misses: 1 });

    await storeA.update('shop', { agentName: 'Max' });
    const changedAt = performance.now();
    await cacheA.invalidate('shop');
    let seen = '';
    while (performance.now() - changedAt < 1000) {
      seen = (await cacheB.get('shop')).agentName;
      if (seen === 'Max') break;
      await sleep(5);
    }
    expect(seen).toBe('Max');
    expect(cacheB.stats().invalidations).toBeGreaterThanOrEqual(1);
  });

  it('an unknown tenant is an error, not a cached hole', async () => {
    await expect(cacheB.get('nobody')).rejects.toMatchObject({ code: 'CG_TENANT_NOT_FOUND' });
  });
});

describeWith(['redis-server'], 'TenantCache when Redis goes away and comes back (a Redis of its own)', () => {
  it('serves cached tenants during the outage, refuses others with CG_REDIS_UNAVAILABLE, recovers after a restart', async () => {
    const prefix = testPrefix();
    const server = await startRedis();
    const client = await connectRedis({ url: server.url, prefix });
    const store = new TenantStore(client, new SecretBox(secretKey), { prefix });
    // refreshMs 0: every get goes to Redis, so the outage path is what answers.
    const cache = new TenantCache(store, client, { prefix, refreshMs: 0, readTimeoutMs: 300 });
    try {
      await cache.start();
      await store.create({ id: 'cached', displayName: 'Cached' });
      await store.create({ id: 'cold', displayName: 'Cold' });
      await cache.get('cached');

      await server.stop();
      expect((await cache.get('cached')).displayName).toBe('Cached');
      expect(cache.stats().stale).toBe(1);
      await expect(cache.get('cold')).rejects.toMatchObject({ code: 'CG_REDIS_UNAVAILABLE', status: 503 });

      // Same port, empty Redis (no persistence): the client reconnects with backoff by itself.
      const again = await startRedis(server.port);
      try {
        await pollUntil(() => client.isReady, (ready) => ready, 5000, 20);
        expect(client.isReady).toBe(true);
        await store.create({ id: 'cold', displayName: 'Cold again' });
        expect((await cache.get('cold')).displayName).toBe('Cold again');
      } finally {
        await cache.close();
        client.destroy();
        await again.stop();
      }
    } finally {
      await server.stop();
    }
  }, 20_000);
});
