import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CallgateError } from '../errors.js';
import { CallLimiter, defaultCallLimiterOptions } from './CallLimiter.js';
import { connectRedis, deletePrefix, keys, testPrefix, type Redis } from './redisClient.js';
import { startRedis } from './testing/ownRedis.js';
import { describeWith } from '../../tests/support/tools.js';

const prefix = testPrefix();
let redis: Redis;
let limiter: CallLimiter;
let tenantSeq = 0;
/** A fresh tenant per test, so tests never share a set. */
const tenant = () => `t${++tenantSeq}`;

beforeAll(async () => {
  redis = await connectRedis({ prefix });
  limiter = new CallLimiter(redis, { prefix });
});

afterAll(async () => {
  await deletePrefix(redis, prefix);
  await redis.close();
});

describe('CallLimiter', () => {
  it('admits calls up to the limit and refuses the next', async () => {
    const t = tenant();
    expect(await limiter.acquire(t, 'a', 3)).toEqual({ ok: true, active: 1 });
    expect(await limiter.acquire(t, 'b', 3)).toEqual({ ok: true, active: 2 });
    expect(await limiter.acquire(t, 'c', 3)).toEqual({ ok: true, active: 3 });
    expect(await limiter.acquire(t, 'd', 3)).toEqual({ ok: false, active: 3, limit: 3 });
    expect(await limiter.active(t)).toBe(3);
    expect(await limiter.acquire(t, 'x', 0)).toEqual({ ok: false, active: 3, limit: 0 });
  });

  it('re-acquiring the same call renews it instead of taking a second slot, even at the limit', async () => {
    const t = tenant();
    await limiter.acquire(t, 'a', 2);
    await limiter.acquire(t, 'b', 2);
    expect(await limiter.acquire(t, 'a', 2)).toEqual({ ok: true, active: 2 });
    expect(await limiter.active(t)).toBe(2);
  });

  it('release frees a slot and is idempotent', async () => {
    const t = tenant();
    await limiter.acquire(t, 'a', 1);
    expect((await limiter.acquire(t, 'b', 1)).ok).toBe(false);
    expect(await limiter.release(t, 'a')).toBe(true);
    expect(await limiter.release(t, 'a')).toBe(false);
    expect(await limiter.active(t)).toBe(0);
    expect(await limiter.acquire(t, 'b', 1)).toEqual({ ok: true, active: 1 });
  });

  it('stops counting calls whose lease lapsed (a crashed gateway) and leaves no key behind', async () => {
    const t = tenant();
    await limiter.acquire(t, 'a', 2, 300);
    await limiter.acquire(t, 'b', 2, 300);
    expect((await limiter.acquire(t, 'c', 2, 300)).ok).toBe(false);
    await sleep(450);
    expect(await limiter.active(t)).toBe(0);
    expect(await limiter.renew(t, 'a', 300)).toBe(false);
    expect(await limiter.acquire(t, 'c', 2, 300)).toEqual({ ok: true, active: 1 });
    await sleep(450);
    // The key's TTL follows its newest lease, so an idle tenant costs Redis nothing.
    expect(await redis.exists(keys(prefix).activeCalls(t))).toBe(0);
  });

  it('renew keeps a call alive well past its first lease', async () => {
    const t = tenant();
    await limiter.acquire(t, 'a', 1, 300);
    for (let i = 0; i < 8; i++) {
      await sleep(100);
      expect(await limiter.renew(t, 'a', 300)).toBe(true);
    }
    expect(await limiter.active(t)).toBe(1);
    expect((await limiter.acquire(t, 'b', 1, 300)).ok).toBe(false);
    expect(await limiter.renew(t, 'never-acquired', 300)).toBe(false);
    expect(await limiter.active(t)).toBe(1);
  });

  it('rejects a negative limit and a non-positive lease', async () => {
    await expect(limiter.acquire(tenant(), 'a', -1)).rejects.toMatchObject({ code: 'CG_CONFIG_INVALID' });
    await expect(limiter.acquire(tenant(), 'a', 1, 0)).rejects.toMatchObject({ code: 'CG_CONFIG_INVALID' });
    expect(() => new CallLimiter(redis, { leaseMs: 1.5 })).toThrow(CallgateError);
  });

  it('never admits more than the limit when 20 gateways race for the same tenant', async () => {
    const gateways = await Promise.all(Array.from({ length: 20 }, () => connectRedis({ prefix })));
    try {
      const limiters = gateways.map((client) => new CallLimiter(client, { prefix }));
      for (let round = 0; round < 4; round++) {
        const t = tenant();
        const results = await Promise.all(
          limiters.flatMap((l, g) => Array.from({ length: 10 }, (_, c) => l.acquire(t, `g${g}-c${c}`, 37))),
        );
        const admitted = results.filter((r) => r.ok);
        expect(admitted).toHaveLength(37);
        expect(Math.max(...results.map((r) => r.active))).toBe(37);
        // Each admission saw a distinct count: the script ran one at a time.
        expect(new Set(admitted.map((r) => r.active)).size).toBe(37);
        expect(await limiter.active(t)).toBe(37);
        expect(await redis.zCard(keys(prefix).activeCalls(t))).toBe(37);
      }
    } finally {
      await Promise.all(gateways.map((g) => g.close()));
    }
  });
});

