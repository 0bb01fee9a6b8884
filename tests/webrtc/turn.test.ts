import { randomBytes } from 'node:crypto';
import { PeerConnection } from 'node-datachannel';
import type { Browser, Page } from 'playwright-core';
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
import { pollUntil, within } from '../../src/util/testing/wait.js';
import { defaultIceOptions, iceConfigFromEnv, iceServersFor, toNodeDataChannel, type IceConfig } from '../../src/webrtc/iceServers.js';
import { WebRtcDoor } from '../../src/webrtc/WebRtcDoor.js';
import { BrowserPeer } from '../../src/webrtc/testing/BrowserPeer.js';
import { startCoturn, type Coturn } from '../support/coturn.js';
import { describeWith } from '../support/tools.js';
import { callerWav, launchChromium, loudestWithin } from './browserKit.js';

/**
 * The web phone through a TURN server (issue 22): Debian's coturn on 127.0.0.1 with TURN REST
 * credentials (tests/support/coturn.ts), the door configured as `npm start` configures it from
 * TURN_SECRET/TURN_URLS, and Chromium's RTCPeerConnection forced to `iceTransportPolicy: 'relay'` by
 * an init script (the product has no such switch): the call connects only if the page's TURN
 * credential is accepted and coturn relays its media.
 */
const CALLER_FIXTURE = new URL('../fixtures/caller-open-today.wav', import.meta.url);

/**
 * Runs in the page before its own script: every RTCPeerConnection relays only, and is kept where the
 * test can ask it for its selected candidate pair.
 */
const FORCE_RELAY = `(() => {
  const Native = window.RTCPeerConnection;
  const made = [];
  class RelayOnly extends Native {
    constructor(config, ...rest) {
      super({ ...(config || {}), iceTransportPolicy: 'relay' }, ...rest);
      made.push(this);
    }
  }
  window.RTCPeerConnection = RelayOnly;
  window.__relayOnly = made;
})();`;

interface SelectedPair {
  readonly local: string | undefined;
  readonly remote: string | undefined;
  readonly localAddress: string | undefined;
  readonly policy: string | undefined;
}

/** The connected peer connection's selected candidate pair, from the page's getStats(). */
function selectedPair(page: Page): Promise<SelectedPair | undefined> {
  return page.evaluate(async () => {
    type Stat = { type: string; id: string; selectedCandidatePairId?: string; state?: string; nominated?: boolean; localCandidateId?: string; remoteCandidateId?: string; candidateType?: string; address?: string };
    const pcs = (globalThis as unknown as { __relayOnly: { connectionState: string; getConfiguration(): { iceTransportPolicy?: string }; getStats(): Promise<Map<string, Stat>> }[] }).__relayOnly;
    const pc = pcs.find((p) => p.connectionState === 'connected');
    if (!pc) return undefined;
    const stats = await pc.getStats();
    let pair: Stat | undefined;
    stats.forEach((r) => {
      if (r.type === 'transport' && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId);
    });
    if (!pair) stats.forEach((r) => (pair ??= r.type === 'candidate-pair' && r.state === 'succeeded' && r.nominated ? r : undefined));
    const local = pair?.localCandidateId ? stats.get(pair.localCandidateId) : undefined;
    const remote = pair?.remoteCandidateId ? stats.get(pair.remoteCandidateId) : undefined;
    return { local: local?.candidateType, remote: remote?.candidateType, localAddress: local?.address, policy: pc.getConfiguration().iceTransportPolicy };
  });
}

