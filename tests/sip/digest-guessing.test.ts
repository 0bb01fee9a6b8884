import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { CallMetrics } from '../../src/app/CallMetrics.js';
import { loggerTo } from '../../src/log.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/testing/FakeProviders.js';
import type { SipRefusal } from '../../src/sip/SipGateway.js';
import type { AuthLockout } from '../../src/sip/invite/steps.js';
import { startSipHarness, type SipHarness } from '../../src/sip/testing/SipHarness.js';
import { runSipp, type SippResult } from '../../src/sip/testing/Sipp.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { missingTool, testMissing } from '../support/tools.js';

/**
 * Issue 24, finding 11: a device's digest password guessed by brute force. sipp plays the guesser as
 * the probe did — a desk phone's User-Agent, one guess per call, fifty wrong passwords and then the
 * right one — from 127.0.0.1 against the device "desk-a". With the default lockout (5 failures in
 * 10 minutes → 15 minutes) the fifth wrong guess locks the username and the address, so the right
 * password, 46 guesses later, gets the same 403 as every wrong one. Meanwhile another device ("desk-b",
 * its own username, calling from 127.0.0.2) places calls that are answered. Once the lockout is lifted,
 * the same right password from the same address is answered: it was the lockout that refused it.
 *
 * The per-source INVITE limit is raised here so that the lockout, not the rate, is what stops the
 * guesser (each guess is two INVITEs: the challenged one and the answer).
 */
const SCENARIOS = fileURLToPath(new URL('./scenarios/', import.meta.url));
const NUMBER = '+15005550103';
const A = { username: 'desk-a', password: 'ThisIsDeskA-2026' };
const B = { username: 'desk-b', password: 'ThisIsDeskB-2026' };
const WRONG_GUESSES = 50;


