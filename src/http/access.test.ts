import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loggerTo } from '../log.js';
import { adminRoutes, type AdminRoute } from './adminApp.js';
import { AuthFailureLog, bearerToken } from './auth.js';
import { startAdminApp, type TestAdminApp } from './testing/testKit.js';

/** Who may call what, walked over every route the app registers, plus the rate limits. */
let t: TestAdminApp;
let acmeKey: string;
let otherKey: string;

/** A concrete path for a route pattern; `:id` becomes `tenant`. */
function pathFor(route: AdminRoute, tenant: string): string {
  return route.url
    .replace(':id', tenant)
    .replace(':slug', 'some-link')
    .replace(':number', encodeURIComponent('+14155550100'))
    .replace(':keyId', '0123456789ab')
    .replace(':name', 'carrier-a')
    .replace(':username', 'front-desk')
    .replace('*', 'index.html');
}

const apiRoutes = (): AdminRoute[] => adminRoutes(t.app).filter((r) => r.method !== 'HEAD' && r.url.startsWith('/v1/'));

beforeAll(async () => {
  // The WebRTC door's route is listed only when a door is given; this one is never called here.
  t = await startAdminApp({ webrtc: { answer: () => Promise.reject(new Error('not called')) } });
  for (const id of ['acme', 'other']) expect((await t.call('POST', '/v1/tenants', { id, displayName: id })).status).toBe(201);
  acmeKey = (await t.call('POST', '/v1/tenants/acme/keys', {})).body!['key'] as string;
  otherKey = (await t.call('POST', '/v1/tenants/other/keys', {})).body!['key'] as string;
});

afterAll(async () => {
  await t.close();
});

describe('admin API access', () => {
  it('declares access on every route: tenant routes are exactly the /v1/tenants/:id ones, docs are public', () => {
    const routes = adminRoutes(t.app);
    const tenantScoped = routes.filter((r) => r.access === 'tenant');
    expect(tenantScoped.length).toBeGreaterThanOrEqual(10);
    for (const r of tenantScoped) expect(r.url).toMatch(/^\/v1\/tenants\/:id(\/|$)/);
    // Public: the docs, and the call-token route the web phone calls before it has anything to authenticate with.
    for (const r of routes.filter((r) => r.access === 'public')) expect(r.url).toMatch(/^\/docs|^\/v1\/call-urls\/:slug\/token$|^\/v1\/webrtc\/offer$|^\/c\/:slug$|^\/web-phone\/app\.(js|css)$|^\/$|^\/favicon\.ico$|^\/widget\.js$|^\/guide\/admin$|^\/r\/:roomId$|^\/web-phone\/room\.js$|^\/v1\/rooms\/:roomId\/ws$/);
    expect(routes.some((r) => r.url === '/docs/json' && r.access === 'public')).toBe(true);
  });

  it("refuses every tenant-scoped route to another tenant's key with 403, before touching anything", async () => {
    const scoped = apiRoutes().filter((r) => r.url.startsWith('/v1/tenants/:id'));
    expect(scoped.length).toBeGreaterThanOrEqual(15);
    const seen: string[] = [];
    for (const route of scoped) {
      const res = await t.call(route.method, pathFor(route, 'acme'), ['GET', 'DELETE'].includes(route.method) ? undefined : {}, otherKey);
      expect(res.status, `${route.method} ${route.url}`).toBe(403);
      expect(res.body).toMatchObject({ code: 'CG_HTTP_FORBIDDEN' });
      seen.push(`${route.method} ${route.url}`);
    }
    expect(seen).toEqual(
      expect.arrayContaining([
        'DELETE /v1/tenants/:id/call-urls/:slug', 'POST /v1/tenants/:id/greeting-preview', 'GET /v1/tenants/:id/active-calls',
        'POST /v1/tenants/:id/devices', 'GET /v1/tenants/:id/devices', 'GET /v1/tenants/:id/devices/:username', 'PATCH /v1/tenants/:id/devices/:username', 'DELETE /v1/tenants/:id/devices/:username',
      ]),
    );
    expect((await t.call('GET', '/v1/tenants/acme')).body).toMatchObject({ id: 'acme' });
  });

  it("refuses admin-only routes to a tenant key, even for the key's own tenant", async () => {
    const adminOnly = apiRoutes().filter((r) => r.access === 'admin');
    expect(adminOnly.map((r) => `${r.method} ${r.url}`)).toEqual(
      expect.arrayContaining(['GET /v1/tenants', 'POST /v1/tenants', 'POST /v1/tenants/:id/keys', 'GET /v1/tenants/:id/keys', 'DELETE /v1/tenants/:id/keys/:keyId', 'POST /v1/trunks', 'GET /v1/trunks']),
    );
    for (const route of adminOnly) {
      const res = await t.call(route.method, pathFor(route, 'acme'), ['GET', 'DELETE'].includes(route.method) ? undefined : {}, acmeKey);
      expect(res.status, `${route.method} ${route.url}`).toBe(403);
      expect(res.body!['code']).toBe('CG_HTTP_FORBIDDEN');
    }
  });

  it('lets a key use its own tenant routes, and says 401 to no key, a wrong key or a revoked one', async () => {
    const own = apiRoutes().filter((r) => r.access === 'tenant' && r.method === 'GET');
    for (const route of own) expect((await t.call('GET', pathFor(route, 'acme'), undefined, acmeKey)).status, route.url).not.toBe(403);
    for (const bad of ['', 'cgk_', `${acmeKey}x`, acmeKey.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'))]) {
      const res = await t.call('GET', '/v1/tenants/acme', undefined, bad);
      expect(res).toMatchObject({ status: 401, body: { code: 'CG_HTTP_UNAUTHORIZED' } });
    }
    expect((await t.call('GET', '/v1/unknown', undefined, acmeKey)).status).toBe(404);
  });
});

describe('admin API rate limits', () => {
  it('answers 429 in the one error shape once a key or an IP is over its limit', async () => {
    const small = await startAdminApp({ rateLimit: { perKey: 3, perIp: 1000 } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await small.call('GET', '/v1/tenants')).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
      const limited = await small.call('GET', '/v1/tenants');
      expect(limited.body).toMatchObject({ code: 'CG_HTTP_RATE_LIMITED', details: { limit: 3 } });
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await small.close();
    }
    const previews = await startAdminApp({ rateLimit: { previewPerKey: 1 } });
    try {
      await previews.call('POST', '/v1/tenants', { id: 'acme', displayName: 'Acme' });
      expect((await previews.call('POST', '/v1/tenants/acme/greeting-preview', 'x' as unknown)).status).toBe(400);
      // The costly route has its own, tighter budget; other routes are unaffected.
      expect((await previews.call('POST', '/v1/tenants/acme/greeting-preview', {})).body).toMatchObject({ code: 'CG_HTTP_RATE_LIMITED' });
      expect((await previews.call('GET', '/v1/tenants/acme')).status).toBe(200);
    } finally {
      await previews.close();
    }
    const byIp = await startAdminApp({ rateLimit: { perKey: 1000, perIp: 2 } });
    try {
      // Unauthenticated guesses count against the IP too.
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await byIp.call('GET', '/v1/tenants', undefined, 'guess')).status);
      expect(statuses).toEqual([401, 401, 429]);
    } finally {
      await byIp.close();
    }
  });
});

