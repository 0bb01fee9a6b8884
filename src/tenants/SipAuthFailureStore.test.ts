import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caught } from './testing/caught.js';
import { connectRedis, deletePrefix, keys, testPrefix, type Redis } from './redisClient.js';
import { SipAuthFailureStore, usernameId } from './SipAuthFailureStore.js';

/** The failure counts and lockouts against the real Redis (per-run prefix), on Redis's own clock. */
const prefix = testPrefix();
const k = keys(prefix);
let redis: Redis;

beforeAll(async () => {
  redis = await connectRedis({ prefix });
});

afterAll(async () => {
  await deletePrefix(redis, prefix);
  await redis.close();
});

let n = 0;
/** A username and a source no other test uses. */
const fresh = (): { username: string; source: string } => ({ username: `desk-${++n}`, source: `198.51.100.${n}` });

describe('SipAuthFailureStore', () => {
  it('locks the username and the source at the fifth failure, for the lockout, without counting attempts while locked', async () => {
    const store = new SipAuthFailureStore(redis, { prefix, lockoutMs: 60_000 });
    const who = fresh();
    for (let i = 0; i < 4; i++) expect(await store.fail(who)).toEqual({ user: 0, source: 0 });
    expect(await store.check(who)).toEqual({ user: 0, source: 0 });
    expect(await store.fail(who)).toEqual({ user: 60_000, source: 60_000 });
    const locked = await store.check(who);
    expect(locked.user).toBeGreaterThan(59_000);
    expect(locked.user).toBeLessThanOrEqual(60_000);
    expect(locked.source).toBeGreaterThan(59_000);
    // Attempts during the lockout start nothing and extend nothing.
    for (let i = 0; i < 10; i++) expect(await store.fail(who)).toEqual({ user: 0, source: 0 });
    expect((await store.check(who)).user).toBeLessThanOrEqual(locked.user);
    // The key expires with its lockout: nothing is kept for ever.
    const ttl = await redis.pTTL(k.sipAuth('user', usernameId(who.username)));
    expect(ttl).toBeGreaterThan(0);
  });

  it('counts usernames and sources apart: one user from many sources, many users from one source', async () => {
    const store = new SipAuthFailureStore(redis, { prefix });
    const base = fresh();
    // One username guessed from five addresses: the username is locked, no address is.
    const spread = Array.from({ length: 5 }, (_, i) => ({ username: base.username, source: `203.0.113.${i + 1}` }));
    const outcomes = [];
    for (const who of spread) outcomes.push(await store.fail(who));
    expect(outcomes.at(-1)).toMatchObject({ user: expect.any(Number) });
    expect(outcomes.at(-1)!.user).toBeGreaterThan(0);
    expect(outcomes.map((o) => o.source)).toEqual([0, 0, 0, 0, 0]);
    expect((await store.check({ username: 'someone-else', source: '203.0.113.1' })).source).toBe(0);
    // Five usernames from one address (password spraying): the address is locked, no username is.
    const spray = Array.from({ length: 5 }, (_, i) => ({ username: `${base.username}-spray-${i}`, source: base.source }));
    const sprayed = [];
    for (const who of spray) sprayed.push(await store.fail(who));
    expect(sprayed.map((o) => o.user)).toEqual([0, 0, 0, 0, 0]);
    expect(sprayed.at(-1)!.source).toBeGreaterThan(0);
    expect(await store.check({ username: 'a-real-device', source: base.source })).toMatchObject({ user: 0, source: expect.any(Number) });
    expect((await store.check({ username: 'a-real-device', source: base.source })).source).toBeGreaterThan(0);
  });

  it('forgets failures older than the window', async () => {
    const store = new SipAuthFailureStore(redis, { prefix, windowMs: 300 });
    const who = fresh();
    for (let i = 0; i < 4; i++) await store.fail(who);
    await sleep(350);
    for (let i = 0; i < 4; i++) expect(await store.fail(who)).toEqual({ user: 0, source: 0 });
    expect(await store.fail(who)).toMatchObject({ user: 15 * 60_000 });
  });

  it('lets a locked username back in when its lockout ends, and doubles the next lockout up to the cap', async () => {
    const store = new SipAuthFailureStore(redis, { prefix, maxFailures: 2, lockoutMs: 150, maxLockoutMs: 400 });
    const who = fresh();
    const lockouts: number[] = [];
    for (let round = 0; round < 4; round++) {
      await store.fail(who);
      lockouts.push((await store.fail(who)).user);
      expect((await store.check(who)).user).toBeGreaterThan(0);
      await sleep(lockouts.at(-1)! + 30);
      expect(await store.check(who)).toEqual({ user: 0, source: 0 });
    }
    expect(lockouts).toEqual([150, 300, 400, 400]);
  });

  it("clears a username's count on success, but not the source's", async () => {
    const store = new SipAuthFailureStore(redis, { prefix });
    const who = fresh();
    for (let i = 0; i < 4; i++) await store.fail(who);
    await store.succeeded(who);
    // The username starts again from zero; the source is one failure from its lockout.
    expect(await store.fail({ username: who.username, source: '192.0.2.200' })).toEqual({ user: 0, source: 0 });
    expect(await store.fail({ username: `${who.username}-other`, source: who.source })).toMatchObject({ user: 0 });
    expect((await store.check(who)).source).toBeGreaterThan(0);
    await store.clear('source', who.source);
    expect(await store.check(who)).toEqual({ user: 0, source: 0 });
  });

  it('keeps no caller text in key names, and keys of any length stay fixed-size', async () => {
    const store = new SipAuthFailureStore(redis, { prefix });
    const long = `x${'\u0000é"'.repeat(5000)}`;
    await store.fail({ username: long, source: '192.0.2.77' });
    const names: string[] = [];
    for await (const batch of redis.scanIterator({ MATCH: `${prefix}sipauth:*`, COUNT: 1000 })) names.push(...(Array.isArray(batch) ? batch : [batch]));
    expect(names.some((name) => name.includes('\u0000') || name.length > prefix.length + 60)).toBe(false);
    expect(names).toContain(k.sipAuth('user', usernameId(long)));
  });

  it('reports exactly one lockout when many gateways count the same failures at once', async () => {
    const clients = await Promise.all(Array.from({ length: 4 }, () => connectRedis({ prefix })));
    try {
      const stores = clients.map((c) => new SipAuthFailureStore(c, { prefix }));
      const who = fresh();
      const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => stores[i % stores.length]!.fail(who)));
      expect(outcomes.filter((o) => o.user > 0)).toHaveLength(1);
      expect(outcomes.filter((o) => o.source > 0)).toHaveLength(1);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  it('fails with CG_REDIS_UNAVAILABLE when Redis cannot answer', async () => {
    const client = await connectRedis({ prefix });
    await client.close();
    const store = new SipAuthFailureStore(client, { prefix });
    expect((await caught(store.check(fresh()))).code).toBe('CG_REDIS_UNAVAILABLE');
    expect((await caught(store.fail(fresh()))).code).toBe('CG_REDIS_UNAVAILABLE');
  });
});