describeWith(['coturn', 'chromium', 'pocketsphinx'], 'web phone through TURN (coturn, relay only)', () => {
  const prefix = testPrefix();
  let coturn: Coturn;
  let ice: IceConfig;
  let redis: Redis;
  let api: AdminApp;
  let door: WebRtcDoor;
  let records: CallRecordStore;
  let cache: TenantCache;
  let browser: Browser;
  let base: string;
  let deadTurnDoor: WebRtcDoor | undefined;
  const peers: BrowserPeer[] = [];

  beforeAll(async () => {
    coturn = await startCoturn();
    // As `npm start` reads it (src/app/config.ts → iceConfigFromEnv).
    ice = iceConfigFromEnv({ TURN_SECRET: coturn.secret, TURN_URLS: coturn.url });
    redis = await connectRedis({ prefix });
    const secrets = new SecretBox(randomBytes(32));
    const tenants = new TenantStore(redis, secrets, { prefix });
    await tenants.create({ id: 'demo', displayName: 'Demo Bakery', greeting: 'Hi, this is {{agentName}} at {{business}}. How can I help?', maxConcurrentCalls: 10 });
    await new CallUrlStore(redis, { prefix }).create({ slug: 'demo', tenantId: 'demo' });
    records = new CallRecordStore(redis, { prefix });
    cache = new TenantCache(tenants, redis, { prefix });
    // As src/app/Gateway.ts wires it.
    door = new WebRtcDoor(
      {
        tokens: new CallTokenStore(redis, { prefix }),
        tenants: cache,
        limiter: new CallLimiter(redis, { prefix }),
        records,
        providers: offlineProviderRegistry(),
        prompts: new PromptCache(),
        createVad: () => createVad(),
        clock: sharedMediaClock(),
        endpoint: { portRange: { min: 44000, max: 44999 } },
      },
      { iceServers: (callId) => toNodeDataChannel(iceServersFor(ice, callId)), gatherTimeoutMs: defaultIceOptions.gatherTimeoutMs },
    );
    api = await buildAdminApp({
      redis,
      prefix,
      secrets,
      adminToken: 'b'.repeat(32),
      webrtc: door,
      callTokens: { iceServers: () => iceServersFor(ice, `page-${randomBytes(6).toString('hex')}`) },
    });
    await api.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;
    browser = await launchChromium(await callerWav(CALLER_FIXTURE));
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await api?.close();
    for (const p of peers) p.close();
    await door?.drain();
    await deadTurnDoor?.drain();
    await records?.close(500);
    await cache?.close();
    if (redis) {
      await deletePrefix(redis, prefix);
      await redis.quit();
    }
    await coturn?.stop();
  }, 60_000);

  it("gives each page its own TURN credential in the token answer, never the secret", async () => {
    const answers = await Promise.all([1, 2].map(() => fetch(`${base}/v1/call-urls/demo/token`, { method: 'POST' }).then(async (r) => ({ status: r.status, text: await r.text() }))));
    const servers = answers.map((a) => {
      expect(a.status).toBe(201);
      expect(a.text).not.toContain(coturn.secret);
      return (JSON.parse(a.text) as { iceServers: { urls: string[]; username: string; credential: string }[] }).iceServers;
    });
    expect(servers[0]).toEqual([{ urls: [coturn.url], username: expect.stringMatching(/^\d{10}:page-[0-9a-f]{12}$/), credential: expect.any(String) }]);
    expect(servers[0]![0]!.username).not.toBe(servers[1]![0]!.username);
  });

  it("the gateway's own node-datachannel peer gathers a relay candidate with its REST credential (username with a colon)", async () => {
    const pc = new PeerConnection('turn-probe', { iceServers: [...toNodeDataChannel(iceServersFor(ice, 'probe-gateway'))], bindAddress: '127.0.0.1', iceTransportPolicy: 'relay' });
    try {
      const candidates: string[] = [];
      pc.onLocalCandidate((c) => candidates.push(c));
      pc.createDataChannel('probe');
      await pollUntil(async () => pc.gatheringState(), (s) => s === 'complete', 5000, 20);
      expect(candidates.some((c) => / typ relay /.test(c)), candidates.join('\n')).toBe(true);
      expect(await coturn.log()).toMatch(/user <\d+:probe-gateway>: incoming packet ALLOCATE processed, success/);
    } finally {
      pc.close();
    }
  });

  it("a dead TURN server costs the gateway's answer its gather deadline, not the call", async () => {
    // Port 9 (discard) on loopback: nothing answers, and libdatachannel's gathering never completes (seen: > 13 s).
    const dead = iceConfigFromEnv({ TURN_SECRET: coturn.secret, TURN_URLS: 'turn:127.0.0.1:9' });
    deadTurnDoor = new WebRtcDoor(
      {
        tokens: new CallTokenStore(redis, { prefix }),
        tenants: cache,
        limiter: new CallLimiter(redis, { prefix }),
        records,
        providers: offlineProviderRegistry(),
        prompts: new PromptCache(),
        createVad: () => createVad(),
        clock: sharedMediaClock(),
        endpoint: { portRange: { min: 44000, max: 44999 } },
      },
      { iceServers: (callId) => toNodeDataChannel(iceServersFor(dead, callId)), gatherTimeoutMs: 1000 },
    );
    const { token } = await new CallTokenStore(redis, { prefix }).issue('demo', {});
    const peer = new BrowserPeer({ name: 'page', dataChannel: true });
    peers.push(peer);
    const started = performance.now();
    const answer = await deadTurnDoor.answer({ token, sdp: await peer.createOffer() });
    expect(performance.now() - started).toBeGreaterThanOrEqual(950);
    expect(answer.sdp).toMatch(/a=candidate:.* typ host/);
    await peer.setAnswer(answer.sdp);
    await within(peer.connected, 5000, 'DTLS-SRTP to the gateway over its host candidate');
    peer.close();
  });

  it('a relay-only page connects through coturn and hears the greeting', async () => {
    const page = await browser.newPage();
    try {
      await page.addInitScript(FORCE_RELAY);
      await page.goto(`${base}/c/demo`);
      await page.getByRole('button', { name: 'Call' }).click();
      await page.waitForSelector('body[data-state="in-call"]', { timeout: 15_000 });
      // The greeting is heard through the relay.
      expect(await loudestWithin(page, 8000)).toBeGreaterThan(0.01);
      const pair = await selectedPair(page);
      expect(pair).toMatchObject({ local: 'relay', localAddress: '127.0.0.1', policy: 'relay' });
      // coturn allocated for the page (its own credential) and relayed: the page's username in its log.
      const log = await coturn.log();
      expect(log).toMatch(/user <\d+:page-[0-9a-f]{12}>: incoming packet ALLOCATE processed, success/);
      expect(log).toMatch(/user <\d+:page-[0-9a-f]{12}>: incoming packet CREATE_PERMISSION processed, success/);
      await page.getByRole('button', { name: 'Hang up' }).click();
      await page.waitForSelector('body[data-state="ended"]');
    } finally {
      await page.close();
    }
  }, 60_000);
});
