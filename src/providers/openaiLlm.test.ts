import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenAiLlm } from './openaiLlm.js';
import type { LlmEvent } from './types.js';

/**
 * The real `openai` SDK against a local server speaking the chat-completions wire protocol
 * (HTTP + SSE `data:` chunks ending in `[DONE]`), since the vendor is unreachable here.
 */
type Handler = (req: IncomingMessage, body: Record<string, unknown>, res: ServerResponse) => void;

let server: Server;
let baseURL: string;
let handler: Handler = () => undefined;
const seen: { auth?: string; body?: Record<string, unknown> }[] = [];
let closedMidStream = 0;

function chunk(delta: Record<string, unknown>, finish: string | null = null): string {
  return `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d: Buffer) => (raw += d.toString()));
    req.on('end', () => {
      const body = JSON.parse(raw || '{}') as Record<string, unknown>;
      seen.push({ auth: req.headers.authorization, body });
      handler(req, body, res);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  baseURL = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1`;
});

afterAll(() => {
  server.closeAllConnections();
  server.close();
});

async function collect(llm: OpenAiLlm, signal = new AbortController().signal): Promise<LlmEvent[]> {
  const out: LlmEvent[] = [];
  for await (const e of llm.stream({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'When do you open?' }], signal })) out.push(e);
  return out;
}

const sse = (res: ServerResponse): void => void res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });

describe('OpenAiLlm (openai SDK) against a local chat-completions server', () => {
  it('streams text as it comes, with the key, model and messages sent as the API expects', async () => {
    handler = (_req, _body, res) => {
      sse(res);
      res.write(chunk({ role: 'assistant', content: 'We open ' }));
      setTimeout(() => {
        res.write(chunk({ content: 'at eight.' }));
        res.write(chunk({}, 'stop'));
        res.end('data: [DONE]\n\n');
      }, 30);
    };
    const llm = new OpenAiLlm({ baseURL, apiKey: 'sk-test-123', model: 'local-model' });
    expect(await collect(llm)).toEqual([
      { type: 'text', text: 'We open ' },
      { type: 'text', text: 'at eight.' },
    ]);
    const last = seen.at(-1)!;
    expect(last.auth).toBe('Bearer sk-test-123');
    expect(last.body).toMatchObject({ model: 'local-model', stream: true, messages: [{ role: 'system' }, { role: 'user', content: 'When do you open?' }] });
    expect(JSON.stringify(last.body!['tools'])).toContain('end_call');
  });

  it('offers the request\'s tools, assembles streamed tool_calls deltas by index, and sends tool messages back', async () => {
    handler = (_req, _body, res) => {
      sse(res);
      res.write(chunk({ content: 'Let me check.' }));
      // Two calls interleaved, each arguments string in pieces, as OpenAI streams parallel calls.
      res.write(chunk({ tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'get_hours', arguments: '{"da' } }] }));
      res.write(chunk({ tool_calls: [{ index: 1, id: 'call_b', type: 'function', function: { name: 'get_menu', arguments: '' } }] }));
      res.write(chunk({ tool_calls: [{ index: 0, function: { arguments: 'y":"sat"}' } }] }));
      res.write(chunk({ tool_calls: [{ index: 1, function: { arguments: '{}' } }] }, 'tool_calls'));
      res.end('data: [DONE]\n\n');
    };
    const llm = new OpenAiLlm({ baseURL, apiKey: 'sk-test-123', model: 'local-model' });
    const events: LlmEvent[] = [];
    const tools = [{ name: 'get_hours', description: 'Hours', parameters: { type: 'object', properties: { day: { type: 'string' } } } }];
    const messages = [
      { role: 'system' as const, content: 'Be brief.' },
      { role: 'user' as const, content: 'Hours?' },
      { role: 'assistant' as const, content: '', toolCalls: [{ id: 'call_0', name: 'get_hours', arguments: '{"day":"mon"}' }] },
      { role: 'tool' as const, toolCallId: 'call_0', content: '{"open":"9"}' },
    ];
    for await (const e of llm.stream({ messages, signal: new AbortController().signal, tools })) events.push(e);
    expect(events).toEqual([
      { type: 'text', text: 'Let me check.' },
      { type: 'tool-call', call: { id: 'call_a', name: 'get_hours', arguments: '{"day":"sat"}' } },
      { type: 'tool-call', call: { id: 'call_b', name: 'get_menu', arguments: '{}' } },
    ]);
    const body = seen.at(-1)!.body!;
    expect(body['tools']).toEqual([{ type: 'function', function: { name: 'get_hours', description: 'Hours', parameters: tools[0]!.parameters } }]);
    expect((body['messages'] as unknown[]).slice(2)).toEqual([
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_0', type: 'function', function: { name: 'get_hours', arguments: '{"day":"mon"}' } }] },
      { role: 'tool', tool_call_id: 'call_0', content: '{"open":"9"}' },
    ]);
  });

  it('turns an end_call tool call into a hangup after the goodbye text', async () => {
    handler = (_req, _body, res) => {
      sse(res);
      res.write(chunk({ content: 'Goodbye!' }));
      res.write(chunk({ tool_calls: [{ index: 0, id: 't1', type: 'function', function: { name: 'end_call', arguments: '' } }] }));
      res.write(chunk({ tool_calls: [{ index: 0, function: { arguments: '{}' } }] }, 'tool_calls'));
      res.end('data: [DONE]\n\n');
    };
    expect(await collect(new OpenAiLlm({ baseURL, apiKey: 'k', model: 'm' }))).toEqual([{ type: 'text', text: 'Goodbye!' }, { type: 'hangup' }]);
  });

  it('a barge-in aborts mid-stream: the iterator ends quietly and the server sees the connection close', async () => {
    let closed: () => void = () => undefined;
    const sawClose = new Promise<void>((r) => (closed = r));
    handler = (_req, _body, res) => {
      sse(res);
      res.write(chunk({ content: 'A long answer ' }));
      const t = setInterval(() => res.write(chunk({ content: 'and more ' })), 20);
      res.on('close', () => {
        clearInterval(t);
        closedMidStream++;
        closed();
      });
    };
    const abort = new AbortController();
    const got: LlmEvent[] = [];
    for await (const e of new OpenAiLlm({ baseURL, apiKey: 'k', model: 'm' }).stream({ messages: [{ role: 'user', content: 'hi' }], signal: abort.signal })) {
      got.push(e);
      if (got.length === 3) abort.abort();
    }
    await sawClose;
    expect(got.length).toBe(3);
    expect(closedMidStream).toBeGreaterThan(0);
  });

  it('maps 401 (permanent), 429 with retry-after and 500 to CG_LLM_FAILED', async () => {
    const fail = (status: number, headers: Record<string, string> = {}): Handler => (_req, _body, res) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify({ error: { message: `status ${status}`, type: 'test' } }));
    };
    const llm = new OpenAiLlm({ baseURL, apiKey: 'bad', model: 'm', maxRetries: 0 });
    handler = fail(401);
    await expect(collect(llm)).rejects.toMatchObject({ code: 'CG_LLM_FAILED', details: { status: 401, permanent: true } });
    handler = fail(429, { 'retry-after': '7' });
    await expect(collect(llm)).rejects.toMatchObject({ code: 'CG_LLM_FAILED', details: { status: 429, retryAfter: '7' } });
    handler = fail(500);
    const err = await collect(llm).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CG_LLM_FAILED', details: { status: 500 } });
    expect(JSON.stringify(err)).not.toContain('bad'); // the key is never in the error
  });

  it('a stalled first byte is CG_LLM_TIMEOUT within the first-token budget', async () => {
    handler = () => undefined; // never answers
    await expect(collect(new OpenAiLlm({ baseURL, apiKey: 'k', model: 'm', firstTokenTimeoutMs: 300, maxRetries: 0 }))).rejects.toMatchObject({ code: 'CG_LLM_TIMEOUT' });
  });

  it('a reply that stops halfway is CG_LLM_TIMEOUT after the stall budget, with the text so far delivered', async () => {
    handler = (_req, _body, res) => {
      sse(res);
      res.write(chunk({ content: 'We open ' })); // then nothing, connection held open
    };
    const got: LlmEvent[] = [];
    const llm = new OpenAiLlm({ baseURL, apiKey: 'k', model: 'm', stallTimeoutMs: 300, maxRetries: 0 });
    const t0 = performance.now();
    await expect(
      (async () => {
        for await (const e of llm.stream({ messages: [{ role: 'user', content: 'hi' }], signal: new AbortController().signal })) got.push(e);
      })(),
    ).rejects.toMatchObject({ code: 'CG_LLM_TIMEOUT', message: expect.stringContaining('stalled') });
    expect(got).toEqual([{ type: 'text', text: 'We open ' }]);
    expect(performance.now() - t0).toBeLessThan(3000);
  });
});
