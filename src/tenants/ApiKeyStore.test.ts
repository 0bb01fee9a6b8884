import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStore, hashApiKey } from './ApiKeyStore.js';
import { caught } from './testing/caught.js';
import { connectRedis, deletePrefix, keys, testPrefix, type Redis } from './redisClient.js';
import { TenantStore } from './TenantStore.js';

const prefix = testPrefix();
const k = keys(prefix);
let redis: Redis;
let store: ApiKeyStore;

beforeAll(async () => {
  redis = await connectRedis({ prefix });
  store = new ApiKeyStore(redis, { prefix });
  const tenants = new TenantStore(redis, undefined, { prefix });
  await tenants.create({ id: 'acme', displayName: 'Acme' });
  await tenants.create({ id: 'other', displayName: 'Other' });
});

afterAll(async () => {
  await deletePrefix(redis, prefix);
  await redis.quit();
});

describe('ApiKeyStore', () => {
  it('makes cgk_<keyId>_<secret> keys stored only as their SHA-256', async () => {
    const created = await store.create('acme', { name: 'billing' });
    expect(created.key).toMatch(/^cgk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(created.key.slice(4, 16)).toBe(created.keyId);
    const raw = await redis.get(k.apiKey(hashApiKey(created.key)));
    expect(raw).not.toBeNull();
    expect(JSON.parse(raw!)).toEqual({ keyId: created.keyId, tenantId: 'acme', name: 'billing', createdAt: created.createdAt });
    // Nowhere under the prefix does the secret appear.
    const secret = created.key.slice(17);
    for await (const batch of redis.scanIterator({ MATCH: `${prefix}*` })) {
      for (const key of Array.isArray(batch) ? batch : [batch]) {
        const type = await redis.type(key);
        const value = type === 'string' ? await redis.get(key) : type === 'hash' ? JSON.stringify(await redis.hGetAll(key)) : '';
        expect(`${key} ${value}`).not.toContain(secret);
      }
    }
    expect(await store.verify(created.key)).toMatchObject({ tenantId: 'acme', keyId: created.keyId });
  });

  it('refuses malformed, unknown and altered keys', async () => {
    const { key } = await store.create('acme');
    const last = key.at(-1) === 'A' ? 'B' : 'A';
    for (const bad of ['', 'cgk_', 'x'.repeat(64), key.slice(0, -1), key.slice(0, -1) + last, `${key}x`]) {
      expect(await store.verify(bad)).toBeUndefined();
    }
  });

  it('lists without secrets, revokes one key at once and all keys of a tenant', async () => {
    const a = await store.create('other', { name: 'a' });
    const b = await store.create('other');
    const list = await store.list('other');
    expect(list.map((i) => i.keyId).sort()).toEqual([a.keyId, b.keyId].sort());
    expect(JSON.stringify(list)).not.toContain(a.key.slice(17));
    await store.delete('other', a.keyId);
    expect(await store.verify(a.key)).toBeUndefined();
    expect(await store.verify(b.key)).toBeDefined();
    expect((await caught(store.delete('other', a.keyId))).code).toBe('CG_API_KEY_NOT_FOUND');
    // A key id of another tenant is not found under this one.
    expect((await caught(store.delete('acme', b.keyId))).code).toBe('CG_API_KEY_NOT_FOUND');
    expect(await store.deleteAll('other')).toBe(1);
    expect(await store.verify(b.key)).toBeUndefined();
    expect(await store.list('other')).toEqual([]);
  });

  it('needs an existing tenant and a valid name', async () => {
    expect((await caught(store.create('nobody'))).code).toBe('CG_TENANT_NOT_FOUND');
    expect((await caught(store.create('acme', { name: '' }))).code).toBe('CG_TENANT_INVALID');
    expect((await caught(store.create('acme', { nme: 'typo' } as never))).code).toBe('CG_TENANT_INVALID');
  });
});
