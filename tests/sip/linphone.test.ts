import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offlineProviderRegistry, type ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { buildAdminApp, type AdminApp } from '../../src/http/adminApp.js';
import { resample } from '../../src/media/Resampler.js';
import { Linphone, type LinphoneOptions } from '../../src/sip/testing/Linphone.js';
import { startSipHarness, type SipHarness } from '../../src/sip/testing/SipHarness.js';
import type { CallRecord } from '../../src/tenants/CallRecordStore.js';
import { seedDemoTenant } from '../../src/tenants/demo.js';
import { SecretBox } from '../../src/tenants/secrets.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { DEMO, fliteSays, SPEECH_MATCH, speechMatch } from '../support/heard.js';
import { missingTool, testMissing } from '../support/tools.js';

/**
 * Interop with a second, independent softphone (issue 25; baresip is the first,
 * tests/sip/baresip.test.ts): Debian's linphone-cli (linphonec 5.1, liblinphone and belle-sip — a SIP
 * stack that shares nothing with baresip's re) registers with a device's credentials to
 * drachtio-server + the gateway on loopback, calls the demo number over PCMU and over Opus, and is
 * called by the API (`POST /v1/tenants/demo/calls {"device"}`) and answers by itself. What linphone
 * heard (its file-mode recording) must contain the demo greeting: its loudness envelope correlated
 * with the greeting as the gateway's flite voice renders it (tests/support/heard.ts).
 *
 * Its own port ranges, above the kernel's ephemeral ports (32768–60999) and away from the other SIP
 * tests' rtpengines (rtpengines on one host share ports).
 */
const DEMO_NUMBER = '+15005550100';
const RTPENGINE_PORTS = { portMin: 61000, portMax: 61199 } as const;
const AGENT_PORTS = { min: 61200, max: 61399 } as const;
/** Each phone its own hundred from here. */
const PHONE_PORTS_FROM = 61400;

const password = (username: string): string => `${username}-linphone-pw`;

