import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loggerTo } from '../log.js';
import { tenantSchema, type Tenant } from '../tenants/schema.js';
import { callStartVariables, cleanVariables, type AnsweredCallInfo } from './callStart.js';
import { DELIVERY_HEADER, SIGNATURE_HEADER, verifySignature } from './sign.js';

/** The callStart webhook against a real HTTP server on loopback. */
const SECRET = 'callstart-test-secret-0123456789';
let server: Server;
let base = '';
let answer: (req: IncomingMessage, body: string, res: ServerResponse) => void = (_req, _body, res) => res.end();
const seen: { headers: IncomingMessage['headers']; body: string }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      seen.push({ headers: req.headers, body });
      answer(req, body, res);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function capture(): { lines: Record<string, unknown>[]; text: () => string; logger: ReturnType<typeof loggerTo> } {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) (raw.push(line), lines.push(JSON.parse(line) as Record<string, unknown>));
      done();
    },
  });
  return { lines, text: () => raw.join('\n'), logger: loggerTo(sink, 'debug') };
}

function tenant(path = '/start'): Tenant {
  return tenantSchema.parse({ id: 'acme', displayName: 'Acme', webhooks: { secret: SECRET, callStart: { url: `${base}${path}` } } });
}

function call(t: Tenant, log: ReturnType<typeof loggerTo>): AnsweredCallInfo {
  return { callId: 'call-1', tenant: t, door: 'webrtc', from: 'web:demo', to: 'callurl:demo', variables: { customer: 'Pat' }, log };
}

const json = (status: number, value: unknown) => (_req: IncomingMessage, _body: string, res: ServerResponse) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(typeof value === 'string' ? value : JSON.stringify(value));
};

// Every hook here is called with CALLGATE_WEBHOOK_ALLOW_PRIVATE set: the receiver is on loopback.
process.env['CALLGATE_WEBHOOK_ALLOW_PRIVATE'] = 'true';

describe('callStartVariables', () => {
  it('posts a signed call.started and returns the variables the webhook answers with', async () => {
    seen.length = 0;
    answer = json(200, { variables: { plan: 'gold', 'account.balance': 12.5, vip: true } });
    const log = capture();
    const vars = await callStartVariables(call(tenant(), log.logger));
    expect(vars).toEqual({ plan: 'gold', 'account.balance': '12.5', vip: 'true' });
    expect(seen).toHaveLength(1);
    const got = seen[0]!;
    expect(JSON.parse(got.body)).toEqual({ type: 'call.started', callId: 'call-1', tenantId: 'acme', call: { door: 'webrtc', from: 'web:demo', to: 'callurl:demo', variables: { customer: 'Pat' } } });
    expect(verifySignature(SECRET, got.body, got.headers[SIGNATURE_HEADER.toLowerCase()] as string)).toBe(true);
    expect(verifySignature('another-secret-0123456789', got.body, got.headers[SIGNATURE_HEADER.toLowerCase()] as string)).toBe(false);
    expect(got.headers[DELIVERY_HEADER.toLowerCase()]).toMatch(/^[0-9a-f-]{36}$/);
    expect(log.lines.filter((l) => (l['level'] as number) >= 40)).toEqual([]);
  });

  it('keeps good variables and drops bad names, long or structured values and any beyond the cap, with one warning', async () => {
    const given: Record<string, unknown> = { ok: 'yes', '1bad': 'x', 'sp ace': 'x', long: 'x'.repeat(201), edge: 'y'.repeat(200), obj: { a: 1 }, list: [1], nul: null, nan: Number.NaN };
    const { variables, dropped } = cleanVariables(given);
    expect(variables).toEqual({ ok: 'yes', edge: 'y'.repeat(200) });
    expect(dropped.sort()).toEqual(['1bad', 'list', 'long', 'nan', 'nul', 'obj', 'sp ace'].sort());
    const many = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`v${i}`, String(i)]));
    expect(Object.keys(cleanVariables(many).variables)).toHaveLength(50);

    answer = json(200, { variables: given });
    const log = capture();
    expect(await callStartVariables(call(tenant(), log.logger))).toEqual({ ok: 'yes', edge: 'y'.repeat(200) });
    const warnings = log.lines.filter((l) => l['level'] === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!['droppedCount']).toBe(7);
  });

  it('a slow webhook: undefined within the 1.5 s deadline, one warning', async () => {
    answer = (_req, _body, res) => setTimeout(() => json(200, { variables: { late: 'yes' } })(_req, _body, res), 3000);
    const log = capture();
    const t0 = performance.now();
    expect(await callStartVariables(call(tenant(), log.logger))).toBeUndefined();
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(1450);
    expect(took).toBeLessThan(1600);
    expect(log.lines.filter((l) => l['level'] === 40).map((l) => l['kind'])).toEqual(['timeout']);
  });

  it('a 500, an answer that is not JSON, "variables" not an object: undefined, one warning each, never the secret', async () => {
    for (const [reply, kind] of [
      [json(500, { variables: { a: 'b' } }), 500],
      [json(200, 'not json {'), 'json'],
      [json(200, { variables: ['a'] }), 'shape'],
    ] as const) {
      answer = reply;
      const log = capture();
      expect(await callStartVariables(call(tenant(), log.logger)), String(kind)).toBeUndefined();
      expect(log.lines.filter((l) => l['level'] === 40), String(kind)).toHaveLength(1);
      expect(log.text()).not.toContain(SECRET);
    }
  });

  it('a 2xx without variables (204, {}) adds nothing and warns about nothing', async () => {
    for (const reply of [(_q: IncomingMessage, _b: string, res: ServerResponse) => (res.writeHead(204), res.end()), json(200, {})]) {
      answer = reply;
      const log = capture();
      expect(await callStartVariables(call(tenant(), log.logger))).toBeUndefined();
      expect(log.lines.filter((l) => l['level'] === 40)).toEqual([]);
    }
  });

  it('a loopback receiver without CALLGATE_WEBHOOK_ALLOW_PRIVATE is refused at connect time: undefined, nothing sent', async () => {
    seen.length = 0;
    answer = json(200, { variables: { a: 'b' } });
    const log = capture();
    delete process.env['CALLGATE_WEBHOOK_ALLOW_PRIVATE'];
    // By name: node connects to an IP literal without a lookup, so the connect-time guard needs a name.
    const byName = tenantSchema.parse({ id: 'acme', displayName: 'Acme', webhooks: { secret: SECRET, callStart: { url: `${base.replace('127.0.0.1', 'localhost')}/start` } } });
    try {
      expect(await callStartVariables(call(byName, log.logger))).toBeUndefined();
    } finally {
      process.env['CALLGATE_WEBHOOK_ALLOW_PRIVATE'] = 'true';
    }
    expect(seen).toHaveLength(0);
    expect(log.lines.filter((l) => l['level'] === 40).map((l) => l['kind'])).toEqual(['refused']);
  });

  it('a tenant without a callStart webhook: undefined, no request', async () => {
    seen.length = 0;
    const t = tenantSchema.parse({ id: 'plain', displayName: 'Plain' });
    expect(await callStartVariables(call(t, capture().logger))).toBeUndefined();
    expect(seen).toHaveLength(0);
  });
});
