import './support/logsToStderr.js';
import { once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import { resolveAgentConfig } from '../src/agent/AgentConfig.js';
import { cloudEnvFrom, providerRegistry } from '../src/agent/cloudProviders.js';
import { OpenAiLlm } from '../src/providers/openaiLlm.js';
import type { LlmProvider, TtsProvider } from '../src/providers/types.js';
import { percentile, sortedAscending } from '../src/util/percentile.js';

/**
 * What the provider chains cost and what they save, against local servers speaking the vendors' wire
 * protocols (chat completions SSE, ElevenLabs streaming):
 *  - overhead: time to first token through the tenant's chain (breaker, metrics, fallback wrapper) vs
 *    the same SDK provider called directly, same server, interleaved;
 *  - outage: the vendor stops answering. Requests until its circuit opens wait for the first-byte
 *    timeout, then fall to the offline provider; after that the dead vendor is skipped at once.
 * Prints one JSON line.
 *
 *   npm run bench:providers [-- --quick]     (--quick: fewer overhead trials; about 20 s either way for the outage part)
 */
const quick = process.argv.includes('--quick');
const TRIALS = quick ? 60 : 400;
const OUTAGE_REQUESTS = 8;

type Mode = 'ok' | 'stall';
let mode: Mode = 'ok';

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (mode === 'stall') return; // accepted, never answered
    if (req.url?.includes('/chat/completions')) return chat(res);
    if (req.url?.includes('/text-to-speech/')) return speech(res);
    res.writeHead(404).end();
  });
});
server.keepAliveTimeout = 60_000;

function chat(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  for (const text of ['We open ', 'at eleven.']) {
    res.write(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content: text }, finish_reason: null }] })}\n\n`);
  }
  res.end('data: [DONE]\n\n');
}

function speech(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'audio/pcm' });
  res.end(Buffer.alloc(3200));
}

server.listen(0, '127.0.0.1');
await once(server, 'listening');
const port = (server.address() as { port: number }).port;
const env = cloudEnvFrom({ OPENAI_API_KEY: 'sk-bench', OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1`, ELEVENLABS_API_KEY: 'el-bench', ELEVENLABS_BASE_URL: `http://127.0.0.1:${port}` });
const registry = providerRegistry(env);
const config = resolveAgentConfig({ tenantId: 'bench', voice: '21m00Tcm4TlvDq8ikWAM', providers: { llm: 'openai', tts: 'elevenlabs' } });
const messages = [{ role: 'user' as const, content: 'When do you open?' }];

async function firstToken(llm: LlmProvider): Promise<number> {
  const t0 = performance.now();
  let ms: number | undefined;
  // Read to the end (the reply is short) so the connection goes back to the pool for the next trial.
  for await (const e of llm.stream({ messages, signal: new AbortController().signal })) if (e.type === 'text') ms ??= performance.now() - t0;
  return ms ?? performance.now() - t0;
}

async function firstAudio(tts: TtsProvider): Promise<{ ms: number; degraded: boolean }> {
  const t0 = performance.now();
  for await (const chunk of tts.synthesize({ text: 'We open at eleven.', voice: config.voice, signal: new AbortController().signal })) {
    return { ms: performance.now() - t0, degraded: chunk.degraded === true };
  }
  return { ms: performance.now() - t0, degraded: false };
}

const median = (xs: number[]): number => percentile(sortedAscending(xs), 0.5);
const summary = (xs: number[]) => {
  const sorted = sortedAscending(xs);
  return { p50: round(percentile(sorted, 0.5)), p95: round(percentile(sorted, 0.95)), n: xs.length };
};
const round = (x: number) => Math.round(x * 100) / 100;

try {
  // ── Overhead ──
  const direct = new OpenAiLlm({ apiKey: 'sk-bench', baseURL: env.openai.baseURL });
  for (let i = 0; i < 20; i++) {
    await firstToken(direct);
    await firstToken(registry.forCall(config).llm);
  }
  const directMs: number[] = [];
  const chainMs: number[] = [];
  for (let i = 0; i < TRIALS; i++) {
    directMs.push(await firstToken(direct));
    chainMs.push(await firstToken(registry.forCall(config).llm));
  }

  // ── Outage ──
  mode = 'stall';
  const llmOutage: number[] = [];
  const ttsOutage: { ms: number; degraded: boolean }[] = [];
  for (let i = 0; i < OUTAGE_REQUESTS; i++) llmOutage.push(await firstToken(registry.forCall(config).llm));
  for (let i = 0; i < OUTAGE_REQUESTS; i++) ttsOutage.push(await firstAudio(registry.forCall(config).tts));
  const threshold = 3; // defaultCircuitBreakerOptions.failureThreshold
  const result = {
    bench: 'providers',
    quick,
    overhead: {
      llmFirstTokenDirectMs: summary(directMs),
      llmFirstTokenChainMs: summary(chainMs),
      chainOverheadP50Ms: round(median(chainMs) - median(directMs)),
      chainToDirectRatioP50: round(median(chainMs) / median(directMs)),
    },
    outage: {
      llm: {
        beforeCircuitOpensMs: summary(llmOutage.slice(0, threshold)),
        afterCircuitOpensMs: summary(llmOutage.slice(threshold)),
        servedBy: 'scripted (offline last resort)',
      },
      tts: {
        beforeCircuitOpensMs: summary(ttsOutage.slice(0, threshold).map((r) => r.ms)),
        afterCircuitOpensMs: summary(ttsOutage.slice(threshold).map((r) => r.ms)),
        allDegraded: ttsOutage.every((r) => r.degraded),
        servedBy: 'flite (offline last resort)',
      },
      openCircuits: registry.breakers.openKeys().length,
    },
  };
  console.log(JSON.stringify(result));
} finally {
  await registry.close();
  server.closeAllConnections();
  server.close();
}
