import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ChatMessage } from '../../src/providers/types.js';
import { startLocalOpenAi, type LocalOpenAi } from '../../src/providers/testing/localVendors.js';
import { connectRedis, deletePrefix, testPrefix } from '../../src/tenants/redisClient.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { DELIVERY_HEADER, SIGNATURE_HEADER, verifySignature } from '../../src/webhooks/sign.js';
import { GatewayProcesses, webCall } from '../app/gatewayProcess.js';
import { asks, hears } from '../support/heard.js';
import { describeWith } from '../support/tools.js';

/**
 * Issue 19's "done when", end to end: a tenant made through the admin API with a webhook tool, a
 * webhook secret and a callEnd webhook; its LLM an OpenAI-compatible server (OPENAI_BASE_URL) that asks
 * for the tool. A browser call: the gateway POSTs the tool's arguments, signed, to the webhook; the
 * webhook's answer reaches the model as a `tool` message; the caller hears the answer built from it;
 * after the hang-up a signed call.ended arrives.
 */
const prefix = testPrefix();
const TOKEN = 'admin-token-for-the-tools-test-0000';
const SECRET = 'tools-test-webhook-secret-0123456789';
const TOOL_AUTH = 'Bearer tool-header-secret-abcdef123456';
const GREETING = 'Hello, this is the hours line.';
const ANSWER = 'On Saturday we are open from nine to five.';

interface Hit {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

let receiver: Server;
let receiverUrl = '';
const hits: Hit[] = [];
let llm: LocalOpenAi;
const llmRequests: { messages: readonly ChatMessage[]; tools: readonly { name: string }[] }[] = [];
let gateways: GatewayProcesses;
let gw: Awaited<ReturnType<GatewayProcesses['start']>> | undefined;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      hits.push({ path: req.url ?? '', headers: req.headers, body });
      if (req.url === '/tools/get_hours') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ day: 'saturday', hours: 'nine to five' }));
      } else res.writeHead(204).end();
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
  llm = await startLocalOpenAi({
    respond: (messages, request) => {
      llmRequests.push({ messages, tools: request.tools });
      const last = messages.at(-1);
      if (last?.role === 'tool') {
        const hours = (JSON.parse(last.content) as { hours?: string }).hours ?? 'unknown';
        return { text: `On Saturday we are open from ${hours}.` };
      }
      if (request.tools.some((t) => t.name === 'get_hours')) return { text: '', toolCalls: [{ name: 'get_hours', arguments: JSON.stringify({ day: 'saturday' }) }] };
      return { text: 'I cannot check that.' };
    },
  });
  gateways = new GatewayProcesses({
    CALLGATE_REDIS_PREFIX: prefix,
    CALLGATE_ADMIN_TOKEN: TOKEN,
    CALLGATE_SECRET_KEY: randomBytes(32).toString('hex'),
    CALLGATE_WEBHOOK_ALLOW_PRIVATE: 'true',
    OPENAI_BASE_URL: llm.baseURL,
    OPENAI_API_KEY: 'sk-local-tools-test',
  });
}, 30_000);

afterAll(async () => {
  await gateways?.stopAll();
  await llm?.close();
  receiver?.closeAllConnections();
  await new Promise((r) => receiver?.close(r));
  const redis = await connectRedis({ prefix });
  await deletePrefix(redis, prefix);
  await redis.quit();
});

