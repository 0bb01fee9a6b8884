import { createConnection } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveAgentConfig, type AgentConfigInput, type ProviderSelection } from '../../src/agent/AgentConfig.js';
import { PromptCache } from '../../src/agent/PromptCache.js';
import type { ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import type { EncodedPrompt } from '../../src/media/AudioLeg.js';
import { mulawToLinear } from '../../src/media/codecs/g711.js';
import { resample } from '../../src/media/Resampler.js';
import { concatSamples } from '../../src/media/signal.js';
import { providerRegistry, type CloudEnv } from '../../src/agent/cloudProviders.js';
import { FliteTtsProvider } from '../../src/providers/flite/FliteTtsProvider.js';
import { recognizePcm } from '../../src/providers/pocketsphinx/index.js';
import { ProviderMetrics } from '../../src/providers/resilience/ProviderMetrics.js';
import { ScriptedResponder } from '../../src/providers/scripted.js';
import { startLocalDeepgram, startLocalElevenLabs, startLocalOpenAi, type LocalDeepgram, type LocalElevenLabs, type LocalOpenAi } from '../../src/providers/testing/localVendors.js';
import { capture, childProcesses, sleep, TestCall } from './harness.js';
import { describeWith } from '../support/tools.js';
import { until } from '../../src/util/testing/wait.js';

/**
 * Whole calls through the cloud providers — the real Deepgram, OpenAI and ElevenLabs SDKs — against
 * loopback stand-ins that speak each vendor's wire protocol and are backed by the offline engines
 * (src/providers/testing/localVendors.ts): the local Deepgram recognises the caller with pocketsphinx,
 * the local "model" answers from the tenant's intents, the local TTS vendors speak with flite. The
 * caller's side is the RTP capture of a real question; what the caller heard is recognised at the end.
 * Then the vendors fail, one at a time, and the fallback chains keep the call going.
 */
const GREETING = "Hi, I'm Ava from Joe's Pizza, what can I do for you today?";
const HOURS = 'We open at eleven in the morning today.';
const GOODBYE = "Thanks for calling Joe's Pizza. Goodbye!";
const QUESTION = 'what time do you open today';

const tenant: AgentConfigInput = {
  tenantId: 'joes-pizza',
  greeting: GREETING,
  voice: 'slt',
  intents: [
    { name: 'hours', phrases: [QUESTION, 'when do you open'], reply: HOURS },
    { name: 'booking', phrases: ['i would like to book a table for four people at seven', 'book a table'], reply: 'Of course. For how many people?' },
  ],
  goodbye: { phrases: ['thank you goodbye', 'goodbye'], reply: GOODBYE },
};

const ENV_KEYS = { openai: 'sk-local-openai-env', deepgram: 'sk-local-deepgram-env', elevenlabs: 'sk-local-elevenlabs-env' };
const TENANT_KEYS = { openai: 'sk-local-openai-tenant', deepgram: 'sk-local-deepgram-tenant', elevenlabs: 'sk-local-elevenlabs-tenant' };
const ALL_KEYS = (vendor: keyof typeof ENV_KEYS): string[] => [ENV_KEYS[vendor], TENANT_KEYS[vendor]];

/** Sum of a metric's samples whose labels include `labels` (`suffix` picks a histogram's _count or _sum). */
async function metric(registry: ProviderRegistry, name: string, labels: Record<string, string> = {}, suffix = ''): Promise<number> {
  const json = await registry.metrics!.registry.getSingleMetric(name)?.get();
  return (json?.values ?? [])
    .filter((v) => ('metricName' in v && typeof v.metricName === 'string' ? v.metricName : name) === name + suffix)
    .filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want))
    .reduce((n, v) => n + v.value, 0);
}
const firstResults = (registry: ProviderRegistry, kind: string, provider: string): Promise<number> =>
  metric(registry, 'callgate_provider_first_result_seconds', { kind, provider }, '_count');

