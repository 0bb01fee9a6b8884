import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, deletePrefix, testPrefix, type Redis } from '../tenants/redisClient.js';
import { SecretBox } from '../tenants/secrets.js';
import { buildAdminApp, type AdminApp } from './adminApp.js';

/** The admin API over real HTTP on 127.0.0.1, against the real Redis under a per-run prefix. */
const TOKEN = randomBytes(24).toString('base64url');

describe('admin API: tenants', () => {
  let redis: Redis;
  let app: AdminApp;
  let base: string;
  const prefix = testPrefix();
  const invalidated: string[] = [];

  beforeAll(async () => {
    redis = await connectRedis({ prefix });
    app = await buildAdminApp({ redis, prefix, secrets: new SecretBox(randomBytes(32)), adminToken: TOKEN, invalidate: async (id) => void invalidated.push(id) });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    if (!address || typeof address === 'string') throw new Error('no address');
    base = `http://127.0.0.1:${address.port}`;
  });

  afterAll(async () => {
    await app.close();
    await deletePrefix(redis, prefix);
    await redis.quit();
  });

  const call = async (method: string, path: string, body?: unknown, token = TOKEN) => {
    const res = await fetch(base + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
  };

  it('refuses requests without the admin token, with the one error shape', async () => {
    for (const token of ['', 'wrong', `${TOKEN}x`]) {
      const res = await call('GET', '/v1/tenants', undefined, token);
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ code: 'CG_HTTP_UNAUTHORIZED', message: 'missing or invalid API token', hint: expect.stringContaining('Authorization: Bearer') });
    }
  });

  it('creates, reads, updates, lists and deletes a tenant; provider keys never come back in clear', async () => {
    const created = await call('POST', '/v1/tenants', {
      id: 'joes-pizza',
      displayName: "Joe's Pizza",
      greeting: "Hi, I'm {{agentName}} from {{business}}!",
      providerKeys: { openai: 'sk-test-0123456789abcdef' },
    });
    expect(created.status).toBe(201);
    expect(JSON.stringify(created.body)).not.toContain('sk-test-0123456789abcdef');
    expect(created.body).toMatchObject({ id: 'joes-pizza', agentName: 'Ava', maxConcurrentCalls: 10 });
    const got = await call('GET', '/v1/tenants/joes-pizza');
    expect(got.status).toBe(200);
    expect(JSON.stringify(got.body)).not.toContain('sk-test-0123456789abcdef');
    const patched = await call('PATCH', '/v1/tenants/joes-pizza', { agentName: 'Max' });
    expect(patched.body).toMatchObject({ agentName: 'Max', displayName: "Joe's Pizza" });
    const list = await call('GET', '/v1/tenants?limit=10');
    expect(list.body).toMatchObject({ total: 1 });
    expect((await call('DELETE', '/v1/tenants/joes-pizza')).status).toBe(204);
    expect(invalidated).toEqual(['joes-pizza', 'joes-pizza', 'joes-pizza']);
    const gone = await call('GET', '/v1/tenants/joes-pizza');
    expect(gone.status).toBe(404);
    expect(gone.body!['code']).toBe('CG_TENANT_NOT_FOUND');
  });

  it('refuses an invalid tenant with 400 naming what is wrong, and a template error when saved', async () => {
    const bad = await call('POST', '/v1/tenants', { id: 'Bad Id', displayName: '' });
    expect(bad.status).toBe(400);
    expect(bad.body!['code']).toBe('CG_TENANT_INVALID');
    const template = await call('POST', '/v1/tenants', { id: 'shop', displayName: 'Shop', greeting: 'Hello {{nobody}}' });
    expect(template.status).toBe(400);
    expect(JSON.stringify(template.body)).toContain('{{nobody}}');
    expect((await call('GET', '/v1/tenants?limit=-1')).body!['code']).toBe('CG_HTTP_BAD_REQUEST');
    expect((await call('GET', '/v1/nothing')).body!['code']).toBe('CG_HTTP_NOT_FOUND');
  });

  // Requests the fuzzer found (npm run fuzz -- --target api): each answered 500, or 414 in Fastify's own shape.
  it('answers hostile bodies and paths with 400 in the one error shape, not 500', async () => {
    const raw = async (method: string, path: string, body: string) => {
      const res = await fetch(base + path, { method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    expect((await call('POST', '/v1/tenants', { id: 'fuzzed', displayName: 'Fuzzed' })).status).toBe(201);
    // A patch nested 100 000 objects deep: mergePatch recursed until the stack overflowed.
    const deep = '{"greeting":' + '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000) + '}';
    const patched = await raw('PATCH', '/v1/tenants/fuzzed', deep);
    expect(patched).toMatchObject({ status: 400, body: { code: 'CG_TENANT_INVALID' } });
    expect(patched.body['message']).toMatch(/deeper than 32 levels/);
    // A number patch whose `number` is not a string: normalizeNumber called .trim() on it.
    expect((await call('POST', '/v1/tenants/fuzzed/numbers', { number: '+14155550177' })).status).toBe(201);
    const number = await raw('PATCH', '/v1/tenants/fuzzed/numbers/%2B14155550177', '{"number":9007199254740994}');
    expect(number).toMatchObject({ status: 400, body: { code: 'CG_TENANT_INVALID' } });
    // The router's own refusals (a parameter over 100 characters, a broken %-escape) in our shape.
    const long = await call('GET', `/v1/tenants/${'a'.repeat(101)}`);
    expect(long).toEqual({ status: 400, body: { code: 'CG_HTTP_BAD_REQUEST', message: expect.stringMatching(/^request is invalid: /), hint: expect.any(String), details: { reason: 'FST_ERR_MAX_PARAM_LENGTH' } } });
    expect((await call('GET', '/v1/tenants/%E0%A4%A')).body).toMatchObject({ code: 'CG_HTTP_BAD_REQUEST', details: { reason: 'FST_ERR_BAD_URL' } });
    expect((await call('DELETE', '/v1/tenants/fuzzed')).status).toBe(204);
  });
});
