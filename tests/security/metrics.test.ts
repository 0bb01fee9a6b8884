import { request as httpRequest } from 'node:http';
import Fastify from 'fastify';
import { Registry, Counter } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayConfigFromEnv } from '../../src/app/config.js';
import { metricsRoute, type MetricsAccess } from '../../src/app/metricsEndpoint.js';
import { connectRedis, deletePrefix, testPrefix } from '../../src/tenants/redisClient.js';
import { GatewayProcesses, type GatewayProcess } from '../app/gatewayProcess.js';

/**
 * Issue 24, finding 9: /metrics names tenants, so it is not public. `npm start` as real processes on
 * loopback with METRICS_TOKEN (bearer on the HTTP port) and with METRICS_PORT (its own listener on
 * 127.0.0.1); the default rule (loopback clients only) through Fastify's injection, which can give a
 * request a remote address a loopback-only test machine cannot.
 */
const TOKEN = 'metrics-token-0123456789abcdef';
const ADMIN_TOKEN = 'admin-token-0123456789abcdefghij';
const prefix = testPrefix();
const gateways = new GatewayProcesses({ CALLGATE_REDIS_PREFIX: prefix });

afterAll(async () => {
  await gateways.stopAll();
  const redis = await connectRedis({ prefix });
  await deletePrefix(redis, prefix);
  await redis.quit();
});

const scrape = async (url: string, token?: string): Promise<{ status: number; body: string; auth: string | null }> => {
  const res = await fetch(url, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.text(), auth: res.headers.get('www-authenticate') };
};

/** A TCP connect to host:port: 'open' or the error code (ECONNREFUSED when nothing listens there). */
const connects = (host: string, port: number): Promise<string> =>
  new Promise((resolve) => {
    const req = httpRequest({ host, port, path: '/metrics' }, (res) => {
      res.resume();
      resolve('open');
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    req.end();
  });

describe('/metrics access', () => {
  let tokenOnly: GatewayProcess;
  let portAndToken: GatewayProcess;
  let portOnly: GatewayProcess;

  beforeAll(async () => {
    // Started together: each takes seconds to boot, most of it waiting.
    [tokenOnly, portAndToken, portOnly] = await Promise.all([
      gateways.start({ METRICS_TOKEN: TOKEN }),
      gateways.start({ METRICS_PORT: '0', METRICS_TOKEN: TOKEN, CALLGATE_ADMIN_TOKEN: ADMIN_TOKEN }),
      gateways.start({ METRICS_PORT: '0', CALLGATE_ADMIN_TOKEN: ADMIN_TOKEN }),
    ]);
  }, 60_000);

  it('default: loopback clients only; a remote client or a proxied request is refused (403)', async () => {
    const registry = new Registry();
    new Counter({ name: 'callgate_probe_total', help: 'x', labelNames: ['tenant'], registers: [registry] }).inc({ tenant: 'acme' });
    const app = Fastify();
    metricsRoute(app, { kind: 'loopback' } satisfies MetricsAccess, { contentType: registry.contentType, text: () => registry.metrics() });
    app.setErrorHandler((err: Error & { status?: number; code?: string }, _req, reply) => reply.status(err.status ?? 500).send({ code: err.code }));
    try {
      for (const remoteAddress of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) {
        const res = await app.inject({ url: '/metrics', remoteAddress });
        expect(res.statusCode, remoteAddress).toBe(200);
        expect(res.body).toContain('tenant="acme"');
      }
      for (const remoteAddress of ['203.0.113.9', '10.0.0.5', '::ffff:192.0.2.1', '2001:db8::1', '128.0.0.1']) {
        const res = await app.inject({ url: '/metrics', remoteAddress });
        expect(res.statusCode, remoteAddress).toBe(403);
        expect(res.body).not.toContain('acme');
      }
      // A reverse proxy on this host connects from loopback; what it forwards came from elsewhere.
      for (const header of ['x-forwarded-for', 'forwarded', 'x-real-ip']) {
        const res = await app.inject({ url: '/metrics', remoteAddress: '127.0.0.1', headers: { [header]: '203.0.113.9' } });
        expect(res.statusCode, header).toBe(403);
      }
    } finally {
      await app.close();
    }
  });

  it('METRICS_TOKEN: /metrics on the HTTP port wants the bearer token (401 without, 200 with); the token is never printed', async () => {
    const gw = tokenOnly;
    expect(gw.output()).toMatch(/metrics:\s+http:\/\/localhost:\d+\/metrics \(bearer METRICS_TOKEN\)/);
    for (const token of [undefined, '', 'wrong', `${TOKEN}x`, TOKEN.slice(0, -1)]) {
      const res = await scrape(`${gw.base}/metrics`, token);
      expect(res.status, String(token)).toBe(401);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'CG_HTTP_UNAUTHORIZED' });
      expect(res.auth).toBe('Bearer realm="metrics"');
    }
    const ok = await scrape(`${gw.base}/metrics`, TOKEN);
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('callgate_tenant_calls_active{tenant="demo"}');
    expect(gw.output()).not.toContain(TOKEN);
  });

  it('METRICS_PORT: /metrics moves to its own listener on 127.0.0.1 (with the token when set); the HTTP port has none', async () => {
    const withToken = portAndToken;
    for (const [gw, access] of [
      [portAndToken, 'bearer METRICS_TOKEN'],
      [portOnly, 'its own port'],
    ] as const) {
      const found = new RegExp(`metrics:\\s+(http://127\\.0\\.0\\.1:(\\d+)/metrics) \\(${access}\\)`).exec(gw.output());
      expect(found, gw.output()).not.toBeNull();
      const [, url = '', portText = ''] = found ?? [];
      const port = Number(portText);
      expect(port).not.toBe(Number(new URL(gw.base).port));
      // Not on the public port: no such route, even for the admin token (others get the API's 401 first).
      expect((await scrape(`${gw.base}/metrics`, ADMIN_TOKEN)).status).toBe(404);
      expect((await scrape(`${gw.base}/metrics`, TOKEN)).status).toBe(401);
      // Bound to 127.0.0.1 alone: another loopback address finds nothing listening.
      expect(await connects('127.0.0.2', port)).toBe('ECONNREFUSED');
      if (gw === withToken) {
        expect((await scrape(url)).status).toBe(401);
        expect((await scrape(url, 'wrong')).status).toBe(401);
      }
      const ok = await scrape(url, gw === withToken ? TOKEN : undefined);
      expect(ok.status).toBe(200);
      expect(ok.body).toContain('callgate_tenant_calls_active{tenant="demo"}');
      expect((await scrape(url.replace('/metrics', '/v1/tenants'))).status).toBe(404);
      expect(gw.output()).not.toContain(TOKEN);
    }
  });

  it('refuses a short METRICS_TOKEN or a bad METRICS_PORT at start, without echoing the token', () => {
    expect(() => gatewayConfigFromEnv({ METRICS_TOKEN: 'short-secret' })).toThrow(/METRICS_TOKEN must be at least 24 characters/);
    try {
      gatewayConfigFromEnv({ METRICS_TOKEN: 'short-secret' });
    } catch (err) {
      expect(String((err as Error).message)).not.toContain('short-secret');
      expect(err).toMatchObject({ code: 'CG_CONFIG_INVALID' });
    }
    expect(() => gatewayConfigFromEnv({ METRICS_PORT: '70000' })).toThrow(/METRICS_PORT/);
    expect(gatewayConfigFromEnv({})).toMatchObject({ metricsToken: undefined, metricsPort: undefined, metricsHost: '127.0.0.1' });
  });
});
