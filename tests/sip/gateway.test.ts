import { randomBytes } from 'node:crypto';
import Srf from 'drachtio-srf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PromptCache } from '../../src/agent/PromptCache.js';
import { ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { createVad } from '../../src/agent/vad/createVad.js';
import { openAudioLeg, type AudioLeg } from '../../src/media/AudioLeg.js';
import { sharedMediaClock } from '../../src/media/MediaClock.js';
import { dtmfPayloads } from '../../src/media/codecs/telephoneEvent.js';
import { serializeRtp } from '../../src/media/rtp/RtpPacket.js';
import { buildSdp, negotiate, offerCodecs, parseRemoteSdp } from '../../src/media/sdp.js';
import { concatSamples } from '../../src/media/signal.js';
import { FakeLlm, FakeStt, FakeTts, voiceLike } from '../../src/providers/testing/FakeProviders.js';
import { MediaAnchor } from '../../src/sip/rtpengine/MediaAnchor.js';
import { RtpengineProcess } from '../../src/sip/rtpengine/RtpengineProcess.js';
import { buildAdminApp } from '../../src/http/adminApp.js';
import { SipGateway, type SipCallTiming } from '../../src/sip/SipGateway.js';
import { pendingInviteCount } from '../../src/sip/drachtioPending.js';
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
import { FAKE_VOICE_SHARE, fakeVoiceShare, soundMs } from '../support/heard.js';
import { missingTool, testMissing } from '../support/tools.js';

/**
 * SIP calls end to end on loopback: drachtio-server (built outside the repo), our gateway on
 * drachtio-srf, Debian's rtpengine anchoring media, the agent with fake providers. The caller is a
 * second drachtio-srf app (a UAC, on a drachtio-server of its own) with an AudioLeg of ours for its
 * media, so the test hears exactly what a phone would.
 */
const MISSING = missingTool('drachtio', 'rtpengine');
if (MISSING) {
  describe('SIP gateway', () => testMissing(MISSING));
} else {
  describe('SIP gateway over drachtio-server and rtpengine', () => {
    const prefix = testPrefix();
    let drachtio: RunningDrachtio;
    /** The caller's own drachtio-server: one will not send a request to itself. */
    let callerDrachtio: RunningDrachtio;
    let rtpengine: RtpengineProcess;
    let anchor: MediaAnchor;
    let redis: Redis;
    let gateway: SipGateway;
    let caller: Srf;
    let cache: TenantCache;
    let records: CallRecordStore;
    let limiter: CallLimiter;
    let numbersStore: NumberStore;
    let secretBox: SecretBox;
    /** The desk phone's own drachtio, sending from 127.0.0.2. */
    let deskDrachtio: RunningDrachtio;
    let desk: Srf;
    let setupGate: Promise<void> = Promise.resolve();

    beforeAll(async () => {
      drachtio = await startDrachtio();
      callerDrachtio = await startDrachtio();
      rtpengine = await RtpengineProcess.start();
      anchor = await MediaAnchor.open({ port: rtpengine.ngPort });
      redis = await connectRedis({ prefix });
      const secrets = (secretBox = new SecretBox(randomBytes(32)));
      const tenants = new TenantStore(redis, secrets, { prefix });
      const numbers = (numbersStore = new NumberStore(redis, secrets, { prefix }));
      await tenants.create({ id: 'joes', displayName: "Joe's Pizza", greeting: "Hi, I'm {{agentName}} from {{business}}.", maxConcurrentCalls: 1 });
      await numbers.createTrunk({ name: 'local', sourceCidrs: ['127.0.0.1/32'] });
      await numbers.createNumber({ number: '+15005550100', tenantId: 'joes' });
      // A second tenant whose agent says goodbye after the caller's first words, and hangs up itself.
      await tenants.create({ id: 'brief', displayName: 'Brief', greeting: 'Hello.', providers: { llm: 'goodbye' } });
      await numbers.createNumber({ number: '+15005550101', tenantId: 'brief' });
      // A tenant whose calls last one second at most (the schema's minimum).
      await tenants.create({ id: 'short', displayName: 'Short', greeting: 'Hi.', maxCallDurationMs: 1000 });
      await numbers.createNumber({ number: '+15005550102', tenantId: 'short' });
      // A desk phone at 127.0.0.2 that must answer a digest challenge (no open trunk covers that address).
      await tenants.create({ id: 'desk', displayName: 'Desk', greeting: 'Hello desk.' });
      await numbers.createTrunk({ name: 'desk-phone', sourceCidrs: ['127.0.0.2/32'], auth: { username: 'desk-1', password: 'correct-horse-battery' } });
      await numbers.createNumber({ number: '+15005550103', tenantId: 'desk' });
      // Many calls at once.
      await tenants.create({ id: 'many', displayName: 'Many', greeting: 'Hello there, thanks for calling.', maxConcurrentCalls: 50 });
      await numbers.createNumber({ number: '+15005550104', tenantId: 'many' });
      cache = new TenantCache(tenants, redis, { prefix });
      records = new CallRecordStore(redis, { prefix });
      const providers = new ProviderRegistry({
        stt: { pocketsphinx: () => new FakeStt({ transcripts: ['that is all'] }) },
        llm: {
          scripted: () => new FakeLlm({ reply: () => 'Sure.' }),
          goodbye: () => new FakeLlm({ reply: () => [{ type: 'text', text: 'Goodbye!' }, { type: 'hangup' }] }),
        },
        tts: { flite: () => new FakeTts({ msPerChar: 35 }) },
      });
      gateway = new SipGateway({
        numbers,
        tenants: cache,
        limiter: (limiter = new CallLimiter(redis, { prefix })),
        records,
        authFailures: new SipAuthFailureStore(redis, { prefix }),
        anchor,
        providers,
        prompts: new PromptCache(),
        // A test may hold call setup at a known point (to CANCEL before the answer, deterministically).
        createVad: async () => {
          await setupGate;
          return createVad();
        },
        clock: sharedMediaClock(),
      });
      await gateway.connect({ host: '127.0.0.1', port: drachtio.adminPort, secret: drachtio.secret });
      caller = await connectSrf(callerDrachtio);
      deskDrachtio = await startDrachtio({ address: '127.0.0.2' });
      desk = await connectSrf(deskDrachtio);
    }, 30_000);

    afterAll(async () => {
      caller?.disconnect();
      desk?.disconnect();
      await deskDrachtio?.stop();
      gateway?.disconnect();
      await gateway?.drain();
      await records?.close(500);
      await anchor?.close();
      await rtpengine?.stop();
      await drachtio?.stop();
      await callerDrachtio?.stop();
      if (redis) {
        await deletePrefix(redis, prefix);
        await redis.quit();
      }
    });

    /** Our caller's media leg and its SDP offer. */
    async function callerLeg(): Promise<{ leg: AudioLeg; sdp: string }> {
      const leg = await openAudioLeg({ callId: 'sip-caller', legId: 'caller', codec: { name: 'PCMU', payloadType: 0 }, clock: sharedMediaClock(), env: {}, endpoint: { portRange: { min: 45000, max: 45999 } } });
      return { leg, sdp: buildSdp({ address: '127.0.0.1', port: leg.endpoint.localAddress.port, ...offerCodecs(['PCMU']) }) };
    }

    async function connectSrf(d: RunningDrachtio): Promise<Srf> {
      const srf = new Srf();
      await new Promise<void>((resolve, reject) => {
        srf.once('connect', (err: Error) => (err ? reject(err) : resolve()));
        srf.connect({ host: '127.0.0.1', port: d.adminPort, secret: d.secret });
      });
      return srf;
    }

    /** Until rtpengine has no session left (deletes are sent as the call is torn down). */
    const sessionsDrained = (): Promise<number> => pollUntil(() => anchor.sessionCount(), (n) => n === 0);

    /** A tenant's newest record matching `pred`; records are written in the background, so wait a little. */
    const recordWhere = async (tenant: string, pred: (r: CallRecord) => boolean): Promise<CallRecord | undefined> =>
      pollUntil(async () => (await records.list(tenant)).records.find(pred), (r) => r !== undefined);

    const target = (user: string): string => `sip:${user}@127.0.0.1:${drachtio.sipPort}`;

    it('answers a trunk call to a known number; the caller hears the greeting through rtpengine; keys as SIP INFO and RFC 4733 reach the agent; BYE cleans up', async () => {
      const { leg, sdp } = await callerLeg();
      const heard: Int16Array[] = [];
      leg.on('audio', (f) => heard.push(f.slice()));
      const timing = new Promise<SipCallTiming>((resolve) => gateway.once('call-timing', resolve));
      try {
        const dialog = await caller.createUAC(target('+15005550100'), { localSdp: sdp });
        // The agent starts at the caller's ACK: the greeting's first packet follows it.
        const t = await timing;
        expect(t.ackAt).toBeDefined();
        expect(t.inviteAt).toBeLessThanOrEqual(t.answeredAt);
        expect(t.firstPacketAt).toBeGreaterThanOrEqual(t.ackAt!);
        const answer = negotiate(parseRemoteSdp(dialog.remote.sdp));
        expect(answer.codec.name).toBe('PCMU');
        leg.endpoint.setRemote({ address: answer.remote.address, port: answer.remote.port });
        leg.play(new Int16Array(320)); // latch rtpengine onto our address
        await new Promise((r) => setTimeout(r, 1500));
        const audio = concatSamples(heard);
        // The greeting, judged by content: the fake voice, for more than a blip.
        expect(fakeVoiceShare(audio)).toBeGreaterThan(FAKE_VOICE_SHARE);
        expect(soundMs(audio)).toBeGreaterThan(500);
        expect(await anchor.sessionCount()).toBe(1);
        // A key sent as SIP INFO (as some carriers do) reaches the agent like an RFC 4733 event.
        const info = await dialog.request({ method: 'INFO', headers: { 'Content-Type': 'application/dtmf-relay' }, body: 'Signal=1\r\nDuration=160\r\n' } as never);
        expect(info.status).toBe(200);
        // And a key as RFC 4733 events in the media, through rtpengine (telephone-event was negotiated).
        expect(answer.telephoneEvent).toBeDefined();
        const ssrc = 0x5eed;
        for (const [i, p] of dtmfPayloads('7', 160, 8000).entries()) {
          await new Promise((r) => setTimeout(r, i === 0 ? 0 : 20));
          leg.endpoint.send(serializeRtp({ marker: p.marker, payloadType: answer.telephoneEvent!.pt, sequenceNumber: 1000 + i, timestamp: 160_000, ssrc }, p.payload));
        }
        await new Promise((r) => setTimeout(r, 300));
        await new Promise<void>((resolve) => dialog.destroy(undefined, () => resolve()));
        await new Promise((r) => setTimeout(r, 300));
        expect(await anchor.sessionCount()).toBe(0);
        const list = await records.list('joes');
        expect(list.records[0]).toMatchObject({ door: 'sip', outcome: 'caller-hangup', to: '+15005550100' });
        // Both keys reached the agent, which collects keys pressed close together into one keypad turn.
        expect(list.records[0]!.transcript).toContainEqual(expect.objectContaining({ role: 'caller', text: '17', dtmf: true }));
      } finally {
        await leg.close();
      }
    }, 20_000);

    it("the agent's goodbye hangs up: the caller gets a BYE, and the record says agent-goodbye", async () => {
      const { leg, sdp } = await callerLeg();
      try {
        const dialog = await caller.createUAC(target('+15005550101'), { localSdp: sdp });
        const answer = negotiate(parseRemoteSdp(dialog.remote.sdp));
        leg.endpoint.setRemote({ address: answer.remote.address, port: answer.remote.port });
        const bye = new Promise<void>((resolve) => dialog.on('destroy', () => resolve()));
        await new Promise((r) => setTimeout(r, 600)); // the greeting
        leg.play(voiceLike(800, -22));
        await bye;
        await new Promise((r) => setTimeout(r, 300));
        expect(await anchor.sessionCount()).toBe(0);
        expect(await recordWhere('brief', () => true)).toMatchObject({ outcome: 'agent-goodbye', door: 'sip' });
      } finally {
        await leg.close();
      }
    }, 20_000);

    it('answers OPTIONS pings with 200', async () => {
      // drachtio-srf's request(uri, opts, callback) form, which its typings do not declare.
      const request = caller.request.bind(caller) as unknown as (
        uri: string,
        opts: { method: string },
        cb: (err: unknown, req: { on(e: 'response', cb: (res: { status: number }) => void): void }) => void,
      ) => void;
      const res = await new Promise<{ status: number }>((resolve, reject) => {
        request(target('ping'), { method: 'OPTIONS' }, (err, req) => (err ? reject(err) : req.on('response', resolve)));
      });
      expect(res.status).toBe(200);
    });

    it('gives a scanner no final response at all, and keeps nothing for it', async () => {
      const { leg, sdp } = await callerLeg();
      try {
        const provisional: number[] = [];
        const attempt = caller
          .createUAC(target('+15005550100'), { localSdp: sdp, headers: { 'User-Agent': 'friendly-scanner' } }, { cbProvisional: (res: { status: number }) => provisional.push(res.status) } as never)
          .then(() => 'answered' as const, (e: { status?: number }) => e.status);
        const outcome = await Promise.race([attempt, new Promise<'silence'>((r) => setTimeout(() => r('silence'), 3000))]);
        expect(outcome).toBe('silence');
        expect(provisional.filter((s) => s !== 100)).toEqual([]);
        // drachtio-srf holds an INVITE until its final response: one never answered must not stay there.
        expect(pendingInviteCount(gateway.srf)).toBe(0);
        expect(await anchor.sessionCount()).toBe(0);
        expect(await limiter.active('joes')).toBe(0);
      } finally {
        await leg.close();
      }
    }, 20_000);

    it('refuses an unknown number with 404 and leaves no rtpengine session', async () => {
      const { leg, sdp } = await callerLeg();
      try {
        const err = await caller.createUAC(target('+19999999999'), { localSdp: sdp }).catch((e: { status?: number }) => e);
        expect((err as { status?: number }).status).toBe(404);
        expect(await anchor.sessionCount()).toBe(0);
      } finally {
        await leg.close();
      }
    });

    it('answers a second call with 486 Busy Here while the tenant (limit 1) is on a call', async () => {
      const first = await callerLeg();
      const second = await callerLeg();
      try {
        const dialog = await caller.createUAC(target('+15005550100'), { localSdp: first.sdp });
        const err = await caller.createUAC(target('+15005550100'), { localSdp: second.sdp }).catch((e: { status?: number }) => e);
        expect((err as { status?: number }).status).toBe(486);
        // The refused call has its record too.
        const refused = await recordWhere('joes', (r) => r.outcome === 'rejected');
        expect(refused).toMatchObject({ door: 'sip', error: { code: 'CG_CALL_LIMIT_REACHED' } });
        await new Promise<void>((resolve) => dialog.destroy(undefined, () => resolve()));
        await new Promise((r) => setTimeout(r, 300));
        expect(await anchor.sessionCount()).toBe(0);
      } finally {
        await first.leg.close();
        await second.leg.close();
      }
    }, 20_000);
    it('a CANCEL before the answer gets 487; the record says caller-hangup and nothing is left', async () => {
      const { leg, sdp } = await callerLeg();
      let open!: () => void;
      setupGate = new Promise<void>((resolve) => (open = resolve));
      try {
        let sent: { cancel(): void } | undefined;
        const attempt = caller
          .createUAC(target('+15005550103'.replace('103', '100')), { localSdp: sdp }, { cbRequest: (_err: unknown, req: { cancel(): void }) => (sent = req) } as never)
          .catch((e: { status?: number }) => e);
        // Setup is held before the answer: the gateway has the INVITE, anchored media, and waits.
        await pollUntil(() => anchor.sessionCount(), (n) => n > 0, 2000, 20);
        expect(await anchor.sessionCount()).toBe(1);
        sent!.cancel();
        expect(((await attempt) as { status?: number }).status).toBe(487);
        open();
        expect(await sessionsDrained()).toBe(0);
        expect(await limiter.active('joes')).toBe(0);
        expect(await recordWhere('joes', (r) => r.outcome === 'caller-hangup' && r.answeredAt === undefined)).toMatchObject({ door: 'sip' });
      } finally {
        open?.();
        setupGate = Promise.resolve();
        await leg.close();
      }
    }, 20_000);

    it('hold and unhold re-INVITEs go through rtpengine: recvonly while held, audio again after', async () => {
      const { leg, sdp } = await callerLeg();
      let frames = 0;
      leg.on('audio', () => frames++);
      try {
        const dialog = await caller.createUAC(target('+15005550100'), { localSdp: sdp });
        const answer = negotiate(parseRemoteSdp(dialog.remote.sdp));
        leg.endpoint.setRemote({ address: answer.remote.address, port: answer.remote.port });
        leg.play(new Int16Array(320));
        await new Promise((r) => setTimeout(r, 400));
        const held = await dialog.modify(sdp.replace('a=sendrecv', 'a=sendonly'));
        expect(parseRemoteSdp(held as string).direction).toBe('recvonly');
        expect(await anchor.sessionCount()).toBe(1);
        const resumed = await dialog.modify(sdp);
        const media = negotiate(parseRemoteSdp(resumed as string));
        expect(media.remote.direction).toBe('sendrecv');
        leg.endpoint.setRemote({ address: media.remote.address, port: media.remote.port });
        const before = frames;
        leg.play(new Int16Array(320));
        await new Promise((r) => setTimeout(r, 500));
        expect(frames - before).toBeGreaterThan(10); // ~25 frames in 500 ms: media flows after unhold
        await new Promise<void>((resolve) => dialog.destroy(undefined, () => resolve()));
        expect(await sessionsDrained()).toBe(0);
      } finally {
        await leg.close();
      }
    }, 20_000);

    it('ends a call at the tenant maximum duration with a BYE from the agent', async () => {
      const { leg, sdp } = await callerLeg();
      try {
        const started = Date.now();
        const dialog = await caller.createUAC(target('+15005550102'), { localSdp: sdp });
        const answer = negotiate(parseRemoteSdp(dialog.remote.sdp));
        leg.endpoint.setRemote({ address: answer.remote.address, port: answer.remote.port });
        await new Promise<void>((resolve) => dialog.on('destroy', () => resolve()));
        expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
        expect(await sessionsDrained()).toBe(0);
        expect(await recordWhere('short', () => true)).toMatchObject({ outcome: 'max-duration', door: 'sip' });
      } finally {
        await leg.close();
      }
    }, 20_000);

    it('a device with credentials is challenged and answers (drachtio-srf retries with digest); a wrong password gets 403', async () => {
      const { leg, sdp } = await callerLeg();
      try {
        const bad = await desk
          .createUAC(target('+15005550103'), { localSdp: sdp, auth: { username: 'desk-1', password: 'not-the-password' } })
          .catch((e: { status?: number }) => e);
        expect((bad as { status?: number }).status).toBe(403);
        const dialog = await desk.createUAC(target('+15005550103'), { localSdp: sdp, auth: { username: 'desk-1', password: 'correct-horse-battery' } });
        expect(negotiate(parseRemoteSdp(dialog.remote.sdp)).codec.name).toBe('PCMU');
        await new Promise<void>((resolve) => dialog.destroy(undefined, () => resolve()));
        expect(await sessionsDrained()).toBe(0);
        // Without credentials the device only ever hears the challenge.
        const none = await desk.createUAC(target('+15005550103'), { localSdp: sdp }).catch((e: { status?: number }) => e);
        expect((none as { status?: number }).status).toBe(401);
      } finally {
        await leg.close();
      }
    }, 20_000);

    it('dials out through a trunk: the callee hears the greeting; their BYE ends it; busy is a failed record', async () => {
      await numbersStore.createTrunk({ name: 'out', sourceCidrs: ['192.0.2.0/24'], tenants: ['joes'], outbound: { host: '127.0.0.1', port: callerDrachtio.sipPort, transport: 'udp', callerId: '+15005550100' } });
      const { leg, sdp } = await callerLeg();
      const heard: Int16Array[] = [];
      leg.on('audio', (f) => heard.push(f.slice()));
      let answeredDialog: Srf.Dialog | undefined;
      let callerIdSeen = '';
      // The "carrier" is the caller's drachtio-srf app, answering as a phone would (or busy for one number).
      caller.invite(async (req, res) => {
        callerIdSeen = req.get('From') ?? '';
        if (req.uri.includes('+15005550999')) return res.send(486);
        const answer = negotiate(parseRemoteSdp(req.body as string));
        leg.endpoint.setRemote({ address: answer.remote.address, port: answer.remote.port });
        answeredDialog = await caller.createUAS(req, res, { localSdp: sdp.replace('a=sendrecv', 'a=sendrecv') });
        leg.play(new Int16Array(320));
      });
      try {
        // Through the admin API, as an operator would: 202 and the call id.
        const api = await buildAdminApp({ redis, prefix, secrets: secretBox, adminToken: 'a'.repeat(32), dialer: gateway });
        const res = await api.inject({ method: 'POST', url: '/v1/calls', headers: { authorization: `Bearer ${'a'.repeat(32)}` }, payload: { tenant: 'joes', to: '+14155550123', trunk: 'out' } });
        await api.close();
        expect(res.statusCode).toBe(202);
        const callId = (res.json() as { callId: string }).callId;
        const started = { callId, done: gateway.drain() };
        await pollUntil(() => answeredDialog, (d) => d !== undefined, 2000, 20);
        expect(answeredDialog).toBeDefined();
        expect(callerIdSeen).toContain('+15005550100');
        await new Promise((r) => setTimeout(r, 1200));
        const audio = concatSamples(heard);
        expect(fakeVoiceShare(audio)).toBeGreaterThan(FAKE_VOICE_SHARE);
        expect(soundMs(audio)).toBeGreaterThan(300);
        await new Promise<void>((resolve) => answeredDialog!.destroy(undefined, () => resolve()));
        await started.done;
        expect(await sessionsDrained()).toBe(0);
        const rec = (await records.list('joes')).records.find((r) => r.callId === started.callId);
        expect(rec).toMatchObject({ door: 'sip', outcome: 'caller-hangup', to: '+14155550123', from: '+15005550100' });

        const busy = await gateway.dial({ tenantId: 'joes', to: '+15005550999', trunk: 'out' });
        await busy.done;
        expect(await sessionsDrained()).toBe(0);
        expect(await limiter.active('joes')).toBe(0);
        const failed = (await records.list('joes')).records.find((r) => r.callId === busy.callId);
        expect(failed).toMatchObject({ outcome: 'failed', error: { code: 'CG_DIAL_FAILED', message: 'SIP 486' } });
        // A trunk with no outbound settings cannot dial; nothing rings and no line is held.
        await expect(gateway.dial({ tenantId: 'joes', to: '+14155550123', trunk: 'local' })).rejects.toMatchObject({ code: 'CG_TRUNK_NO_OUTBOUND' });
        await expect(gateway.dial({ tenantId: 'joes', to: '12345', trunk: 'out' })).rejects.toMatchObject({ status: 400 });
        expect(await limiter.active('joes')).toBe(0);
      } finally {
        await leg.close();
      }
    }, 20_000);

    it('after many calls ended in different ways, rtpengine holds no session and no line is held', async () => {
      const legs = await Promise.all(Array.from({ length: 12 }, () => callerLeg()));
      try {
        await Promise.all(
          legs.map(async ({ leg, sdp }, i) => {
            if (i % 4 === 3) {
              // Canceled while ringing: setup is fast here, so some are answered first; both must clean up.
              let sent: { cancel(): void } | undefined;
              const attempt = caller.createUAC(target('+15005550104'), { localSdp: sdp }, { cbRequest: (_e: unknown, req: { cancel(): void }) => (sent = req) } as never);
              await new Promise((r) => setTimeout(r, 5));
              sent?.cancel();
              const dialog = await attempt.catch(() => undefined);
              if (dialog) await new Promise<void>((resolve) => dialog.destroy(undefined, () => resolve()));
              return;
            }
            const dialog = await caller.createUAC(target('+15005550104'), { localSdp: sdp });
            const answer = negotiate(parseRemoteSdp(dialog.remote.sdp));
            leg.endpoint.setRemote({ address: answer.remote.address, port: answer.remote.port });
            // Hang up at once, mid-greeting, or after it.
            await new Promise((r) => setTimeout(r, [0, 300, 1500][i % 3]));
            await new Promise<void>((resolve) => dialog.destroy(undefined, () => resolve()));
          }),
        );
        expect(await sessionsDrained()).toBe(0);
        expect(await pollUntil(() => limiter.active('many'), (n) => n === 0)).toBe(0);
      } finally {
        await Promise.all(legs.map(({ leg }) => leg.close()));
      }
    }, 30_000);

    it('reconnects to a restarted drachtio-server and takes calls again', async () => {
      const { adminPort, sipPort, secret } = drachtio;
      const reconnected = new Promise<void>((resolve) => (gateway.srf as unknown as NodeJS.EventEmitter).once('connect', () => resolve()));
      await drachtio.stop();
      drachtio = await startDrachtio({ adminPort, sipPort, secret });
      await reconnected;
      const { leg, sdp } = await callerLeg();
      try {
        const dialog = await caller.createUAC(target('+15005550100'), { localSdp: sdp });
        await new Promise<void>((resolve) => dialog.destroy(undefined, () => resolve()));
        expect(await sessionsDrained()).toBe(0);
      } finally {
        await leg.close();
      }
    }, 30_000);
  });
}
