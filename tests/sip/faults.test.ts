import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import Srf from 'drachtio-srf';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PromptCache } from '../../src/agent/PromptCache.js';
import { ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { createVad } from '../../src/agent/vad/createVad.js';
import { loggerTo } from '../../src/log.js';
import { openAudioLeg, type AudioLeg } from '../../src/media/AudioLeg.js';
import { sharedMediaClock } from '../../src/media/MediaClock.js';
import type { MediaWatchdogOptions } from '../../src/media/MediaWatchdog.js';
import { buildSdp, negotiate, offerCodecs, parseRemoteSdp } from '../../src/media/sdp.js';
import { concatSamples, dbfs } from '../../src/media/signal.js';
import { FakeLlm, FakeStt, FakeTts, voiceLike } from '../../src/providers/testing/FakeProviders.js';
import { MediaAnchor } from '../../src/sip/rtpengine/MediaAnchor.js';
import { RtpengineProcess } from '../../src/sip/rtpengine/RtpengineProcess.js';
import { BYE_WAIT_MS } from '../../src/sip/answeredCall.js';
import { SipGateway } from '../../src/sip/SipGateway.js';
import { startDrachtio, type RunningDrachtio } from '../../src/sip/testing/DrachtioProcess.js';
import { CallLimiter } from '../../src/tenants/CallLimiter.js';
import { SipAuthFailureStore } from '../../src/tenants/SipAuthFailureStore.js';
import { CallRecordStore, type CallOutcome, type CallRecord } from '../../src/tenants/CallRecordStore.js';
import { NumberStore } from '../../src/tenants/NumberStore.js';
import { connectRedis, deletePrefix, keys, testPrefix, type Redis } from '../../src/tenants/redisClient.js';
import { SecretBox } from '../../src/tenants/secrets.js';
import { TenantCache } from '../../src/tenants/TenantCache.js';
import { TenantStore } from '../../src/tenants/TenantStore.js';
import { FAKE_VOICE_SHARE, fakeVoiceShare } from '../support/heard.js';
import { missingTool, testMissing } from '../support/tools.js';
import { pollUntil, within } from '../../src/util/testing/wait.js';

/**
 * SIP calls when something breaks mid-call, on loopback, set up as in gateway.test.ts (our own
 * drachtio-server, a caller UAC on a second one, Debian's rtpengine, fake providers): a caller whose
 * RTP stops without a BYE, a hold that must not look like one, rtpengine and drachtio-server
 * restarted under a call. Every call must end with its record, its line released, no rtpengine
 * session and no open-call snapshot left; the file ends by checking no UDP socket was left open.
 */
const TENANT = 'faults';
const NUMBER = '+15005550170';
const GREETING = 'Hello, faults desk.';
const WATCHDOG = { timeoutMs: 1500, checkEveryMs: 100 } as const satisfies MediaWatchdogOptions;
/** Port ranges no other test file or benchmark uses: two rtpengines on one range take each other's packets. */
const RTPENGINE_PORTS = { portMin: 52000, portMax: 52499 } as const;
const AGENT_PORTS = { min: 52500, max: 52999 } as const;
const CALLER_PORTS = { min: 53000, max: 53499 } as const;
/** A 20 ms frame louder than this is the agent speaking (comfort silence is digital silence). */
const LOUD_DBFS = -40;

/** Figures of one run, printed at the end (single observations, not benchmarks). */
const figures: Record<string, number> = {};

interface CallerLeg {
  readonly leg: AudioLeg;
  readonly sdp: string;
  /** 20 ms frames of the agent's speech heard so far. */
  loud: number;
  /** Those frames themselves, to judge what was heard. */
  readonly loudFrames: Int16Array[];
  /** RTP packets received from rtpengine so far (speech and comfort silence). */
  packets: number;
}

interface Call {
  readonly dialog: Srf.Dialog;
  readonly callId: string;
  /** When the caller's dialog ended (the gateway's BYE, or the caller's own). */
  readonly ended: Promise<number>;
  readonly isUp: () => boolean;
}

/** rtpengine's ng port as the gateway knows it: a UDP relay to whichever rtpengine runs now. */
interface NgRelay {
  readonly port: number;
  target: number;
  close(): Promise<void>;
}

const MISSING = missingTool('drachtio', 'rtpengine');
if (MISSING) {
  describe('SIP faults', () => testMissing(MISSING));
} else {
  describe('SIP faults over drachtio-server and rtpengine', () => {
    const prefix = testPrefix();
    const openCallsKey = keys(prefix).openCalls();
    let drachtio: RunningDrachtio;
    let callerDrachtio: RunningDrachtio;
    let rtpengine: RtpengineProcess;
    let ngRelay: NgRelay;
    let anchor: MediaAnchor;
    let redis: Redis;
    let gateway: SipGateway;
    let caller: Srf;
    let records: CallRecordStore;
    let limiter: CallLimiter;
    let udpBaseline = 0;
    /** What the gateway logged (JSON lines), read by assertions and printed when a test fails. */
    const logs: { level: number; msg: string; callId?: string }[] = [];

    /** Our open UDP sockets (Node 20 names their handles 'UDPWrap'): the ng socket, the relay, RTP legs. */
    const udpSockets = (): number => process.getActiveResourcesInfo().filter((r) => r.toUpperCase() === 'UDPWRAP').length;

    beforeAll(async () => {
      drachtio = await startDrachtio();
      callerDrachtio = await startDrachtio();
      rtpengine = await RtpengineProcess.start(RTPENGINE_PORTS);
      ngRelay = await openNgRelay(rtpengine.ngPort);
      anchor = await MediaAnchor.open({ port: ngRelay.port });
      redis = await connectRedis({ prefix });
      const secrets = new SecretBox(randomBytes(32));
      const tenants = new TenantStore(redis, secrets, { prefix });
      const numbers = new NumberStore(redis, secrets, { prefix });
      await tenants.create({ id: TENANT, displayName: 'Faults', greeting: GREETING, maxConcurrentCalls: 2 });
      await numbers.createTrunk({ name: 'local', sourceCidrs: ['127.0.0.1/32'] });
      await numbers.createNumber({ number: NUMBER, tenantId: TENANT });
      records = new CallRecordStore(redis, { prefix });
      limiter = new CallLimiter(redis, { prefix });
      const providers = new ProviderRegistry({
        stt: { pocketsphinx: () => new FakeStt({ transcripts: ['that is all'] }) },
        llm: { scripted: () => new FakeLlm({ reply: () => 'Sure.' }) },
        tts: { flite: () => new FakeTts({ msPerChar: 35 }) },
      });
      gateway = new SipGateway({
        numbers,
        tenants: new TenantCache(tenants, redis, { prefix }),
        limiter,
        records,
        authFailures: new SipAuthFailureStore(redis, { prefix }),
        anchor,
        providers,
        prompts: new PromptCache(),
        createVad,
        clock: sharedMediaClock(),
        endpoint: { portRange: AGENT_PORTS },
        mediaWatchdog: WATCHDOG,
        logger: loggerTo({ write: (line: string) => void logs.push(JSON.parse(line) as (typeof logs)[number]) }, 'debug'),
      });
      await gateway.connect({ host: '127.0.0.1', port: drachtio.adminPort, secret: drachtio.secret });
      caller = await connectSrf(callerDrachtio);
      udpBaseline = udpSockets();
    }, 30_000);

    afterEach((ctx) => {
      if (ctx.task.result?.state === 'fail') for (const l of logs) console.error(JSON.stringify(l));
      logs.length = 0;
    });

    afterAll(async () => {
      console.info(`sip fault figures: ${JSON.stringify(figures)}`);
      caller?.disconnect();
      gateway?.disconnect();
      await gateway?.drain();
      await records?.close(500);
      anchor?.close();
      await ngRelay?.close();
      await rtpengine?.stop();
      await drachtio?.stop();
      await callerDrachtio?.stop();
      if (redis) {
        await deletePrefix(redis, prefix);
        await redis.quit();
      }
    });

    async function connectSrf(d: RunningDrachtio): Promise<Srf> {
      const srf = new Srf();
      await new Promise<void>((resolve, reject) => {
        srf.once('connect', (err: Error) => (err ? reject(err) : resolve()));
        srf.connect({ host: '127.0.0.1', port: d.adminPort, secret: d.secret });
      });
      return srf;
    }

    /**
     * The phone's media leg. 'comfort': it sends RTP all the time, silence included, as phones do;
     * 'none': only what is played (a test stops and starts its media with flush() and play()).
     */
    async function callerLeg(silence: 'comfort' | 'none' = 'comfort'): Promise<CallerLeg> {
      const leg = await openAudioLeg({
        callId: 'fault-caller',
        legId: 'caller',
        codec: { name: 'PCMU', payloadType: 0 },
        clock: sharedMediaClock(),
        env: {},
        endpoint: { portRange: CALLER_PORTS },
        leg: { silence },
      });
      const c: CallerLeg = { leg, sdp: buildSdp({ address: '127.0.0.1', port: leg.endpoint.localAddress.port, ...offerCodecs(['PCMU']) }), loud: 0, loudFrames: [], packets: 0 };
      leg.on('audio', (f) => {
        if (dbfs(f) > LOUD_DBFS) {
          c.loud++;
          c.loudFrames.push(f.slice()); // the leg reuses its buffer
        }
      });
      leg.endpoint.on('packet', () => c.packets++);
      return c;
    }

    async function dial(c: CallerLeg): Promise<Call> {
      const dialog = await caller.createUAC(`sip:${NUMBER}@127.0.0.1:${drachtio.sipPort}`, { localSdp: c.sdp });
      const answer = negotiate(parseRemoteSdp(dialog.remote.sdp));
      c.leg.endpoint.setRemote({ address: answer.remote.address, port: answer.remote.port });
      let up = true;
      const ended = new Promise<number>((resolve) =>
        dialog.once('destroy', () => {
          up = false;
          resolve(performance.now());
        }),
      );
      return { dialog, callId: dialog.sip.callId, ended, isUp: () => up };
    }

    /** The caller's BYE; resolves at its response (or failure), within 5 s whatever drachtio does with it. */
    const hangUp = (dialog: Srf.Dialog): Promise<void> => within(new Promise<void>((resolve) => dialog.destroy(undefined, () => resolve())), 5000, "the caller's BYE");

    /**
     * Until the caller has heard `frames` more 20 ms frames of sound, which must be the agent's voice
     * (the fake TTS's 140 Hz buzz), not merely loud.
     */
    async function heard(c: CallerLeg, frames: number, timeoutMs = 4000): Promise<number> {
      const from = c.loud;
      const n = (await pollUntil(() => c.loud, (n) => n - from >= frames, timeoutMs)) - from;
      expect(fakeVoiceShare(concatSamples(c.loudFrames.slice(from)))).toBeGreaterThan(FAKE_VOICE_SHARE);
      return n;
    }

    /** Until the greeting has been heard to its end (it is in the record only as far as it was heard). */
    async function greeted(c: CallerLeg): Promise<void> {
      expect(await heard(c, 10)).toBeGreaterThanOrEqual(10);
      await sleep(GREETING.length * 35); // FakeTts: 35 ms a character
    }

    /**
     * What every call must leave, however it ended: its record with `outcome` and at least the
     * greeting, its line released, no rtpengine session and no open-call snapshot.
     */
    async function expectCleanEnd(callId: string, outcome: CallOutcome): Promise<CallRecord | undefined> {
      const record = await pollUntil(() => records.get(TENANT, callId).catch(() => undefined), (r) => r !== undefined, 5000);
      expect(record).toMatchObject({ callId, door: 'sip', outcome });
      expect(record?.transcript).toContainEqual(expect.objectContaining({ role: 'agent', turn: 0, text: GREETING }));
      expect(await pollUntil(() => limiter.active(TENANT), (n) => n === 0)).toBe(0);
      expect(await pollUntil(() => anchor.sessionCount(), (n) => n === 0)).toBe(0);
      expect(await pollUntil(() => redis.zCard(openCallsKey), (n) => n === 0)).toBe(0);
      return record;
    }

    /** While a call is up: its line held, one rtpengine session, its snapshot in the open-call set. */
    async function expectUp(): Promise<void> {
      expect(await limiter.active(TENANT)).toBe(1);
      expect(await anchor.sessionCount()).toBe(1);
      expect(await pollUntil(() => redis.zCard(openCallsKey), (n) => n === 1)).toBe(1);
    }

    it('hangs up on a caller whose RTP stops without a BYE: BYE from the gateway after the watchdog time, outcome media-timeout', async () => {
      const c = await callerLeg();
      try {
        const call = await dial(c);
        await greeted(c);
        await expectUp();
        await sleep(1000);
        // The phone is gone (power, network): its RTP stops and no BYE comes; the SIP dialog stays.
        const lastPacketAt = performance.now();
        await c.leg.close();
        const byeAt = await within(call.ended, WATCHDOG.timeoutMs + 3000, "the gateway's BYE");
        const silentMs = byeAt - lastPacketAt;
        figures['lastCallerPacketToGatewayByeMs'] = Math.round(silentMs);
        // Not before the timeout (less a packet time: our last packet may have left up to 20 ms before
        // we noted the time), and soon after it.
        expect(silentMs).toBeGreaterThanOrEqual(WATCHDOG.timeoutMs - 100);
        expect(silentMs).toBeLessThan(WATCHDOG.timeoutMs + 1000);
        await expectCleanEnd(call.callId, 'media-timeout');
      } finally {
        await c.leg.close();
      }
    }, 15_000);

    it('a hold (a=inactive) with no RTP for longer than the timeout is not a vanished caller; after unhold the call goes on to a normal BYE', async () => {
      const c = await callerLeg('none');
      try {
        const call = await dial(c);
        c.leg.play(new Int16Array(16000 * 2)); // 2 s of RTP (silence): the caller is there
        await greeted(c);
        await expectUp();
        const held = await call.dialog.modify(c.sdp.replace('a=sendrecv', 'a=inactive'));
        expect(parseRemoteSdp(held as string).direction).toBe('inactive');
        // On hold the phone sends nothing at all.
        c.leg.flush();
        await sleep(100);
        const sentBefore = c.leg.stats().endpoint.sent.packets;
        await sleep(WATCHDOG.timeoutMs * 2);
        expect(c.leg.stats().endpoint.sent.packets).toBe(sentBefore);
        expect(call.isUp()).toBe(true);
        await expectUp();
        // Unhold: media again; the watchdog counts from here, and RTP for longer than its timeout keeps the call up.
        const resumed = await call.dialog.modify(c.sdp);
        const media = negotiate(parseRemoteSdp(resumed as string));
        expect(media.remote.direction).toBe('sendrecv');
        c.leg.endpoint.setRemote({ address: media.remote.address, port: media.remote.port });
        const packetsBefore = c.packets;
        c.leg.play(new Int16Array(16000 * 3));
        await sleep(WATCHDOG.timeoutMs + 700);
        expect(call.isUp()).toBe(true);
        expect(c.packets - packetsBefore).toBeGreaterThan(50); // the agent's side flows again (50 packets a second)
        await hangUp(call.dialog);
        await expectCleanEnd(call.callId, 'caller-hangup');
      } finally {
        await c.leg.close();
      }
    }, 20_000);

    it('rtpengine restarted mid-call: the call loses its media and ends by the watchdog (delete failure only warned); a new call then works through the new rtpengine', async () => {
      const c = await callerLeg();
      let fresh: CallerLeg | undefined;
      try {
        const call = await dial(c);
        await greeted(c);
        await expectUp();
        // rtpengine dies and a new one takes its ng address, with none of the old one's calls.
        const stoppedAt = performance.now();
        await rtpengine.stop();
        rtpengine = await RtpengineProcess.start(RTPENGINE_PORTS);
        ngRelay.target = rtpengine.ngPort;
        figures['rtpengineRestartMs'] = Math.round(performance.now() - stoppedAt);
        const byeAt = await within(call.ended, WATCHDOG.timeoutMs + 3000, "the gateway's BYE");
        figures['rtpengineStopToGatewayByeMs'] = Math.round(byeAt - stoppedAt);
        expect(byeAt - stoppedAt).toBeGreaterThanOrEqual(WATCHDOG.timeoutMs - 100); // its last packet came before the stop
        expect(byeAt - stoppedAt).toBeLessThan(WATCHDOG.timeoutMs + 1000);
        await expectCleanEnd(call.callId, 'media-timeout');
        // The new rtpengine does not know the call: the delete failed, and that was only a warning.
        expect(logs).toContainEqual(expect.objectContaining({ level: 40, callId: call.callId, msg: 'call resource release failed', resource: 'rtpengine delete' }));
        expect(logs.filter((l) => l.level >= 50)).toEqual([]);
        await c.leg.close();

        fresh = await callerLeg();
        const inviteAt = performance.now();
        const next = await dial(fresh);
        figures['callSetupAfterRtpengineRestartMs'] = Math.round(performance.now() - inviteAt);
        expect(await heard(fresh, 1)).toBeGreaterThanOrEqual(1);
        figures['inviteToFirstGreetingAudioAfterRtpengineRestartMs'] = Math.round(performance.now() - inviteAt);
        await greeted(fresh);
        await expectUp();
        await hangUp(next.dialog);
        await expectCleanEnd(next.callId, 'caller-hangup');
      } finally {
        await c.leg.close();
        await fresh?.leg.close();
      }
    }, 25_000);

    it('drachtio-server restarted mid-call: media and the agent go on, the gateway reconnects, and the call still ends cleanly; a new call then works', async () => {
      const c = await callerLeg();
      let fresh: CallerLeg | undefined;
      try {
        const call = await dial(c);
        await greeted(c);
        await expectUp();
        const { adminPort, sipPort, secret } = drachtio;
        const reconnected = new Promise<number>((resolve) => (gateway.srf as unknown as NodeJS.EventEmitter).once('connect', () => resolve(performance.now())));
        const stoppedAt = performance.now();
        await drachtio.stop();
        drachtio = await startDrachtio({ adminPort, sipPort, secret });
        const upAt = performance.now();
        const connectedAt = await within(reconnected, 10_000, 'the gateway reconnecting to drachtio');
        figures['drachtioStopToGatewayReconnectedMs'] = Math.round(connectedAt - stoppedAt);
        figures['drachtioUpToGatewayReconnectedMs'] = Math.round(connectedAt - upAt);
        // The call never noticed: rtpengine and both legs do not depend on the signalling link.
        expect(call.isUp()).toBe(true);
        const packetsBefore = c.packets;
        c.leg.play(voiceLike(800, -22)); // the caller speaks; the agent answers
        expect(await heard(c, 10, 6000)).toBeGreaterThanOrEqual(10);
        expect(c.packets - packetsBefore).toBeGreaterThan(0);
        await expectUp();

        // The phone hangs up: its media stops, and its BYE reaches a drachtio that does not know the
        // dialog (the new one has no state of the old one's), so the gateway never hears it.
        const lastPacketAt = Date.now();
        await c.leg.close();
        await hangUp(call.dialog);
        // The watchdog ends the call; its BYE goes nowhere (the dialog's drachtio connection is gone).
        // Outcome media-timeout, not caller-hangup: the caller's BYE never reached the gateway.
        const record = await expectCleanEnd(call.callId, 'media-timeout');
        figures['drachtioRestartLastPacketToCallEndMs'] = Date.parse(record!.endedAt) - lastPacketAt;
        // The agent kept talking through the restart: the caller's words and its answer are in the record.
        expect(record?.transcript).toContainEqual(expect.objectContaining({ role: 'caller', text: 'that is all' }));
        expect(record?.transcript).toContainEqual(expect.objectContaining({ role: 'agent', text: 'Sure.' }));
        expect(logs.filter((l) => l.level >= 50)).toEqual([]);

        fresh = await callerLeg();
        const next = await dial(fresh);
        await greeted(fresh);
        await expectUp();
        await hangUp(next.dialog);
        await expectCleanEnd(next.callId, 'caller-hangup');
      } finally {
        await c.leg.close();
        await fresh?.leg.close();
      }
    }, 30_000);

    it("a phone gone entirely (its SIP stack too) never answers the gateway's BYE: the call is over all the same, not 32 s later", async () => {
      const c = await callerLeg();
      try {
        const call = await dial(c);
        await greeted(c);
        await expectUp();
        // Power lost: the phone's media stops and its SIP stack says nothing more (frozen, so the
        // gateway's BYE is retransmitted into the void until SIP's 32 s transaction timeout).
        const lastPacketAt = performance.now();
        callerDrachtio.proc.kill('SIGSTOP');
        await c.leg.close();
        // Within the watchdog's time plus the gateway's bounded wait for the BYE's answer (BYE_WAIT_MS).
        const released = await pollUntil(() => limiter.active(TENANT), (n) => n === 0, WATCHDOG.timeoutMs + BYE_WAIT_MS + 1500);
        const releasedMs = performance.now() - lastPacketAt;
        figures['unansweredByeLastPacketToLineReleasedMs'] = Math.round(releasedMs);
        expect(released).toBe(0);
        expect(releasedMs).toBeLessThan(WATCHDOG.timeoutMs + BYE_WAIT_MS + 1000);
        await expectCleanEnd(call.callId, 'media-timeout');
        expect(call.isUp()).toBe(true); // the phone still has not heard the BYE
        // The phone comes back: drachtio's retransmitted BYE reaches it, and its dialog ends too.
        callerDrachtio.proc.kill('SIGCONT');
        await within(call.ended, 8000, "the gateway's retransmitted BYE");
      } finally {
        callerDrachtio.proc.kill('SIGCONT');
        await c.leg.close();
      }
    }, 20_000);

    it('leaves no UDP socket open beyond those it started with', async () => {
      expect(udpBaseline).toBeGreaterThanOrEqual(2); // the anchor's ng socket and the relay: the count sees our sockets
      expect(await pollUntil(() => udpSockets(), (n) => n <= udpBaseline, 3000)).toBeLessThanOrEqual(udpBaseline);
    });
  });
}

/**
 * rtpengine's fixed ng address, as a deployment has it (a restarted rtpengine listens where the old
 * one did). RtpengineProcess takes a free ng port at each start, so the gateway's MediaAnchor talks to
 * this relay, and a restart moves `target`. One client (the anchor): replies go to the last sender.
 */
async function openNgRelay(target: number): Promise<NgRelay> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  let client: dgram.RemoteInfo | undefined;
  const relay: NgRelay = {
    port: socket.address().port,
    target,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
  // While rtpengine is down, commands go nowhere and time out in the anchor, as they would.
  socket.on('error', () => {});
  socket.on('message', (msg, from) => {
    if (from.port === relay.target) {
      if (client) socket.send(msg, client.port, client.address);
    } else {
      client = from;
      socket.send(msg, relay.target, '127.0.0.1');
    }
  });
  return relay;
}
