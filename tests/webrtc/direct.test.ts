import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PromptCache } from '../../src/agent/PromptCache.js';
import { ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { createVad } from '../../src/agent/vad/createVad.js';
import { sharedMediaClock } from '../../src/media/MediaClock.js';
import { FakeLlm, FakeStt, FakeTts, voiceLike } from '../../src/providers/testing/FakeProviders.js';
import { CallLimiter } from '../../src/tenants/CallLimiter.js';
import { CallRecordStore, type CallRecord } from '../../src/tenants/CallRecordStore.js';
import { CallTokenStore } from '../../src/tenants/CallTokenStore.js';
import { CallUrlStore } from '../../src/tenants/CallUrlStore.js';
import { connectRedis, deletePrefix, testPrefix, type Redis } from '../../src/tenants/redisClient.js';
import { SecretBox } from '../../src/tenants/secrets.js';
import { TenantCache } from '../../src/tenants/TenantCache.js';
import { TenantStore } from '../../src/tenants/TenantStore.js';
import { buildAdminApp } from '../../src/http/adminApp.js';
import { BrowserPeer } from '../../src/webrtc/testing/BrowserPeer.js';
import { WebRtcDoor, type WebPhoneEvent } from '../../src/webrtc/WebRtcDoor.js';
import { FAKE_VOICE_SHARE, fakeVoiceShare, soundMs } from '../support/heard.js';
import { pollUntil, within } from '../../src/util/testing/wait.js';

/**
 * The direct WebRTC door end to end on loopback: a node-datachannel "browser" posts its offer with a
 * call token, the gateway's own node-datachannel peer answers, and the agent (fake providers) talks
 * over DTLS-SRTP; transcript events come back on the page's data channel. No SIP, no rtpengine.
 */
describe('direct WebRTC door', () => {
  const prefix = testPrefix();
  let redis: Redis;
  let door: WebRtcDoor;
  let urls: CallUrlStore;
  let tokens: CallTokenStore;
  let records: CallRecordStore;
  let limiter: CallLimiter;
  let cache: TenantCache;
  const peers: BrowserPeer[] = [];

  beforeAll(async () => {
    redis = await connectRedis({ prefix });
    const tenants = new TenantStore(redis, new SecretBox(randomBytes(32)), { prefix });
    await tenants.create({ id: 'demo', displayName: 'Demo Bakery', greeting: 'Hello {{visitor|there}}, this is {{agentName}} at {{business}}.', maxConcurrentCalls: 6 });
    urls = new CallUrlStore(redis, { prefix });
    await urls.create({ slug: 'demo', tenantId: 'demo', variables: { visitor: 'Dana' }, allowedOrigins: ['https://shop.example'] });
    tokens = new CallTokenStore(redis, { prefix });
    records = new CallRecordStore(redis, { prefix });
    limiter = new CallLimiter(redis, { prefix });
    cache = new TenantCache(tenants, redis, { prefix });
    door = new WebRtcDoor({
      tokens,
      tenants: cache,
      limiter,
      records,
      providers: new ProviderRegistry({
        stt: { pocketsphinx: () => new FakeStt({ transcripts: ['when do you open'] }) },
        llm: { scripted: () => new FakeLlm({ reply: () => 'We open at eight.' }) },
        tts: { flite: () => new FakeTts({ msPerChar: 30 }) },
      }),
      prompts: new PromptCache(),
      createVad: () => createVad(),
      clock: sharedMediaClock(),
      endpoint: { portRange: { min: 46000, max: 46999 } },
    });
  });

  afterAll(async () => {
    for (const p of peers) p.close();
    await door?.drain();
    await records?.close(500);
    await cache?.close();
    if (redis) {
      await deletePrefix(redis, prefix);
      await redis.quit();
    }
  });

  const recordOf = async (callId: string): Promise<CallRecord | undefined> =>
    pollUntil(async () => (await records.list('demo')).records.find((r) => r.callId === callId), (r) => r !== undefined, 3000);

  /** Lines the tenant holds once released calls have given theirs back. */
  const linesAfterRelease = (): Promise<number> => pollUntil(() => limiter.active('demo'), (n) => n === 0, 3000);

  async function call(origin = 'https://shop.example'): Promise<{ peer: BrowserPeer; callId: string }> {
    const { token } = await tokens.issue('demo', { origin });
    const peer = new BrowserPeer({ name: 'page', dataChannel: true, sampleRate: 16000 });
    peers.push(peer);
    const { callId, sdp } = await door.answer({ token, sdp: await peer.createOffer(), origin });
    await peer.setAnswer(sdp);
    await within(peer.connected, 5000, 'DTLS-SRTP to the gateway');
    return { peer, callId };
  }

  it('answers the offer, the page hears the greeting and sees both sides of the conversation; hanging up ends the call', async () => {
    const { peer, callId } = await call();
    await new Promise((r) => setTimeout(r, 2500)); // "Hello Dana, this is Ava at Demo Bakery." at 30 ms a character
    // The greeting, judged by what was heard (16 kHz as decoded by this page): the fake voice, for
    // about as long as the greeting takes to say (39 characters, 1.2 s).
    expect(fakeVoiceShare(peer.receivedAudio())).toBeGreaterThan(FAKE_VOICE_SHARE);
    expect(soundMs(peer.receivedAudio())).toBeGreaterThan(1000);
    peer.play(voiceLike(900, -20));
    await new Promise((r) => setTimeout(r, 2500));
    const events = peer.messages.map((m) => JSON.parse(m) as WebPhoneEvent);
    // The greeting arrives as spoken, piece by piece, and only once.
    const greeting = events.filter((e) => e.type === 'transcript' && e.role === 'agent' && e.turn === 0).map((e) => (e.type === 'transcript' ? e.text : ''));
    expect(greeting.join(' ')).toBe('Hello Dana, this is Ava at Demo Bakery.');
    expect(events).toContainEqual(expect.objectContaining({ type: 'transcript', role: 'caller', text: 'when do you open', final: true }));
    expect(events).toContainEqual(expect.objectContaining({ type: 'transcript', role: 'agent', text: expect.stringContaining('We open at eight') }));
    expect(peer.stats().decodeErrors).toBe(0);
    peer.close();
    const rec = await recordOf(callId);
    expect(rec).toMatchObject({ door: 'webrtc', outcome: 'caller-hangup', from: 'web:demo', to: 'callurl:demo' });
    expect(rec!.transcript.map((t) => t.text)).toEqual(expect.arrayContaining(['Hello Dana, this is Ava at Demo Bakery.', 'when do you open']));
    expect(await pollUntil(() => limiter.active('demo'), (n) => n === 0)).toBe(0);
  }, 20_000);

  it('refuses a used token, a token from another origin, and an offer that is not WebRTC', async () => {
    const { token } = await tokens.issue('demo', { origin: 'https://shop.example' });
    const peer = new BrowserPeer({ name: 'page2', dataChannel: true });
    peers.push(peer);
    const offer = await peer.createOffer();
    await expect(door.answer({ token, sdp: offer, origin: 'https://evil.example' })).rejects.toMatchObject({ code: 'CG_CALL_TOKEN_INVALID' });
    const second = (await tokens.issue('demo', { origin: 'https://shop.example' })).token;
    await expect(door.answer({ token: second, sdp: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n', origin: 'https://shop.example' })).rejects.toMatchObject({ code: 'CG_SDP_NOT_WEBRTC' });
    await expect(door.answer({ token: second, sdp: 'hello', origin: 'https://shop.example' })).rejects.toMatchObject({ code: 'CG_SDP_MALFORMED' });
    // The malformed offers were refused before the token was spent; now it is used, then refused again.
    const answered = await door.answer({ token: second, sdp: offer, origin: 'https://shop.example' });
    await peer.setAnswer(answered.sdp);
    await expect(door.answer({ token: second, sdp: offer, origin: 'https://shop.example' })).rejects.toMatchObject({ code: 'CG_CALL_TOKEN_INVALID' });
    await within(peer.connected, 5000, 'DTLS-SRTP to the gateway');
    // Hang up once the greeting is playing, as a person would (the page's channel is up by then).
    await pollUntil(() => peer.receivedAudio().length, (n) => n >= 3200, 2000, 20);
    peer.close();
    expect(await linesAfterRelease()).toBe(0);
  }, 20_000);

  it('carries five calls at once, each hearing its greeting', async () => {
    const calls = await Promise.all(Array.from({ length: 5 }, () => call()));
    await new Promise((r) => setTimeout(r, 2000));
    for (const { peer } of calls) expect(fakeVoiceShare(peer.receivedAudio())).toBeGreaterThan(FAKE_VOICE_SHARE);
    expect(await limiter.active('demo')).toBeGreaterThanOrEqual(5);
    for (const { peer } of calls) peer.close();
    expect(await linesAfterRelease()).toBe(0);
  }, 30_000);
  it('over HTTP as the page does it: a token from POST /v1/call-urls/:slug/token, the offer to POST /v1/webrtc/offer', async () => {
    const api = await buildAdminApp({ redis, prefix, secrets: new SecretBox(randomBytes(32)), adminToken: 'x'.repeat(32), webrtc: door });
    try {
      const origin = 'https://shop.example';
      const issued = await api.inject({ method: 'POST', url: '/v1/call-urls/demo/token', headers: { origin } });
      expect(issued.statusCode).toBe(201);
      const { token } = issued.json() as { token: string };
      const preflight = await api.inject({ method: 'OPTIONS', url: '/v1/webrtc/offer', headers: { origin, 'access-control-request-method': 'POST' } });
      expect(preflight.statusCode).toBe(204);
      expect(preflight.headers['access-control-allow-headers']).toContain('content-type');
      const bad = await api.inject({ method: 'POST', url: '/v1/webrtc/offer', headers: { origin }, payload: { token } });
      expect(bad.statusCode).toBe(400);
      const peer = new BrowserPeer({ name: 'http-page', dataChannel: true, sampleRate: 16000 });
      peers.push(peer);
      const res = await api.inject({ method: 'POST', url: '/v1/webrtc/offer', headers: { origin }, payload: { token, sdp: await peer.createOffer() } });
      expect(res.statusCode).toBe(201);
      expect(res.headers['access-control-allow-origin']).toBe('*');
      const body = res.json() as { callId: string; sdp: string; type: string };
      expect(body.type).toBe('answer');
      await peer.setAnswer(body.sdp);
      await within(peer.connected, 5000, 'DTLS-SRTP to the gateway');
      await pollUntil(() => peer.receivedAudio().length, (n) => n >= 16000, 2000, 20);
      expect(fakeVoiceShare(peer.receivedAudio())).toBeGreaterThan(FAKE_VOICE_SHARE);
      // The token is spent.
      const other = new BrowserPeer({ name: 'other-page' });
      peers.push(other);
      const again = await api.inject({ method: 'POST', url: '/v1/webrtc/offer', headers: { origin }, payload: { token, sdp: await other.createOffer() } });
      expect(again.statusCode).toBe(401);
      peer.close();
      expect(await recordOf(body.callId)).toMatchObject({ door: 'webrtc', outcome: 'caller-hangup' });
    } finally {
      await api.close();
    }
  }, 20_000);
});
