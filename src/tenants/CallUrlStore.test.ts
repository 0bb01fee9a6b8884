import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallgateError } from '../errors.js';
import { CallUrlStore, randomSlug } from './CallUrlStore.js';
import { caught } from './testing/caught.js';
import { connectRedis, deletePrefix, keys, testPrefix, type Redis } from './redisClient.js';
import { TenantStore } from './TenantStore.js';

const prefix = testPrefix();
const k = keys(prefix);
let redis: Redis;
let urls: CallUrlStore;

beforeAll(async () => {
  redis = await connectRedis({ prefix });
  urls = new CallUrlStore(redis, { prefix, publicBaseUrl: 'https://calls.example.com/' });
  const tenants = new TenantStore(redis, undefined, { prefix });
  await tenants.create({ id: 'acme', displayName: 'Acme' });
  await tenants.create({ id: 'other', displayName: 'Other' });
});

afterAll(async () => {
  await deletePrefix(redis, prefix);
  await redis.close();
});

describe('CallUrlStore', () => {
  it('makes an unguessable 22-character slug and the full URL', async () => {
    const a = await urls.create({ tenantId: 'acme', variables: { name: 'Sam' } });
    const b = await urls.create({ tenantId: 'acme' });
    expect(a.slug).toMatch(/^[A-Za-z0-9]{22}$/);
    expect(a.slug).not.toBe(b.slug);
    expect(a).toMatchObject({ tenantId: 'acme', variables: { name: 'Sam' }, enabled: true, uses: 0, url: `https://calls.example.com/c/${a.slug}` });
    expect(await urls.get(a.slug)).toEqual(a);
  });

  it('makes slugs of letters and digits only, never starting or ending with - or _ (a mail client cuts those)', () => {
    // base64url slugs start with - or _ one time in 32: 3000 of them all but surely would.
    const slugs = Array.from({ length: 3000 }, () => randomSlug());
    expect(slugs.filter((s) => !/^[A-Za-z0-9]{22}$/.test(s))).toEqual([]);
    expect(new Set(slugs).size).toBe(3000);
  });

  it('takes a readable slug, refuses a taken one, and needs an existing tenant', async () => {
    const u = await urls.create({ tenantId: 'acme', slug: 'acme-spring' });
    expect(u.url).toBe('https://calls.example.com/c/acme-spring');
    expect((await caught(urls.create({ tenantId: 'other', slug: 'acme-spring' }))).code).toBe('CG_CALL_URL_EXISTS');
    expect((await caught(urls.create({ tenantId: 'nobody' }))).code).toBe('CG_TENANT_NOT_FOUND');
    const bad = await caught(urls.create({ tenantId: 'acme', slug: 'a b', maxUses: 0, allowedOrigins: ['not a url'] }));
    expect(bad.code).toBe('CG_TENANT_INVALID');
    expect((bad.details?.['issues'] as { path: string }[]).map((i) => i.path).sort()).toEqual(['allowedOrigins.0', 'maxUses', 'slug']);
  });

  it('lists by tenant, updates (keeping the use count) and deletes', async () => {
    await urls.create({ tenantId: 'other', slug: 'other-1' });
    const other2 = await urls.create({ tenantId: 'other', slug: 'other-2', variables: { a: '1' } });
    expect((await urls.listByTenant('other')).map((u) => u.slug)).toEqual(['other-1', 'other-2']);
    await urls.use('other-2');
    const updated = await urls.update('other-2', { variables: { b: '2' }, maxUses: 5 });
    expect(updated).toMatchObject({ variables: { a: '1', b: '2' }, maxUses: 5, uses: 1 });
    expect((await urls.update('other-2', { maxUses: null })).maxUses).toBeUndefined();
    expect((await caught(urls.update('other-2', { tenantId: 'acme' }))).code).toBe('CG_TENANT_INVALID');
    expect((await caught(urls.update('other-2', { expiresAt: 'tomorrow' }))).details?.['issues']).toEqual([expect.objectContaining({ path: 'expiresAt' })]);
    await urls.delete('other-1');
    expect((await urls.listByTenant('other')).map((u) => u.slug)).toEqual(['other-2']);
    expect((await caught(urls.delete('other-1'))).code).toBe('CG_CALL_URL_NOT_FOUND');
    await urls.delete('other-2');
    expect(await redis.exists([k.callUrl('other-2'), k.callUrlUses(other2.id!), k.tenantCallUrls('other')])).toBe(0);
  });

  it('use() returns the tenant and variables and counts', async () => {
    const u = await urls.create({ tenantId: 'acme', slug: 'acme-use', variables: { name: 'Kim' } });
    expect(await urls.use(u.slug)).toEqual({ slug: 'acme-use', tenantId: 'acme', variables: { name: 'Kim' }, uses: 1, urlId: u.id });
    expect((await urls.use(u.slug)).uses).toBe(2);
    expect((await urls.get(u.slug)).uses).toBe(2);
    expect((await caught(urls.use('no-such-slug'))).code).toBe('CG_CALL_URL_NOT_FOUND');
  });

  it('never passes maxUses under 50 concurrent uses', async () => {
    const u = await urls.create({ tenantId: 'acme', maxUses: 7 });
    // Five connections, as five gateway processes would have.
    const clients = await Promise.all(Array.from({ length: 5 }, () => connectRedis({ prefix })));
    const stores = clients.map((c) => new CallUrlStore(c, { prefix }));
    const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => stores[i % stores.length]!.use(u.slug)));
    await Promise.all(clients.map((c) => c.close()));
    const ok = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<{ uses: number }>).value.uses);
    const refused = results.filter((r) => r.status === 'rejected').map((r) => ((r as PromiseRejectedResult).reason as CallgateError).code);
    expect(ok.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(refused).toEqual(Array(43).fill('CG_CALL_URL_EXHAUSTED'));
    expect((await urls.get(u.slug)).uses).toBe(7);
    const err = await caught(urls.use(u.slug));
    expect(err.status).toBe(410);
  });

  it('refuses after expiry', async () => {
    const expiresAt = '2030-01-01T00:00:00Z';
    const u = await urls.create({ tenantId: 'acme', expiresAt });
    const at = Date.parse(expiresAt);
    expect((await urls.use(u.slug, undefined, at - 1)).uses).toBe(1);
    const err = await caught(urls.use(u.slug, undefined, at));
    expect(err.code).toBe('CG_CALL_URL_EXPIRED');
    expect(err.status).toBe(410);
    const past = await urls.create({ tenantId: 'acme', expiresAt: '2020-01-01T00:00:00+02:00' });
    expect((await caught(urls.use(past.slug))).code).toBe('CG_CALL_URL_EXPIRED');
    // Refusals do not count as uses.
    expect((await urls.get(past.slug)).uses).toBe(0);
  });

  it('checks the page origin when origins are listed', async () => {
    const u = await urls.create({ tenantId: 'acme', allowedOrigins: ['https://shop.example.com/', 'http://localhost:8080'] });
    expect(u.allowedOrigins).toEqual(['https://shop.example.com', 'http://localhost:8080']);
    await expect(urls.use(u.slug, 'https://shop.example.com')).resolves.toMatchObject({ tenantId: 'acme' });
    await expect(urls.use(u.slug, 'HTTPS://SHOP.example.com')).resolves.toMatchObject({ tenantId: 'acme' });
    await expect(urls.use(u.slug, 'http://localhost:8080')).resolves.toMatchObject({ tenantId: 'acme' });
    for (const origin of ['https://evil.example.com', 'http://shop.example.com', 'null', 'garbage', undefined]) {
      const err = await caught(urls.use(u.slug, origin));
      expect(err.code).toBe('CG_CALL_URL_ORIGIN');
      expect(err.status).toBe(403);
    }
    const open = await urls.create({ tenantId: 'acme' });
    await expect(urls.use(open.slug, 'https://anywhere.example')).resolves.toMatchObject({ uses: 1 });
  });

  it('refuses a lone UTF-16 surrogate, which Redis could not read back (every token request was a 500)', async () => {
    // Found by the fuzzer (npm run fuzz -- --target api): created with 201, then check()/use() failed in
    // cjson.decode ("invalid unicode escape") for every page load and call through the URL.
    for (const input of [{ variables: { name: '\ud800' } }, { variables: { name: 'x\udc00' } }, { allowedOrigins: ['foo:\ud800'] }]) {
      const refused = await caught(urls.create({ tenantId: 'acme', ...input }));
      expect(refused.code).toBe('CG_TENANT_INVALID');
      expect(refused.message).toMatch(/lone surrogate/);
    }
    const u = await urls.create({ tenantId: 'acme', slug: 'surrogate-ok', variables: { name: 'Zoë 😀' } });
    expect((await caught(urls.update(u.slug, { variables: { name: '\ud83d' } }))).code).toBe('CG_TENANT_INVALID');
    // A surrogate pair (an emoji) is well-formed and round-trips through the Lua check.
    expect((await urls.check(u.slug)).variables).toEqual({ name: 'Zoë 😀' });
  });

  it('gives each URL a random, immutable id; a slug deleted and made again is a new URL with its own use count', async () => {
    const first = await urls.create({ tenantId: 'acme', slug: 'reborn', maxUses: 2 });
    expect(first.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    await urls.use('reborn');
    await urls.use('reborn');
    expect((await caught(urls.use('reborn'))).code).toBe('CG_CALL_URL_EXHAUSTED');
    // Edits keep the id and the count; the id cannot be changed.
    expect(await urls.update('reborn', { variables: { a: 'b' } })).toMatchObject({ id: first.id, uses: 2 });
    expect((await caught(urls.update('reborn', { id: 'x'.repeat(22) }))).details?.['issues']).toEqual([{ path: 'id', message: 'cannot be changed' }]);
    expect((await urls.update('reborn', { id: first.id! })).id).toBe(first.id);

    await urls.delete('reborn');
    expect(await redis.exists(k.callUrlUses(first.id!))).toBe(0);
    const second = await urls.create({ tenantId: 'other', slug: 'reborn', maxUses: 2 });
    expect(second.id).not.toBe(first.id);
    expect(second.uses).toBe(0);
    expect((await urls.use('reborn')).urlId).toBe(second.id);
    expect((await urls.get('reborn')).uses).toBe(1);
    // use() bound to an id: the slug must still name that URL.
    expect((await caught(urls.use('reborn', undefined, Date.now(), { urlId: first.id! }))).code).toBe('CG_CALL_TOKEN_INVALID');
    expect((await caught(urls.check('reborn', undefined, Date.now(), { urlId: '' }))).code).toBe('CG_CALL_TOKEN_INVALID');
    expect((await urls.use('reborn', undefined, Date.now(), { urlId: second.id! })).uses).toBe(2);
    expect((await urls.listByTenant('other')).find((u) => u.slug === 'reborn')).toMatchObject({ id: second.id, uses: 2 });
  });

  it('keeps serving URLs made before ids: their count stays by slug, and a new URL under the slug starts afresh', async () => {
    // As an earlier version stored it: no id, the count at callurl:<slug>:uses.
    const legacy = { slug: 'legacy', tenantId: 'acme', variables: {}, allowedOrigins: [], enabled: true, maxUses: 3, createdAt: '2024-01-01T00:00:00.000Z' };
    await redis.set(k.callUrl('legacy'), JSON.stringify(legacy));
    await redis.sAdd(k.tenantCallUrls('acme'), 'legacy');
    await redis.set(k.legacyCallUrlUses('legacy'), '2');
    expect(await urls.get('legacy')).toMatchObject({ uses: 2 });
    expect((await urls.get('legacy')).id).toBeUndefined();
    const used = await urls.use('legacy', undefined, Date.now(), { urlId: '' });
    expect(used.uses).toBe(3);
    expect(used).not.toHaveProperty('urlId');
    expect((await caught(urls.use('legacy'))).code).toBe('CG_CALL_URL_EXHAUSTED');
    expect((await urls.update('legacy', { maxUses: 4 })).id).toBeUndefined();
    expect((await urls.use('legacy')).uses).toBe(4);
    await urls.delete('legacy');
    expect(await redis.exists(k.legacyCallUrlUses('legacy'))).toBe(0);
    const renewed = await urls.create({ tenantId: 'acme', slug: 'legacy', maxUses: 3 });
    expect(renewed).toMatchObject({ uses: 0, id: expect.any(String) });
  });

  it('refuses a disabled URL until it is enabled again', async () => {
    const u = await urls.create({ tenantId: 'acme', enabled: false });
    const err = await caught(urls.use(u.slug));
    expect(err.code).toBe('CG_CALL_URL_DISABLED');
    expect(err.status).toBe(403);
    await urls.update(u.slug, { enabled: true });
    expect((await urls.use(u.slug)).uses).toBe(1);
  });
});
