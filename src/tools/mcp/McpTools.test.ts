import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { McpServerDefinition } from '../../tenants/schema.js';
import { guardedFetch } from '../../webhooks/guardedFetch.js';
import { McpTools } from './McpTools.js';

/**
 * McpTools against a real MCP server built with the same SDK (stateless Streamable HTTP on loopback):
 * a tenant's server lists three tools, one of which fails and one of which is slow.
 */
const silent = pino({ level: 'silent' });
let server: Server;
let url = '';
const seen = { list: 0, call: 0, auth: [] as (string | undefined)[] };

function mcpServer(): McpServer {
  const mcp = new McpServer({ name: 'test-crm', version: '1.0.0' });
  mcp.registerTool('find_order', { description: 'Find an order by number', inputSchema: { number: z.string() } }, ({ number }) => ({
    content: [{ type: 'text', text: JSON.stringify({ number, status: 'shipped' }) }],
  }));
  mcp.registerTool('broken', { description: 'Always fails', inputSchema: {} }, () => ({ content: [{ type: 'text', text: 'database offline' }], isError: true }));
  mcp.registerTool('slow', { description: 'Takes its time', inputSchema: {} }, async () => {
    await new Promise((r) => setTimeout(r, 1500));
    return { content: [{ type: 'text', text: 'late' }] };
  });
  return mcp;
}

const readJson = async (req: IncomingMessage): Promise<unknown> => {
  let raw = '';
  for await (const part of req) raw += (part as Buffer).toString();
  return raw ? (JSON.parse(raw) as unknown) : undefined;
};

beforeAll(async () => {
  server = createServer((req, res) => {
    void (async () => {
      seen.auth.push(req.headers.authorization);
      const body = await readJson(req);
      const method = (body as { method?: string } | undefined)?.method;
      if (method === 'tools/list') seen.list++;
      if (method === 'tools/call') seen.call++;
      // Stateless: a server and transport per request, as the SDK recommends without sessions.
      const mcp = mcpServer();
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      res.on('close', () => void transport.close().then(() => mcp.close()));
      await mcp.connect(transport);
      await transport.handleRequest(req, res, body);
    })().catch(() => res.writeHead(500).end());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/mcp`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const crm = (over: Partial<McpServerDefinition> = {}): McpServerDefinition => ({ name: 'crm', url, headers: { Authorization: 'Bearer crm-key-1234' }, ...over });
const call = (name: string, args: Record<string, unknown> = {}) => ({ id: 'c1', name, arguments: JSON.stringify(args) });

describe('McpTools (official SDK client) against an MCP server', () => {
  it('lists the tools with the configured headers, filtered by allowedTools, and calls one', async () => {
    const mcp = new McpTools({ allowPrivate: true, logger: silent });
    const tools = await mcp.forCall('t1', [crm({ allowedTools: ['find_order', 'broken'] })], silent);
    expect(tools.specs.map((s) => s.name).sort()).toEqual(['broken', 'find_order']);
    expect(tools.specs.find((s) => s.name === 'find_order')!.parameters).toMatchObject({ type: 'object', properties: { number: { type: 'string' } }, required: ['number'] });
    const outcome = await tools.run(call('find_order', { number: 'A-17' }), { number: 'A-17' }, new AbortController().signal);
    expect(outcome).toEqual({ ok: true, content: JSON.stringify({ number: 'A-17', status: 'shipped' }) });
    expect(seen.auth.at(-1)).toBe('Bearer crm-key-1234');
    await tools.close();
  });

  it('a tool that reports an error, or does not answer in time, is a failed outcome', async () => {
    const mcp = new McpTools({ allowPrivate: true, logger: silent, callTimeoutMs: 300 });
    const tools = await mcp.forCall('t2', [crm()], silent);
    const broken = await tools.run(call('broken'), {}, new AbortController().signal);
    expect(broken).toEqual({ ok: false, content: JSON.stringify({ error: 'broken failed: database offline' }) });
    const slow = await tools.run(call('slow'), {}, new AbortController().signal);
    expect(slow.ok).toBe(false);
    expect(slow.content).toMatch(/no answer within 300 ms/);
    await tools.close();
  });

  it('reuses a listing for a while: the next call lists nothing and can still call the tool', async () => {
    const mcp = new McpTools({ allowPrivate: true, logger: silent, listCacheMs: 60_000 });
    const first = await mcp.forCall('t3', [crm()], silent);
    await first.close();
    const lists = seen.list;
    const second = await mcp.forCall('t3', [crm()], silent);
    expect(seen.list).toBe(lists);
    expect(second.specs.map((s) => s.name)).toContain('find_order');
    expect((await second.run(call('find_order', { number: 'B-2' }), { number: 'B-2' }, new AbortController().signal)).ok).toBe(true);
    // Another key for the same server is another listing.
    await (await mcp.forCall('t3', [crm({ headers: { Authorization: 'Bearer rotated-key-0000' } })], silent)).close();
    expect(seen.list).toBe(lists + 1);
    await second.close();
  });

  it('a server that cannot be reached gives no tools and no error; the call goes on', async () => {
    const mcp = new McpTools({ allowPrivate: true, logger: silent, connectTimeoutMs: 500 });
    const tools = await mcp.forCall('t4', [crm({ url: 'http://127.0.0.1:9/mcp' })], silent);
    expect(tools.specs).toEqual([]);
    await tools.close();
  });

  it('refuses a loopback server when private addresses are not allowed: no request reaches it', async () => {
    const before = seen.auth.length;
    const mcp = new McpTools({ allowPrivate: false, logger: silent, connectTimeoutMs: 500 });
    const tools = await mcp.forCall('t5', [crm(), crm({ name: 'by-name', url: url.replace('127.0.0.1', 'localhost') })], silent);
    expect(tools.specs).toEqual([]);
    expect(seen.auth.length).toBe(before);
  });
});

describe('guardedFetch', () => {
  it('streams a response body and refuses loopback unless allowed', async () => {
    const sse = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\n\n');
      setTimeout(() => res.end('data: two\n\n'), 50);
    });
    sse.listen(0, '127.0.0.1');
    await once(sse, 'listening');
    const target = `http://localhost:${(sse.address() as { port: number }).port}/`;
    const res = await guardedFetch(true)(target);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toBe('data: one\n\n');
    expect(await res.text().catch(() => 'locked')).toBe('locked');
    await expect(guardedFetch(false)(target)).rejects.toThrow(/loopback, private or link-local/);
    await expect(guardedFetch(false)(target.replace('localhost', '127.0.0.1'))).rejects.toThrow(/loopback, private or link-local/);
    sse.closeAllConnections();
    sse.close();
  });
});
