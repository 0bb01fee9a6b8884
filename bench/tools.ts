/**
 * npm run bench:tools [-- --quick]
 *
 * The gateway's own time around a tool call (issue 19): from the model's completed tool call (the last
 * byte of its streamed answer, `[DONE]`, leaving the local model server) to the next model request
 * arriving there, with a tool webhook that answers at once. In between: the openai SDK finishing the
 * stream, the tool loop, the ToolBox (argument check against the JSON Schema, signing), the webhook's
 * HTTP round trip on loopback (a new connection each time: the address guard runs on every connect),
 * and the SDK's next request. Goal: toolOverheadP95Ms ≤ 5.
 *
 * The model server and the webhook are in this process (on loopback), idle while the gateway works.
 * The last line printed is one JSON object.
 */
import './support/logsToStderr.js';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { defaultAgentSessionOptions } from '../src/agent/AgentSessionOptions.js';
import { SessionEvents } from '../src/agent/SessionEvents.js';
import { toolLoop } from '../src/agent/ToolLoop.js';
import { OpenAiLlm } from '../src/providers/openaiLlm.js';
import { FakeStt, FakeTts } from '../src/providers/testing/FakeProviders.js';
import type { ChatMessage } from '../src/providers/types.js';
import { tenantSchema } from '../src/tenants/schema.js';
import { ToolBoxes } from '../src/tools/ToolBox.js';
import { percentile, sortedAscending } from '../src/util/percentile.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const quick = values.quick;
const TRIALS = quick ? 100 : 500;
const WARMUP = 20;
const started = performance.now();
const silent = pino({ level: 'silent' });

async function listen(server: ReturnType<typeof createServer>): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}
const readBody = async (req: IncomingMessage): Promise<string> => {
  let body = '';
  for await (const part of req) body += (part as Buffer).toString();
  return body;
};

// The tool's server: answers at once.
const webhook = createServer((req, res) => void readBody(req).then(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"open":"nine to five"}')));
const webhookUrl = await listen(webhook);

// The model: asks for the tool when the caller spoke last, answers in words once the tool has.
let doneAt = 0;
const gaps: number[] = [];
const model = createServer((req, res) => {
  const arrived = performance.now();
  void readBody(req).then((raw) => {
    const body = JSON.parse(raw) as { messages: { role: string }[] };
    const afterTool = body.messages.at(-1)?.role === 'tool';
    if (afterTool && doneAt > 0) gaps.push(arrived - doneAt);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const chunk = (delta: unknown, finish: string | null = null): string => `data: ${JSON.stringify({ id: 'b', object: 'chat.completion.chunk', created: 0, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    if (afterTool) {
      res.end(chunk({ content: 'We open at nine.' }) + chunk({}, 'stop') + 'data: [DONE]\n\n');
      return;
    }
    res.write(chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_hours', arguments: '{"day":' } }] }));
    res.write(chunk({ tool_calls: [{ index: 0, function: { arguments: '"saturday"}' } }] }, 'tool_calls'));
    res.end('data: [DONE]\n\n', () => (doneAt = performance.now()));
  });
});
const modelUrl = await listen(model);

const tenant = tenantSchema.parse({
  id: 'bench',
  displayName: 'Bench',
  tools: [{ name: 'get_hours', description: 'Hours', parameters: { type: 'object', properties: { day: { type: 'string' } }, required: ['day'] }, webhook: { url: `${webhookUrl}/hours` } }],
  webhooks: { secret: 'bench-webhook-secret-000000' },
});
const llm = new OpenAiLlm({ apiKey: 'sk-bench', baseURL: `${modelUrl}/v1`, model: 'bench' });
const boxes = new ToolBoxes({ allowPrivate: true });
const tools = await boxes.forCall({
  tenant,
  call: { callId: 'bench-call', door: 'webrtc', from: 'web:bench', to: 'callurl:bench', variables: {} },
  controls: {},
  providers: { stt: new FakeStt(), llm, tts: new FakeTts() },
  voice: 'slt',
  transcript: () => [],
  log: silent,
});

async function turn(): Promise<void> {
  const history: ChatMessage[] = [{ role: 'user', content: 'when do you open on saturday' }];
  const events = toolLoop(
    {
      llm,
      tools,
      systemPrompt: 'Bench.',
      history,
      opts: { ...defaultAgentSessionOptions, fillerAfterMs: defaultAgentSessionOptions.toolFillerAfterMs },
      events: new SessionEvents(() => undefined, silent, () => 1),
      turn: 1,
      log: silent,
      saidBeforeTools: () => undefined,
    },
    new AbortController().signal,
  );
  for await (const _ of events) {
    // drained: only the timing between the two model requests matters here
  }
  doneAt = 0;
}

const runMs: number[] = [];
if (process.env['BENCH_DEBUG']) {
  const run = tools.run.bind(tools);
  (tools as { run: typeof run }).run = async (call) => {
    const t0 = performance.now();
    const r = await run(call);
    runMs.push(performance.now() - t0);
    return r;
  };
}
for (let i = 0; i < WARMUP; i++) await turn();
gaps.length = 0;
for (let i = 0; i < TRIALS; i++) await turn();

const sorted = sortedAscending(gaps);
const round = (v: number): number => Math.round(v * 100) / 100;
console.log(`tool overhead ([DONE] of the tool call → next model request), ${sorted.length} turns: p50 ${round(percentile(sorted, 0.5))} ms, p95 ${round(percentile(sorted, 0.95))} ms, max ${round(sorted.at(-1) ?? 0)} ms`);
if (runMs.length) {
  const r = sortedAscending(runMs.slice(WARMUP));
  console.log(`tool run alone: p50 ${round(percentile(r, 0.5))} ms, p95 ${round(percentile(r, 0.95))} ms`);
}
await tools.close();
model.closeAllConnections();
webhook.closeAllConnections();
model.close();
webhook.close();
console.log(
  JSON.stringify({
    bench: 'tools',
    quick,
    trials: sorted.length,
    toolOverheadP50Ms: round(percentile(sorted, 0.5)),
    toolOverheadP95Ms: round(percentile(sorted, 0.95)),
    toolOverheadMaxMs: round(sorted.at(-1) ?? 0),
    goalP95Ms: 5,
    durationS: round((performance.now() - started) / 1000),
  }),
);
process.exit(0);