const MISSING = missingTool('drachtio', 'rtpengine', 'sipp');
if (MISSING) {
  describe('SIP digest guessing', () => testMissing(MISSING));
} else {
  describe('SIP digest guessing with sipp: the lockout refuses the right password; another device goes on', () => {
    let h: SipHarness;
    let dir: string;
    const registry = new Registry();
    const refusals: SipRefusal[] = [];
    const lockouts: (AuthLockout & { afterRefusals: number })[] = [];
    const logText: string[] = [];

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'callgate-digest-'));
      const providers = new ProviderRegistry({
        stt: { pocketsphinx: () => new FakeStt({ transcripts: [] }) },
        llm: { scripted: () => new FakeLlm({ reply: () => 'Sure.' }) },
        tts: { flite: () => new FakeTts({ msPerChar: 35 }) },
      });
      h = await startSipHarness({
        providers,
        agentPorts: { min: 49000, max: 49499 },
        rtpengine: { portMin: 53000, portMax: 53499 },
        sourceLimit: { invitesPerSecond: 1000, burst: 3000 },
        logger: loggerTo({ write: (line: string) => void logText.push(line) }, 'info'),
      });
      await h.tenants.create({ id: 'desk', displayName: 'Desk', greeting: 'Hello desk.', maxConcurrentCalls: 10 });
      // Devices, not carriers: credentials and the one address each calls from (no open trunk covers either).
      await h.numbers.createTrunk({ name: 'desk-a', sourceCidrs: ['127.0.0.1/32'], auth: A });
      await h.numbers.createTrunk({ name: 'desk-b', sourceCidrs: ['127.0.0.2/32'], auth: B });
      await h.numbers.createNumber({ number: NUMBER, tenantId: 'desk' });
      // As the Gateway wires it: lockouts and refusals feed the metrics.
      const metrics = new CallMetrics(registry, h.limiter);
      h.gateway.on('refused', (r) => {
        refusals.push(r);
        metrics.sipRefused(r.code);
      });
      h.gateway.on('auth-lockout', (l) => {
        lockouts.push({ ...l, afterRefusals: refusals.length });
        metrics.sipAuthLockout(l.scope);
      });
    }, 30_000);

    afterAll(async () => {
      await h?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    /** A sipp injection file: one `username;password` line per call, in order. */
    async function credentials(name: string, lines: readonly { username: string; password: string }[]): Promise<string> {
      const file = join(dir, `${name}.csv`);
      await writeFile(file, ['SEQUENTIAL', ...lines.map((l) => `${l.username};${l.password};`)].join('\n') + '\n');
      return file;
    }

    /**
     * sipp's digest `uri` is `sip:<remote_ip>:<remote_port>` unless told (`-auth_uri`); the gateway now
     * wants the Request-URI there, as RFC 3261 §22.4 says.
     */
    const authUri = (): string[] => ['-auth_uri', `${NUMBER}@127.0.0.1:${h.drachtio.sipPort}`];

    const report = (r: SippResult): string => `exit ${r.exitCode}, ${r.successful} ok / ${r.failed} failed\n${r.errors.slice(0, 3000)}\n${r.stderr.slice(-1500)}`;

    it('refuses every guess once 5 have failed, the right password included, while desk-b calls from 127.0.0.2', async () => {
      const guesses = [...Array.from({ length: WRONG_GUESSES }, (_, i) => ({ username: A.username, password: `guess-${i + 1}` })), A];
      const attack = runSipp({
        scenario: join(SCENARIOS, 'uac-digest-refused.xml'),
        target: `127.0.0.1:${h.drachtio.sipPort}`,
        service: NUMBER,
        localAddress: '127.0.0.1',
        calls: guesses.length,
        // One guess at a time, ~7 a second (one every 0.15 s, as the probe).
        rate: 7,
        callLimit: 1,
        timeoutMs: 30_000,
        extraArgs: ['-inf', await credentials('guesses', guesses), ...authUri()],
      });
      // desk-b's calls start once the guesser is locked out, and run while it goes on guessing.
      await pollUntil(() => lockouts.length, (n) => n >= 2, 15_000);
      const device = runSipp({
        scenario: join(SCENARIOS, 'uac-digest-answered.xml'),
        target: `127.0.0.1:${h.drachtio.sipPort}`,
        service: NUMBER,
        localAddress: '127.0.0.2',
        calls: 3,
        rate: 5,
        callLimit: 3,
        timeoutMs: 20_000,
        vars: { hold_ms: '300' },
        extraArgs: ['-inf', await credentials('desk-b', [B]), ...authUri()],
      });
      const [attacked, called] = await Promise.all([attack, device]);

      // Every one of the 51 guesses got 401 then 403: the scenario fails a call on anything else (a 200).
      expect(attacked.successful, report(attacked)).toBe(guesses.length);
      expect(attacked.failed, report(attacked)).toBe(0);
      // The lockout came at the fifth failure, long before the right guess (the 51st).
      expect(lockouts.map((l) => ({ scope: l.scope, username: l.username, source: l.source, lockoutMs: l.lockoutMs }))).toEqual([
        { scope: 'user', username: A.username, source: '127.0.0.1', lockoutMs: 15 * 60_000 },
        { scope: 'source', username: A.username, source: '127.0.0.1', lockoutMs: 15 * 60_000 },
      ]);
      const fromA = refusals.filter((r) => r.source === '127.0.0.1');
      expect(lockouts[0]!.afterRefusals).toBe(4);
      expect(fromA.filter((r) => r.code === 'CG_SIP_FORBIDDEN')).toHaveLength(5);
      expect(fromA.filter((r) => r.code === 'CG_SIP_AUTH_LOCKED')).toHaveLength(guesses.length - 5);
      expect(await h.authFailures.check({ username: A.username, source: '127.0.0.1' })).toMatchObject({ user: expect.any(Number), source: expect.any(Number) });

      // desk-b, another username from another address, was answered every time meanwhile.
      expect(called.successful, report(called)).toBe(3);
      expect(called.failed, report(called)).toBe(0);
      expect(refusals.filter((r) => r.source === '127.0.0.2')).toEqual([]);

      // One log line per lockout, naming the username and address; no password or digest response in any line.
      const log = logText.join('');
      const lockLines = logText.filter((l) => l.includes('locked out'));
      expect(lockLines).toHaveLength(2);
      for (const line of lockLines) expect(JSON.parse(line)).toMatchObject({ username: A.username, source: '127.0.0.1', code: 'CG_SIP_AUTH_LOCKED' });
      for (const secret of [A.password, B.password, 'guess-1', 'response=']) expect(log).not.toContain(secret);
      const text = await registry.metrics();
      expect(text).toContain('callgate_sip_auth_lockouts_total{scope="user"} 1');
      expect(text).toContain('callgate_sip_auth_lockouts_total{scope="source"} 1');

      // With the lockout lifted, the same right password from the same address is answered — when the
      // answer names this request. sipp's own default digest uri (`sip:127.0.0.1:<port>`, what the probe
      // sent) is refused like a wrong password.
      await h.authFailures.clear('user', A.username);
      await h.authFailures.clear('source', '127.0.0.1');
      const otherUri = await runSipp({
        scenario: join(SCENARIOS, 'uac-digest-refused.xml'),
        target: `127.0.0.1:${h.drachtio.sipPort}`,
        service: NUMBER,
        localAddress: '127.0.0.1',
        calls: 1,
        timeoutMs: 15_000,
        extraArgs: ['-inf', await credentials('desk-a-default-uri', [A])],
      });
      expect(otherUri.successful, report(otherUri)).toBe(1);
      const after = await runSipp({
        scenario: join(SCENARIOS, 'uac-digest-answered.xml'),
        target: `127.0.0.1:${h.drachtio.sipPort}`,
        service: NUMBER,
        localAddress: '127.0.0.1',
        calls: 1,
        timeoutMs: 15_000,
        vars: { hold_ms: '200' },
        extraArgs: ['-inf', await credentials('desk-a', [A]), ...authUri()],
      });
      expect(after.successful, report(after)).toBe(1);
      expect(await h.sessionsDrained()).toBe(0);
      expect(await pollUntil(() => h.limiter.active('desk'), (n) => n === 0)).toBe(0);
    }, 60_000);
  });
}
