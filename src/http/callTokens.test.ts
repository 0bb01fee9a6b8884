import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallTokenStore } from '../tenants/CallTokenStore.js';
import { adminRoutes } from './adminApp.js';
import { startAdminApp, type TestAdminApp } from './testing/testKit.js';

/** The public call-token route over real HTTP on 127.0.0.1 against the real Redis (a per-run prefix). */
let t: TestAdminApp;

/** As the web phone asks: no token, no body, the page's Origin when given. */
async function issue(app: TestAdminApp, slug: string, origin?: string) {
  const res = await fetch(`${app.base}/v1/call-urls/${encodeURIComponent(slug)}/token`, { method: 'POST', headers: origin === undefined ? {} : { origin } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

beforeAll(async () => {
  t = await startAdminApp();
  expect((await t.call('POST', '/v1/tenants', { id: 'acme', displayName: 'Acme' })).status).toBe(201);
  expect((await t.call('POST', '/v1/tenants/acme/call-urls', { slug: 'open', maxUses: 1 })).status).toBe(201);
  expect((await t.call('POST', '/v1/tenants/acme/call-urls', { slug: 'shop-only', allowedOrigins: ['https://shop.example.com'] })).status).toBe(201);
  expect((await t.call('POST', '/v1/tenants/acme/call-urls', { slug: 'off', enabled: false })).status).toBe(201);
});

afterAll(async () => {
  await t.close();
});

describe('POST /v1/call-urls/:slug/token', () => {
  it('is public: 201 with a token that starts one call, readable cross-origin and never cached', async () => {
    const res = await issue(t, 'open');
    expect(res.status).toBe(201);
    // No STUN/TURN configured: the page gets an empty iceServers list (tests/webrtc/turn.test.ts has the TURN case).
    expect(res.body).toEqual({ token: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/), expiresAt: expect.any(String), iceServers: [] });
    expect(Date.parse(res.body['expiresAt'] as string)).toBeGreaterThan(Date.now());
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    // Loading the page counted no use; the token does, once.
    expect((await t.call('GET', '/v1/tenants/acme/call-urls/open')).body).toMatchObject({ uses: 0 });
    const tokens = new CallTokenStore(t.redis, { prefix: t.prefix });
    expect(await tokens.redeem(res.body['token'] as string)).toMatchObject({ slug: 'open', tenantId: 'acme', uses: 1 });
    expect((await issue(t, 'open')).body).toMatchObject({ code: 'CG_CALL_URL_EXHAUSTED' });
  });

  it('answers 404 for an unknown slug and 403 for a disabled URL, in the one error shape', async () => {
    expect(await issue(t, 'no-such-slug')).toMatchObject({ status: 404, body: { code: 'CG_CALL_URL_NOT_FOUND' } });
    const off = await issue(t, 'off');
    expect(off).toMatchObject({ status: 403, body: { code: 'CG_CALL_URL_DISABLED', message: expect.any(String) } });
    expect(off.headers.get('access-control-allow-origin')).toBe('*');
  });

  it("checks the page's Origin header against the URL's allowed origins", async () => {
    expect(await issue(t, 'shop-only', 'https://evil.example.com')).toMatchObject({ status: 403, body: { code: 'CG_CALL_URL_ORIGIN' } });
    expect(await issue(t, 'shop-only')).toMatchObject({ status: 403, body: { code: 'CG_CALL_URL_ORIGIN' } });
    const ok = await issue(t, 'shop-only', 'https://shop.example.com');
    expect(ok.status).toBe(201);
    const tokens = new CallTokenStore(t.redis, { prefix: t.prefix });
    expect(await tokens.redeem(ok.body['token'] as string)).toMatchObject({ origin: 'https://shop.example.com', uses: 1 });
  });

  it("is bound to the call URL, not its slug: after the slug is deleted and re-made by another tenant, the token starts nothing (issue 24)", async () => {
    expect((await t.call('POST', '/v1/tenants', { id: 'rival', displayName: 'Rival' })).status).toBe(201);
    expect((await t.call('POST', '/v1/tenants/acme/call-urls', { slug: 'recycled', maxUses: 5 })).status).toBe(201);
    const old = await issue(t, 'recycled');
    expect(old.status).toBe(201);
    expect((await t.call('DELETE', '/v1/tenants/acme/call-urls/recycled')).status).toBe(204);
    const remade = await t.call('POST', '/v1/tenants/rival/call-urls', { slug: 'recycled', maxUses: 1 });
    expect(remade.body).toMatchObject({ tenantId: 'rival', uses: 0 });
    const tokens = new CallTokenStore(t.redis, { prefix: t.prefix });
    expect(await tokens.redeem(old.body['token'] as string).catch((e: { code: string }) => e.code)).toBe('CG_CALL_TOKEN_INVALID');
    // The new URL's single use is still there for its own page.
    expect((await t.call('GET', '/v1/tenants/rival/call-urls/recycled')).body).toMatchObject({ uses: 0, id: remade.body!['id'] });
    const fresh = await issue(t, 'recycled');
    expect(await tokens.redeem(fresh.body['token'] as string)).toMatchObject({ tenantId: 'rival', uses: 1 });
  });

  it('is listed as a public route and documented in the OpenAPI spec without security', async () => {
    expect(adminRoutes(t.app)).toContainEqual({ method: 'POST', url: '/v1/call-urls/:slug/token', access: 'public' });
    const spec = (await (await fetch(`${t.base}/docs/json`)).json()) as { paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, unknown> }>> };
    const op = spec.paths['/v1/call-urls/{slug}/token']?.['post'];
    expect(op?.security).toEqual([]);
    expect(Object.keys(op?.responses ?? {})).toContain('201');
  });

  it('has its own per-IP limit, tighter than the API-wide one, answered with 429', async () => {
    const small = await startAdminApp({ callTokens: { perIp: 3 } });
    try {
      await small.call('POST', '/v1/tenants', { id: 'acme', displayName: 'Acme' });
      await small.call('POST', '/v1/tenants/acme/call-urls', { slug: 'open' });
      const statuses: number[] = [];
      // Refused requests (an unknown slug) count too: probing slugs costs the same budget.
      for (const slug of ['open', 'no-such-slug', 'open', 'open']) statuses.push((await issue(small, slug)).status);
      expect(statuses).toEqual([201, 404, 201, 429]);
      const limited = await issue(small, 'open');
      expect(limited.body).toMatchObject({ code: 'CG_HTTP_RATE_LIMITED', details: { limit: 3 } });
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(limited.headers.get('access-control-allow-origin')).toBe('*');
      // The admin API is not held back by the token route's budget.
      expect((await small.call('GET', '/v1/tenants/acme')).status).toBe(200);
    } finally {
      await small.close();
    }
  });
});

describe('a phone framed on another site (the call button)', () => {
  const ask = (app: TestAdminApp, slug: string, headers: Record<string, string>) =>
    fetch(`${app.base}/v1/call-urls/${slug}/token`, { method: 'POST', headers }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }));

  it("checks the site it reports when the request comes from the gateway's own origin, and only then", async () => {
    const embedded = { 'x-callgate-embedder': 'https://shop.example.com' };
    expect((await ask(t, 'shop-only', { origin: t.base, ...embedded })).status).toBe(201);
    expect((await ask(t, 'shop-only', { origin: t.base, 'x-callgate-embedder': 'https://evil.example' })).body['code']).toBe('CG_CALL_URL_ORIGIN');
    // Another site cannot claim to be framed by an allowed one.
    expect((await ask(t, 'shop-only', { origin: 'https://evil.example', ...embedded })).body['code']).toBe('CG_CALL_URL_ORIGIN');
  });

  it('behind a proxy that rewrites Host, PUBLIC_BASE_URL is the own origin', async () => {
    const proxied = await startAdminApp({ publicBaseUrl: 'https://calls.example.com' });
    try {
      expect((await proxied.call('POST', '/v1/tenants', { id: 'acme', displayName: 'Acme' })).status).toBe(201);
      expect((await proxied.call('POST', '/v1/tenants/acme/call-urls', { slug: 'shop-only', allowedOrigins: ['https://shop.example.com'] })).status).toBe(201);
      expect((await ask(proxied, 'shop-only', { origin: 'https://calls.example.com', 'x-callgate-embedder': 'https://shop.example.com' })).status).toBe(201);
      expect((await ask(proxied, 'shop-only', { origin: 'https://other.example.com', 'x-callgate-embedder': 'https://shop.example.com' })).body['code']).toBe('CG_CALL_URL_ORIGIN');
    } finally {
      await proxied.close();
    }
  });
});
