import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PromptCache } from '../../src/agent/PromptCache.js';
import { offlineProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { createVad } from '../../src/agent/vad/createVad.js';
import { buildAdminApp, type AdminApp } from '../../src/http/adminApp.js';
import { sharedMediaClock } from '../../src/media/MediaClock.js';
import { sineAmplitudeForDbfs, tone } from '../../src/media/signal.js';
import { encodeWav } from '../../src/media/wav.js';
import { RoomHub } from '../../src/rooms/RoomHub.js';
import { connectRedis, deletePrefix, testPrefix, type Redis } from '../../src/tenants/redisClient.js';
import { RoomStore } from '../../src/tenants/RoomStore.js';
import { SecretBox } from '../../src/tenants/secrets.js';
import { TenantCache } from '../../src/tenants/TenantCache.js';
import { TenantStore } from '../../src/tenants/TenantStore.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { RoomSignalling } from '../../src/webrtc/RoomSignalling.js';
import { missingTool, testMissing } from '../support/tools.js';
import { launchChromium } from '../webrtc/browserKit.js';
import { axeViolations } from '../webrtc/axe.js';
import { startCoturn, type Coturn } from '../support/coturn.js';
import { iceConfigFromEnv, iceServersFor, toNodeDataChannel } from '../../src/webrtc/iceServers.js';

/**
 * A room in real browsers: two Debian Chromiums (each its own fake microphone) open the room's URL,
 * type a name and press Join; an AI participant made from a description greets them. Ana's
 * microphone plays a 1 kHz tone that only reaches Ben through the gateway's mix; Ana's own mix leaves
 * her out (mix-minus).
 */
const TONE_HZ = 1000;
const ADMIN = 'r'.repeat(32);
const ARTIFACTS = new URL('../../test-artifacts/rooms/', import.meta.url);

async function micWav(samples: Int16Array): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'callgate-room-')), 'mic.wav');
  await writeFile(path, encodeWav({ samples, sampleRate: 16000 }));
  return path;
}

interface RoomView {
  roomId: string;
  url: string;
  participants: { participantId: string; name: string; kind: string; speaking: boolean }[];
}

/** The page's RTCPeerConnection may use relay candidates only, as behind a strict firewall. */
const FORCE_RELAY = `(() => {
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(config, ...rest) {
      super({ ...(config || {}), iceTransportPolicy: 'relay' }, ...rest);
    }
  };
})();`;