describeWith(['pocketsphinx'], 'a webhook tool and call webhooks on a browser call (issue 19)', () => {
  it('the model asks for the tool, the signed webhook answers, the caller hears it, call.ended arrives signed', async () => {
    const g = (gw ??= await gateways.start());
    const api = async (method: string, path: string, body: unknown): Promise<Response> =>
      fetch(`${g.base}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const created = await api('POST', '/v1/tenants', {
      id: 'hours-line',
      displayName: 'Hours Line',
      greeting: GREETING,
      providers: { stt: 'pocketsphinx', llm: 'openai', tts: 'flite' },
      // The offline recogniser listens for the tenant's phrases; the model only sees what was heard.
      intents: [{ name: 'hours', phrases: ['what time do you open today'], reply: 'Let me check the hours.' }],
      tools: [
        {
          name: 'get_hours',
          description: 'Opening hours for a day',
          parameters: { type: 'object', properties: { day: { type: 'string' } }, required: ['day'] },
          webhook: { url: `${receiverUrl}/tools/get_hours`, headers: { Authorization: TOOL_AUTH } },
        },
      ],
      webhooks: { secret: SECRET, callEnd: { url: `${receiverUrl}/call-ended` } },
    });
    expect(created.status, await created.clone().text()).toBe(201);
    const shown = JSON.stringify(await created.json());
    // Secrets are masked in what the API returns.
    expect(shown).not.toContain(SECRET);
    expect(shown).not.toContain('tool-header-secret');
    const url = await api('POST', '/v1/tenants/hours-line/call-urls', { slug: 'hours-line' });
    expect(url.status, await url.clone().text()).toBe(201);

    const { peer, callId } = await webCall(g.base, 'hours-line', 'tools-caller');
    try {
      expect((await hears(() => peer.receivedAudio(), GREETING, { timeoutMs: 15_000 })).score).toBeGreaterThanOrEqual(0.8);
      const heard = await asks(peer, 'caller-open-today', ANSWER, 20_000);
      expect(heard.score, `the answer built from the tool result; model saw ${JSON.stringify(llmRequests.map((r) => r.messages.at(-1)))}, webhook hits ${hits.map((h) => h.path).join(' ')}\n${g.output().slice(-3000)}`).toBeGreaterThanOrEqual(0.8);
    } finally {
      peer.close();
    }

    // The tool webhook: POSTed once, signed, with the arguments, the call and the tenant's own header.
    const toolHits = hits.filter((h) => h.path === '/tools/get_hours');
    expect(toolHits).toHaveLength(1);
    const toolHit = toolHits[0]!;
    expect(verifySignature(SECRET, toolHit.body, toolHit.headers[SIGNATURE_HEADER.toLowerCase()] as string), `tool signature ${String(toolHit.headers[SIGNATURE_HEADER.toLowerCase()])}`).toBe(true);
    expect(verifySignature('another-secret-0000000000', toolHit.body, toolHit.headers[SIGNATURE_HEADER.toLowerCase()] as string)).toBe(false);
    expect(toolHit.headers[DELIVERY_HEADER.toLowerCase()]).toMatch(/^[0-9a-f-]{36}$/);
    expect(toolHit.headers.authorization).toBe(TOOL_AUTH);
    const request = JSON.parse(toolHit.body) as Record<string, unknown>;
    expect(request).toMatchObject({ type: 'tool.call', callId, tenantId: 'hours-line', tool: 'get_hours', arguments: { day: 'saturday' }, call: { door: 'webrtc' } });

    // The model was offered the tool, and got the webhook's answer back as the tool message.
    expect(llmRequests[0]!.tools.map((t) => t.name)).toEqual(expect.arrayContaining(['get_hours', 'end_call']));
    const second = llmRequests.find((r) => r.messages.at(-1)?.role === 'tool');
    expect(second, 'a request carrying the tool answer').toBeDefined();
    const toolMessage = second!.messages.at(-1)!;
    const asked = second!.messages.at(-2)!;
    expect(asked.role === 'assistant' && asked.toolCalls?.[0]?.name).toBe('get_hours');
    expect(toolMessage.role === 'tool' && asked.role === 'assistant' && toolMessage.toolCallId === asked.toolCalls?.[0]?.id, `tool message answers the call: ${JSON.stringify(second!.messages.slice(-2))}`).toBe(true);
    expect(JSON.parse(toolMessage.content)).toEqual({ day: 'saturday', hours: 'nine to five' });

    // After the hang-up: call.ended, signed, with the transcript.
    const ended = await pollUntil(() => hits.find((h) => h.path === '/call-ended'), (h) => h !== undefined, 20_000);
    expect(ended, 'call.ended delivery').toBeDefined();
    expect(verifySignature(SECRET, ended!.body, ended!.headers[SIGNATURE_HEADER.toLowerCase()] as string), 'call.ended signature').toBe(true);
    const payload = JSON.parse(ended!.body) as { type: string; callId: string; call: { door: string; transcript: { role: string; text: string }[]; durationMs: number } };
    expect(payload).toMatchObject({ type: 'call.ended', callId, tenantId: 'hours-line', call: { door: 'webrtc' } });
    expect(payload.call.transcript.some((t) => t.role === 'agent' && /nine to five/.test(t.text)), `the answer in the transcript: ${JSON.stringify(payload.call.transcript)}`).toBe(true);
    expect(payload.call.durationMs).toBeGreaterThan(0);
    // Nothing of the secrets in the gateway's logs.
    expect(g.output()).not.toContain(SECRET);
    expect(g.output()).not.toContain('tool-header-secret');
  }, 90_000);

  it('offline, with no model at all: a scripted intent calls the tool and answers from its result', async () => {
    gw ??= await gateways.start();
    const base = gw.base;
    const api = async (method: string, path: string, body: unknown): Promise<Response> =>
      fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const before = hits.filter((h) => h.path === '/tools/get_hours').length;
    const requestsBefore = llmRequests.length;
    const created = await api('POST', '/v1/tenants', {
      id: 'offline-hours',
      displayName: 'Offline Hours',
      greeting: GREETING,
      providers: { stt: 'pocketsphinx', llm: 'scripted', tts: 'flite' },
      intents: [{ name: 'hours', phrases: ['what time do you open today'], tool: { name: 'get_hours', arguments: { day: 'today' } }, reply: 'Today we are open {{result.hours}}.' }],
      tools: [{ name: 'get_hours', description: 'Opening hours', webhook: { url: `${receiverUrl}/tools/get_hours` } }],
    });
    expect(created.status, await created.clone().text()).toBe(201);
    expect((await api('POST', '/v1/tenants/offline-hours/call-urls', { slug: 'offline-hours' })).status).toBe(201);
    const { peer } = await webCall(base, 'offline-hours', 'offline-caller');
    try {
      await hears(() => peer.receivedAudio(), GREETING, { timeoutMs: 15_000 });
      const heard = await asks(peer, 'caller-open-today', 'Today we are open nine to five.', 20_000);
      expect(heard.score, 'the scripted answer filled from the webhook').toBeGreaterThanOrEqual(0.8);
    } finally {
      peer.close();
    }
    const calls = hits.filter((h) => h.path === '/tools/get_hours');
    expect(calls.length).toBe(before + 1);
    expect(JSON.parse(calls.at(-1)!.body)).toMatchObject({ tool: 'get_hours', arguments: { day: 'today' }, tenantId: 'offline-hours' });
    // No model server was asked anything.
    expect(llmRequests.length).toBe(requestsBefore);
  }, 90_000);
});
