import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallgateError } from '../errors.js';
import { CallTokenStore, hashCallToken } from './CallTokenStore.js';
import { CallUrlStore } from './CallUrlStore.js';
import { caught } from './testing/caught.js';
import { connectRedis, deletePrefix, keys, testPrefix, type Redis } from './redisClient.js';
import { TenantStore } from './TenantStore.js';

const prefix = testPrefix();
const k = keys(prefix);
let redis: Redis;
let urls: CallUrlStore;
let tokens: CallTokenStore;

beforeAll(async () => {
  redis = await connectRedis({ prefix });
  urls = new CallUrlStore(redis, { prefix });
  tokens = new CallTokenStore(redis, { prefix });
  await new TenantStore(redis, undefined, { prefix }).create({ id: 'acme', displayName: 'Acme' });
});

afterAll(async () => {
  await deletePrefix(redis, prefix);
  await redis.close();
});

describe('CallTokenStore', () => {
  it('issues a 128-bit token for a call URL and redeems it once, counting the use only then', async () => {
    const u = await urls.create({ tenantId: 'acme', variables: { name: 'Sam' } });
    const now = Date.now();
    const issued = await tokens.issue(u.slug, { now });
    expect(issued).toEqual({ token: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/), expiresAt: new Date(now + 120_000).toISOString(), tenantId: 'acme', slug: u.slug });
    expect((await urls.get(u.slug)).uses).toBe(0);
    expect(await tokens.redeem(issued.token)).toEqual({ slug: u.slug, tenantId: 'acme', variables: { name: 'Sam' }, uses: 1, urlId: u.id });
    expect((await caught(tokens.redeem(issued.token))).code).toBe('CG_CALL_TOKEN_INVALID');
    expect((await urls.get(u.slug)).uses).toBe(1);
  });

  it('lets exactly one of concurrent redeems of one token through', async () => {
    const u = await urls.create({ tenantId: 'acme' });
    const { token } = await tokens.issue(u.slug);
    const clients = await Promise.all(Array.from({ length: 4 }, () => connectRedis({ prefix })));
    const stores = clients.map((c) => new CallTokenStore(c, { prefix }));
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => stores[i % stores.length]!.redeem(token)));
    await Promise.all(clients.map((c) => c.close()));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as CallgateError).code] : []));
    expect(refused).toEqual(Array(19).fill('CG_CALL_TOKEN_INVALID'));
    expect((await urls.get(u.slug)).uses).toBe(1);
  });

  it('refuses unknown, empty and oversized tokens with one code and status 401', async () => {
    for (const token of ['', 'not-a-token', 'A'.repeat(22), 'x'.repeat(10_000)]) {
      const err = await caught(tokens.redeem(token));
      expect(err.code).toBe('CG_CALL_TOKEN_INVALID');
      expect(err.status).toBe(401);
    }
  });

  it('expires after its TTL in Redis, and by the caller-given clock', async () => {
    const u = await urls.create({ tenantId: 'acme' });
    const short = new CallTokenStore(redis, { prefix, ttlMs: 30 });
    const { token } = await short.issue(u.slug);
    const ttl = await redis.pTTL(k.callToken(hashCallToken(token)));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(30);
    await sleep(100);
    expect(await redis.exists(k.callToken(hashCallToken(token)))).toBe(0);
    expect((await caught(short.redeem(token))).code).toBe('CG_CALL_TOKEN_INVALID');

    const now = Date.now();
    const late = await tokens.issue(u.slug, { now });
    expect((await caught(tokens.redeem(late.token, { now: now + 120_000 }))).code).toBe('CG_CALL_TOKEN_INVALID');
    const inTime = await tokens.issue(u.slug, { now });
    expect((await tokens.redeem(inTime.token, { now: now + 119_999 })).uses).toBe(1);
  });

  it('stores only the SHA-256 of the token, with the URL, tenant and origin', async () => {
    const u = await urls.create({ tenantId: 'acme', allowedOrigins: ['https://shop.example.com'] });
    const { token } = await tokens.issue(u.slug, { origin: 'HTTPS://Shop.Example.com/' });
    const found: string[] = [];
    for await (const batch of redis.scanIterator({ MATCH: `${prefix}calltoken:*` })) found.push(...(Array.isArray(batch) ? batch : [batch]));
    expect(found).toContain(k.callToken(hashCallToken(token)));
    for (const key of found) {
      expect(key).not.toContain(token);
      expect(await redis.get(key)).not.toContain(token);
    }
    expect(JSON.parse((await redis.get(k.callToken(hashCallToken(token))))!)).toMatchObject({ slug: u.slug, urlId: u.id, tenantId: 'acme', origin: 'https://shop.example.com' });
  });

  it('checks the page origin at issue and binds it to the token', async () => {
    const u = await urls.create({ tenantId: 'acme', allowedOrigins: ['https://shop.example.com'] });
    for (const origin of ['https://evil.example.com', 'null', undefined]) {
      const err = await caught(tokens.issue(u.slug, { origin }));
      expect(err.code).toBe('CG_CALL_URL_ORIGIN');
      expect(err.status).toBe(403);
    }
    const { token } = await tokens.issue(u.slug, { origin: 'https://shop.example.com' });
    expect(await tokens.redeem(token)).toMatchObject({ origin: 'https://shop.example.com', uses: 1 });

    // A door that knows the call's origin or URL refuses a token issued for another (and the token is spent).
    const other = await urls.create({ tenantId: 'acme' });
    const a = await tokens.issue(u.slug, { origin: 'https://shop.example.com' });
    expect((await caught(tokens.redeem(a.token, { origin: 'https://evil.example.com' }))).code).toBe('CG_CALL_TOKEN_INVALID');
    const b = await tokens.issue(u.slug, { origin: 'https://shop.example.com' });
    expect((await caught(tokens.redeem(b.token, { slug: other.slug }))).code).toBe('CG_CALL_TOKEN_INVALID');
    expect((await caught(tokens.redeem(b.token, { slug: u.slug }))).code).toBe('CG_CALL_TOKEN_INVALID');
    const c = await tokens.issue(u.slug, { origin: 'https://shop.example.com' });
    expect((await tokens.redeem(c.token, { slug: u.slug, origin: 'https://shop.example.com/' })).uses).toBe(2);
  });

  it('refuses to issue for an unknown, disabled, expired or used-up URL, and stores nothing then', async () => {
    const disabled = await urls.create({ tenantId: 'acme', enabled: false });
    const expired = await urls.create({ tenantId: 'acme', expiresAt: '2020-01-01T00:00:00Z' });
    const used = await urls.create({ tenantId: 'acme', maxUses: 1 });
    await urls.use(used.slug);
    const before = await countTokens();
    expect((await caught(tokens.issue('no-such-slug'))).code).toBe('CG_CALL_URL_NOT_FOUND');
    expect((await caught(tokens.issue(disabled.slug))).code).toBe('CG_CALL_URL_DISABLED');
    expect((await caught(tokens.issue(expired.slug))).code).toBe('CG_CALL_URL_EXPIRED');
    expect((await caught(tokens.issue(used.slug))).code).toBe('CG_CALL_URL_EXHAUSTED');
    expect(await countTokens()).toBe(before);
    expect((await urls.get(disabled.slug)).uses).toBe(0);
  });

  it('applies the URL at redeem: a URL disabled since the token was issued refuses, counts nothing, and the token is spent', async () => {
    const u = await urls.create({ tenantId: 'acme' });
    const { token } = await tokens.issue(u.slug);
    await urls.update(u.slug, { enabled: false });
    expect((await caught(tokens.redeem(token))).code).toBe('CG_CALL_URL_DISABLED');
    expect((await urls.get(u.slug)).uses).toBe(0);
    await urls.update(u.slug, { enabled: true });
    expect((await caught(tokens.redeem(token))).code).toBe('CG_CALL_TOKEN_INVALID');
  });

  it("dies with its call URL: a slug deleted and made again by another tenant refuses it, and the new URL's uses are its own", async () => {
    await new TenantStore(redis, undefined, { prefix }).create({ id: 'rival', displayName: 'Rival' });
    await urls.create({ tenantId: 'acme', slug: 'handed-on' });
    const old = await Promise.all(Array.from({ length: 3 }, () => tokens.issue('handed-on')));
    await urls.delete('handed-on');
    const reborn = await urls.create({ tenantId: 'rival', slug: 'handed-on', maxUses: 1 });
    for (const { token } of old) expect((await caught(tokens.redeem(token))).code).toBe('CG_CALL_TOKEN_INVALID');
    // None of the old tokens spent the new URL's one use, and each was spent itself.
    expect((await urls.get('handed-on')).uses).toBe(0);
    expect((await caught(tokens.redeem(old[0]!.token))).code).toBe('CG_CALL_TOKEN_INVALID');
    const fresh = await tokens.issue('handed-on');
    expect(await tokens.redeem(fresh.token)).toMatchObject({ tenantId: 'rival', urlId: reborn.id, uses: 1 });

    // The same holds when the same tenant makes the URL again: old tokens do not carry over.
    await urls.create({ tenantId: 'acme', slug: 'remade', maxUses: 1 });
    const before = await tokens.issue('remade');
    await urls.delete('remade');
    await urls.create({ tenantId: 'acme', slug: 'remade', maxUses: 1 });
    expect((await caught(tokens.redeem(before.token))).code).toBe('CG_CALL_TOKEN_INVALID');
    expect((await urls.get('remade')).uses).toBe(0);
  });

  it('counts maxUses at redeem: many page loads burn nothing, and concurrent redeems of distinct tokens never pass it', async () => {
    const u = await urls.create({ tenantId: 'acme', maxUses: 3 });
    const issued = await Promise.all(Array.from({ length: 12 }, () => tokens.issue(u.slug)));
    expect((await urls.get(u.slug)).uses).toBe(0);
    // Four connections, as four gateway processes would have.
    const clients = await Promise.all(Array.from({ length: 4 }, () => connectRedis({ prefix })));
    const stores = clients.map((c) => new CallTokenStore(c, { prefix }));
    const results = await Promise.allSettled(issued.map(({ token }, i) => stores[i % stores.length]!.redeem(token)));
    await Promise.all(clients.map((c) => c.close()));
    const uses = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.uses] : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as CallgateError).code] : []));
    expect(uses.sort((a, b) => a - b)).toEqual([1, 2, 3]);
    expect(refused).toEqual(Array(9).fill('CG_CALL_URL_EXHAUSTED'));
    expect((await urls.get(u.slug)).uses).toBe(3);
    expect((await caught(tokens.issue(u.slug))).code).toBe('CG_CALL_URL_EXHAUSTED');
  });
});

async function countTokens(): Promise<number> {
  let n = 0;
  for await (const batch of redis.scanIterator({ MATCH: `${prefix}calltoken:*` })) n += Array.isArray(batch) ? batch.length : 1;
  return n;
}