describe('CallLease', () => {
  it('keeps its slot by renewing, and release stops the timer and frees the slot', async () => {
    const t = tenant();
    const own = new CallLimiter(redis, { prefix });
    const renew = vi.spyOn(own, 'renew');
    const setIntervalSpy = vi.spyOn(globalThis, 'setInterval');
    const clearIntervalSpy = vi.spyOn(globalThis, 'clearInterval');
    const lease = await own.lease(t, 'a', { limit: 1, leaseMs: 300 });
    const timer = setIntervalSpy.mock.results[0]?.value as NodeJS.Timeout;
    setIntervalSpy.mockRestore();
    expect(lease.activeAtStart).toBe(1);
    // Unref'd: process.getActiveResourcesInfo() does not list it, so the timer is checked directly.
    expect(timer.hasRef()).toBe(false);
    await sleep(1000); // more than three lease lengths
    expect(renew.mock.calls.length).toBeGreaterThanOrEqual(2);
    expect(lease.isActive).toBe(true);
    expect(await limiter.active(t)).toBe(1);
    await expect(limiter.lease(t, 'b', { limit: 1, leaseMs: 300 })).rejects.toMatchObject({
      code: 'CG_CALL_LIMIT_REACHED',
      status: 429,
      retryable: true,
      details: { tenantId: t, active: 1, limit: 1 },
    });

    await Promise.all([lease.release(), lease.release()]);
    await lease.release();
    expect(lease.isActive).toBe(false);
    expect(clearIntervalSpy).toHaveBeenCalledWith(timer);
    clearIntervalSpy.mockRestore();
    const renewals = renew.mock.calls.length;
    await sleep(300); // three renew periods: none may happen after release
    expect(renew.mock.calls.length).toBe(renewals);
    expect(await limiter.active(t)).toBe(0);
  });

  it("announces 'lost' and stops renewing when its lease disappears", async () => {
    const t = tenant();
    const lease = await limiter.lease(t, 'a', { limit: 1, leaseMs: 300 });
    const lost = once(lease, 'lost');
    await limiter.release(t, 'a'); // as if the lease had lapsed while this gateway was stalled
    await lost;
    expect(lease.isActive).toBe(false);
    await lease.release();
    expect(await limiter.active(t)).toBe(0);
  });

  it('uses the documented default lease', () => {
    expect(limiter.options.leaseMs).toBe(defaultCallLimiterOptions.leaseMs);
  });
});

describeWith(['redis-server'], 'CallLimiter against a Redis that restarts or vanishes', () => {
  it('reloads its scripts after SCRIPT FLUSH and fails fast with CG_REDIS_UNAVAILABLE when Redis is gone', async () => {
    const { url, proc } = await startRedis();
    const exited = once(proc, 'exit');
    const client = await connectRedis({ url, prefix });
    try {
      const own = new CallLimiter(client, { prefix, commandTimeoutMs: 300 });
      expect(await own.acquire('t', 'a', 2)).toEqual({ ok: true, active: 1 });
      await client.scriptFlush();
      expect(await own.acquire('t', 'b', 2)).toEqual({ ok: true, active: 2 });
      expect(await own.active('t')).toBe(2);

      proc.kill('SIGKILL');
      await exited;
      const err: unknown = await own.acquire('t', 'c', 2).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CallgateError);
      expect(err).toMatchObject({ code: 'CG_REDIS_UNAVAILABLE', status: 503, retryable: true });
    } finally {
      client.destroy();
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await exited;
      }
    }
  });
});
