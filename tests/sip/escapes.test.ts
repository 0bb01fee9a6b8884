import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { loggerTo } from '../../src/log.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/testing/FakeProviders.js';
import { startSipHarness, type SipHarness } from '../../src/sip/testing/SipHarness.js';
import { runSipp } from '../../src/sip/testing/Sipp.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { missingTool, testMissing } from '../support/tools.js';

/**
 * What one call's failure may not do to the others (issue 24: a timer's rejection in the WebRTC door
 * escaped a failed call and ended the process). Two hooks the gateway calls on every SIP call are made
 * to throw, as a broken metrics function would: the leg-statistics hook, called as the call's media leg
 * closes, and a 'call-timing' listener, called when the greeting's first packet leaves.
 *
 * Before the fix the first aborted the call's cleanup half-way: its line lease went on being renewed
 * and its rtpengine session was never deleted, so with a one-line tenant every later call was refused
 * 486 Busy Here (measured: 1 session and 1 line left, the second call refused). The second landed in
 * whatever emitted the packet — the media clock's subscriber-error counter, or the agent's playback.
 * Now each failure is logged with its stack and the call ends as any other: both of sipp's calls are
 * answered, no line or rtpengine session is left, and nothing reaches the process's handlers for
 * unhandled errors.
 */
const SCENARIOS = fileURLToPath(new URL('./scenarios/', import.meta.url));
const NUMBER = '+15005550100';

const MISSING = missingTool('drachtio', 'rtpengine', 'sipp');
if (MISSING) {
  describe('SIP per-call failures', () => testMissing(MISSING));
} else {
  describe('SIP per-call failures stay in their call', () => {
    let h: SipHarness;
    const logLines: { msg?: string; err?: string }[] = [];
    const escaped: unknown[] = [];
    const onEscape = (e: unknown): void => void escaped.push(e);
    let statsCalls = 0;

    beforeAll(async () => {
      process.on('unhandledRejection', onEscape);
      process.on('uncaughtException', onEscape);
      const providers = new ProviderRegistry({
        stt: { pocketsphinx: () => new FakeStt({ transcripts: [] }) },
        llm: { scripted: () => new FakeLlm({ reply: () => 'Sure.' }) },
        tts: { flite: () => new FakeTts({ msPerChar: 35 }) },
      });
      h = await startSipHarness({
        providers,
        agentPorts: { min: 49000, max: 49499 },
        rtpengine: { portMin: 53000, portMax: 53499 },
        logger: loggerTo({ write: (line: string) => void logLines.push(JSON.parse(line) as (typeof logLines)[number]) }, 'warn'),
        legStats: () => {
          statsCalls++;
          throw new Error('metrics hook broke');
        },
      });
      await h.tenants.create({ id: 'joes', displayName: "Joe's Pizza", greeting: "Hi, you have reached Joe's Pizza.", maxConcurrentCalls: 1 });
      await h.numbers.createTrunk({ name: 'local', sourceCidrs: ['127.0.0.1/32'] });
      await h.numbers.createNumber({ number: NUMBER, tenantId: 'joes' });
      h.gateway.on('call-timing', () => {
        throw new Error('call-timing listener broke');
      });
    }, 30_000);

    afterAll(async () => {
      await h?.stop();
      process.off('unhandledRejection', onEscape);
      process.off('uncaughtException', onEscape);
    });

    it('ends each call cleanly when a hook of the gateway throws: line released, rtpengine session deleted, process untouched', async () => {
      // Two calls one after the other on a tenant with one line: the second is answered only if the
      // first one's lease was released.
      const r = await runSipp({
        scenario: join(SCENARIOS, 'uac-hold-bye.xml'),
        target: `127.0.0.1:${h.drachtio.sipPort}`,
        service: NUMBER,
        localAddress: '127.0.0.1',
        calls: 2,
        callLimit: 1,
        timeoutMs: 20_000,
        vars: { hold_ms: '1200' },
      });
      expect(r.successful, `${r.errors}\n${r.stderr}`).toBe(2);
      expect(r.failed).toBe(0);
      expect(await h.sessionsDrained()).toBe(0);
      expect(await pollUntil(() => h.limiter.active('joes'), (n) => n === 0)).toBe(0);
      expect(await pollUntil(() => h.gateway.activeCalls, (n) => n === 0)).toBe(0);
      // Both hooks were reached on both calls, and their failures were logged, not thrown.
      expect(statsCalls).toBe(2);
      expect(logLines.filter((l) => l.msg === 'leg statistics hook failed')).toHaveLength(2);
      expect(logLines.filter((l) => l.msg === 'call-timing listener failed')).toHaveLength(2);
      expect(logLines.find((l) => l.msg === 'call-timing listener failed')?.err).toContain('call-timing listener broke');
      expect(escaped).toEqual([]);
    }, 40_000);
  });
}
