import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PromptCache } from '../../src/agent/PromptCache.js';
import { offlineProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { createVad } from '../../src/agent/vad/createVad.js';
import { buildAdminApp, type AdminApp } from '../../src/http/adminApp.js';
import { sharedMediaClock } from '../../src/media/MediaClock.js';
import { CallLimiter } from '../../src/tenants/CallLimiter.js';
import { CallRecordStore, type CallRecord } from '../../src/tenants/CallRecordStore.js';
import { CallTokenStore } from '../../src/tenants/CallTokenStore.js';
import { CallUrlStore } from '../../src/tenants/CallUrlStore.js';
import { connectRedis, deletePrefix, testPrefix, type Redis } from '../../src/tenants/redisClient.js';
import { SecretBox } from '../../src/tenants/secrets.js';
import { TenantCache } from '../../src/tenants/TenantCache.js';
import { TenantStore } from '../../src/tenants/TenantStore.js';
import { WebRtcDoor } from '../../src/webrtc/WebRtcDoor.js';
import { callerWav, inboundBytes, launchChromium, loudestWithin } from './browserKit.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { missingTool, testMissing } from '../support/tools.js';
import { axeViolations } from './axe.js';

/**
 * The web phone in a real browser: Debian's Chromium, driven by playwright-core, with a fake
 * microphone playing a fixture WAV (the caller asking "what time do you open today"), opens /c/demo,
 * clicks Call, and talks to the offline agent (pocketsphinx, the scripted responder, flite) through
 * the direct WebRTC door. Screenshots of each state go to test-artifacts/web-phone/.
 */
const ARTIFACTS = new URL('../../test-artifacts/web-phone/', import.meta.url);
const CALLER_FIXTURE = new URL('../fixtures/caller-open-today.wav', import.meta.url);
const GREETING = "Hi, this is Ava at Demo Bakery. How can I help?";
const HOURS = 'We open at eight in the morning.';

const MISSING = missingTool('chromium', 'pocketsphinx');
if (MISSING) {
  describe('web phone in Chromium', () => testMissing(MISSING));
} else {
  describe('web phone in Chromium (direct WebRTC)', () => {
    const prefix = testPrefix();
    let redis: Redis;
    let api: AdminApp;
    let door: WebRtcDoor;
    let records: CallRecordStore;
    let cache: TenantCache;
    let browser: Browser;
    let base: string;
    let callerWavPath = '';

    beforeAll(async () => {
      await mkdir(ARTIFACTS, { recursive: true });
      callerWavPath = await callerWav(CALLER_FIXTURE);
      redis = await connectRedis({ prefix });
      const secrets = new SecretBox(randomBytes(32));
      const tenants = new TenantStore(redis, secrets, { prefix });
      await tenants.create({
        id: 'demo',
        displayName: 'Demo Bakery',
        greeting: 'Hi, this is {{agentName}} at {{business}}. How can I help?',
        intents: [{ name: 'hours', phrases: ['what time do you open today', 'when do you open'], reply: HOURS }],
        maxConcurrentCalls: 10,
      });
      await new CallUrlStore(redis, { prefix }).create({ slug: 'demo', tenantId: 'demo' });
      await new CallUrlStore(redis, { prefix }).create({ slug: 'off', tenantId: 'demo', enabled: false });
      await tenants.create({ id: 'tiny', displayName: 'Tiny Shop', maxConcurrentCalls: 1 });
      await new CallUrlStore(redis, { prefix }).create({ slug: 'tiny', tenantId: 'tiny' });
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
        endpoint: { portRange: { min: 44000, max: 44999 } },
      });
      api = await buildAdminApp({ redis, prefix, secrets, adminToken: 'b'.repeat(32), webrtc: door });
      await api.listen({ host: '127.0.0.1', port: 0 });
      const addr = api.server.address() as { port: number };
      base = `http://127.0.0.1:${addr.port}`;
      browser = await launchChromium(callerWavPath);
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
      await api?.close();
      await door?.drain();
      await records?.close(500);
      await cache?.close();
      if (redis) {
        await deletePrefix(redis, prefix);
        await redis.quit();
      }
    }, 60_000);

    const shot = (page: Page, name: string): Promise<Buffer> => page.screenshot({ path: new URL(`${name}.png`, ARTIFACTS).pathname, fullPage: true });

    const recordWhere = async (pred: (r: CallRecord) => boolean): Promise<CallRecord | undefined> =>
      pollUntil(async () => (await records.list('demo')).records.find(pred), (r) => r !== undefined, 6000, 100);

    it('shows friendly pages for unknown and disabled links', async () => {
      const page = await browser.newPage();
      try {
        expect((await page.goto(`${base}/c/nope`))!.status()).toBe(404);
        expect(await page.textContent('main')).toContain('no call link');
        expect((await page.goto(`${base}/c/off`))!.status()).toBe(403);
        expect(await page.textContent('main')).toContain('switched off');
      } finally {
        await page.close();
      }
    });

    it('opens /c/demo, calls, hears the greeting, shows both sides of the conversation, and hangs up', async () => {
      const page = await browser.newPage();
      try {
        await page.goto(`${base}/c/demo`);
        expect(await page.textContent('h1')).toBe('Demo Bakery');
        await shot(page, '1-ready');
        // Keyboard first: Tab reaches Call, Enter presses it.
        await page.keyboard.press('Tab');
        expect(await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { id: string } | null } }).document.activeElement?.id)).toBe('call');
        // Hang up is disabled (and looks it) until there is a call to hang up.
        expect(await page.isDisabled('#hangup')).toBe(true);
        await page.keyboard.press('Enter');
        await page.waitForSelector('body[data-state="in-call"]', { timeout: 10_000 });
        expect(await page.isEnabled('#hangup')).toBe(true);
        // The agent is shown speaking while the greeting plays.
        await page.waitForSelector('body[data-speaking="true"]', { timeout: 5000 });
        expect(await page.isVisible('#speaking')).toBe(true);
        await shot(page, '2-in-call');
        // The greeting is heard: the analyser on the remote track rises, and inbound RTP bytes grow.
        expect(await loudestWithin(page, 5000)).toBeGreaterThan(0.01);
        const bytes1 = await inboundBytes(page);
        await page.waitForTimeout(500);
        expect(await inboundBytes(page)).toBeGreaterThan(bytes1);
        // The transcript: the greeting, the caller's recognised question, the agent's answer.
        // Polled from here: waitForFunction polls by evaluating a string in the page, which the page's
        // CSP (no 'unsafe-eval') refuses.
        const transcript = await pollUntil(() => page.textContent('#transcript'), (t) => t?.includes(HOURS) ?? false, 25_000, 200);
        expect(transcript).toContain(`Agent: ${GREETING}`);
        expect(transcript).toContain('You: what time do you open today');
        // Every line has words, and no caller line is left as an interim guess once answered.
        const lines = await page.$$eval('#transcript li', (lis) => lis.map((li) => ({ text: li.textContent ?? '', interim: li.classList.contains('interim') })));
        expect(lines.filter((l) => /^(You|Agent):\s*$/.test(l.text))).toEqual([]);
        expect(lines[0]!.text).toBe(`Agent: ${GREETING}`);
        expect(lines.filter((l) => l.interim && l.text.includes('what time do you open today'))).toEqual([]);
        // The caller's own microphone showed in its meter while they asked.
        expect(await page.evaluate(() => (globalThis as unknown as { callgate: { micPeak(): number } }).callgate.micPeak())).toBeGreaterThan(0.05);
        await shot(page, '3-conversation');
        // The keypad is shown on demand; a key reaches the agent (over the data channel) and is in the record.
        expect(await page.isVisible('#keypad')).toBe(false);
        await page.getByRole('button', { name: 'Keypad' }).click();
        expect(await page.getAttribute('#show-keypad', 'aria-expanded')).toBe('true');
        await page.getByRole('button', { name: 'Key 5' }).click();
        await page.waitForTimeout(2500);
        await page.getByRole('button', { name: 'Hang up' }).click();
        await page.waitForSelector('body[data-state="ended"]');
        expect(await page.textContent('#hint')).toContain('You hung up.');
        expect(await page.isDisabled('#hangup')).toBe(true);
        await shot(page, '4-ended');
        // Accessibility, in the state a caller ends in: no serious or critical axe-core finding.
        expect(await axeViolations(page)).toEqual([]);
        const rec = await recordWhere((r) => r.outcome === 'caller-hangup' && r.door === 'webrtc');
        expect(rec).toBeDefined();
        expect(rec!.transcript.map((t) => t.text)).toEqual(expect.arrayContaining([GREETING, 'what time do you open today']));
        expect(rec!.transcript).toContainEqual(expect.objectContaining({ role: 'caller', text: '5', dtmf: true }));
      } finally {
        await page.close();
      }
    }, 60_000);

    it('five pages at once each hear their greeting', async () => {
      const pages = await Promise.all(Array.from({ length: 5 }, () => browser.newPage()));
      try {
        await Promise.all(pages.map((p) => p.goto(`${base}/c/demo`)));
        await Promise.all(pages.map((p) => p.getByRole('button', { name: 'Call' }).click()));
        await Promise.all(pages.map((p) => p.waitForSelector('body[data-state="in-call"]', { timeout: 15_000 })));
        // 12 s: five Chromium pages and five cold-start greetings share two cores; in full-suite runs one
        // page stayed silent for 6 s (2 runs of 4), never alone. Not explained yet (issue 17's dead air?).
        const loudest = await Promise.all(pages.map((p) => loudestWithin(p, 12_000)));
        // What each page saw, should one stay silent: its own level, what the browser decoded, and its state.
        const seen = await Promise.all(
          pages.map(async (p, i) => ({
            page: i,
            loudest: loudest[i],
            ...(await p.evaluate(async () => {
              const w = globalThis as unknown as {
                callgate: { energy(): Promise<number>; audioState(): string; connection(): string; inboundBytes(): Promise<number> };
                document: { visibilityState: string; body: { dataset: Record<string, string | undefined> } };
              };
              return {
                state: w.document.body.dataset['state'],
                connection: w.callgate.connection(),
                energy: await w.callgate.energy(),
                bytes: await w.callgate.inboundBytes(),
                audio: w.callgate.audioState(),
                visibility: w.document.visibilityState,
              };
            })),
            transcript: await p.textContent('#transcript'),
            error: await p.textContent('#error'),
          })),
        );
        // And what the gateway saw: its calls, and whether its media clock kept time.
        const clock = sharedMediaClock().stats();
        const gateway = { calls: door.activeCalls, clock: { subscribers: clock.subscribers, skippedTicks: clock.skippedTicks, latenessMaxMs: clock.latenessMaxMs, latenessP99Ms: clock.latenessP99Ms } };
        for (const l of loudest) expect(l, JSON.stringify({ seen, gateway })).toBeGreaterThan(0.01);
        await Promise.all(pages.map((p) => p.getByRole('button', { name: 'Hang up' }).click()));
      } finally {
        await Promise.all(pages.map((p) => p.close()));
      }
    }, 60_000);
    it('says so in plain language when the lines are busy, and when the microphone is blocked', async () => {
      const first = await browser.newPage();
      const second = await browser.newPage();
      const blocked = await launchChromium(callerWavPath, { micAllowed: false });
      try {
        await first.goto(`${base}/c/tiny`);
        await first.getByRole('button', { name: 'Call' }).click();
        await first.waitForSelector('body[data-state="in-call"]', { timeout: 15_000 });
        await second.goto(`${base}/c/tiny`);
        await second.getByRole('button', { name: 'Call' }).click();
        await second.waitForSelector('#error:not([hidden])');
        expect(await second.textContent('#error')).toContain('All lines are busy');
        await shot(second, '5-busy');
        const page = await blocked.newPage();
        // The microphone opens while the call connects; one the page may not use stops it before the offer.
        const offers: string[] = [];
        page.on('request', (r) => r.url().endsWith('/v1/webrtc/offer') && offers.push(r.url()));
        await page.goto(`${base}/c/demo`);
        await page.getByRole('button', { name: 'Call' }).click();
        await page.waitForSelector('#error:not([hidden])', { timeout: 10_000 });
        expect(await page.textContent('#error')).toContain('microphone is blocked');
        expect(await page.getAttribute('body', 'data-state')).toBe('ended');
        expect(offers).toEqual([]);
        await shot(page, '6-mic-blocked');
        await first.getByRole('button', { name: 'Hang up' }).click();
      } finally {
        await blocked.close();
        await first.close();
        await second.close();
      }
    }, 60_000);
  });
}
