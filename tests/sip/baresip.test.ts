import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offlineProviderRegistry, type ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { buildAdminApp, type AdminApp } from '../../src/http/adminApp.js';
import { resample } from '../../src/media/Resampler.js';
import { Baresip, type BaresipOptions } from '../../src/sip/testing/Baresip.js';
import { startSipHarness, type SipHarness } from '../../src/sip/testing/SipHarness.js';
import type { CallRecord } from '../../src/tenants/CallRecordStore.js';
import { seedDemoTenant } from '../../src/tenants/demo.js';
import { SecretBox } from '../../src/tenants/secrets.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { DEMO, fliteSays, SPEECH_MATCH, speechMatch } from '../support/heard.js';
import { missingTool, testMissing } from '../support/tools.js';

/**
 * Interop with a real softphone (issue 25): Debian's baresip registers with a device's credentials to
 * drachtio-server + the gateway on loopback, calls the demo number (dialplans/demo.yaml, whose trunk
 * `local-test` trusts 127.0.0.1 without credentials — the device is challenged anyway) over PCMU and
 * over Opus, and is called by the API (`POST /v1/tenants/demo/calls {"device"}`). What baresip heard
 * (its sndfile recording) must contain the demo greeting: its loudness envelope correlated with the
 * greeting as the gateway's flite voice renders it (tests/support/heard.ts).
 */
const PASSWORD = 'alice-softphone-pw';
const DEMO_NUMBER = '+15005550100';