const MISSING = missingTool('chromium', 'pocketsphinx', 'coturn');
if (MISSING) {
  describe('rooms in Chromium', () => testMissing(MISSING));
} else {
  describe('rooms in Chromium', () => {
    const prefix = testPrefix();
    let redis: Redis;
    let api: AdminApp;
    let hub: RoomHub;
    let signalling: RoomSignalling;
    let cache: TenantCache;
    let toneBrowser: Browser;
    let quietBrowser: Browser;
    let base = '';
    let coturn: Coturn;

    const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      return { status: res.status, json: text ? JSON.parse(text) : undefined };
    };

    beforeAll(async () => {
      await mkdir(ARTIFACTS, { recursive: true });
      redis = await connectRedis({ prefix });
      const secrets = new SecretBox(randomBytes(32));
      const tenants = new TenantStore(redis, secrets, { prefix });
      await tenants.create({ id: 'acme', displayName: 'Acme Travel' });
      cache = new TenantCache(tenants, redis, { prefix });
      const clock = sharedMediaClock();
      hub = new RoomHub(
        { store: new RoomStore(redis, { prefix }), tenants: cache, clock, prompts: new PromptCache(), providers: offlineProviderRegistry(), createVad: () => createVad(), logger: (await import('../../src/log.js')).rootLogger },
        { url: () => base },
      );
      // Pages and the gateway's peers get TURN credentials from a coturn on loopback.
      coturn = await startCoturn();
      const ice = iceConfigFromEnv({ TURN_SECRET: coturn.secret, TURN_URLS: coturn.url });
      signalling = new RoomSignalling({
        hub,
        clock,
        pageIceServers: (id) => iceServersFor(ice, id),
        peerIceServers: (id) => toNodeDataChannel(iceServersFor(ice, `gw-${id}`)),
        log: (await import('../../src/log.js')).rootLogger,
        endpoint: { portRange: { min: 45000, max: 45999 } },
      });
      api = await buildAdminApp({ redis, prefix, secrets, adminToken: ADMIN, rooms: { hub, signalling } });
      await api.listen({ host: '127.0.0.1', port: 0 });
      base = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;
      // Ana's microphone: a steady tone (−20 dBFS). Ben's: silence.
      toneBrowser = await launchChromium(await micWav(tone(TONE_HZ, 10_000, { amplitude: sineAmplitudeForDbfs(-20) })));
      quietBrowser = await launchChromium(await micWav(new Int16Array(16000 * 10)));
    }, 60_000);

    afterAll(async () => {
      await toneBrowser?.close();
      await quietBrowser?.close();
      await signalling?.closeAll();
      await hub?.closeAll();
      await api?.close();
      await cache?.close();
      await coturn?.stop();
      if (redis) {
        await deletePrefix(redis, prefix);
        await redis.quit();
      }
    }, 60_000);

    const join = async (browser: Browser, url: string, name: string): Promise<Page> => {
      const page = await browser.newPage();
      await page.goto(url);
      await page.fill('#name', name);
      await page.click('#join');
      await page.waitForSelector('body[data-state="in-room"]', { timeout: 10_000 });
      return page;
    };
    const toneDb = (page: Page): Promise<number> => page.evaluate((hz) => (globalThis as unknown as { callgateRoom: { toneDb(hz: number): number } }).callgateRoom.toneDb(hz), TONE_HZ);
    const level = (page: Page): Promise<number> => page.evaluate(() => (globalThis as unknown as { callgateRoom: { level(): number } }).callgateRoom.level());
    /** The loudest reading of `read` over `ms`. */
    const loudest = async (page: Page, read: (p: Page) => Promise<number>, ms: number): Promise<number> => {
      let most = -Infinity;
      for (let waited = 0; waited < ms; waited += 100) {
        most = Math.max(most, await read(page));
        await page.waitForTimeout(100);
      }
      return most;
    };

    it('refuses unknown rooms with a page, and bad room bodies with a 400 naming the field', async () => {
      const page = await quietBrowser.newPage();
      try {
        expect((await page.goto(`${base}/r/nope`))!.status()).toBe(404);
        expect(await page.textContent('main')).toContain('no room');
      } finally {
        await page.close();
      }
      const bad = await call('POST', '/v1/tenants/acme/rooms', { maxParticipants: 1000 });
      expect(bad.status).toBe(400);
      expect(JSON.stringify(bad.json)).toContain('maxParticipants');
      const badAgent = await call('POST', '/v1/tenants/acme/rooms/nope/agents', { description: 'x' });
      expect(badAgent.status).toBe(404);
      // A room past its expiry: its page says it has ended (410).
      const soon = (await call('POST', '/v1/tenants/acme/rooms', { expiresAt: new Date(Date.now() + 1000).toISOString() })).json as RoomView;
      await new Promise((r) => setTimeout(r, 1200));
      const ended = await fetch(soon.url);
      expect(ended.status).toBe(410);
      expect(await ended.text()).toContain('This room has ended');
    });

    it('two people join by URL and name, hear the agent, and hear each other only through the mix', async () => {
      const made = await call('POST', '/v1/tenants/acme/rooms', { name: 'Trip planning', respond: 'addressed' });
      expect(made.status).toBe(201);
      const room = made.json as RoomView;
      expect(room.url).toBe(`${base}/r/${room.roomId}`);
      const agent = await call('POST', `/v1/tenants/acme/rooms/${room.roomId}/agents`, { description: 'Max, a cheerful travel agent who books trains and hotels.' });
      expect(agent.status).toBe(201);
      expect((agent.json as { name: string }).name).toBe('Max');

      const ben = await join(quietBrowser, room.url, 'Ben');
      // The room opens with Ben: Max greets him.
      expect(await loudest(ben, level, 6000)).toBeGreaterThan(0.01);
      const ana = await join(toneBrowser, room.url, 'Ana');
      try {
        // Both pages list everyone: two people and the agent.
        for (const page of [ana, ben]) {
          await pollUntil(() => page.locator('#participants li').count(), (n) => n === 3, 5000, 100);
          const names = await page.$$eval('#participants li', (lis) => lis.map((li) => li.textContent ?? ''));
          expect(names.join('|')).toMatch(/Ana/);
          expect(names.join('|')).toMatch(/Ben/);
          expect(names.join('|')).toMatch(/Max · assistant/);
        }
        await page_shot(ben, 'ben-in-room');
        // The page passes axe (under its real CSP): no serious or critical accessibility issue.
        expect(await axeViolations(ben)).toEqual([]);
        // Ben hears the room: Ana's tone, which only her microphone carries, through the mix.
        const benTone = await loudest(ben, toneDb, 4000);
        // Ana does not hear herself.
        const anaTone = await loudest(ana, toneDb, 2000);
        expect(benTone).toBeGreaterThan(-60);
        expect(benTone - anaTone).toBeGreaterThan(20);
        // Ben's page shows Ana speaking.
        await pollUntil(() => ben.locator('#participants li[data-speaking="true"]').allTextContents(), (t) => t.some((x) => x.includes('Ana')), 5000, 100);
        // The API sees the same room, with Ana speaking.
        const got = await pollUntil(async () => (await call('GET', `/v1/tenants/acme/rooms/${room.roomId}`)).json as RoomView, (v) => v.participants.some((p) => p.name === 'Ana' && p.speaking), 5000, 100);
        expect(got.participants.map((p) => p.name).sort()).toEqual(['Ana', 'Ben', 'Max']);
        // An agent added while the room is live joins at once and greets everyone: Ana hears it too.
        const nora = await call('POST', `/v1/tenants/acme/rooms/${room.roomId}/agents`, { description: 'You are Nora, a calm hotel expert.', greeting: 'Hello everyone, Nora here.' });
        expect((nora.json as { name: string }).name).toBe('Nora');
        expect(await loudest(ana, level, 6000)).toBeGreaterThan(0.01);
        await pollUntil(() => ana.locator('#participants li').count(), (n) => n === 4, 5000, 100);
        // The agent's words reach the transcript with its name.
        await pollUntil(() => ben.locator('#transcript').textContent(), (t) => (t ?? '').includes('Nora: Hello everyone, Nora here.'), 5000, 100);
        // Ben leaves: the others see him go.
        await ben.click('#leave');
        expect(await pollUntil(() => ana.locator('#participants li').count(), (n) => n === 3, 5000, 100)).toBe(3);
      } finally {
        await ana.close();
        await ben.close();
      }
    }, 60_000);

    it('a page that can only use a TURN relay joins, hears the room, and comes back as itself after its socket drops', async () => {
      const room = (await call('POST', '/v1/tenants/acme/rooms', { name: 'Firewalled' })).json as RoomView;
      await call('POST', `/v1/tenants/acme/rooms/${room.roomId}/agents`, { description: 'Ivy, a friendly guide.', greeting: 'Welcome, this is Ivy speaking.' });
      const page = await quietBrowser.newPage();
      await page.addInitScript(FORCE_RELAY);
      try {
        await page.goto(room.url);
        await page.fill('#name', 'Cleo');
        await page.click('#join');
        await page.waitForSelector('body[data-state="in-room"]', { timeout: 15_000 });
        // The greeting comes through coturn.
        expect(await loudest(page, level, 8000)).toBeGreaterThan(0.01);
        const type = await page.evaluate(() => (globalThis as unknown as { callgateRoom: { candidateType(): Promise<string | undefined> } }).callgateRoom.candidateType());
        expect(type).toBe('relay');
        const me = await page.evaluate(() => (globalThis as unknown as { callgateRoom: { participantId: string } }).callgateRoom.participantId);
        expect(await coturn.log()).toMatch(new RegExp(`user <\\d+:${me}>: incoming packet ALLOCATE processed, success`));

        // The signalling socket drops (a network change): the page resumes as the same participant.
        await page.evaluate(() => (globalThis as unknown as { callgateRoom: { dropSocket(): void } }).callgateRoom.dropSocket());
        await page.waitForSelector('body[data-state="reconnecting"]', { timeout: 5000 });
        await page.waitForSelector('body[data-state="in-room"]', { timeout: 10_000 });
        expect(await page.evaluate(() => (globalThis as unknown as { callgateRoom: { participantId: string } }).callgateRoom.participantId)).toBe(me);
        const after = (await call('GET', `/v1/tenants/acme/rooms/${room.roomId}`)).json as RoomView;
        expect(after.participants.map((p) => p.name).sort()).toEqual(['Cleo', 'Ivy']);
        // Removed through the API: the page is told and leaves.
        expect((await call('DELETE', `/v1/tenants/acme/rooms/${room.roomId}/participants/${me}`)).status).toBe(204);
        await page.waitForSelector('body[data-state="left"]', { timeout: 5000 });
        expect(await page.textContent('#hint')).toContain('removed');
      } finally {
        await page.close();
      }
    }, 60_000);

    async function page_shot(page: Page, name: string): Promise<void> {
      await page.screenshot({ path: new URL(`${name}.png`, ARTIFACTS).pathname, fullPage: true });
    }
  });
}