/** Nothing listens at `url` any more. */
function refused(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describeWith(['pocketsphinx'], 'whole calls through the cloud providers, against local vendor servers backed by the offline engines', () => {
  let openai: LocalOpenAi;
  let deepgram: LocalDeepgram;
  let elevenlabs: LocalElevenLabs;
  /** One flite pool speaks for both TTS vendors: two more workers would only compete for two cores. */
  let vendorVoice: FliteTtsProvider;
  let caller: EncodedPrompt;

  beforeAll(async () => {
    const config = resolveAgentConfig(tenant);
    // The "model" answers from the tenant's intents, as the offline responder would.
    const model = new ScriptedResponder({ intents: config.intents, fallbackReply: config.fallbackReply, goodbye: config.goodbye });
    vendorVoice = new FliteTtsProvider();
    await vendorVoice.warmUp();
    [openai, deepgram, elevenlabs, caller] = await Promise.all([
      startLocalOpenAi({
        keys: ALL_KEYS('openai'),
        tts: vendorVoice,
        respond: (messages) => {
          const answer = model.match(messages.filter((m) => m.role === 'user').at(-1)?.content ?? '');
          return { text: answer.reply, hangup: answer.kind === 'goodbye' };
        },
      }),
      startLocalDeepgram({ keys: ALL_KEYS('deepgram') }),
      startLocalElevenLabs({ keys: ALL_KEYS('elevenlabs'), tts: vendorVoice }),
      capture('caller-open-today.pcmu.pcap'),
    ]);
  }, 30_000);

  afterAll(async () => {
    // Already closed by the last test unless an earlier one failed; close() is idempotent.
    await Promise.all([openai?.close(), deepgram?.close(), elevenlabs?.close()]);
    await vendorVoice?.close();
  });

  const env = (): CloudEnv => ({
    openai: { apiKey: ENV_KEYS.openai, baseURL: openai.baseURL, model: 'local-model' },
    deepgram: { apiKey: ENV_KEYS.deepgram, baseUrl: deepgram.baseUrl },
    elevenlabs: { apiKey: ENV_KEYS.elevenlabs, baseUrl: elevenlabs.baseUrl },
  });

  /**
   * One call: the greeting plays, the caller asks when they open, the agent answers. Each call gets its
   * own registry (its own circuit breakers and metrics) and prompt cache, so the greeting goes through
   * the tenant's TTS every time and one test's faults cannot open another's circuits.
   */
  async function askWhenOpen(providers: ProviderSelection, keys: Readonly<Record<string, string>> = {}, beforeQuestion: () => Promise<void> | void = () => undefined) {
    const registry = providerRegistry(env(), { metrics: new ProviderMetrics(new Registry()) });
    const input: AgentConfigInput = { ...tenant, providers };
    const t = await TestCall.open({ config: input, providers: registry.forCall(resolveAgentConfig(input), keys), prompts: new PromptCache() });
    try {
      await t.session.start();
      const greeted = await t.next('agent-done', 10_000, (e) => e.turn === 0);
      await beforeQuestion();
      await sleep(300);
      t.playCapture(caller);
      const heard = await t.next('transcript', 10_000, (e) => e.final && e.turn === 1);
      const answered = await t.next('agent-done', 15_000, (e) => e.turn === 1);
      // What the caller actually heard: the agent's RTP, decoded, recognised against its lines.
      const recognised = await recognizePcm(concatSamples(t.heardAudio), { phrases: [GREETING, HOURS, GOODBYE] });
      return { t, registry, greeted, heard, answered, recognised, errors: t.of('error') };
    } finally {
      await t.close();
      await registry.close();
    }
  }

  /** The call went as the caller needed it to, whatever failed behind it: no error reached the agent, the question was understood, the answer spoken in full and heard. */
  function expectAnswered(call: Awaited<ReturnType<typeof askWhenOpen>>): void {
    expect(call.errors).toEqual([]);
    expect(call.heard.text).toBe(QUESTION);
    expect(call.answered).toMatchObject({ spokenText: HOURS, interrupted: false });
    expect(call.recognised).toContain('we open at eleven in the morning today');
  }

  it('Deepgram hears the caller, the OpenAI-compatible model answers, ElevenLabs speaks; a tenant key wins over the environment', async () => {
    const before = { openai: openai.seen.length, elevenlabs: elevenlabs.seen.length, deepgram: deepgram.connections.length, finalizes: deepgram.requests.finalizes, closeStreams: deepgram.requests.closeStreams };
    const call = await askWhenOpen({ stt: 'deepgram', llm: 'openai', tts: 'elevenlabs' }, TENANT_KEYS);

    expectAnswered(call);
    expect(call.greeted.interrupted).toBe(false);
    expect(call.recognised).toContain("hi i'm ava from joe's pizza what can i do for you today");

    // Deepgram: one live connection with the tenant's key and its intents as keyterms; the turn was
    // finalised and recognised there.
    const dg = deepgram.connections.slice(before.deepgram);
    expect(dg).toHaveLength(1);
    expect(dg[0]!.key).toBe(TENANT_KEYS.deepgram);
    expect(dg[0]!.query.get('encoding')).toBe('linear16');
    expect(dg[0]!.query.getAll('keyterm')).toEqual(expect.arrayContaining([QUESTION, 'book a table', 'goodbye']));
    expect(deepgram.requests.finalizes - before.finalizes).toBeGreaterThanOrEqual(1);
    expect(deepgram.transcripts).toContain(QUESTION);
    // The call's end closed the stream the way Deepgram asks (CloseStream), not by dropping the socket.
    await until(() => deepgram.requests.closeStreams - before.closeStreams === 1, 2000, 'CloseStream');

    // The model: one streamed completion, tenant key, the caller's words last; no speech requests (ElevenLabs spoke).
    const llm = openai.seen.slice(before.openai);
    expect(llm.map((r) => r.route)).toEqual(['chat']);
    expect(llm[0]!.key).toBe(TENANT_KEYS.openai);
    expect(llm[0]!.body).toMatchObject({ model: 'local-model', stream: true });
    const messages = llm[0]!.body['messages'] as { role: string; content: string }[];
    expect(messages.at(-1)).toEqual({ role: 'user', content: QUESTION });
    expect(messages.map((m) => m.role)).toEqual(['system', 'assistant', 'user']);

    // ElevenLabs: the greeting, the warmed fixed phrases and the answer, all with the tenant's key, as 16 kHz PCM.
    const tts = elevenlabs.seen.slice(before.elevenlabs);
    expect(tts.every((r) => r.key === TENANT_KEYS.elevenlabs && r.path.includes('output_format=pcm_16000'))).toBe(true);
    expect(tts.map((r) => r.body['text'])).toEqual(expect.arrayContaining([GREETING, HOURS]));

    // Metrics: a first result from each vendor, nothing failed, nothing fell back.
    expect(await firstResults(call.registry, 'stt', 'deepgram')).toBeGreaterThanOrEqual(1);
    expect(await firstResults(call.registry, 'llm', 'openai')).toBe(1);
    expect(await firstResults(call.registry, 'tts', 'elevenlabs')).toBeGreaterThanOrEqual(2);
    expect(await metric(call.registry, 'callgate_provider_errors_total')).toBe(0);
    expect(await metric(call.registry, 'callgate_provider_fallbacks_total')).toBe(0);
  }, 40_000);

  it('ElevenLabs stalls before its first byte: the sentence falls back to OpenAI TTS and the caller still hears the answer', async () => {
    const before = { openai: openai.seen.length, elevenlabs: elevenlabs.seen.length };
    try {
      const call = await askWhenOpen({ stt: 'deepgram', llm: 'openai', tts: ['elevenlabs', 'openai'] }, {}, async () => {
        // The greeting and the warmed phrases came from ElevenLabs; only the answer meets the stall.
        await until(() => elevenlabs.requests.inFlight === 0, 5000, 'ElevenLabs requests finished');
        elevenlabs.setFault('stall');
      });
      expectAnswered(call);
      expect(call.recognised).toContain("hi i'm ava from joe's pizza what can i do for you today");

      expect(await metric(call.registry, 'callgate_provider_fallbacks_total', { kind: 'tts', from: 'elevenlabs', to: 'openai' })).toBeGreaterThan(0);
      expect(await metric(call.registry, 'callgate_provider_errors_total', { kind: 'tts', provider: 'elevenlabs', error: 'timeout' })).toBeGreaterThan(0);
      expect(await firstResults(call.registry, 'tts', 'openai')).toBeGreaterThanOrEqual(1);
      // The environment's keys this time; the answer went to both vendors, OpenAI's as 24 kHz PCM.
      const stalled = elevenlabs.seen.slice(before.elevenlabs).filter((r) => r.body['text'] === HOURS);
      expect(stalled.length).toBeGreaterThanOrEqual(1);
      expect(stalled.every((r) => r.key === ENV_KEYS.elevenlabs)).toBe(true);
      const spoken = openai.seen.slice(before.openai).filter((r) => r.route === 'speech');
      expect(spoken.map((r) => r.body['input'])).toContain(HOURS);
      expect(spoken.every((r) => r.key === ENV_KEYS.openai && r.body['response_format'] === 'pcm')).toBe(true);
      // The client gave up on the stalled requests and closed their connections.
      await until(() => elevenlabs.requests.inFlight === 0, 2000, 'stalled ElevenLabs requests released');
    } finally {
      elevenlabs.setFault('ok');
    }
  }, 40_000);

  it('the model returns 500: the offline scripted responder (last resort) answers the same question', async () => {
    const before = openai.seen.length;
    openai.setFault('chat', { status: 500 });
    try {
      const call = await askWhenOpen({ stt: 'deepgram', llm: 'openai', tts: 'elevenlabs' });
      expectAnswered(call);
      // The SDK's one retry, then the chain moved on.
      expect(openai.seen.slice(before).filter((r) => r.route === 'chat').length).toBeGreaterThanOrEqual(1);
      expect(await metric(call.registry, 'callgate_provider_errors_total', { kind: 'llm', provider: 'openai', error: 'server' })).toBe(1);
      expect(await metric(call.registry, 'callgate_provider_fallbacks_total', { kind: 'llm', from: 'openai', to: 'scripted' })).toBe(1);
      expect(await firstResults(call.registry, 'llm', 'scripted')).toBe(1);
      expect(await firstResults(call.registry, 'llm', 'openai')).toBe(0);
    } finally {
      openai.setFault('chat', 'ok');
    }
  }, 40_000);

  it('Deepgram refuses the key (401): the chain opens pocketsphinx instead and the call still understands the caller', async () => {
    const before = { refused: deepgram.requests.refused, connections: deepgram.requests.connections };
    deepgram.setFault('refuse');
    try {
      const call = await askWhenOpen({ stt: 'deepgram', llm: 'openai', tts: 'elevenlabs' });
      expectAnswered(call);
      expect(deepgram.requests.refused - before.refused).toBe(1);
      expect(deepgram.requests.connections - before.connections).toBe(0);
      expect(await metric(call.registry, 'callgate_provider_errors_total', { kind: 'stt', provider: 'deepgram', error: 'auth' })).toBe(1);
      expect(await metric(call.registry, 'callgate_provider_fallbacks_total', { kind: 'stt', from: 'deepgram', to: 'pocketsphinx' })).toBe(1);
      expect(await firstResults(call.registry, 'stt', 'pocketsphinx')).toBeGreaterThanOrEqual(1);
      expect(await firstResults(call.registry, 'llm', 'openai')).toBe(1);
    } finally {
      deepgram.setFault('ok');
    }
  }, 40_000);

  it('Deepgram drops the socket mid-turn (1011): the turn\'s audio is replayed into pocketsphinx and still recognised', async () => {
    const registry = providerRegistry(env(), { metrics: new ProviderMetrics(new Registry()) });
    const input: AgentConfigInput = { ...tenant, providers: { stt: 'deepgram', llm: 'scripted', tts: 'flite' } };
    const config = resolveAgentConfig(input);
    const before = deepgram.requests.connections;
    const stt = await registry.forCall(config).stt.open({ language: 'en-US', phrases: [...config.intents.flatMap((i) => i.phrases), ...config.goodbye.phrases] });
    try {
      expect(deepgram.requests.connections - before).toBe(1);
      deepgram.setFault('drop');
      // The caller's question as the pipeline hears it: µ-law decoded, 8 → 16 kHz, in 20 ms frames.
      const pcm = resample(Int16Array.from(Buffer.concat(caller.payloads), (c) => mulawToLinear(c)), 8000, 16000);
      for (let i = 0; i < pcm.length; i += 320) stt.push(pcm.subarray(i, i + 320));
      expect(await stt.finalize()).toBe(QUESTION);
      expect(await metric(registry, 'callgate_provider_fallbacks_total', { kind: 'stt', from: 'deepgram', to: 'pocketsphinx' })).toBe(1);
      expect(await metric(registry, 'callgate_provider_errors_total', { kind: 'stt', provider: 'deepgram' })).toBe(1);
      expect(await firstResults(registry, 'stt', 'pocketsphinx')).toBe(1);
    } finally {
      deepgram.setFault('ok');
      await stt.close();
      await registry.close();
    }
  }, 20_000);

  it('leaves nothing behind: servers closed, no decoder processes', async () => {
    const urls = [openai.baseURL, elevenlabs.baseUrl, deepgram.baseUrl];
    await Promise.all([openai.close(), deepgram.close(), elevenlabs.close()]);
    for (const url of urls) expect(await refused(url)).toBe(true);
    await sleep(200);
    expect(childProcesses().filter((c) => c.includes('pocketsphinx') || c === 'sh' || c === 'cat')).toEqual([]);
  });
});
