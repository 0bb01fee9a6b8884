import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { CallLimiter } from '../../src/tenants/CallLimiter.js';
import { CallRecordStore, type CallRecord } from '../../src/tenants/CallRecordStore.js';
import { connectRedis, deletePrefix, keys, testPrefix, type Redis } from '../../src/tenants/redisClient.js';
import { startRedis } from '../../src/tenants/testing/ownRedis.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { GatewayProcesses, webCall } from './gatewayProcess.js';
import { describeWith } from '../support/tools.js';
import { asks, DEMO, hears, SPEECH_MATCH } from '../support/heard.js';

/**
 * Faults around the gateway process itself, with `npm start`'s program as a real process and real
 * browser calls (the direct WebRTC door): the process killed mid-call, and its Redis killed and
 * started again mid-call. Each call ends cleanly or carries on, its record is complete, and the
 * tenant's line count comes back to zero.
 */
const ADMIN = 'admin-token-for-the-fault-test-0000';
const LEASE_MS = 3000;
const { GREETING, HOURS, BOOK } = DEMO;


const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function setDemoLimit(base: string, maxConcurrentCalls: number): Promise<void> {
  const r = await fetch(`${base}/v1/tenants/demo`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ maxConcurrentCalls }),
  });
  expect(r.status).toBe(200);
}

const recordOf = (records: CallRecordStore, callId: string, pred: (r: CallRecord) => boolean = () => true, timeoutMs = 15_000): Promise<CallRecord | undefined> =>
  pollUntil(() => records.get('demo', callId).catch(() => undefined), (r) => r !== undefined && pred(r), timeoutMs);

describe('the gateway process killed mid-call', () => {
  it("the call's line lease lapses, the limit recovers, and another gateway writes the call's record as lost with its transcript so far", async () => {
    const prefix = testPrefix();
    const gateways = new GatewayProcesses({ CALLGATE_REDIS_PREFIX: prefix, CALLGATE_ADMIN_TOKEN: ADMIN, CALLGATE_CALL_LEASE_MS: String(LEASE_MS) });
    const redis: Redis = await connectRedis({ prefix });
    cleanups.push(async () => {
      await gateways.stopAll();
      await deletePrefix(redis, prefix);
      await redis.quit();
    });
    const limiter = new CallLimiter(redis, { prefix });
    const records = new CallRecordStore(redis, { prefix });

    // Two gateways on one Redis, as in a fleet; the second does not reseed the demo tenant.
    const doomed = await gateways.start();
    const survivor = await gateways.start({ CALLGATE_SEED_DEMO: '0' });
    await setDemoLimit(survivor.base, 1);

    const { peer, callId } = await webCall(doomed.base, 'demo', 'doomed-call');
    try {
      // The greeting is playing: the call holds the tenant's only line.
      await pollUntil(() => peer.receivedAudio().length, (n) => n >= 16000, 10_000);
      expect(await limiter.active('demo')).toBe(1);
      await sleep(1200); // past the first snapshot renewal (lease / 3)

      gateways.kill(doomed);
      const killedAt = performance.now();

      // While the dead gateway's lease lasts, its line is still counted: a new call is refused (and recorded).
      const refused = await webCall(survivor.base, 'demo', 'too-early').then(
        (c) => {
          c.peer.close();
          return 'answered';
        },
        (err: Error) => err.message,
      );
      expect(refused).toMatch(/^offer: 429 .*CG_CALL_LIMIT_REACHED/);
      // Refused calls have records too.
      const rejected = await pollUntil(
        async () => (await records.list('demo')).records.filter((r) => r.outcome === 'rejected' && r.error?.code === 'CG_CALL_LIMIT_REACHED'),
        (r) => r.length === 1,
        5000,
      );
      expect(rejected).toHaveLength(1);

      // The lease lapses on Redis's clock: the line is free again within about one lease.
      expect(await pollUntil(() => limiter.active('demo'), (n) => n === 0, LEASE_MS + 3000)).toBe(0);
      const freedAfterMs = performance.now() - killedAt;
      expect(freedAfterMs).toBeLessThan(LEASE_MS + 2000);

      // The surviving gateway reaps the dead one's call: its record says lost and keeps the greeting.
      const lost = await recordOf(records, callId, (r) => r.outcome === 'lost', LEASE_MS * 3);
      expect(lost).toMatchObject({ outcome: 'lost', error: { code: 'CG_CALL_LOST' }, door: 'webrtc' });
      expect(lost?.answeredAt).toBeDefined();
      expect(lost?.transcript[0]).toMatchObject({ role: 'agent', turn: 0 });
      expect(lost?.transcript[0]?.text).toContain("Joe's Pizza");
      expect(await redis.zCard(keys(prefix).openCalls())).toBe(0);

      // The limit recovered: the next call is answered and hears its greeting.
      const next = await webCall(survivor.base, 'demo', 'after-recovery');
      try {
        expect((await hears(() => next.peer.receivedAudio(), GREETING)).score).toBeGreaterThanOrEqual(SPEECH_MATCH);
        expect(await limiter.active('demo')).toBe(1);
      } finally {
        next.peer.close();
      }
      const done = await recordOf(records, next.callId);
      expect(done?.outcome).toBe('caller-hangup');
      expect(await pollUntil(() => limiter.active('demo'), (n) => n === 0, 5000)).toBe(0);
      console.log(`[faults] gateway killed: line free after ${Math.round(freedAfterMs)} ms (lease ${LEASE_MS} ms)`);
    } finally {
      peer.close();
    }
  }, 90_000);
});

