import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ToolDefinition } from '../tenants/schema.js';
import { SIGNATURE_HEADER, verifySignature } from '../webhooks/sign.js';
import { MAX_TOOL_RESULT_BYTES } from './ToolSource.js';
import { webhookTools, type ToolCallContext } from './webhookTools.js';

/** A tenant's tool server on loopback: each path answers its own way. */
let server: Server;
let base = '';
const seen: { path: string; method: string; headers: IncomingHttpHeaders; body: string }[] = [];
const SECRET = 'webhook-tools-test-secret-000';

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      seen.push({ path: req.url ?? '', method: req.method ?? '', headers: req.headers, body });
      const path = req.url ?? '';
      if (path === '/ok') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"open":"9-17"}');
      if (path === '/error') return void res.writeHead(503).end('down');
      if (path === '/not-json') return void res.writeHead(200).end('<html>hello</html>');
      if (path === '/big') return void res.writeHead(200).end(JSON.stringify({ blob: 'x'.repeat(40_000) }));
      if (path === '/slow') return void setTimeout(() => res.writeHead(200).end('{}'), 1000);
      res.writeHead(404).end();
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

const ctx = (over: Partial<ToolCallContext> = {}): ToolCallContext => ({
  callId: 'call-1',
  tenantId: 't1',
  call: { door: 'webrtc', from: 'web:x', to: 'callurl:x', variables: { name: 'Sam' } },
  secret: SECRET,
  allowPrivate: true,
  log: pino({ level: 'silent' }),
  ...over,
});

const tool = (path: string, over: Partial<ToolDefinition['webhook']> = {}): ToolDefinition => ({
  name: `t_${path.replace(/\W/g, '')}`,
  description: 'test tool',
  parameters: { type: 'object', properties: { day: { type: 'string' } }, required: ['day'] },
  webhook: { url: `${base}${path}`, method: 'POST', timeoutMs: 500, headers: { 'X-Api-Key': 'tenant-key-123' }, ...over },
});

const run = async (def: ToolDefinition, args: Record<string, unknown> = { day: 'monday' }, c = ctx()) =>
  webhookTools([def], c).run({ id: 'c1', name: def.name, arguments: JSON.stringify(args) }, args, new AbortController().signal);

describe('webhook tools', () => {
  it('POSTs the signed tool.call with the arguments, the call and the tenant headers; the JSON answer is the content', async () => {
    const before = seen.length;
    const outcome = await run(tool('/ok', { method: 'PUT' }));
    expect(outcome).toEqual({ ok: true, content: '{"open":"9-17"}' });
    const hit = seen[before]!;
    expect(hit.method).toBe('PUT');
    expect(hit.headers['x-api-key']).toBe('tenant-key-123');
    expect(verifySignature(SECRET, hit.body, hit.headers[SIGNATURE_HEADER.toLowerCase()] as string)).toBe(true);
    expect(JSON.parse(hit.body)).toEqual({ type: 'tool.call', callId: 'call-1', tenantId: 't1', tool: 't_ok', arguments: { day: 'monday' }, call: { door: 'webrtc', from: 'web:x', to: 'callurl:x', variables: { name: 'Sam' } } });
  });

  it('tells the model why a call failed: error status, no answer in time, not JSON', async () => {
    expect(await run(tool('/error'))).toEqual({ ok: false, content: JSON.stringify({ error: 't_error failed: its server answered HTTP 503' }) });
    expect((await run(tool('/slow', { timeoutMs: 150 }))).content).toMatch(/no answer within 150 ms/);
    expect((await run(tool('/not-json'))).content).toMatch(/not valid JSON/);
  });

  it('caps a large answer at 16 KB', async () => {
    const outcome = await run(tool('/big'));
    expect(outcome.ok).toBe(true);
    expect(Buffer.byteLength(outcome.content)).toBeLessThanOrEqual(MAX_TOOL_RESULT_BYTES);
    expect(outcome.content).toMatch(/cut at 16 KB\]$/);
  });

  it('arguments that do not match the parameters never reach the server', async () => {
    const before = seen.length;
    const outcome = await run(tool('/ok'), { day: 3 });
    expect(outcome.ok).toBe(false);
    expect(outcome.content).toMatch(/\/day must be string/);
    expect(seen.length).toBe(before);
  });

  it('refuses a loopback destination at connect time unless private addresses are allowed', async () => {
    const before = seen.length;
    const outcome = await run(tool('/ok'), { day: 'monday' }, ctx({ allowPrivate: false }));
    expect(outcome).toEqual({ ok: false, content: JSON.stringify({ error: 't_ok failed: its address is not allowed' }) });
    // A name is checked after DNS, on the connection itself (no rebinding between a check and the connect).
    const byName = { ...tool('/ok'), webhook: { ...tool('/ok').webhook, url: `${base.replace('127.0.0.1', 'localhost')}/ok` } };
    expect((await run(byName, { day: 'monday' }, ctx({ allowPrivate: false }))).content).toMatch(/its address is not allowed/);
    expect(seen.length).toBe(before);
    expect((await run(byName, { day: 'monday' }, ctx({ allowPrivate: true }))).ok).toBe(true);
  });
});
