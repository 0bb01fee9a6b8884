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
 * The model server and the webhook run in a child process (bench/support/toolServers.ts), which takes
 * both timestamps of each gap on its own clock.
 * The last line printed is one JSON object.
 */
import './support/logsToStderr.js';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { defaultAgentSessionOptions } from '../src/agent/AgentSessionOptions.js';
import { SessionEvents } from '../src/agent/SessionEvents.js';
import { toolLoop } from '../src/agent/ToolLoop.js';
import { OpenAiLlm } from '../src/providers/openaiLlm.js';
import { FakeStt, FakeTts } from '../src/providers/testing/FakeProviders.js';
import type { ChatMessage, LlmProvider } from '../src/providers/types.js';
import { tenantSchema } from '../src/tenants/schema.js';
import { ToolBoxes } from '../src/tools/ToolBox.js';
import { percentile, sortedAscending } from '../src/util/percentile.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const quick = values.quick;
const TRIALS = quick ? 100 : 500;
const WARMUP = 20;
const started = performance.now();
const silent = pino({ level: 'silent' });

// The model and the webhook run in a child process: their work is not the gateway's.
const servers = fork(new URL('./support/toolServers.ts', import.meta.url).pathname, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const { modelUrl, webhookUrl } = (await once(servers, 'message'))[0] as { modelUrl: string; webhookUrl: string };
const report = async (): Promise<number[]> => {
  servers.send('report');
  return ((await once(servers, 'message'))[0] as { gaps: number[] }).gaps;
};

const tenant = tenantSchema.parse({
  id: 'bench',
  displayName: 'Bench',
  tools: [{ name: 'get_hours', description: 'Hours', parameters: { type: 'object', properties: { day: { type: 'string' } }, required: ['day'] }, webhook: { url: `${webhookUrl}/hours` } }],
  webhooks: { secret: 'bench-webhook-secret-000000' },
});
const openai = new OpenAiLlm({ apiKey: 'sk-bench', baseURL: `${modelUrl}/v1`, model: 'bench' });
// Where the time goes: the part between the SDK's stream ending and the next stream() call is the tool
// loop and the tool (argument check, signing, the webhook round trip); the rest is the SDK and HTTP.
const inside: number[] = [];
let streamEnded = 0;
const llm: LlmProvider = {
  name: 'openai',
  async *stream(request) {
    if (streamEnded > 0) inside.push(performance.now() - streamEnded);
    streamEnded = 0;
    for await (const ev of openai.stream(request)) yield ev;
    streamEnded = performance.now();
  },
};
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
await report();
inside.length = 0;
for (let i = 0; i < TRIALS; i++) await turn();

const round = (v: number): number => Math.round(v * 100) / 100;
const sorted = sortedAscending(await report());

// The floor: the same two requests through the SDK back to back, no tool loop and no tool in between.
async function bare(): Promise<void> {
  const signal = new AbortController().signal;
  const user: ChatMessage = { role: 'user', content: 'when do you open on saturday' };
  for await (const _ of openai.stream({ messages: [user], signal, tools: tools.specs })) {
    // drained
  }
  const messages: ChatMessage[] = [user, { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'get_hours', arguments: '{"day":"saturday"}' }] }, { role: 'tool', toolCallId: 'call_1', content: '{"open":"nine to five"}' }];
  for await (const _ of openai.stream({ messages, signal, tools: tools.specs })) {
    // drained
  }
}
for (let i = 0; i < TRIALS; i++) await bare();
const floor = sortedAscending(await report());
console.log(`SDK and HTTP alone (the same two requests back to back): p50 ${round(percentile(floor, 0.5))} ms, p95 ${round(percentile(floor, 0.95))} ms`);
console.log(`tool overhead ([DONE] of the tool call → next model request), ${sorted.length} turns: p50 ${round(percentile(sorted, 0.5))} ms, p95 ${round(percentile(sorted, 0.95))} ms, max ${round(sorted.at(-1) ?? 0)} ms`);
const loop = sortedAscending(inside);
console.log(`of which the tool loop and the tool (SDK stream end → next stream()): p50 ${round(percentile(loop, 0.5))} ms, p95 ${round(percentile(loop, 0.95))} ms`);
if (runMs.length) {
  const r = sortedAscending(runMs.slice(WARMUP));
  console.log(`tool run alone: p50 ${round(percentile(r, 0.5))} ms, p95 ${round(percentile(r, 0.95))} ms`);
}
await tools.close();
servers.send('exit');
console.log(
  JSON.stringify({
    bench: 'tools',
    quick,
    trials: sorted.length,
    toolOverheadP50Ms: round(percentile(sorted, 0.5)),
    toolOverheadP95Ms: round(percentile(sorted, 0.95)),
    toolOverheadMaxMs: round(sorted.at(-1) ?? 0),
    sdkFloorP50Ms: round(percentile(floor, 0.5)),
    sdkFloorP95Ms: round(percentile(floor, 0.95)),
    loopAndToolP50Ms: round(percentile(loop, 0.5)),
    loopAndToolP95Ms: round(percentile(loop, 0.95)),
    goalP95Ms: 5,
    durationS: round((performance.now() - started) / 1000),
  }),
);
process.exit(0);
