import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { build } from 'esbuild';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offlineProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { startSipHarness, type SipHarness } from '../../src/sip/testing/SipHarness.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { callerWav, launchChromium } from '../webrtc/browserKit.js';
import { missingTool, testMissing } from '../support/tools.js';

/**
 * The SIP-over-WebSocket door from JsSIP, the other SIP library browser phones are built on (the web
 * phone uses SIP.js: tests/sip/webphone.test.ts). A page of our own, bundling JsSIP, in Debian's
 * Chromium: over WebSocket to drachtio-server with a call token, rtpengine terminating ICE and
 * DTLS-SRTP, the offline agent. The proof is the audio at the page's analyser, and the record.
 */
const GREETING = 'Hi, this is Ava at Demo Bakery. How can I help?';
const MISSING = missingTool('drachtio', 'rtpengine', 'chromium', 'pocketsphinx');
if (MISSING) {
  describe('JsSIP over WebSocket in Chromium', () => testMissing(MISSING));
} else {
  describe('JsSIP over WebSocket (drachtio WS, rtpengine) in Chromium', () => {
    let h: SipHarness;
    let browser: Browser;
    let site: Server;
    let base: string;

    beforeAll(async () => {
      h = await startSipHarness({
        providers: offlineProviderRegistry(),
        drachtio: { ws: true },
        agentPorts: { min: 39000, max: 39499 },
        rtpengine: { portMin: 41500, portMax: 41699 },
      });
      await h.tenants.create({ id: 'demo', displayName: 'Demo Bakery', greeting: 'Hi, this is {{agentName}} at {{business}}. How can I help?' });
      await h.callUrls.create({ slug: 'jssip', tenantId: 'demo' });
      const script = (await build({ entryPoints: [new URL('./pages/jssipPhone.ts', import.meta.url).pathname], bundle: true, write: false, format: 'iife', target: 'es2020', logLevel: 'silent' })).outputFiles[0]!.text;
      site = createServer((req, res) => {
        if (req.url === '/phone.js') {
          res.writeHead(200, { 'content-type': 'text/javascript' });
          res.end(script);
        } else {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
          res.end('<!doctype html><title>JsSIP phone</title><script src="/phone.js"></script>');
        }
      });
      await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
      browser = await launchChromium(await callerWav(new URL('../fixtures/caller-open-today.wav', import.meta.url)));
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
      await new Promise((resolve) => (site ? site.close(resolve) : resolve(undefined)));
      await h?.stop();
    }, 60_000);

    it('dials with a call token and hears the greeting; its BYE ends the call and leaves a record', async () => {
      const page = await browser.newPage();
      try {
        await page.goto(base);
        const token = (await h.tokens.issue('jssip')).token;
        await page.evaluate(([ws, token]) => (globalThis as unknown as { phone: { dial(a: string, b: string, c: string): void } }).phone.dial(ws!, 'sip:+15005550100@127.0.0.1', token!), [`ws://127.0.0.1:${h.drachtio.wsPort}`, token]);
        const state = (): Promise<string> => page.evaluate(() => (globalThis as unknown as { phone: { state(): string } }).phone.state());
        expect(await pollUntil(state, (s) => s === 'in-call' || s.startsWith('failed'), 15_000, 100)).toBe('in-call');
        const level = (): Promise<number> => page.evaluate(() => (globalThis as unknown as { phone: { level(): number } }).phone.level());
        expect(await pollUntil(level, (l) => l > 0.01, 8000, 20)).toBeGreaterThan(0.01);
        // Hang up once the greeting has been said (the record keeps what was heard).
        await page.waitForTimeout(4000);
        await page.evaluate(() => (globalThis as unknown as { phone: { hangup(): void } }).phone.hangup());
        expect(await pollUntil(state, (s) => s === 'ended', 5000, 100)).toBe('ended');
        expect(await h.sessionsDrained()).toBe(0);
        const rec = await pollUntil(async () => (await h.records.list('demo')).records.find((r) => r.outcome === 'caller-hangup'), (r) => r !== undefined, 6000, 100);
        expect(rec).toMatchObject({ door: 'sip', from: 'web:jssip' });
        expect(rec!.transcript).toContainEqual(expect.objectContaining({ role: 'agent', text: GREETING }));
      } finally {
        await page.close();
      }
    }, 60_000);
  });
}
