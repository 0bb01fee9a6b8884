import { randomBytes } from 'node:crypto';
import Srf from 'drachtio-srf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PromptCache } from '../../src/agent/PromptCache.js';
import { ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { createVad } from '../../src/agent/vad/createVad.js';
import { sharedMediaClock } from '../../src/media/MediaClock.js';
import { buildSdp, negotiate, offerCodecs, parseRemoteSdp } from '../../src/media/sdp.js';
import { goertzelPower } from '../../src/media/signal.js';
import { RtpCaller } from '../../src/media/testing/RtpCaller.js';
import { OpenAiRealtime } from '../../src/providers/realtime/openaiRealtime.js';
import { OpenAiRealtimeServer } from '../../src/providers/realtime/testing/OpenAiRealtimeServer.js';
import { GeminiLiveServer } from '../../src/providers/realtime/testing/GeminiLiveServer.js';
import { GeminiLive } from '../../src/providers/realtime/geminiLive.js';
import type { RealtimeProvider } from '../../src/providers/types.js';
import { FakeLlm, FakeStt, FakeTts, voiceLike } from '../../src/providers/testing/FakeProviders.js';
import { startDrachtio, type RunningDrachtio } from '../../src/sip/testing/DrachtioProcess.js';
import { startSipHarness, type SipHarness } from '../../src/sip/testing/SipHarness.js';
import { CallLimiter } from '../../src/tenants/CallLimiter.js';
import { CallRecordStore } from '../../src/tenants/CallRecordStore.js';
import { CallTokenStore } from '../../src/tenants/CallTokenStore.js';
import { CallUrlStore } from '../../src/tenants/CallUrlStore.js';
import { connectRedis, deletePrefix, testPrefix, type Redis } from '../../src/tenants/redisClient.js';
import { SecretBox } from '../../src/tenants/secrets.js';
import { TenantCache } from '../../src/tenants/TenantCache.js';
import { TenantStore } from '../../src/tenants/TenantStore.js';
import { pollUntil, within } from '../../src/util/testing/wait.js';
import { BrowserPeer } from '../../src/webrtc/testing/BrowserPeer.js';
import { WebRtcDoor, type WebPhoneEvent } from '../../src/webrtc/WebRtcDoor.js';
import { missingTool, testMissing } from '../support/tools.js';

/**
 * A tenant on a speech-to-speech model, through both doors: the direct WebRTC door (a node-datachannel
 * page) and the SIP door (drachtio-server, rtpengine, a PCMU phone). The model is a local server
 * speaking OpenAI's Realtime protocol through the official SDK; its answer is a 440 Hz tone the caller
 * must hear, and its words reach the page's transcript and the call record.
 */
const ANSWER = 'We are open until nine tonight.';
const TONE_HZ = 440;

interface Model {
  readonly name: 'openai' | 'gemini';
  provider(): RealtimeProvider;
  stop(): Promise<void>;
}

const models: Record<string, () => Promise<Model>> = {
  'OpenAI Realtime': async () => {
    const server = await OpenAiRealtimeServer.start({ transcribe: () => 'how late are you open', answer: () => ({ text: ANSWER }), chunkIntervalMs: 20 });
    return { name: 'openai', provider: () => new OpenAiRealtime({ apiKey: 'sk-test', baseURL: server.baseURL, ca: server.ca }), stop: () => server.stop() };
  },
  'Gemini Live': async () => {
    const server = await GeminiLiveServer.start({ transcribe: () => 'how late are you open', answer: () => ({ text: ANSWER }), chunkIntervalMs: 20 });
    return { name: 'gemini', provider: () => new GeminiLive({ apiKey: 'test-key', baseUrl: server.baseUrl }), stop: () => server.stop() };
  },
};

function registry(model: Model): ProviderRegistry {
  return new ProviderRegistry({
    stt: { pocketsphinx: () => new FakeStt({ transcripts: ['cascade heard this'] }) },
    llm: { scripted: () => new FakeLlm({ reply: () => 'The cascade answers.' }) },
    tts: { flite: () => new FakeTts({ msPerChar: 30 }) },
  }).registerRealtime(model.name, () => model.provider());
}

/** Tone power at 440 Hz relative to the whole signal's, over what a caller heard. */
const toneShare = (pcm: Int16Array, rate: number): number => {
  let energy = 0;
  for (const s of pcm) energy += s * s;
  return energy === 0 ? 0 : (goertzelPower(pcm, rate, TONE_HZ) * pcm.length) / (2 * energy);
};

describe.each(Object.keys(models))('a speech-to-speech tenant (%s) through the doors', (which) => {
  let server: Model;
  beforeAll(async () => {
    server = await models[which]!();
  });
  afterAll(async () => {
    await server?.stop();
  });

  describe('direct WebRTC', () => {
    const prefix = testPrefix();
    let redis: Redis;
    let door: WebRtcDoor;
    let tokens: CallTokenStore;
    let records: CallRecordStore;
    let cache: TenantCache;
    const peers: BrowserPeer[] = [];

    beforeAll(async () => {
      redis = await connectRedis({ prefix });
      const tenants = new TenantStore(redis, new SecretBox(randomBytes(32)), { prefix });
      await tenants.create({ id: 'rt', displayName: 'Realtime Bakery', greeting: 'Hello, Realtime Bakery.', providers: { realtime: server.name } });
      await new CallUrlStore(redis, { prefix }).create({ slug: 'rt-demo', tenantId: 'rt' });
      tokens = new CallTokenStore(redis, { prefix });
      records = new CallRecordStore(redis, { prefix });
      cache = new TenantCache(tenants, redis, { prefix });
      door = new WebRtcDoor({ tokens, tenants: cache, limiter: new CallLimiter(redis, { prefix }), records, providers: registry(server), prompts: new PromptCache(), createVad: () => createVad(), clock: sharedMediaClock(), endpoint: { portRange: { min: 47000, max: 47499 } } });
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

    it('greets at once, the model answers what the page said, and its words reach the page and the record', async () => {
      const { token } = await tokens.issue('rt-demo', {});
      const peer = new BrowserPeer({ name: 'page', dataChannel: true, sampleRate: 16000 });
      peers.push(peer);
      const { callId, sdp } = await door.answer({ token, sdp: await peer.createOffer() });
      await peer.setAnswer(sdp);
      await within(peer.connected, 5000, 'DTLS-SRTP to the gateway');
      await new Promise((r) => setTimeout(r, 1500));
      const before = peer.receivedAudio().length;
      peer.play(voiceLike(900, -20));
      const events = (): WebPhoneEvent[] => peer.messages.map((m) => JSON.parse(m) as WebPhoneEvent);
      await pollUntil(events, (e) => e.some((x) => x.type === 'transcript' && x.role === 'agent' && x.text === ANSWER), 10_000, 50);
      await new Promise((r) => setTimeout(r, 1000));
      expect(events()).toContainEqual(expect.objectContaining({ type: 'transcript', role: 'caller', text: 'how late are you open', final: true }));
      // The model's tone is in what the page heard after its question, and not in the greeting before it.
      expect(toneShare(peer.receivedAudio().subarray(before), 16000)).toBeGreaterThan(0.1);
      expect(toneShare(peer.receivedAudio().subarray(0, before), 16000)).toBeLessThan(0.02);
      peer.close();
      const rec = await pollUntil(async () => (await records.list('rt')).records.find((r) => r.callId === callId), (r) => r !== undefined, 5000);
      // The page hung up while the answer played: the record keeps what was heard of it.
      expect(rec!.transcript.map((t) => t.text).slice(0, 2)).toEqual(['Hello, Realtime Bakery.', 'how late are you open']);
      expect(rec!.transcript[2]).toMatchObject({ role: 'agent', text: expect.stringMatching(/^We are open/) });
      expect(rec!.realtime).toMatchObject({ provider: server.name, responses: 1, fellBack: false });
    }, 30_000);
  });

  const MISSING = missingTool('drachtio', 'rtpengine');
  if (MISSING) {
    describe('SIP', () => testMissing(MISSING));
  } else {
    describe('SIP (drachtio-server, rtpengine, PCMU)', () => {
      let h: SipHarness;
      let callerDrachtio: RunningDrachtio;
      let srf: Srf;
      beforeAll(async () => {
        h = await startSipHarness({ providers: registry(server), agentPorts: { min: 47500, max: 47749 }, rtpengine: { portMin: 47750, portMax: 47999 } });
        await h.tenants.create({ id: 'rt-sip', displayName: 'Realtime Line', greeting: 'Hello, Realtime Line.', providers: { realtime: server.name } });
        await h.numbers.createTrunk({ name: 'local', sourceCidrs: ['127.0.0.1/32'] });
        await h.numbers.createNumber({ number: '+15005550177', tenantId: 'rt-sip' });
        callerDrachtio = await startDrachtio();
        srf = new Srf();
        await new Promise<void>((resolve, reject) => {
          srf.once('connect', (err: Error) => (err ? reject(err) : resolve()));
          srf.connect({ host: '127.0.0.1', port: callerDrachtio.adminPort, secret: callerDrachtio.secret });
        });
      }, 30_000);
      afterAll(async () => {
        srf?.disconnect();
        await callerDrachtio?.stop();
        await h?.stop();
      });

      it('a phone caller hears the greeting, then the model answers what they said', async () => {
        const caller = await RtpCaller.open({ portRange: { min: 48000, max: 48249 } });
        try {
          const dialog = await srf.createUAC(h.target('+15005550177'), { localSdp: buildSdp({ address: '127.0.0.1', port: caller.port, ...offerCodecs(['PCMU']) }) });
          caller.start(negotiate(parseRemoteSdp(dialog.remote.sdp)).remote);
          await pollUntil(() => caller.firstSoundAfter(0), (t) => t !== undefined, 5000, 20);
          await new Promise((r) => setTimeout(r, 1200));
          await caller.speak(voiceLike(900, -20));
          const asked = performance.now();
          // The model's answer: sound after the question, for as long as it takes to say.
          const answerAt = await pollUntil(() => caller.firstSoundAfter(asked), (t) => t !== undefined, 10_000, 20);
          await new Promise((r) => setTimeout(r, 1500));
          expect(toneShare(caller.audio(answerAt!), 8000)).toBeGreaterThan(0.1);
          expect(toneShare(caller.audio(0, asked - 1000), 8000)).toBeLessThan(0.02);
          await Promise.resolve(dialog.destroy() as unknown).catch(() => undefined);
          const rec = await pollUntil(async () => (await h.records.list('rt-sip')).records[0], (r) => r !== undefined, 5000);
          expect(rec!.realtime).toMatchObject({ provider: server.name, fellBack: false });
          // Hung up while it spoke: the record keeps what was heard of the answer.
          expect(rec!.transcript.at(-1)).toMatchObject({ role: 'agent', text: expect.stringMatching(/^We are open/) });
        } finally {
          caller.close();
        }
      }, 30_000);
    });
  }
});
