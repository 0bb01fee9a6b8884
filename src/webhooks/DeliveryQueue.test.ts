import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, deletePrefix, keys, testPrefix, type Redis } from '../tenants/redisClient.js';
import { startRedis } from '../tenants/testing/ownRedis.js';
import { pollUntil } from '../util/testing/wait.js';
import { describeWith } from '../../tests/support/tools.js';
import { DeliveryQueue, type DeliveryQueueOptions, type DeliveryResult } from './DeliveryQueue.js';
import { DELIVERY_HEADER, SIGNATURE_HEADER, verifySignature } from './sign.js';

/** The call.ended delivery queue against the real Redis on 127.0.0.1:6379 and a real receiver. */
const prefix = testPrefix();
const k = keys(prefix);
const SECRET = 'delivery-test-secret-0123456789';
let redis: Redis;
let server: Server;
let url = '';
/** What the receiver answers to its n-th request (0-based); 200 past the end. */
let statuses: number[] = [];
const received: { at: number; id: string; signature: string; body: string }[] = [];
const queues: DeliveryQueue[] = [];

process.env['CALLGATE_WEBHOOK_ALLOW_PRIVATE'] = 'true';

beforeAll(async () => {
  redis = await connectRedis({ prefix });
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const n = received.length;
      received.push({ at: performance.now(), id: String(req.headers[DELIVERY_HEADER.toLowerCase()]), signature: String(req.headers[SIGNATURE_HEADER.toLowerCase()]), body });
      res.writeHead(statuses[n] ?? 200);
      res.end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/ended`;
});

afterEach(async () => {
  for (const q of queues.splice(0)) await q.stop();
  await deletePrefix(redis, prefix);
  received.length = 0;
  statuses = [];
});

afterAll(async () => {
  await deletePrefix(redis, prefix);
  await redis.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function queue(options: Partial<DeliveryQueueOptions> = {}, results: DeliveryResult[] = [], secret = async () => SECRET as string | undefined): DeliveryQueue {
  const q = new DeliveryQueue(redis, { secretFor: secret, onResult: (r) => results.push(r) }, { prefix, pollMs: 20, baseDelayMs: 200, jitter: 0, ...options });
  queues.push(q);
  return q;
}

const body = JSON.stringify({ type: 'call.ended', callId: 'c1', tenantId: 'acme', call: {} });

describe('DeliveryQueue', () => {
  it('stores the delivery in Redis before any try, with no secret in it', async () => {
    const q = queue();
    const id = await q.enqueue({ tenantId: 'acme', callId: 'c1', url, body });
    expect(await redis.zScore(k.webhookDue(), id)).not.toBeNull();
    const stored = await redis.hGetAll(k.webhookDelivery(id));
    expect(stored).toMatchObject({ tenantId: 'acme', callId: 'c1', url, body, attempts: '0' });
    expect(JSON.stringify(stored)).not.toContain(SECRET);
    expect(received).toHaveLength(0); // not started: nothing sent
  });

  it('a 500 then a 200: two tries with the same delivery id, each freshly and validly signed; then gone from Redis', async () => {
    statuses = [500];
    const results: DeliveryResult[] = [];
    const q = queue({}, results);
    const id = await q.enqueue({ tenantId: 'acme', callId: 'c1', url, body });
    q.start();
    await pollUntil(() => results.length, (n) => n >= 2, 5000);
    expect(received.map((r) => r.id)).toEqual([id, id]);
    for (const r of received) {
      expect(r.body).toBe(body);
      expect(verifySignature(SECRET, r.body, r.signature)).toBe(true);
    }
    expect(results.map((r) => [r.outcome, r.attempt, r.status])).toEqual([
      ['retry', 1, 500],
      ['delivered', 2, 200],
    ]);
    expect(await redis.exists(k.webhookDelivery(id))).toBe(0);
    expect(await redis.zCard(k.webhookDue())).toBe(0);
  });

  it('retries after base, 2×base, 4×base (exponential backoff), signing each try with the secret current at the time', async () => {
    statuses = [500, 502, 503];
    const results: DeliveryResult[] = [];
    let secret = SECRET;
    const q = queue({ baseDelayMs: 200 }, results, async () => secret);
    await q.enqueue({ tenantId: 'acme', callId: 'c1', url, body });
    q.start();
    await pollUntil(() => received.length, (n) => n >= 2, 5000);
    secret = 'rotated-secret-0123456789abcdef'; // rotated between tries
    await pollUntil(() => results.length, (n) => n >= 4, 5000);
    const gaps = received.slice(1).map((r, i) => r.at - received[i]!.at);
    // Each gap is the backoff plus up to one poll (20 ms) and the scripts' round trips; the slack is for a busy machine.
    expect(gaps[0]).toBeGreaterThanOrEqual(195);
    expect(gaps[0]).toBeLessThan(200 + 200);
    expect(gaps[1]).toBeGreaterThanOrEqual(395);
    expect(gaps[1]).toBeLessThan(400 + 200);
    expect(gaps[2]).toBeGreaterThanOrEqual(795);
    expect(gaps[2]).toBeLessThan(800 + 200);
    expect(results.map((r) => r.nextInMs)).toEqual([200, 400, 800, undefined]);
    expect(verifySignature(SECRET, body, received[0]!.signature)).toBe(true);
    expect(verifySignature('rotated-secret-0123456789abcdef', body, received[3]!.signature)).toBe(true);
  });

  it('a claim left by a dead worker is due again after the lease and is then delivered by another', async () => {
    const results: DeliveryResult[] = [];
    const dead = queue({ leaseMs: 400, timeoutMs: 300 });
    const alive = queue({ leaseMs: 400, timeoutMs: 300 }, results);
    const id = await dead.enqueue({ tenantId: 'acme', callId: 'c1', url, body });
    const t0 = performance.now();
    // The dead worker claims it and never reports back (killed between the claim and the answer).
    expect((await dead.claimDue(10)).map((c) => c.id)).toEqual([id]);
    alive.start();
    await pollUntil(() => results.length, (n) => n >= 1, 3000);
    const waited = received[0]!.at - t0;
    expect(waited).toBeGreaterThanOrEqual(395);
    expect(waited).toBeLessThan(400 + 250);
    expect(results[0]).toMatchObject({ outcome: 'delivered', attempt: 2, deliveryId: id });
    expect(received.map((r) => r.id)).toEqual([id]);
  });

  it('two workers polling one queue never send an entry twice at once', async () => {
    const results: DeliveryResult[] = [];
    const a = queue({}, results);
    const b = queue({}, results);
    const ids = await Promise.all(Array.from({ length: 40 }, (_, i) => a.enqueue({ tenantId: 'acme', callId: `c${i}`, url, body })));
    a.start();
    b.start();
    await pollUntil(() => results.length, (n) => n >= 40, 5000);
    await new Promise((r) => setTimeout(r, 200));
    expect(received).toHaveLength(40);
    expect(new Set(received.map((r) => r.id))).toEqual(new Set(ids));
  });

  it('drops a delivery that still fails once older than maxAgeMs, with an error outcome', async () => {
    statuses = [500, 500, 500, 500, 500, 500];
    const results: DeliveryResult[] = [];
    const q = queue({ baseDelayMs: 100, maxAgeMs: 250 }, results);
    const id = await q.enqueue({ tenantId: 'acme', callId: 'c1', url, body });
    q.start();
    await pollUntil(() => results.at(-1)?.outcome, (o) => o === 'dropped', 3000);
    expect(results.map((r) => r.outcome)).toEqual(['retry', 'retry', 'dropped']);
    expect(await redis.exists(k.webhookDelivery(id))).toBe(0);
    expect(await redis.zCard(k.webhookDue())).toBe(0);
  });

  it('at most maxInFlight tries at once', async () => {
    statuses = [];
    const hold: (() => void)[] = [];
    const slow = createServer((_req, res) => hold.push(() => res.end()));
    slow.listen(0, '127.0.0.1');
    await once(slow, 'listening');
    const slowUrl = `http://127.0.0.1:${(slow.address() as { port: number }).port}/`;
    try {
      const results: DeliveryResult[] = [];
      const q = queue({ maxInFlight: 3 }, results);
      for (let i = 0; i < 7; i++) await q.enqueue({ tenantId: 'acme', callId: `c${i}`, url: slowUrl, body });
      q.start();
      await pollUntil(() => hold.length, (n) => n >= 3, 2000);
      await new Promise((r) => setTimeout(r, 200));
      expect(hold.length).toBe(3);
      expect(q.stats().inFlight).toBe(3);
      for (const h of hold.splice(0)) h();
      await pollUntil(() => hold.length, (n) => n >= 3, 2000);
      for (const h of hold.splice(0)) h();
      await pollUntil(() => hold.length, (n) => n >= 1, 2000);
      for (const h of hold.splice(0)) h();
      await pollUntil(() => results.length, (n) => n >= 7, 2000);
      expect(results.every((r) => r.outcome === 'delivered')).toBe(true);
    } finally {
      slow.closeAllConnections();
      await new Promise((r) => slow.close(r));
    }
  });

  it('a backlog is not paced by the poll: 200 due entries, 4 at a time, a 1 s poll, all delivered within a second', async () => {
    const results: DeliveryResult[] = [];
    const q = queue({ maxInFlight: 4, pollMs: 1000 }, results);
    await Promise.all(Array.from({ length: 200 }, (_, i) => q.enqueue({ tenantId: 'acme', callId: `c${i}`, url, body })));
    const t0 = performance.now();
    q.start();
    await pollUntil(() => results.length, (n) => n >= 200, 5000);
    const took = performance.now() - t0;
    expect(results.filter((r) => r.outcome === 'delivered')).toHaveLength(200);
    expect(took).toBeLessThan(1000);
    expect(new Set(received.map((r) => r.id)).size).toBe(200);
  });

  it('stop() lets a try finish for stopTimeoutMs, then aborts it; the entry is due again at once for the next gateway', async () => {
    const hold: (() => void)[] = [];
    const slow = createServer((_req, res) => hold.push(() => res.end()));
    slow.listen(0, '127.0.0.1');
    await once(slow, 'listening');
    try {
      const first = queue({ stopTimeoutMs: 200, baseDelayMs: 5000 });
      const id = await first.enqueue({ tenantId: 'acme', callId: 'c1', url: `http://127.0.0.1:${(slow.address() as { port: number }).port}/`, body });
      first.start();
      await pollUntil(() => hold.length, (n) => n >= 1, 2000);
      const t0 = performance.now();
      await first.stop();
      expect(performance.now() - t0).toBeGreaterThanOrEqual(195);
      const due = await redis.zScore(k.webhookDue(), id);
      const [seconds] = await redis.time();
      expect(Number(due)).toBeLessThanOrEqual(Number(seconds) * 1000 + 1000); // not a lease (60 s) away
      const results: DeliveryResult[] = [];
      const next = queue({}, results);
      await redis.hSet(k.webhookDelivery(id), 'url', url); // the receiver is healthy again
      next.start();
      await pollUntil(() => results.length, (n) => n >= 1, 2000);
      expect(results[0]).toMatchObject({ outcome: 'delivered', attempt: 2, deliveryId: id });
    } finally {
      for (const h of hold.splice(0)) h();
      slow.closeAllConnections();
      await new Promise((r) => slow.close(r));
    }
  });

  it('a tenant with no secret any more: dropped, never sent unsigned', async () => {
    const results: DeliveryResult[] = [];
    const q = queue({}, results, async () => undefined);
    await q.enqueue({ tenantId: 'gone', callId: 'c1', url, body });
    q.start();
    await pollUntil(() => results.length, (n) => n >= 1, 2000);
    expect(results[0]!.outcome).toBe('dropped');
    expect(received).toHaveLength(0);
  });
});

