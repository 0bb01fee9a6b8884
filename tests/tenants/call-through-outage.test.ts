import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { concatSamples } from '../../src/media/signal.js';
import { FakeStt, FakeTts, voiceLike } from '../../src/providers/testing/FakeProviders.js';
import { ScriptedResponder } from '../../src/providers/scripted.js';
import { CallLimiter } from '../../src/tenants/CallLimiter.js';
import { CallRecorder } from '../../src/tenants/CallRecorder.js';
import { CallRecordStore } from '../../src/tenants/CallRecordStore.js';
import { connectRedis, testPrefix } from '../../src/tenants/redisClient.js';
import { SecretBox } from '../../src/tenants/secrets.js';
import { TenantCache } from '../../src/tenants/TenantCache.js';
import { agentConfigFor, TenantStore } from '../../src/tenants/TenantStore.js';
import { startRedis } from '../../src/tenants/testing/ownRedis.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { TestCall } from '../agent/harness.js';
import { FAKE_VOICE_SHARE, fakeVoiceShare, soundMs } from '../support/heard.js';
import { describeWith } from '../support/tools.js';

/**
 * A call set up the way a door does it — tenant from the cache, a call-limit lease, a call recorder on
 * the agent's events — and then Redis goes away mid-call (a Redis server of the test's own, killed and
 * restarted on the same port). The call goes on, a new call for the cached tenant is still served, one
 * for an uncached tenant is refused, and the call's record is queued and written once Redis is back.
 */
describeWith(['redis-server'], 'a call through a Redis outage', () => {
  it('goes on talking, serves cached tenants, refuses others, and writes its record after Redis returns', async () => {
    const prefix = testPrefix();
    const server = await startRedis();
    const redis = await connectRedis({ url: server.url, prefix });
    const store = new TenantStore(redis, new SecretBox(randomBytes(32)), { prefix });
    const cache = new TenantCache(store, redis, { prefix, refreshMs: 0, readTimeoutMs: 300 });
    const limiter = new CallLimiter(redis, { prefix, commandTimeoutMs: 300 });
    const records = new CallRecordStore(redis, { prefix, retryBaseMs: 100, retryMaxMs: 200 });
    await cache.start();
    let call: TestCall | undefined;
    let restarted: Awaited<ReturnType<typeof startRedis>> | undefined;
    try {
      await store.create({
        id: 'joes',
        displayName: "Joe's Pizza",
        greeting: "Hi, I'm {{agentName}} from {{business}}.",
        intents: [{ name: 'hours', phrases: ['what time do you open'], reply: 'We open at eleven.' }],
      });
      await store.create({ id: 'cold', displayName: 'Cold' });

      // Call setup, as a door does it.
      const tenant = await cache.get('joes');
      const { config, variables } = agentConfigFor(tenant);
      const providers = {
        stt: new FakeStt({ transcripts: ['what time do you open'] }),
        llm: new ScriptedResponder({ intents: config.intents, fallbackReply: config.fallbackReply, goodbye: config.goodbye }),
        tts: new FakeTts({ msPerChar: 35 }),
      };
      call = await TestCall.open({ config, providers, variables });
      const lease = await limiter.lease('joes', call.call.callId, { limit: tenant.maxConcurrentCalls, leaseMs: 300 });
      let renewErrors = 0;
      lease.on('renewError', () => renewErrors++);
      const recorder = new CallRecorder(records, { callId: call.call.callId, tenantId: 'joes', door: 'test', from: 'sam', to: '/c/joes' });
      recorder.attach(call.session);
      await call.session.start();
      recorder.answered();
      await call.next('agent-done', 5000, (e) => e.turn === 0);

      await server.stop();
      // The caller asks; the agent answers, with Redis gone, and the caller hears it: the fake voice,
      // for about as long as the answer takes to say (18 characters at 35 ms).
      const heardBefore = call.heardAudio.length;
      call.say(voiceLike(800, -22));
      const answer = await call.next('agent-done', 10_000, (e) => e.turn === 1);
      expect(answer.spokenText).toBe('We open at eleven.');
      const heard = (): Int16Array => concatSamples(call!.heardAudio.slice(heardBefore));
      expect(await pollUntil(() => soundMs(heard()), (ms) => ms >= 500, 3000)).toBeGreaterThanOrEqual(500);
      expect(fakeVoiceShare(heard())).toBeGreaterThan(FAKE_VOICE_SHARE);
      await sleep(300);
      expect(renewErrors).toBeGreaterThan(0);

      // New calls meanwhile: the cached tenant is served, an uncached one refused with a clear reason.
      expect((await cache.get('joes')).displayName).toBe("Joe's Pizza");
      await expect(cache.get('cold')).rejects.toMatchObject({ code: 'CG_REDIS_UNAVAILABLE', status: 503 });

      call.call.remoteHangup();
      expect(await call.session.ended).toBe('caller-hangup');
      expect(await recorder.finish()).toBe('queued');
      expect(records.stats().queued).toBe(1);

      restarted = await startRedis(server.port);
      await pollUntil(() => records.stats().queued, (n) => n === 0, 5000, 25);
      expect(records.stats()).toMatchObject({ queued: 0, dropped: 0, written: 1 });
      const saved = await records.get('joes', call.call.callId);
      expect(saved.outcome).toBe('caller-hangup');
      expect(saved.transcript.map((t) => `${t.role}: ${t.text}`)).toEqual([
        "agent: Hi, I'm Ava from Joe's Pizza.",
        'caller: what time do you open',
        'agent: We open at eleven.',
      ]);
      await lease.release().catch(() => undefined);
    } finally {
      await call?.close();
      await records.close(200);
      // Bounded: after a failure during the outage, the cache's subscriber is still reconnecting and
      // its quit() does not settle, which would turn the failure into a test timeout.
      await Promise.race([cache.close(), sleep(2000)]);
      redis.destroy();
      await server.stop();
      await restarted?.stop();
    }
  }, 30_000);
});