describe('admin API authentication (issue 24)', () => {
  const raw = async (app: TestAdminApp, authorization: string | undefined, path = '/v1/tenants') => {
    const res = await fetch(app.base + path, { headers: authorization === undefined ? {} : { authorization } });
    await res.arrayBuffer();
    return res.status;
  };

  it('reads the Bearer scheme case-insensitively, with any run of spaces before the token (RFC 7235)', async () => {
    for (const header of [`Bearer ${t.token}`, `bearer ${t.token}`, `BEARER ${t.token}`, `bEaReR    ${t.token}`, `Bearer \t${t.token}`, `Bearer ${t.token}  `]) {
      expect(await raw(t, header), JSON.stringify(header)).toBe(200);
    }
    expect(await raw(t, `bearer ${acmeKey}`, '/v1/tenants/acme')).toBe(200);
    for (const header of [t.token, `Bearer`, `Bearer${t.token}`, `Basic ${t.token}`, `Bearer ${t.token} extra`, `Bearers ${t.token}`]) {
      expect(await raw(t, header), JSON.stringify(header)).toBe(401);
    }
    expect(bearerToken(undefined)).toBeUndefined();
    expect(bearerToken('BeArEr  abc-_.~+/==')).toBe('abc-_.~+/==');
  });

  it('logs a failed login once per IP per window, with the IP, route and reason, never the token', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const app = await startAdminApp({ logger: loggerTo(sink, 'warn'), rateLimit: { authFailureLogWindowMs: 400 } });
    try {
      const secret = 'guess-Zq7Xw9-secret-looking-token';
      for (let i = 0; i < 5; i++) expect(await raw(app, `Bearer ${secret}${i}`, `/v1/tenants/acme?token=${secret}`)).toBe(401);
      expect(await raw(app, `Bearer ${app.token}`)).toBe(200);
      const failures = () => lines.filter((l) => l['msg'] === 'admin API authentication failed');
      expect(failures()).toHaveLength(1);
      expect(failures()[0]).toMatchObject({ level: 40, ip: '127.0.0.1', method: 'GET', route: '/v1/tenants/:id', reason: 'unknown token', suppressed: 0 });
      await sleep(450);
      expect(await raw(app, undefined, '/v1/nowhere?x=1')).toBe(401);
      expect(failures()).toHaveLength(2);
      expect(failures()[1]).toMatchObject({ ip: '127.0.0.1', route: '/v1/nowhere', reason: 'no credentials', suppressed: 4 });
      expect(await raw(app, `Basic ${secret}`)).toBe(401);
      expect(failures()).toHaveLength(2);
      const everything = JSON.stringify(lines);
      expect(everything).not.toContain('Zq7Xw9');
      expect(everything).not.toContain(app.token);
    } finally {
      await app.close();
    }
  });

  it('keeps its per-IP memory bounded and per IP', () => {
    const log = new AuthFailureLog(60_000, 3);
    expect(log.note('10.0.0.1', 0)).toBe(0);
    expect(log.note('10.0.0.1', 10)).toBeUndefined();
    expect(log.note('10.0.0.2', 20)).toBe(0);
    expect(log.note('10.0.0.1', 60_000)).toBe(1);
    for (let i = 0; i < 100; i++) log.note(`192.0.2.${i}`, 70_000);
    expect(log.size).toBe(3);
  });
});
