import { randomBytes } from 'node:crypto';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offlineProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { buildAdminApp, type AdminApp } from '../../src/http/adminApp.js';
import { startSipHarness, type SipHarness } from '../../src/sip/testing/SipHarness.js';
import { SecretBox } from '../../src/tenants/secrets.js';
import { callerWav, inboundBytes, launchChromium, loudestWithin } from '../webrtc/browserKit.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { missingTool, testMissing } from '../support/tools.js';

/**
 * The web phone in SIP mode, in a real browser: Chromium's WebRTC stack, SIP.js (bundled into the
 * page) over WebSocket to drachtio-server with the call token, rtpengine terminating ICE and
 * DTLS-SRTP, our SIP gateway and the offline agent. No data channel on this path, so the proof is
 * the audio (the page's analyser and inbound bytes) and the call record.
 */
const HOURS = 'We open at eight in the morning.';

const MISSING = missingTool('drachtio', 'rtpengine', 'chromium', 'pocketsphinx');
if (MISSING) {
  describe('web phone over SIP in Chromium', () => testMissing(MISSING));
} else {
  describe('web phone over SIP (SIP.js, drachtio WS, rtpengine) in Chromium', () => {
    let h: SipHarness;
    let api: AdminApp;
    let browser: Browser;
    let base: string;

    beforeAll(async () => {
      h = await startSipHarness({
        providers: offlineProviderRegistry(),
        drachtio: { ws: true },
        agentPorts: { min: 43000, max: 43999 },
        rtpengine: { portMin: 32800, portMax: 32999 },
      });
      await h.tenants.create({
        id: 'demo',
        displayName: 'Demo Bakery',
        greeting: 'Hi, this is {{agentName}} at {{business}}. How can I help?',
        intents: [{ name: 'hours', phrases: ['what time do you open today', 'when do you open'], reply: HOURS }],
      });
      await h.callUrls.create({ slug: 'demo', tenantId: 'demo' });
      api = await buildAdminApp({
        redis: h.redis,
        prefix: h.prefix,
        secrets: new SecretBox(randomBytes(32)),
        adminToken: 'c'.repeat(32),
        webPhone: { sipWsUrl: `ws://127.0.0.1:${h.drachtio.wsPort}`, sipDomain: '127.0.0.1' },
      });
      await api.listen({ host: '127.0.0.1', port: 0 });
      base = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;
      browser = await launchChromium(await callerWav(new URL('../fixtures/caller-open-today.wav', import.meta.url)));
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
      await api?.close();
      await h?.stop();
    }, 60_000);

    it('calls through SIP.js and rtpengine: the greeting is heard, the question answered, hang up ends it', async () => {
      const page = await browser.newPage();
      try {
        await page.goto(`${base}/c/demo`);
        await page.getByRole('button', { name: 'Call' }).click();
        await page.waitForSelector('body[data-state="in-call"]', { timeout: 15_000 });
        expect(await loudestWithin(page, 6000)).toBeGreaterThan(0.01);
        const before = await inboundBytes(page);
        await page.waitForTimeout(500);
        expect(await inboundBytes(page)).toBeGreaterThan(before);
        await page.waitForTimeout(12_000); // the question at 6 s, then the answer
        await page.getByRole('button', { name: 'Hang up' }).click();
        await page.waitForSelector('body[data-state="ended"]');
        expect(await h.sessionsDrained()).toBe(0);
        const rec = await pollUntil(async () => (await h.records.list('demo')).records.find((r) => r.outcome === 'caller-hangup'), (r) => r !== undefined, 6000, 100);
        expect(rec).toMatchObject({ door: 'sip', from: 'web:demo' });
        const said = rec!.transcript.map((t) => t.text);
        expect(said).toContain('what time do you open today');
        expect(said).toContain(HOURS);
      } finally {
        await page.close();
      }
    }, 60_000);
  });
}
