import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, type Redis } from '../tenants/redisClient.js';
import { SecretBox } from '../tenants/secrets.js';
import { startRedis } from '../tenants/testing/ownRedis.js';
import { buildAdminApp, type AdminApp } from './adminApp.js';
import { describeWith } from '../../tests/support/tools.js';

/**
 * Issue 24, finding 10's other half: an outage must read as one. With its Redis gone, the admin API
 * answers 503 CG_REDIS_UNAVAILABLE (retryable), not 500 CG_INTERNAL, and recovers when Redis is back.
 */
describeWith(['redis-server'], 'the admin API while its Redis is down', () => {
  let redis: Redis;
  let app: AdminApp;
  let server: Awaited<ReturnType<typeof startRedis>>;
  const token = 'a'.repeat(32);
  const auth = { authorization: `Bearer ${token}` };

  beforeAll(async () => {
    server = await startRedis();
    redis = await connectRedis({ url: server.url, prefix: 'outage:' });
    app = await buildAdminApp({ redis, prefix: 'outage:', secrets: new SecretBox(randomBytes(32)), adminToken: token });
    expect((await app.inject({ method: 'POST', url: '/v1/tenants', headers: auth, payload: { id: 'shop', displayName: 'Shop' } })).statusCode).toBe(201);
  });

  afterAll(async () => {
    await app?.close();
    await redis?.quit().catch(() => undefined);
    await server?.stop();
  });

  it('answers 503 CG_REDIS_UNAVAILABLE (retryable) for reads and writes, and 200 again once Redis is back', async () => {
    await server.stop();
    for (const req of [
      { method: 'GET' as const, url: '/v1/tenants/shop' },
      { method: 'GET' as const, url: '/v1/tenants' },
      { method: 'PATCH' as const, url: '/v1/tenants/shop', payload: { greeting: 'Hello.' } },
      { method: 'GET' as const, url: '/v1/tenants/shop/calls' },
    ]) {
      const res = await app.inject({ ...req, headers: auth });
      expect(res.statusCode, `${req.method} ${req.url}: ${res.body}`).toBe(503);
      expect(res.json()).toMatchObject({ code: 'CG_REDIS_UNAVAILABLE' });
    }
    server = await startRedis(server.port);
    const back = await pollStatus(() => app.inject({ method: 'GET', url: '/v1/tenants', headers: auth }));
    expect(back).toBe(200);
  }, 30_000);
});

async function pollStatus(send: () => Promise<{ statusCode: number }>): Promise<number> {
  let status = 0;
  for (let i = 0; i < 100 && status !== 200; i++) {
    status = (await send()).statusCode;
    if (status !== 200) await new Promise((r) => setTimeout(r, 100));
  }
  return status;
}