const MISSING = missingTool('drachtio', 'rtpengine', 'linphone', 'pocketsphinx');
if (MISSING) {
  describe('linphone against the SIP door', () => testMissing(MISSING));
} else {
  describe('linphone against the SIP door: registers, calls the demo number, is called', () => {
    let h: SipHarness;
    let providers: ProviderRegistry;
    let admin: AdminApp;
    const phones: Linphone[] = [];
    const token = randomBytes(24).toString('base64url');
    let greeting: Int16Array;

    beforeAll(async () => {
      providers = offlineProviderRegistry();
      h = await startSipHarness({ providers, agentPorts: AGENT_PORTS, rtpengine: RTPENGINE_PORTS });
      // The demo as `npm start` with the SIP door makes it: tenant, number, the loopback trunk.
      await seedDemoTenant({ tenants: h.tenants, callUrls: h.callUrls, numbers: h.numbers }, { sip: true });
      for (const username of ['frank', 'grace', 'heidi', 'ivan']) await h.devices.create('demo', { username, password: password(username) });
      admin = await buildAdminApp({ redis: h.redis, prefix: h.prefix, secrets: new SecretBox(randomBytes(32)), adminToken: token, dialer: { dial: (req) => h.gateway.dial(req) } });
      greeting = await fliteSays(DEMO.GREETING);
    }, 30_000);

    afterAll(async () => {
      for (const p of phones) await p.stop().catch(() => undefined);
      await admin?.close();
      await h?.stop();
      await providers?.close();
    });

    const registrar = (): string => `127.0.0.1:${h.drachtio.sipPort}`;

    async function phone(username: string, over: Partial<LinphoneOptions> = {}): Promise<Linphone> {
      const from = PHONE_PORTS_FROM + phones.length * 100;
      const p = await Linphone.start({
        username,
        password: password(username),
        registrar: registrar(),
        codecs: ['PCMU'],
        expiresS: 600,
        autoAnswer: true,
        rtpPorts: { min: from, max: from + 99 },
        ...over,
      });
      phones.push(p);
      return p;
    }

    async function done(p: Linphone): Promise<void> {
      phones.splice(phones.indexOf(p), 1);
      await p.stop();
    }

    /** How well the greeting is heard in `file` (0 until it is), and the recording's rate. */
    async function greetingHeard(p: Linphone, file: string, timeoutMs = 12_000): Promise<{ score: number; atMs: number; sampleRate: number }> {
      let best = { score: 0, atMs: 0, sampleRate: 0 };
      await pollUntil(
        async () => {
          const heard = await p.heard(file);
          if (!heard || heard.samples.length === 0) return best;
          const at16k = heard.sampleRate === 16000 ? heard.samples : resample(heard.samples, heard.sampleRate, 16000);
          const m = speechMatch(greeting, at16k);
          if (m.score > best.score) best = { ...m, sampleRate: heard.sampleRate };
          return best;
        },
        (b) => b.score >= SPEECH_MATCH,
        timeoutMs,
        300,
      );
      return best;
    }

    async function recordOf(callId: string): Promise<CallRecord | undefined> {
      return pollUntil(
        () => h.records.get('demo', callId).catch(() => undefined),
        (r) => r !== undefined,
        5000,
      );
    }

    it('registers with digest (a wrong password is refused), its binding keeps the real source; un-registering removes it', async () => {
      const wrong = await phone('frank', { password: 'not-franks-password' });
      await wrong.waitForLog(/^SIP\/2\.0 403 Forbidden/m);
      expect(await wrong.registrationState()).toBe('LinphoneRegistrationFailed');
      expect((await h.bindings.bindings('frank')).bindings).toEqual([]);
      await done(wrong);
      await h.authFailures.clear('source', '127.0.0.1');
      await h.authFailures.clear('user', 'frank');

      const frank = await phone('frank');
      await frank.waitRegistered();
      const { bindings } = await h.bindings.bindings('frank');
      expect(bindings).toHaveLength(1);
      expect(bindings[0]).toMatchObject({ source: { address: '127.0.0.1', port: frank.sipPort, transport: 'udp' }, userAgent: expect.stringMatching(/^Linphonec\/5\./) });
      expect(bindings[0]!.contact).toMatch(new RegExp(`^sip:frank@127\\.0\\.0\\.1:${frank.sipPort}`));
      expect(Math.round((bindings[0]!.expiresAt - Date.now()) / 1000)).toBeGreaterThan(500);
      // Switched off: it un-registers (REGISTER with Expires: 0), and the binding goes.
      await frank.unregister();
      expect((await h.bindings.bindings('frank')).bindings).toEqual([]);
      await done(frank);
    }, 20_000);

    it.each([
      ['PCMU', 'grace', 'PCMU', 8000],
      ['Opus', 'heidi', 'opus', 48000],
    ] as const)('calls the demo number over %s after registering, and hears the greeting', async (_codec, username, codec, rate) => {
      const p = await phone(username, { codecs: [codec] });
      await p.waitRegistered();
      const since = p.output.length;
      const { recording } = await p.dial(`sip:${DEMO_NUMBER}@${registrar()}`);
      await p.waitForOutput(/Call \d+ with .* connected/, 10_000, since);
      const heard = await greetingHeard(p, recording);
      expect(heard, `linphonec output:\n${p.output.slice(-1500)}`).toMatchObject({ sampleRate: rate });
      expect(heard.score).toBeGreaterThanOrEqual(SPEECH_MATCH);
      await p.hangup();
      // Closed at the hang-up: the file is a whole WAV now, at the codec's rate.
      expect((await p.heard(recording))?.sampleRate).toBe(rate);
      // The device is who called: its own tenant, its username as the caller.
      const [callId] = await p.inviteCallIds();
      expect(await recordOf(callId!)).toMatchObject({ door: 'sip', from: username, to: DEMO_NUMBER, outcome: 'caller-hangup' });
      await done(p);
    }, 30_000);

    it('is called by the API: it answers by itself, talks to the agent and hears the greeting', async () => {
      const ivan = await phone('ivan');
      await ivan.waitRegistered();
      const recording = await ivan.expectCall();
      const since = ivan.output.length;
      const res = await admin.inject({ method: 'POST', url: '/v1/tenants/demo/calls', headers: { authorization: `Bearer ${token}` }, payload: { device: 'ivan' } });
      expect(res.statusCode, res.body).toBe(202);
      const { callId } = res.json() as { callId: string };
      await ivan.waitForOutput(/Receiving new incoming call from .*sip:callgate@/, 10_000, since);
      await ivan.waitForOutput(/Call \d+ with .* connected/, 10_000, since);
      const heard = await greetingHeard(ivan, recording);
      expect(heard.score, `linphonec output:\n${ivan.output.slice(-1500)}`).toBeGreaterThanOrEqual(SPEECH_MATCH);
      await ivan.hangup();
      const record = await recordOf(callId);
      expect(record).toMatchObject({ door: 'sip', to: 'device:ivan', outcome: 'caller-hangup' });
      expect(record?.answeredAt).toBeDefined();
      await done(ivan);
    }, 30_000);
  });
}
