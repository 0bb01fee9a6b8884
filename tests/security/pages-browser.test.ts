import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { Browser, ConsoleMessage, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PromptCache } from '../../src/agent/PromptCache.js';
import { offlineProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { createVad } from '../../src/agent/vad/createVad.js';
import { buildAdminApp, type AdminApp } from '../../src/http/adminApp.js';
import { sharedMediaClock } from '../../src/media/MediaClock.js';
import { CallLimiter } from '../../src/tenants/CallLimiter.js';
import { CallRecordStore } from '../../src/tenants/CallRecordStore.js';
import { CallTokenStore } from '../../src/tenants/CallTokenStore.js';
import { CallUrlStore } from '../../src/tenants/CallUrlStore.js';
import { connectRedis, deletePrefix, testPrefix, type Redis } from '../../src/tenants/redisClient.js';
import { SecretBox } from '../../src/tenants/secrets.js';
import { TenantCache } from '../../src/tenants/TenantCache.js';
import { TenantStore } from '../../src/tenants/TenantStore.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { WebRtcDoor } from '../../src/webrtc/WebRtcDoor.js';
import { callerWav, inboundBytes, launchChromium } from '../webrtc/browserKit.js';
import { missingTool, testMissing } from '../support/tools.js';

/**
 * Issue 24, finding 4, in a real browser (Debian Chromium + playwright-core): the pages' security
 * headers allow everything the pages use and nothing else. The web phone loads its script and
 * stylesheet and places a call through the direct WebRTC door with no CSP violation; swagger-ui renders
 * under its own policy; framing works from a URL's allowed origin and is refused elsewhere; and the
 * Referrer-Policy leaves the Origin header on the page's token request, which the token route checks.
 */
const CALLER_FIXTURE = new URL('../fixtures/caller-open-today.wav', import.meta.url);

/** Runs in every frame before its scripts: what the page's policy refused, as `directive blocked-uri`. */
const COLLECT_VIOLATIONS = `
  window.__violations = [];
  document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.effectiveDirective + ' ' + e.blockedURI));
`;

const MISSING = missingTool('chromium', 'pocketsphinx');
if (MISSING) {
  describe('pages under their security headers in Chromium', () => testMissing(MISSING));
} else {
  describe('pages under their security headers in Chromium', () => {
    const prefix = testPrefix();
    let redis: Redis;
    let api: AdminApp;
    let door: WebRtcDoor;
    let records: CallRecordStore;
    let cache: TenantCache;
    let browser: Browser;
    let base: string;
    let framer: Server;
    let framerBase: string;
    /** What the framer serves: an iframe of the gateway path set by each test. */
    let framed = '/c/demo';

    beforeAll(async () => {
      redis = await connectRedis({ prefix });
      const secrets = new SecretBox(randomBytes(32));
      const tenants = new TenantStore(redis, secrets, { prefix });
      await tenants.create({ id: 'demo', displayName: 'Demo Bakery', maxConcurrentCalls: 5 });
      records = new CallRecordStore(redis, { prefix });
      cache = new TenantCache(tenants, redis, { prefix });
      door = new WebRtcDoor({
        tokens: new CallTokenStore(redis, { prefix }),
        tenants: cache,
        limiter: new CallLimiter(redis, { prefix }),
        records,
        providers: offlineProviderRegistry(),
        prompts: new PromptCache(),
        createVad: () => createVad(),
        clock: sharedMediaClock(),
        endpoint: { portRange: { min: 45000, max: 45999 } },
      });
      api = await buildAdminApp({ redis, prefix, secrets, adminToken: 'c'.repeat(32), webrtc: door });
      await api.listen({ host: '127.0.0.1', port: 0 });
      base = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;
      // Another origin (another port) that embeds a gateway page.
      framer = createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(`<!doctype html><title>shop</title><iframe id="phone" src="${base}${framed}" allow="microphone"></iframe>`);
      });
      await new Promise<void>((resolve) => framer.listen(0, '127.0.0.1', resolve));
      framerBase = `http://127.0.0.1:${(framer.address() as { port: number }).port}`;
      const urls = new CallUrlStore(redis, { prefix });
      await urls.create({ slug: 'demo', tenantId: 'demo' });
      await urls.create({ slug: 'embeddable', tenantId: 'demo', allowedOrigins: [framerBase] });
      await urls.create({ slug: 'own-origin', tenantId: 'demo', allowedOrigins: [base] });
      await urls.create({ slug: 'elsewhere', tenantId: 'demo', allowedOrigins: ['https://elsewhere.example'] });
      browser = await launchChromium(await callerWav(CALLER_FIXTURE));
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
      await new Promise((resolve) => framer?.close(resolve));
      await api?.close();
      await door?.drain();
      await records?.close(500);
      await cache?.close();
      if (redis) {
        await deletePrefix(redis, prefix);
        await redis.quit();
      }
    }, 60_000);

    /** A page collecting CSP violations (every frame) and the console's CSP complaints (frame-ancestors refusals land there). */
    async function openPage(): Promise<{ page: Page; violations: () => Promise<string[]>; cspConsole: string[] }> {
      const page = await browser.newPage();
      await page.addInitScript(COLLECT_VIOLATIONS);
      const cspConsole: string[] = [];
      page.on('console', (m: ConsoleMessage) => {
        if (/Content Security Policy|X-Frame-Options/i.test(m.text())) cspConsole.push(m.text());
      });
      const violations = async (): Promise<string[]> => {
        const all: string[] = [];
        for (const frame of page.frames()) {
          all.push(...((await frame.evaluate('window.__violations ?? []').catch(() => [])) as string[]));
        }
        return all;
      };
      return { page, violations, cspConsole };
    }

    it('the web phone loads its script and stylesheet and places a call with no CSP violation', async () => {
      const { page, violations, cspConsole } = await openPage();
      try {
        const token = page.waitForResponse((r) => r.url().endsWith('/v1/call-urls/demo/token'));
        const res = await page.goto(`${base}/c/demo`);
        expect(res!.headers()['content-security-policy']).toContain("script-src 'self'");
        expect((await token).status()).toBe(201);
        // The stylesheet applied (style.css: body max-width 28rem); the script ran (it sets the status).
        expect(await page.evaluate('getComputedStyle(document.body).maxWidth')).toBe('448px');
        expect(await page.textContent('#status')).toBe('Ready');
        await page.click('#call');
        await page.waitForSelector('body[data-state="in-call"]', { timeout: 10_000 });
        // Polled from here: waitForFunction would evaluate a string in the page, which its CSP refuses.
        expect(await pollUntil(() => inboundBytes(page), (b) => b > 0, 5000, 100)).toBeGreaterThan(0);
        await page.click('#hangup');
        await page.waitForSelector('body[data-state="ended"]', { timeout: 5000 });
        expect(await page.isHidden('#error')).toBe(true);
        expect(await violations()).toEqual([]);
        expect(cspConsole).toEqual([]);
      } finally {
        await page.close();
      }
    });

    it('swagger-ui renders the API under its policy with no violation', async () => {
      const { page, violations, cspConsole } = await openPage();
      try {
        await page.goto(`${base}/docs/`);
        await page.waitForSelector('.swagger-ui .info .title', { timeout: 10_000 });
        expect(await page.textContent('.swagger-ui .info .title')).toContain('callgate admin API');
        expect(await page.locator('.opblock').count()).toBeGreaterThan(10);
        // Expand one operation: more of swagger-ui's rendering (icons, highlighted JSON) under the policy.
        await page.locator('.opblock-summary').first().click();
        await page.waitForSelector('.opblock-body', { timeout: 5000 });
        expect(await violations()).toEqual([]);
        expect(cspConsole).toEqual([]);
      } finally {
        await page.close();
      }
    });

    const frameState = async (path: string): Promise<{ url: string; h1: string | undefined; cspConsole: string[] }> => {
      framed = path;
      const { page, cspConsole } = await openPage();
      try {
        await page.goto(framerBase);
        const iframe = await page.waitForSelector('#phone');
        const frame = await iframe.contentFrame();
        await frame!.waitForLoadState('load');
        const h1 = (await frame!.$('h1')) ? ((await frame!.textContent('h1')) ?? undefined) : undefined;
        // A refused frame shows Chromium's error page instead (chrome-error://).
        return { url: frame!.url(), h1, cspConsole: [...cspConsole] };
      } finally {
        await page.close();
      }
    };

    it("frames a call URL's page on its allowed origins only, anywhere when it lists none; /docs nowhere", async () => {
      const allowed = await frameState('/c/embeddable');
      expect(allowed).toEqual({ url: `${base}/c/embeddable`, h1: 'Demo Bakery', cspConsole: [] });
      expect(await frameState('/c/demo')).toEqual({ url: `${base}/c/demo`, h1: 'Demo Bakery', cspConsole: [] });
      for (const path of ['/c/elsewhere', '/docs/']) {
        const refused = await frameState(path);
        expect(refused.url, path).toMatch(/^chrome-error:/);
        expect(refused.h1, path).not.toBe('Demo Bakery');
        expect(refused.cspConsole.join('\n'), path).toMatch(/frame-ancestors/);
      }
    });

    it("keeps the Origin header on the page's token request: a URL allowing only the gateway's own origin works", async () => {
      const { page, violations } = await openPage();
      try {
        const token = page.waitForResponse((r) => r.url().endsWith('/v1/call-urls/own-origin/token'));
        await page.goto(`${base}/c/own-origin`);
        const answer = await token;
        expect((await answer.request().allHeaders())['origin']).toBe(base);
        expect(answer.status()).toBe(201);
        expect(await page.isEnabled('#call')).toBe(true);
        expect(await violations()).toEqual([]);
      } finally {
        await page.close();
      }
    });
  });
}
