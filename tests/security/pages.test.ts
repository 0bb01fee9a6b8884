import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAdminApp } from '../../src/http/adminApp.js';
import { startAdminApp, type TestAdminApp } from '../../src/http/testing/testKit.js';
import { connectRedis, testPrefix } from '../../src/tenants/redisClient.js';

/**
 * Issue 24, findings 4 and 5, over real HTTP on 127.0.0.1: security headers on every response (a
 * policy per page, the strictest for everything else), frame-ancestors from a call URL's allowed
 * origins, and the per-IP limit on GET /c/:slug answered with a page. What the policies allow is
 * checked in Chromium by pages-browser.test.ts.
 */
interface Got {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** GET with the client socket bound to `from` (127.0.0.1 by default), so a second loopback address is a second client. */
function get(base: string, path: string, from = '127.0.0.1', headers: Record<string, string> = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { localAddress: from, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The CSP header as directive → sources. */
function csp(got: Got): Record<string, string[]> {
  const header = got.headers['content-security-policy'];
  expect(typeof header).toBe('string');
  const out: Record<string, string[]> = {};
  for (const part of String(header).split(';')) {
    const [name, ...sources] = part.trim().split(/\s+/);
    if (name) out[name] = sources;
  }
  return out;
}

const STRICT = { 'default-src': ["'none'"], 'base-uri': ["'none'"], 'form-action': ["'none'"], 'frame-ancestors': ["'none'"] };

describe('security headers on every response', () => {
  let api: TestAdminApp;

  beforeAll(async () => {
    api = await startAdminApp({ callTokens: { perIp: 1000 }, webPhone: { pagesPerIp: 1000 } });
    expect((await api.call('POST', '/v1/tenants', { id: 'shop', displayName: 'Shop & Co' })).status).toBe(201);
    expect((await api.call('POST', '/v1/tenants/shop/call-urls', { slug: 'open' })).status).toBe(201);
    expect((await api.call('POST', '/v1/tenants/shop/call-urls', { slug: 'off', enabled: false, allowedOrigins: ['https://shop.example'] })).status).toBe(201);
    const embedded = await api.call('POST', '/v1/tenants/shop/call-urls', {
      slug: 'embedded',
      // A path, a port and upper case are normalised to origins; schemes that are not http(s) never reach the header.
      allowedOrigins: ['https://Shop.Example/pricing', 'http://partner.example:8443', 'javascript:alert(1)', 'data:text/html;base64,AAAA', 'ws://socket.example'],
    });
    expect(embedded.status).toBe(201);
  });

  afterAll(async () => {
    await api?.close();
  });

  it('the phone page: its script and stylesheet from here, requests to here, framed anywhere when its URL lists no origins (a call button on any site), no inline code', async () => {
    const page = await get(api.base, '/c/open');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(csp(page)).toEqual({
      'default-src': ["'none'"],
      'script-src': ["'self'"],
      'style-src': ["'self'"],
      'connect-src': ["'self'"],
      'base-uri': ["'none'"],
      'form-action': ["'none'"],
      'frame-ancestors': ['*'],
    });
    expect(page.headers['x-frame-options']).toBeUndefined();
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['referrer-policy']).toBe('same-origin');
    // Nothing inline that the policy would have to allow: no <style>, no style="", every <script> a file.
    expect(page.body).not.toMatch(/<style|style=/i);
    expect(page.body.match(/<script[^>]*>/gi)).toEqual(['<script src="/web-phone/app.js" defer>']);
    expect(page.body).toContain('<link rel="stylesheet" href="/web-phone/app.css">');
    const css = await get(api.base, '/web-phone/app.css');
    expect(css.status).toBe(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
    expect(css.body).toContain('#keypad');
    const js = await get(api.base, '/web-phone/app.js');
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    expect(js.headers['x-content-type-options']).toBe('nosniff');
  });

  it("frame-ancestors lists the URL's allowed origins (normalised, http(s) only) and drops X-Frame-Options, which cannot", async () => {
    const page = await get(api.base, '/c/embedded');
    expect(page.status).toBe(200);
    expect(csp(page)['frame-ancestors']).toEqual(["'self'", 'https://shop.example', 'http://partner.example:8443']);
    expect(page.headers['x-frame-options']).toBeUndefined();
    // The error page of a URL with origins is framed where its phone would be, so an embed shows why.
    const off = await get(api.base, '/c/off');
    expect(off.status).toBe(403);
    expect(csp(off)).toEqual({ 'default-src': ["'none'"], 'style-src': ["'self'"], 'base-uri': ["'none'"], 'form-action': ["'none'"], 'frame-ancestors': ["'self'", 'https://shop.example'] });
    const missing = await get(api.base, '/c/nope');
    expect(missing.status).toBe(404);
    expect(missing.body).toContain('no call link');
    // A call button whose link is gone shows why in its frame, wherever it is.
    expect(csp(missing)['frame-ancestors']).toEqual(['*']);
    expect(csp(missing)['script-src']).toBeUndefined();
    expect(missing.headers['x-frame-options']).toBeUndefined();
  });

  it('the home page, favicon, admin walkthrough and call button script are public, with their own types and no framing of the home page', async () => {
    const home = await get(api.base, '/');
    expect(home.status).toBe(200);
    expect(home.headers['content-type']).toMatch(/^text\/html/);
    expect(csp(home)['frame-ancestors']).toEqual(["'none'"]);
    expect(csp(home)['script-src']).toBeUndefined();
    expect(home.body).toContain('/docs');
    expect(home.body).toContain('/guide/admin');
    expect(home.body).toContain('/healthz');
    expect(home.body).toContain('/metrics');
    expect(home.body).toContain('/widget.js');
    const icon = await get(api.base, '/favicon.ico');
    expect(icon.status).toBe(200);
    expect(icon.headers['content-type']).toBe('image/x-icon');
    const guide = await get(api.base, '/guide/admin');
    expect(guide.status).toBe(200);
    expect(guide.headers['content-type']).toMatch(/^text\/plain/);
    expect(guide.body).toContain('curl');
    const widget = await get(api.base, '/widget.js');
    expect(widget.status).toBe(200);
    expect(widget.headers['content-type']).toMatch(/^text\/javascript/);
    expect(widget.body).toContain('data-callgate-widget');
  });

  it('everything else gets the strictest policy and DENY: API JSON, 404s, refusals, router errors', async () => {
    const admin = { authorization: `Bearer ${api.token}` };
    for (const [path, status, headers] of [
      ['/v1/tenants', 401, {}],
      ['/v1/tenants', 200, admin],
      ['/nowhere', 404, admin],
      [`/c/${'a'.repeat(101)}`, 400, {}],
      ['/v1/tenants/%E0%A4%A', 400, admin],
    ] as const) {
      const got = await get(api.base, path, '127.0.0.1', headers);
      expect(got.status, path).toBe(status);
      expect(csp(got), path).toEqual(STRICT);
      expect(got.headers['x-frame-options'], path).toBe('DENY');
      expect(got.headers['x-content-type-options'], path).toBe('nosniff');
      expect(got.headers['referrer-policy'], path).toBe('same-origin');
    }
  });

  it("/docs has swagger-ui's own policy: its files, data: images, requests to here, framed by no one", async () => {
    const docs = await get(api.base, '/docs/');
    expect(docs.status).toBe(200);
    expect(docs.headers['content-type']).toMatch(/^text\/html/);
    expect(csp(docs)).toEqual({
      'default-src': ["'none'"],
      'script-src': ["'self'"],
      'style-src': ["'self'", "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='"],
      'img-src': ["'self'", 'data:'],
      'font-src': ["'self'", 'data:'],
      'connect-src': ["'self'"],
      'base-uri': ["'none'"],
      'form-action': ["'self'"],
      'frame-ancestors': ["'none'"],
    });
    expect(docs.headers['x-frame-options']).toBe('DENY');
    expect(docs.headers['x-content-type-options']).toBe('nosniff');
    expect((await get(api.base, '/docs/json')).status).toBe(200);
  });
});

describe('the phone page in SIP mode', () => {
  it("allows the SIP edge's WebSocket origin in connect-src, and refuses a SIP URL that is not ws(s) at start", async () => {
    const api = await startAdminApp({ webPhone: { sipWsUrl: 'wss://sip.example.com:8443/ws', sipDomain: 'sip.example.com' } });
    try {
      expect((await api.call('POST', '/v1/tenants', { id: 'shop', displayName: 'Shop' })).status).toBe(201);
      expect((await api.call('POST', '/v1/tenants/shop/call-urls', { slug: 'sip-page' })).status).toBe(201);
      const page = await get(api.base, '/c/sip-page');
      expect(page.status).toBe(200);
      expect(csp(page)['connect-src']).toEqual(["'self'", 'wss://sip.example.com:8443']);
    } finally {
      await api.close();
    }
    const prefix = testPrefix();
    const redis = await connectRedis({ prefix });
    try {
      for (const sipWsUrl of ['https://sip.example.com', 'wss://a.example; script-src *', 'not a url']) {
        await expect(buildAdminApp({ redis, prefix, adminToken: 'a'.repeat(32), webPhone: { sipWsUrl } }), sipWsUrl).rejects.toMatchObject({ code: 'CG_CONFIG_INVALID' });
      }
    } finally {
      await redis.quit();
    }
  });
});

describe('GET /c/:slug per-IP limit', () => {
  let api: TestAdminApp;
  const LIMIT = 5;

  beforeAll(async () => {
    api = await startAdminApp({ webPhone: { pagesPerIp: LIMIT, pageWindowMs: 60_000 } });
    expect((await api.call('POST', '/v1/tenants', { id: 'shop', displayName: 'Shop' })).status).toBe(201);
    expect((await api.call('POST', '/v1/tenants/shop/call-urls', { slug: 'real' })).status).toBe(201);
  });

  afterAll(async () => {
    await api?.close();
  });

  it('a prober gets LIMIT answers a minute, then a 429 page with Retry-After; another address is still served', async () => {
    const statuses: number[] = [];
    // Probing: unknown slugs and the real one count alike.
    for (let i = 0; i < LIMIT; i++) statuses.push((await get(api.base, i === 2 ? '/c/real' : `/c/guess-${i}`)).status);
    expect(statuses).toEqual([404, 404, 200, 404, 404]);
    for (const path of ['/c/real', '/c/guess-x']) {
      const limited = await get(api.base, path);
      expect(limited.status, path).toBe(429);
      expect(limited.headers['content-type']).toMatch(/^text\/html/);
      expect(limited.body).toContain('Too many attempts');
      // Nothing about the slug: the same page whether it exists or not.
      expect(limited.body).not.toContain('Shop');
      const retryAfter = Number(limited.headers['retry-after']);
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(csp(limited)['script-src']).toBeUndefined();
      expect(limited.headers['x-content-type-options']).toBe('nosniff');
    }
    // Another client (127.0.0.2) has its own budget; the page's script and the API are not this limit's business.
    expect((await get(api.base, '/c/real', '127.0.0.2')).status).toBe(200);
    expect((await get(api.base, '/web-phone/app.js')).status).toBe(200);
    expect((await api.call('GET', '/v1/tenants/shop')).status).toBe(200);
  });

  it('the app-wide per-IP limit on the page route also answers with a page, not JSON', async () => {
    const tight = await startAdminApp({ rateLimit: { perIp: 2 }, webPhone: { pagesPerIp: 100 } });
    try {
      expect((await get(tight.base, '/c/a', '127.0.0.3')).status).toBe(404);
      expect((await get(tight.base, '/c/b', '127.0.0.3')).status).toBe(404);
      const limited = await get(tight.base, '/c/c', '127.0.0.3');
      expect(limited.status).toBe(429);
      expect(limited.headers['content-type']).toMatch(/^text\/html/);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await tight.close();
    }
  });
});