const MISSING = missingTool('drachtio', 'rtpengine', 'baresip', 'pocketsphinx');
if (MISSING) {
  describe('baresip against the SIP door', () => testMissing(MISSING));
} else {
  describe('baresip against the SIP door: registers, calls the demo number, is called', () => {
    let h: SipHarness;
    let providers: ProviderRegistry;
    let admin: AdminApp;
    let dir: string;
    const phones: Baresip[] = [];
    const token = randomBytes(24).toString('base64url');
    const auth = { authorization: `Bearer ${token}` };
    let greeting: Int16Array;

    beforeAll(async () => {
      providers = offlineProviderRegistry();
      h = await startSipHarness({
        providers,
        agentPorts: { min: 44000, max: 44499 },
        // Its own range: rtpengines share ports, and other SIP tests' rtpengines use theirs.
        rtpengine: { portMin: 33400, portMax: 33599 },
      });
      // The demo as `npm start` with the SIP door makes it: tenant, number, the loopback trunk.
      await seedDemoTenant({ tenants: h.tenants, callUrls: h.callUrls, numbers: h.numbers }, { sip: true });
      for (const username of ['alice', 'bob']) await h.devices.create('demo', { username, password: `${username}-softphone-pw` });
      await h.devices.create('demo', { username: 'carol', password: PASSWORD });
      // Admin API on the harness's Redis: only its call route is used (it reads devices, never their passwords).
      admin = await buildAdminApp({ redis: h.redis, prefix: h.prefix, secrets: new SecretBox(randomBytes(32)), adminToken: token, dialer: { dial: (req) => h.gateway.dial(req) } });
      dir = await mkdtemp(join(tmpdir(), 'callgate-baresip-test-'));
      greeting = await fliteSays(DEMO.GREETING);
    }, 30_000);

    afterAll(async () => {
      for (const p of phones) await p.stop().catch(() => undefined);
      await admin?.close();
      await h?.stop();
      await providers?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    const registrar = (): string => `127.0.0.1:${h.drachtio.sipPort}`;

    async function phone(username: string, over: Partial<BaresipOptions> = {}): Promise<Baresip> {
      const p = await Baresip.start({
        username,
        password: `${username}-softphone-pw`,
        registrar: registrar(),
        codecs: ['pcmu'],
        regintS: 600,
        answermode: 'auto',
        rtpPorts: { min: 45000 + phones.length * 100, max: 45099 + phones.length * 100 },
        ...over,
      });
      phones.push(p);
      return p;
    }

    /** How well the greeting is heard in what `p` recorded on its `call`-th call (0 until it is). */
    async function greetingHeard(p: Baresip, call: number, timeoutMs = 12_000): Promise<{ score: number; atMs: number; sampleRate: number }> {
      let best = { score: 0, atMs: 0, sampleRate: 0 };
      await pollUntil(
        async () => {
          const heard = (await p.heard())[call];
          if (!heard || heard.samples.length === 0) return best;
          const at16k = heard.sampleRate === 16000 ? heard.samples : resample(heard.samples, heard.sampleRate, 16000);
          const m = speechMatch(greeting, at16k);
          if (m.score > best.score) best = { ...m, sampleRate: heard.sampleRate };
          return best;
        },
        (b) => b.score >= SPEECH_MATCH,
        timeoutMs,
        500,
      );
      return best;
    }

    async function recordOf(callId: string): Promise<CallRecord> {
      return pollUntil(
        () => h.records.get('demo', callId).catch(() => undefined),
        (r) => r !== undefined,
        5000,
      ) as Promise<CallRecord>;
    }

    it('registers with digest (a wrong password is refused), its binding in Redis keeps the real source; unregistering removes it', async () => {
      const wrong = await phone('alice', { password: 'not-alices-password' });
      await wrong.waitForLog(/403 Forbidden/);
      await wrong.stop();
      phones.splice(phones.indexOf(wrong), 1);
      await h.authFailures.clear('source', '127.0.0.1');
      await h.authFailures.clear('user', 'alice');

      const alice = await phone('alice');
      await alice.waitForLog(/200 OK \(\) \[1 binding\]/);
      const { bindings } = await h.bindings.bindings('alice');
      expect(bindings).toHaveLength(1);
      expect(bindings[0]).toMatchObject({ source: { address: '127.0.0.1', port: alice.sipPort, transport: 'udp' }, userAgent: expect.stringMatching(/^baresip/) });
      expect(bindings[0]!.contact).toMatch(new RegExp(`^sip:alice-[^@]+@127\\.0\\.0\\.1:${alice.sipPort}`));
      expect(Math.round((bindings[0]!.expiresAt - Date.now()) / 1000)).toBeGreaterThan(500);
      // Off and on again: `quit` un-registers (Expires: 0), and the binding goes.
      await alice.stop();
      phones.splice(phones.indexOf(alice), 1);
      expect((await h.bindings.bindings('alice')).bindings).toEqual([]);
    }, 30_000);

    it('refuses a call from a device with the wrong password, though a trunk without credentials covers its address', async () => {
      const mallory = await phone('alice', { password: 'guessed-password', regintS: 0 });
      const since = mallory.events.length;
      expect((await mallory.command('dial', `sip:${DEMO_NUMBER}@${registrar()}`)).ok).toBe(true);
      const closed = await mallory.waitFor((e) => e.type === 'CALL_CLOSED', 10_000, since);
      expect(closed.param).toMatch(/403/);
      expect(mallory.events.slice(since).some((e) => e.type === 'CALL_ESTABLISHED')).toBe(false);
      await mallory.stop();
      phones.splice(phones.indexOf(mallory), 1);
      await h.authFailures.clear('source', '127.0.0.1');
      await h.authFailures.clear('user', 'alice');
    }, 20_000);

    it.each([
      ['PCMU', 'alice', ['pcmu'], 8000],
      ['Opus', 'bob', ['opus/48000/2'], 48000],
    ] as const)('calls the demo number over %s after registering, and hears the greeting', async (_codec, username, codecs, rate) => {
      const p = await phone(username, { codecs: [...codecs] });
      await p.waitForLog(/200 OK \(\) \[1 binding\]/);
      const since = p.events.length;
      expect((await p.command('dial', `sip:${DEMO_NUMBER}@${registrar()}`)).ok).toBe(true);
      const established = await p.waitFor((e) => e.type === 'CALL_ESTABLISHED', 10_000, since);
      const heard = await greetingHeard(p, 0);
      expect(heard, `baresip log:\n${p.log.slice(-2000)}`).toMatchObject({ sampleRate: rate });
      expect(heard.score).toBeGreaterThanOrEqual(SPEECH_MATCH);
      await p.command('hangup');
      await p.waitFor((e) => e.type === 'CALL_CLOSED', 5000, since);
      // The device is who called: its own tenant, its username as the caller.
      const callId = String(established['id'] ?? '');
      const record = await recordOf(callId);
      expect(record).toMatchObject({ door: 'sip', from: username, to: DEMO_NUMBER, outcome: 'caller-hangup' });
    }, 40_000);

    it('is called by the API: every registration rings, the first to answer talks to the agent and hears the greeting, the other is CANCELed', async () => {
      // carol on two phones: one answers by itself, the other would ring until someone picks up; a third binding is dead.
      const answers = await phone('carol', { password: PASSWORD });
      const rings = await phone('carol', { password: PASSWORD, answermode: 'manual' });
      await answers.waitForLog(/200 OK \(\) \[\d binding/);
      await rings.waitForLog(/200 OK \(\) \[\d binding/);
      expect((await h.bindings.bindings('carol')).bindings).toHaveLength(2);
      // And a binding left by a phone that is gone (restarted under a new Contact): nothing listens there.
      await h.bindings.register({ username: 'carol', callId: 'gone', cseq: 1, contacts: [{ contact: 'sip:carol-gone@127.0.0.1:9', expiresS: 600 }], source: { address: '127.0.0.1', port: 9, transport: 'udp' } });
      const res = await admin.inject({ method: 'POST', url: '/v1/tenants/demo/calls', headers: auth, payload: { device: 'carol' } });
      expect(res.statusCode, res.body).toBe(202);
      const { callId } = res.json() as { callId: string };
      await answers.waitFor((e) => e.type === 'CALL_ESTABLISHED', 10_000);
      await rings.waitFor((e) => e.type === 'CALL_INCOMING', 10_000);
      await rings.waitFor((e) => e.type === 'CALL_CLOSED', 10_000);
      const heard = await greetingHeard(answers, 0);
      expect(heard.score, `baresip log:\n${answers.log.slice(-2000)}`).toBeGreaterThanOrEqual(SPEECH_MATCH);
      await answers.command('hangup');
      const record = await recordOf(callId);
      expect(record).toMatchObject({ door: 'sip', to: 'device:carol', outcome: 'caller-hangup' });
      expect(record.answeredAt).toBeDefined();
    }, 40_000);

    it('answers a call to a device with no registration 409 CG_DEVICE_NOT_REGISTERED, and leaves nothing behind', async () => {
      await h.devices.create('demo', { username: 'dave', password: PASSWORD });
      const res = await admin.inject({ method: 'POST', url: '/v1/tenants/demo/calls', headers: auth, payload: { device: 'dave' } });
      expect(res.statusCode).toBe(409);
      expect(res.json()).toMatchObject({ code: 'CG_DEVICE_NOT_REGISTERED' });
      expect(await h.sessionsDrained()).toBe(0);
      expect(await h.limiter.active('demo')).toBe(0);
    });
  });
}
