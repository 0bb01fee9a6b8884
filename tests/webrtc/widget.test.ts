import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Frame, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pollUntil } from '../../src/util/testing/wait.js';
import { connectRedis, deletePrefix, testPrefix } from '../../src/tenants/redisClient.js';
import { GatewayProcesses, type GatewayProcess } from '../app/gatewayProcess.js';
import { describeWith } from '../support/tools.js';
import { callerWav, launchChromium } from './browserKit.js';

/**
 * The call button (issue 20): a static page on another origin carries only
 * `<script src="<gateway>/widget.js" data-call-url="…">`; its button opens the web phone in a frame,
 * and Call there connects to the agent. A live gateway (`npm start`'s program, demo seeded) and Debian's
 * Chromium. The call URL's `allowedOrigins` decides who may embed it: none listed (the demo) is any
 * site; a list without this site refuses the frame (CSP frame-ancestors) and the token (the phone reports
 * its embedder; the gateway checks it).
 */
const ADMIN = 'widget-test-admin-token-0000000000';
const GREETING = "Hi, I'm Ava from Joe's Pizza, what can I do for you today?";
const prefix = testPrefix();
const gateways = new GatewayProcesses({ CALLGATE_REDIS_PREFIX: prefix, CALLGATE_ADMIN_TOKEN: ADMIN });
let gw: GatewayProcess;
let browser: Browser | undefined;
let site: Server | undefined;
let siteBase = '';
/** The call URL the site's tag names, set per test. */
let callUrl = 'demo';

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => (site ? site.close(resolve) : resolve(undefined)));
  await gateways.stopAll();
  const redis = await connectRedis({ prefix });
  await deletePrefix(redis, prefix);
  await redis.quit();
}, 60_000);

const admin = (path: string, body: unknown): Promise<Response> =>
  fetch(`${gw.base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** Opens the site and its call button; the frame of the web phone once it has loaded. */
async function openWidget(page: Page): Promise<Frame> {
  await page.goto(siteBase);
  const button = page.getByRole('button', { name: 'Call us' });
  await button.waitFor({ timeout: 10_000 });
  expect(await button.getAttribute('aria-expanded')).toBe('false');
  await button.click();
  expect(await button.getAttribute('aria-expanded')).toBe('true');
  const handle = await page.waitForSelector('[data-callgate-widget] iframe', { timeout: 10_000 });
  const frame = await handle.contentFrame();
  if (!frame) throw new Error('no frame');
  await frame.waitForLoadState('load');
  return frame;
}

describeWith(['chromium', 'pocketsphinx'], 'the embeddable call button (widget.js)', () => {
  beforeAll(async () => {
    gw = await gateways.start();
    // Another origin: another host name and port than the gateway's http://localhost:<port>.
    site = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><html lang="en"><title>Joe's Pizza</title><h1>Joe's Pizza</h1><p>Best slices in town.</p>
<script src="${gw.base}/widget.js" data-call-url="${callUrl}" async></script></html>`);
    });
    await new Promise<void>((resolve) => site!.listen(0, '127.0.0.1', resolve));
    siteBase = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    browser = await launchChromium(await callerWav(new URL('../fixtures/caller-open-today.wav', import.meta.url), 12, 4));
  }, 60_000);

  it('a page on another site with only the tag shows a button; the button, then Call, connects and the caller hears the demo greeting', async () => {
    callUrl = 'demo';
    const page = await browser!.newPage();
    try {
      const frame = await openWidget(page);
      expect(frame.url()).toBe(`${gw.base}/c/demo`);
      const call = frame.getByRole('button', { name: 'Call', exact: true });
      await pollUntil(() => call.isEnabled(), (v) => v, 10_000, 100);
      await call.click();
      await frame.waitForSelector('body[data-state="in-call"]', { timeout: 15_000 });
      const heard = await pollUntil(
        () => frame.evaluate(() => (globalThis as unknown as { callgate: { level(): number } }).callgate.level()),
        (level) => level > 0.01,
        15_000,
        20,
      );
      expect(heard).toBeGreaterThan(0.01);
      const transcript = await pollUntil(() => frame.textContent('#transcript'), (t) => t?.includes(GREETING) ?? false, 15_000, 100);
      expect(transcript).toContain(GREETING);
      await frame.getByRole('button', { name: 'Hang up' }).click();
      await frame.waitForSelector('body[data-state="ended"]');
    } finally {
      await page.close();
    }
  }, 60_000);

  it("a call URL that lists other sites is neither framed nor given a token here; one that lists this site is", async () => {
    expect((await admin('/v1/tenants/demo/call-urls', { slug: 'only-elsewhere', allowedOrigins: ['https://elsewhere.example'] })).status).toBe(201);
    expect((await admin('/v1/tenants/demo/call-urls', { slug: 'this-site', allowedOrigins: [siteBase] })).status).toBe(201);

    callUrl = 'only-elsewhere';
    let page = await browser!.newPage();
    try {
      const frame = await openWidget(page);
      // Chromium shows its error page in place of a frame the page's CSP refuses.
      expect(frame.url()).toMatch(/^chrome-error:/);
    } finally {
      await page.close();
    }

    callUrl = 'this-site';
    page = await browser!.newPage();
    try {
      const token = page.waitForResponse((r) => r.url().endsWith('/v1/call-urls/this-site/token'));
      const frame = await openWidget(page);
      const answer = await token;
      expect((await answer.request().allHeaders())['x-callgate-embedder']).toBe(siteBase);
      expect(answer.status()).toBe(201);
      expect(await frame.isEnabled('#call')).toBe(true);
    } finally {
      await page.close();
    }
    // The embedder's claim counts only from the gateway's own page: another site cannot borrow it.
    const forged = await fetch(`${gw.base}/v1/call-urls/only-elsewhere/token`, { method: 'POST', headers: { origin: siteBase, 'x-callgate-embedder': 'https://elsewhere.example' } });
    expect(forged.status).toBe(403);
  }, 60_000);
});