describeWith(['redis-server'], 'DeliveryQueue while its Redis is down', () => {
  it('an enqueue during the outage waits in memory, nothing is sent; once Redis is back the next poll stores it and it is delivered', async () => {
    const own = await startRedis();
    const client = await connectRedis({ url: own.url, prefix });
    const results: DeliveryResult[] = [];
    try {
      const q = new DeliveryQueue(client, { secretFor: async () => SECRET, onResult: (r) => results.push(r) }, { prefix, pollMs: 50, commandTimeoutMs: 200 });
      queues.push(q);
      q.start();
      await own.stop();
      const id = await q.enqueue({ tenantId: 'acme', callId: 'c-outage', url, body });
      expect(q.stats().pending).toBe(1);
      await new Promise((r) => setTimeout(r, 300));
      expect(received).toHaveLength(0); // never sent before it is in Redis
      const again = await startRedis(own.port);
      try {
        await pollUntil(() => results.length, (n) => n >= 1, 10_000);
        expect(results[0]).toMatchObject({ outcome: 'delivered', attempt: 1, deliveryId: id });
        expect(received.map((r) => r.id)).toEqual([id]);
        expect(q.stats().pending).toBe(0);
      } finally {
        await q.stop();
        await again.stop();
      }
    } finally {
      client.destroy();
      await own.stop();
    }
  }, 20_000);
});
