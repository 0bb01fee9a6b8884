import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import Srf from 'drachtio-srf';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PromptCache } from '../../src/agent/PromptCache.js';
import { ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { createVad } from '../../src/agent/vad/createVad.js';
import { CallMetrics } from '../../src/app/CallMetrics.js';
import { loggerTo } from '../../src/log.js';
import { openAudioLeg } from '../../src/media/AudioLeg.js';
import { sharedMediaClock } from '../../src/media/MediaClock.js';
import { buildSdp, negotiate, offerCodecs, parseRemoteSdp } from '../../src/media/sdp.js';
import { activeSpan, concatSamples } from '../../src/media/signal.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/testing/FakeProviders.js';
import { defaultSourceLimiterOptions } from '../../src/sip/invite/SourceLimiter.js';
import { MediaAnchor } from '../../src/sip/rtpengine/MediaAnchor.js';
import { RtpengineProcess } from '../../src/sip/rtpengine/RtpengineProcess.js';
import { SipGateway, type SipRefusal } from '../../src/sip/SipGateway.js';
import { startDrachtio, type RunningDrachtio } from '../../src/sip/testing/DrachtioProcess.js';
import { CallLimiter } from '../../src/tenants/CallLimiter.js';
import { SipAuthFailureStore } from '../../src/tenants/SipAuthFailureStore.js';
import { CallRecordStore, type CallRecord } from '../../src/tenants/CallRecordStore.js';
import { NumberStore } from '../../src/tenants/NumberStore.js';
import { connectRedis, deletePrefix, testPrefix, type Redis } from '../../src/tenants/redisClient.js';
import { SecretBox } from '../../src/tenants/secrets.js';
import { TenantCache } from '../../src/tenants/TenantCache.js';
import { TenantStore } from '../../src/tenants/TenantStore.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { FAKE_VOICE_SHARE, fakeVoiceShare } from '../support/heard.js';
import { missingTool, testMissing } from '../support/tools.js';

/**
 * An INVITE flood from one source (raw UDP from 127.0.0.2, which no trunk covers) through a real
 * drachtio-server into the gateway, while the trusted trunk (127.0.0.1, a drachtio-srf caller on a
 * drachtio-server of its own) places a real call. The per-source limit (defaults: 10/s, burst 30)
 * lets the flood's burst through to the source check (403 after one Redis lookup each) and answers
 * the rest 503 with Retry-After before any lookup; the trunk's bucket is its own, so its call goes
 * through. Prints one JSON line of figures (single observations on this machine).
 */
const FLOOD_INVITES = 2000;
/** INVITEs per batch, and the pause between batches: ~5 000/s, 500 times the default rate. */
const FLOOD_BATCH = 50;
const FLOOD_PAUSE_MS = 10;
/** The normal call starts once this many flood INVITEs are out, so its setup runs inside the flood. */
const CALL_AFTER = 400;
const NUMBER = '+15005550100';

/** Linux's count of datagrams dropped for a full socket receive buffer (host-wide), for the figures only. */
function udpReceiveBufferErrors(): number | undefined {
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
    const [names, values] = lines.map((l) => l.split(/\s+/));
    const i = names?.indexOf('RcvbufErrors') ?? -1;
    return i > 0 ? Number(values?.[i]) : undefined;
  } catch {
    return undefined;
  }
}