describeWith(['redis-server'], "the gateway's Redis killed and started again mid-call", () => {
  it('the call goes on through the outage, /readyz says so, and the record and the line count are right once Redis is back', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'callgate-redis-'));
    let server = await startRedis(undefined, { dataDir });
    const prefix = testPrefix();
    const gateways = new GatewayProcesses({ REDIS_URL: server.url, CALLGATE_REDIS_PREFIX: prefix, CALLGATE_ADMIN_TOKEN: ADMIN, CALLGATE_CALL_LEASE_MS: String(LEASE_MS) });
    cleanups.push(async () => {
      await gateways.stopAll();
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    });
    const gw = await gateways.start();

    const { peer, callId } = await webCall(gw.base, 'demo', 'through-outage');
    try {
      expect((await hears(() => peer.receivedAudio(), GREETING)).score).toBeGreaterThanOrEqual(SPEECH_MATCH);
      const port = server.port;
      await server.stop();
      const downAt = performance.now();
      expect(await pollUntil(async () => (await fetch(`${gw.base}/readyz`)).status, (s) => s === 503, 5000)).toBe(503);

      // The conversation does not depend on Redis: the caller asks, and hears the answer, mid-outage.
      const answer = await asks(peer, 'caller-open-today', HOURS);
      expect(answer.score, 'the answer to the opening-hours question, during the outage').toBeGreaterThanOrEqual(SPEECH_MATCH);
      // Down for longer than a lease: the call's renewals fail meanwhile.
      await sleep(Math.max(0, downAt + LEASE_MS * 1.5 - performance.now()));

      server = await startRedis(port, { dataDir });
      console.log(`[faults] Redis down for ${Math.round(performance.now() - downAt)} ms mid-call; the caller asked and heard the answer meanwhile (match ${answer.score.toFixed(2)})`);
      expect(await pollUntil(async () => (await fetch(`${gw.base}/readyz`)).status, (s) => s === 200, 10_000)).toBe(200);
      // The call is still up after Redis is back, and the agent still answers.
      expect((await asks(peer, 'caller-book-table', BOOK)).score, 'the answer to the booking question, after the outage').toBeGreaterThanOrEqual(SPEECH_MATCH);
    } finally {
      peer.close();
    }

    const redis = await connectRedis({ url: server.url, prefix });
    try {
      const records = new CallRecordStore(redis, { prefix });
      const record = await recordOf(records, callId);
      expect(record?.outcome).toBe('caller-hangup');
      expect(record?.transcript[0]?.text).toContain("Joe's Pizza");
      // The exchanges during and after the outage are in it.
      expect(record?.transcript.map((t) => t.text)).toEqual(expect.arrayContaining(['what time do you open today', HOURS, BOOK]));
      // A call still up when its lease lapsed during the outage renews it again (or released it at the end): nothing is left counted.
      expect(await pollUntil(() => new CallLimiter(redis, { prefix }).active('demo'), (n) => n === 0, 5000)).toBe(0);
      expect(await redis.zCard(keys(prefix).openCalls())).toBe(0);

      // And the gateway takes new calls again.
      const next = await webCall(gw.base, 'demo', 'after-outage');
      try {
        expect((await hears(() => next.peer.receivedAudio(), GREETING)).score).toBeGreaterThanOrEqual(SPEECH_MATCH);
      } finally {
        next.peer.close();
      }
      expect((await recordOf(records, next.callId))?.outcome).toBe('caller-hangup');
    } finally {
      await redis.quit();
    }
  }, 90_000);
});
