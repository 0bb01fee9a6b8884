import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offlineProviderRegistry, type ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import type { CodecName } from '../../src/media/codecs/AudioCodec.js';
import { recognizePcm } from '../../src/providers/pocketsphinx/index.js';
import { decodeCapturedRtp, startUdpCapture, type CapturedAudio } from '../../src/sip/testing/capture.js';
import { startSipHarness, type SipHarness } from '../../src/sip/testing/SipHarness.js';
import { freeUdpPort, runSipp, type SippResult } from '../../src/sip/testing/Sipp.js';
import type { CallRecord } from '../../src/tenants/CallRecordStore.js';
import { missingTool, testMissing } from '../support/tools.js';
import { pollUntil } from '../../src/util/testing/wait.js';

/**
 * The SIP door driven by sipp, as a carrier or a load tester would: sipp's scenarios
 * (tests/sip/scenarios) make the calls and play the caller's speech from the fixture captures; the
 * gateway runs the real offline agent (pocketsphinx hears, the scripted responder answers from the
 * tenant's intents, flite speaks) through drachtio-server and rtpengine. sipp keeps nothing it
 * receives, so tcpdump captures what came back to its media port; that RTP is decoded and recognised
 * to prove the caller heard the greeting and the answer to what it asked.
 */
const SCENARIOS = fileURLToPath(new URL('./scenarios/', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

const GREETING = "Hi, I'm Ava from Joe's Pizza, what can I do for you today?";
const HOURS = 'We open at eleven in the morning today.';
const BOOKING = 'Of course, a table for four at seven. Which name is it under?';
const FALLBACK = 'Sorry, I can only help with our hours and bookings.';
const GOODBYE = "Thanks for calling Joe's Pizza. Goodbye!";
/** Everything the agent can say: the recogniser must pick the right line among the wrong ones. */
const AGENT_LINES = [GREETING, HOURS, BOOKING, FALLBACK, GOODBYE];
/** As recogniser output reads (lower case, no punctuation). */
const heardAs = (line: string): string => line.toLowerCase().replace(/[^a-z' ]+/g, ' ').replace(/\s+/g, ' ').trim();

const JOES = '+15005550100';
const SOLO = '+15005550111';
const UNKNOWN = '+19995550000';

/**
 * After the ACK the greeting (~4.2 s) plays before the caller speaks: speaking earlier would barge in.
 * It starts 0.9–1.4 s after the ACK when three calls reach a fresh gateway at once (the cold-start
 * delay issue 17 is about), so 5 s made the caller's words land on the greeting's end; 7 s leaves room.
 */
const GREET_MS = 7000;
/** From the caller's first word: its 2.2 s question, endpointing, recognition, and the ~2.5 s reply. */
const LISTEN_MS = 7500;



const MISSING = missingTool('drachtio', 'rtpengine', 'sipp', 'tcpdump', 'pocketsphinx');
if (MISSING) {
  describe('SIP door with sipp', () => testMissing(MISSING));
} else {
  describe('SIP door with sipp: pcap audio in, the agent heard back', () => {
    let h: SipHarness;
    let providers: ProviderRegistry;
    let setupGate: Promise<void> = Promise.resolve();

    beforeAll(async () => {
      providers = offlineProviderRegistry();
      h = await startSipHarness({
        providers,
        agentPorts: { min: 47000, max: 47999 },
        // Its own range: rtpengines share ports, and other SIP tests' rtpengines use the default one.
        rtpengine: { portMin: 32300, portMax: 32699 },
        beforeSetup: () => setupGate,
      });
      await h.tenants.create({
        id: 'joes',
        displayName: "Joe's Pizza",
        greeting: GREETING,
        voice: 'slt',
        intents: [
          { name: 'hours', phrases: ['what time do you open today', 'when do you open'], reply: HOURS },
          { name: 'booking', phrases: ['i would like to book a table for four people at seven', 'book a table'], reply: BOOKING },
        ],
        fallbackReply: FALLBACK,
        goodbye: { phrases: ['thank you goodbye', 'goodbye'], reply: GOODBYE },
      });
      await h.tenants.create({ id: 'solo', displayName: 'Solo', greeting: 'Hello.', maxConcurrentCalls: 1 });
      await h.numbers.createTrunk({ name: 'loopback', sourceCidrs: ['127.0.0.1/32'] });
      await h.numbers.createNumber({ number: JOES, tenantId: 'joes' });
      await h.numbers.createNumber({ number: SOLO, tenantId: 'solo' });
    }, 30_000);

    afterAll(async () => {
      await h?.stop();
      await providers?.close();
    });

    const target = (): string => `127.0.0.1:${h.drachtio.sipPort}`;
    const uniqueCallId = (name: string): string => `sipp-${name}-${Math.random().toString(36).slice(2, 10)}-%u@%s`;
    /** The Call-ID sipp gives its first call under `uniqueCallId` (%u = 1, %s = its address). */
    const firstCallId = (format: string): string => format.replace('%u', '1').replace('%s', '127.0.0.1');

    /** sipp's view of a run, for a failure message. */
    const report = (r: SippResult): string => `exit ${r.exitCode}, ${r.successful} ok / ${r.failed} failed\n${r.errors}\n${r.stderr}`;

    /** The call's record, once the gateway has written it (after the session ended). */
    async function recordOf(tenantId: string, callId: string): Promise<CallRecord> {
      for (let i = 0; ; i++) {
        try {
          return await h.records.get(tenantId, callId);
        } catch (err) {
          if (i >= 60) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }

    interface HeardCall {
      readonly sipp: SippResult;
      readonly audio: CapturedAudio;
      /** What pocketsphinx recognised in the audio sent to sipp, against the agent's lines. */
      readonly heard: string;
      readonly callId: string;
    }

    /** One sipp call with a fixture as the caller's speech, the audio sent back to it captured and recognised. */
    async function callAndListen(opts: {
      scenario: string;
      fixture: string;
      codec: CodecName;
      payloadType: number;
      name: string;
      vars: Record<string, string>;
    }): Promise<HeardCall> {
      const mediaPort = await freeUdpPort('127.0.0.1', [2]);
      const callId = uniqueCallId(opts.name);
      const capture = await startUdpCapture({ filter: `udp and dst port ${mediaPort}` });
      let sipp: SippResult;
      let captured: Uint8Array;
      try {
        sipp = await runSipp({
          scenario: join(SCENARIOS, opts.scenario),
          target: target(),
          service: JOES,
          mediaPort,
          calls: 1,
          timeoutMs: 30_000,
          callId,
          vars: opts.vars,
          links: { 'caller.pcap': join(FIXTURES, opts.fixture) },
        });
      } finally {
        // Stopped on every path: a failing run must not leave tcpdump behind.
        captured = await capture.stop();
      }
      const audio = decodeCapturedRtp(captured, { port: mediaPort, codec: opts.codec, payloadType: opts.payloadType });
      const heard = audio.pcm.length > 0 ? await recognizePcm(audio.pcm, { phrases: AGENT_LINES }) : '';
      return { sipp, audio, heard, callId: firstCallId(callId) };
    }

    it.concurrent('a PCMU trunk call: the agent greets, hears "what time do you open today", answers; the caller hears both; caller BYE', async ({ expect }) => {
      const call = await callAndListen({
        scenario: 'uac-pcap-pcmu.xml',
        fixture: 'caller-open-today.pcmu.pcap',
        codec: 'PCMU',
        payloadType: 0,
        name: 'pcmu',
        vars: { greet_ms: String(GREET_MS), listen_ms: String(LISTEN_MS) },
      });
      expect(call.sipp.successful, report(call.sipp)).toBe(1);
      expect(call.sipp.failed).toBe(0);
      expect(call.sipp.exitCode).toBe(0);
      // RTP came back to sipp's media port for the whole call (~12.5 s of 20 ms packets, silence included).
      expect(call.audio.packets).toBeGreaterThan(400);
      expect(call.heard).toContain(heardAs(GREETING));
      expect(call.heard).toContain(heardAs(HOURS));
      expect(call.heard).not.toContain(heardAs(FALLBACK));
      const record = await recordOf('joes', call.callId);
      expect(record).toMatchObject({ door: 'sip', outcome: 'caller-hangup', to: JOES });
      expect(record.transcript).toContainEqual(expect.objectContaining({ role: 'caller', text: 'what time do you open today' }));
      expect(record.transcript).toContainEqual(expect.objectContaining({ role: 'agent', text: HOURS }));
    }, 45_000);

    it.concurrent('an Opus call (PT 111, opus/48000/2): the same conversation, Opus both ways', async ({ expect }) => {
      const call = await callAndListen({
        scenario: 'uac-pcap-opus.xml',
        fixture: 'caller-open-today.opus.pcap',
        codec: 'opus',
        payloadType: 111,
        name: 'opus',
        vars: { greet_ms: String(GREET_MS), listen_ms: String(LISTEN_MS) },
      });
      expect(call.sipp.successful, report(call.sipp)).toBe(1);
      expect(call.sipp.exitCode).toBe(0);
      expect(call.audio.packets).toBeGreaterThan(400);
      expect(call.heard).toContain(heardAs(GREETING));
      expect(call.heard).toContain(heardAs(HOURS));
      const record = await recordOf('joes', call.callId);
      expect(record).toMatchObject({ door: 'sip', outcome: 'caller-hangup' });
      expect(record.transcript).toContainEqual(expect.objectContaining({ role: 'caller', text: 'what time do you open today' }));
    }, 45_000);

    it.concurrent("agent BYE: the caller says goodbye, hears the agent's goodbye, and gets the agent's BYE", async ({ expect }) => {
      const call = await callAndListen({
        scenario: 'uac-agent-bye.xml',
        fixture: 'caller-goodbye.pcmu.pcap',
        codec: 'PCMU',
        payloadType: 0,
        name: 'bye',
        vars: { greet_ms: String(GREET_MS) },
      });
      expect(call.sipp.successful, report(call.sipp)).toBe(1);
      expect(call.sipp.exitCode).toBe(0);
      expect(call.heard).toContain(heardAs(GREETING));
      expect(call.heard).toContain(heardAs(GOODBYE));
      expect(await recordOf('joes', call.callId)).toMatchObject({ door: 'sip', outcome: 'agent-goodbye' });
    }, 45_000);

    it('an unknown number gets 404', async () => {
      const r = await runSipp({ scenario: join(SCENARIOS, 'uac-404.xml'), target: target(), service: UNKNOWN, calls: 1, timeoutMs: 10_000 });
      expect(r.successful, report(r)).toBe(1);
      expect(r.exitCode).toBe(0);
      expect(r.errors).toBe('');
    });

    it('over the tenant limit (1, one call held) the next call gets 486 with Retry-After', async () => {
      const callId = uniqueCallId('held');
      const held = runSipp({
        scenario: join(SCENARIOS, 'uac-pcap-pcmu.xml'),
        target: target(),
        service: SOLO,
        calls: 1,
        timeoutMs: 20_000,
        callId,
        vars: { greet_ms: '500', listen_ms: '3000' },
        links: { 'caller.pcap': join(FIXTURES, 'caller-book-table.pcmu.pcap') },
      });
      try {
        await pollUntil(() => h.limiter.active('solo'), (n) => n > 0, 2000, 20);
        expect(await h.limiter.active('solo')).toBe(1);
        const busy = await runSipp({ scenario: join(SCENARIOS, 'uac-486.xml'), target: target(), service: SOLO, calls: 1, timeoutMs: 10_000 });
        expect(busy.successful, report(busy)).toBe(1);
        expect(busy.exitCode).toBe(0);
      } finally {
        const r = await held;
        expect(r.successful, report(r)).toBe(1);
      }
      expect(await recordOf('solo', firstCallId(callId))).toMatchObject({ door: 'sip', outcome: 'caller-hangup' });
      const refused = (await h.records.list('solo')).records.find((rec) => rec.outcome === 'rejected');
      expect(refused).toMatchObject({ door: 'sip', error: { code: 'CG_CALL_LIMIT_REACHED' } });
    }, 30_000);

    it('CANCEL before the answer: 200 for the CANCEL, 487 for the INVITE, ACK; nothing left behind', async () => {
      // Setup is held before the answer, so the CANCEL always arrives first (no race with the 200).
      let open!: () => void;
      setupGate = new Promise<void>((resolve) => (open = resolve));
      const callId = uniqueCallId('cancel');
      try {
        const r = await runSipp({ scenario: join(SCENARIOS, 'uac-cancel.xml'), target: target(), service: JOES, calls: 1, timeoutMs: 10_000, callId });
        expect(r.successful, report(r)).toBe(1);
        expect(r.exitCode).toBe(0);
      } finally {
        open();
        setupGate = Promise.resolve();
      }
      const record = await recordOf('joes', firstCallId(callId));
      expect(record).toMatchObject({ door: 'sip', outcome: 'caller-hangup' });
      expect(record.answeredAt).toBeUndefined();
      expect(await h.limiter.active('joes')).toBe(0);
    });

    it('leaves no rtpengine session and no line reserved after all of it', async () => {
      expect(await h.sessionsDrained()).toBe(0);
      expect(await h.limiter.active('joes')).toBe(0);
      expect(await h.limiter.active('solo')).toBe(0);
    });
  });
}