const MISSING = missingTool('drachtio', 'rtpengine');
if (MISSING) {
  describe('SIP flood', () => testMissing(MISSING));
} else {
  describe('SIP INVITE flood from one source, with a normal call from the trunk during it', () => {
    const prefix = testPrefix();
    let drachtio: RunningDrachtio;
    let callerDrachtio: RunningDrachtio;
    let rtpengine: RtpengineProcess;
    let anchor: MediaAnchor;
    let redis: Redis;
    let gateway: SipGateway;
    let caller: Srf;
    let records: CallRecordStore;
    let limiter: CallLimiter;
    let cache: TenantCache;
    const registry = new Registry();
    const logLines: { msg?: string; source?: string; refused?: number }[] = [];
    const refusals: SipRefusal[] = [];
    /** Trunk lookups in Redis, by source address: what a refused flood INVITE must never cost. */
    const lookups = new Map<string, number>();

    beforeAll(async () => {
      drachtio = await startDrachtio();
      callerDrachtio = await startDrachtio();
      rtpengine = await RtpengineProcess.start();
      anchor = await MediaAnchor.open({ port: rtpengine.ngPort });
      redis = await connectRedis({ prefix });
      const secrets = new SecretBox(randomBytes(32));
      const tenants = new TenantStore(redis, secrets, { prefix });
      const numbers = new NumberStore(redis, secrets, { prefix });
      await tenants.create({ id: 'joes', displayName: "Joe's Pizza", greeting: "Hi, you have reached Joe's Pizza, how can I help?", maxConcurrentCalls: 5 });
      await numbers.createTrunk({ name: 'local', sourceCidrs: ['127.0.0.1/32'] });
      await numbers.createNumber({ number: NUMBER, tenantId: 'joes' });
      const lookup = numbers.trunksForSourceWithSecrets.bind(numbers);
      numbers.trunksForSourceWithSecrets = (ip) => {
        lookups.set(ip, (lookups.get(ip) ?? 0) + 1);
        return lookup(ip);
      };
      cache = new TenantCache(tenants, redis, { prefix });
      records = new CallRecordStore(redis, { prefix });
      limiter = new CallLimiter(redis, { prefix });
      gateway = new SipGateway({
        numbers,
        tenants: cache,
        limiter,
        records,
        authFailures: new SipAuthFailureStore(redis, { prefix }),
        anchor,
        providers: new ProviderRegistry({
          stt: { pocketsphinx: () => new FakeStt({ transcripts: [] }) },
          llm: { scripted: () => new FakeLlm({ reply: () => 'Sure.' }) },
          tts: { flite: () => new FakeTts({ msPerChar: 35 }) },
        }),
        prompts: new PromptCache(),
        createVad: () => createVad(),
        clock: sharedMediaClock(),
        endpoint: { portRange: { min: 47000, max: 47499 } },
        // Warnings and up, as production would keep them: the flood must not flood the log.
        logger: loggerTo({ write: (line: string) => void logLines.push(JSON.parse(line) as (typeof logLines)[number]) }, 'warn'),
      });
      // Wired by the Gateway's own wiring (CallMetrics.watchSip): refusals before a tenant feed
      // callgate_sip_refused_total. tests/app/start.test.ts reads the same counter off a running
      // gateway's /metrics.
      new CallMetrics(registry, limiter).watchSip(gateway);
      gateway.on('refused', (r) => refusals.push(r));
      await gateway.connect({ host: '127.0.0.1', port: drachtio.adminPort, secret: drachtio.secret });
      caller = new Srf();
      await new Promise<void>((resolve, reject) => {
        caller.once('connect', (err: Error) => (err ? reject(err) : resolve()));
        caller.connect({ host: '127.0.0.1', port: callerDrachtio.adminPort, secret: callerDrachtio.secret });
      });
    }, 30_000);

    afterAll(async () => {
      caller?.disconnect();
      await callerDrachtio?.stop();
      gateway?.disconnect();
      await gateway?.drain();
      await records?.close(500);
      await cache?.close();
      anchor?.close();
      await rtpengine?.stop();
      await drachtio?.stop();
      if (redis) {
        await deletePrefix(redis, prefix);
        await redis.quit();
      }
    });

    /**
     * A call from the trunk: how long from sending the INVITE to having the 200 (and sending the ACK),
     * and whether the greeting was heard through rtpengine; then the caller hangs up.
     */
    async function placeCall(): Promise<{ setupMs: number; inviteAt: number; answeredAt: number; heardVoice: number; heardMs: number; callId: string }> {
      const leg = await openAudioLeg({ callId: 'flood-caller', legId: 'caller', codec: { name: 'PCMU', payloadType: 0 }, clock: sharedMediaClock(), env: {}, endpoint: { portRange: { min: 47500, max: 47999 } } });
      const heard: Int16Array[] = [];
      leg.on('audio', (f) => heard.push(f.slice()));
      try {
        const sdp = buildSdp({ address: '127.0.0.1', port: leg.endpoint.localAddress.port, ...offerCodecs(['PCMU']) });
        const inviteAt = performance.now();
        const dialog = await caller.createUAC(`sip:${NUMBER}@127.0.0.1:${drachtio.sipPort}`, { localSdp: sdp });
        const answeredAt = performance.now();
        const answer = negotiate(parseRemoteSdp(dialog.remote.sdp));
        leg.endpoint.setRemote({ address: answer.remote.address, port: answer.remote.port });
        leg.play(new Int16Array(320)); // latch rtpengine onto our address
        await new Promise((r) => setTimeout(r, 1200));
        await new Promise<void>((resolve) => dialog.destroy(undefined, () => resolve()));
        const audio = concatSamples(heard);
        const callId = (dialog as unknown as { sip: { callId: string } }).sip.callId;
        const sound = activeSpan(audio, 16000);
        // What was heard: how much of it is the fake TTS's voice, and for how long there was sound.
        return { setupMs: answeredAt - inviteAt, inviteAt, answeredAt, heardVoice: fakeVoiceShare(audio), heardMs: sound ? sound.endMs - sound.startMs : 0, callId };
      } finally {
        await leg.close();
      }
    }

    const recordOf = (callId: string): Promise<CallRecord | undefined> =>
      pollUntil(async () => (await records.list('joes')).records.find((r) => r.callId === callId), (r) => r !== undefined);

    it('limits the flooding source (503 + Retry-After, no Redis) while the trunk places a call that succeeds', async () => {
      // The first call warms up what every first call pays once (tenant cache, VAD model); the second
      // is the setup time without a flood.
      await placeCall();
      const quiet = await placeCall();
      expect(quiet.heardVoice).toBeGreaterThan(FAKE_VOICE_SHARE);

      const flooder = createSocket('udp4');
      await new Promise<void>((resolve) => flooder.bind(0, '127.0.0.2', () => resolve()));
      const port = flooder.address().port;
      /** Each flood INVITE's first final response (drachtio retransmits them: the flooder never ACKs). */
      const finals = new Map<string, { status: number; retryAfter: string | undefined }>();
      let lastResponseAt = 0;
      flooder.on('message', (msg) => {
        const text = msg.toString('latin1');
        const status = Number(/^SIP\/2\.0 (\d{3}) /.exec(text)?.[1]);
        const callId = /^Call-ID:\s*(\S+)/im.exec(text)?.[1];
        if (!callId || !(status >= 200) || finals.has(callId)) return;
        finals.set(callId, { status, retryAfter: /^Retry-After:\s*(\S+)/im.exec(text)?.[1] });
        lastResponseAt = performance.now();
      });
      const sdp = `v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n`;
      const invite = (i: number): Buffer =>
        Buffer.from(
          `INVITE sip:${NUMBER}@127.0.0.1:${drachtio.sipPort} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:${port};branch=z9hG4bK-flood-${i}-${randomBytes(4).toString('hex')};rport\r\n` +
            `Max-Forwards: 70\r\nFrom: <sip:flood@127.0.0.2>;tag=f${i}\r\nTo: <sip:${NUMBER}@127.0.0.1>\r\nCall-ID: flood-${i}-${randomBytes(6).toString('hex')}\r\nCSeq: 1 INVITE\r\n` +
            `Contact: <sip:flood@127.0.0.2:${port}>\r\nContent-Type: application/sdp\r\nContent-Length: ${sdp.length}\r\n\r\n${sdp}`,
        );

      const rcvbufErrorsBefore = udpReceiveBufferErrors();
      let during: Promise<Awaited<ReturnType<typeof placeCall>>> | undefined;
      const floodStart = performance.now();
      for (let i = 0; i < FLOOD_INVITES; i++) {
        flooder.send(invite(i), drachtio.sipPort, '127.0.0.1');
        if (i === CALL_AFTER) during = placeCall();
        if (i % FLOOD_BATCH === FLOOD_BATCH - 1) await new Promise((r) => setTimeout(r, FLOOD_PAUSE_MS));
      }
      const floodSent = performance.now();
      const call = await during!;
      // Every flood INVITE answered, or a bounded wait for the stragglers.
      await pollUntil(() => finals.size, (n) => n >= FLOOD_INVITES, 5000);
      flooder.close();
      const rcvbufErrorsAfter = udpReceiveBufferErrors();

      // The trunk's call went through during the flood: answered, the greeting heard, recorded.
      expect(call.inviteAt).toBeLessThan(floodSent);
      expect(call.heardVoice).toBeGreaterThan(FAKE_VOICE_SHARE);
      expect(call.heardMs).toBeGreaterThan(500); // the greeting, not a blip
      expect(await recordOf(call.callId)).toMatchObject({ outcome: 'caller-hangup', door: 'sip' });

      const byStatus = new Map<number, number>();
      for (const f of finals.values()) byStatus.set(f.status, (byStatus.get(f.status) ?? 0) + 1);
      const limited = byStatus.get(503) ?? 0;
      const passed = byStatus.get(403) ?? 0;
      expect([...byStatus.keys()].sort()).toEqual([403, 503]);
      // Through the limiter: the burst, plus what the sustained rate refilled while the flood lasted.
      const floodS = (lastResponseAt - floodStart) / 1000;
      const { burst, invitesPerSecond } = defaultSourceLimiterOptions;
      expect(passed).toBeGreaterThanOrEqual(burst);
      expect(passed).toBeLessThanOrEqual(burst + Math.ceil(invitesPerSecond * floodS) + 1);
      expect(limited + passed).toBe(finals.size);
      // Most of the flood reached the gateway and was refused there (the rest is dropped before it:
      // see kernelUdpReceiveBufferDrops in the figures).
      expect(limited).toBeGreaterThan(FLOOD_INVITES / 2);
      expect([...finals.values()].filter((f) => f.status === 503).every((f) => Number(f.retryAfter) >= 1)).toBe(true);
      // Only what passed the limiter cost a Redis lookup: the 503s were answered before any.
      expect(lookups.get('127.0.0.2')).toBe(passed);
      // Every refusal was told to metrics, by code; the trunk's INVITEs were never limited.
      const refusedBy = (code: string, source: string): number => refusals.filter((r) => r.code === code && r.source === source).length;
      expect(refusedBy('CG_SIP_RATE_LIMITED', '127.0.0.2')).toBeGreaterThanOrEqual(limited);
      expect(refusedBy('CG_SIP_FORBIDDEN', '127.0.0.2')).toBe(passed);
      expect(refusals.filter((r) => r.source === '127.0.0.1')).toEqual([]);
      const text = await registry.metrics();
      expect(text).toContain(`callgate_sip_refused_total{code="CG_SIP_RATE_LIMITED"} ${refusedBy('CG_SIP_RATE_LIMITED', '127.0.0.2')}`);
      // One log line for the whole flood (one per source per minute), carrying the count.
      const floodLines = logLines.filter((l) => l.msg === 'SIP source over its INVITE rate: refusing with 503');
      expect(floodLines).toHaveLength(1);
      expect(floodLines[0]).toMatchObject({ source: '127.0.0.2', refused: 1 });
      expect(logLines.length).toBeLessThan(10);

      // Nothing left: no rtpengine session, no line held, no INVITE handler running.
      expect(await pollUntil(() => anchor.sessionCount(), (n) => n === 0)).toBe(0);
      expect(await pollUntil(() => limiter.active('joes'), (n) => n === 0)).toBe(0);
      expect(await pollUntil(() => gateway.activeCalls, (n) => n === 0)).toBe(0);
      expect(gateway.sources.size).toBeLessThanOrEqual(2);

      console.log(
        JSON.stringify({
          figures: 'sip-flood (single observation)',
          invitesSent: FLOOD_INVITES,
          answered: finals.size,
          answered503: limited,
          passed403: passed,
          refusedEvents: refusals.filter((r) => r.source === '127.0.0.2').length,
          redisLookupsFlooder: lookups.get('127.0.0.2') ?? 0,
          floodSendMs: Math.round(floodSent - floodStart),
          floodUntilLastResponseMs: Math.round(lastResponseAt - floodStart),
          callSetupMsQuiet: Math.round(quiet.setupMs * 10) / 10,
          callSetupMsDuringFlood: Math.round(call.setupMs * 10) / 10,
          callAnsweredBeforeFloodAnswered: call.answeredAt < lastResponseAt,
          unanswered: FLOOD_INVITES - finals.size,
          kernelUdpReceiveBufferDrops: rcvbufErrorsBefore === undefined || rcvbufErrorsAfter === undefined ? null : rcvbufErrorsAfter - rcvbufErrorsBefore,
          logLines: logLines.length,
        }),
      );
    }, 40_000);
  });
}
