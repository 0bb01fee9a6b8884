import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveAgentConfig, type AgentConfigInput } from '../../src/agent/AgentConfig.js';
import { PromptCache } from '../../src/agent/PromptCache.js';
import { offlineProviderRegistry, type ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { concatSamples, dbfs } from '../../src/media/signal.js';
import { readWavFile } from '../../src/media/wav.js';
import { OpenAiRealtime } from '../../src/providers/realtime/openaiRealtime.js';
import { OpenAiRealtimeServer, type ScriptedAnswer, type ConversationItem } from '../../src/providers/realtime/testing/OpenAiRealtimeServer.js';
import { GeminiLiveServer } from '../../src/providers/realtime/testing/GeminiLiveServer.js';
import { GeminiLive } from '../../src/providers/realtime/geminiLive.js';
import type { RealtimeProvider } from '../../src/providers/types.js';
import type { AgentProviders } from '../../src/providers/types.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { describeWith } from '../support/tools.js';
import { sleep, TestCall } from './harness.js';

/**
 * A call answered by a speech-to-speech model (OpenAI Realtime through the official SDK) against a
 * local server speaking its protocol, over real UDP (PCMU): the greeting from our prompt cache at once,
 * the caller's turn streamed and committed by our turn-taking, the model's audio at the caller, a tool
 * call, a barge-in that cancels the response and truncates the model's item at what the caller heard,
 * and a connection that drops (reopened once), then drops for good (the cascade answers).
 */
const GREETING = 'Joe\u2019s Pizza, hello.';
const HOURS = 'We open at eleven in the morning today.';
const QUESTION = fileURLToPath(new URL('../fixtures/caller-open-today.wav', import.meta.url));
const tenant: AgentConfigInput = {
  tenantId: 'realtime-pizza',
  greeting: GREETING,
  intents: [{ name: 'hours', phrases: ['what time do you open today'], reply: HOURS }],
  providers: { realtime: 'openai' },
};

/** A local server of either protocol, as these tests use it. */
interface Backend {
  readonly sessions: readonly { conversation: ConversationItem[]; appendedMs: number }[];
  refusing: boolean;
  dropAll(): void;
  stop(): Promise<void>;
  provider(): RealtimeProvider;
  /** The tools the session was set up with, as JSON. */
  toolsOf(i: number): string;
}

const script = {
  transcribe: () => 'what time do you open today',
  answer: (conversation: readonly ConversationItem[]): ScriptedAnswer => {
    const last = conversation.at(-1);
    if (last?.type === 'function_call_output') return { text: `Your order ${(JSON.parse(last.text) as { status: string }).status}.` };
    return answer(last?.text ?? '');
  },
  chunkIntervalMs: 20,
};
let answer = (_said: string): ScriptedAnswer => ({ text: 'The model answers.' });
/** An answer whose audio is a 1.2 s tone at the servers' 24 kHz (not one as long as its words): the suite's time. */
const brief = (text: string): ScriptedAnswer => {
  const audio = new Int16Array(24 * 1200);
  for (let i = 0; i < audio.length; i++) audio[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 24000));
  return { text, audio };
};

const backends: Record<string, () => Promise<Backend>> = {
  'OpenAI Realtime': async () => {
    const server = await OpenAiRealtimeServer.start(script);
    return Object.assign(server, {
      provider: () => new OpenAiRealtime({ apiKey: 'sk-test', baseURL: server.baseURL, ca: server.ca }),
      toolsOf: (i: number) => JSON.stringify(server.sessions[i]!.session!['tools']),
    });
  },
  'Gemini Live': async () => {
    const server = await GeminiLiveServer.start(script);
    return Object.assign(server, {
      provider: () => new GeminiLive({ apiKey: 'test-key', baseUrl: server.baseUrl }),
      toolsOf: (i: number) => JSON.stringify(server.sessions[i]!.setup!['tools']),
    });
  },
};

describe.each(Object.keys(backends))('a call on a speech-to-speech model (%s protocol, local server)', (protocol) => {
 describeWith(['pocketsphinx'], 'over loopback UDP (PCMU)', () => {
  let registry: ProviderRegistry;
  let server: Backend;
  const prompts = new PromptCache();

  beforeAll(async () => {
    registry = offlineProviderRegistry();
    server = await backends[protocol]!();
  }, 30_000);
  afterAll(async () => {
    await server?.stop();
    await registry?.close();
  });

  const providers = (): AgentProviders => {
    const config = resolveAgentConfig(tenant);
    return { ...registry.forCall(config), realtime: server.provider() };
  };
  const heardSince = (t: TestCall, from: number): number => {
    const audio = concatSamples(t.heardAudio.slice(from));
    return audio.length === 0 ? -Infinity : dbfs(audio);
  };

  it('greets from the cache at once, then the model answers the turn it heard, with its words in the events', async () => {
    answer = () => brief(HOURS);
    const t = await TestCall.open({ config: tenant, providers: providers(), prompts });
    try {
      await t.session.start();
      const greeted = await t.next('agent-done', 10_000, (e) => e.turn === 0);
      expect(greeted.spokenText).toBe(GREETING);
      const session = await pollUntil(() => server.sessions.at(-1), (s) => s?.conversation[0]?.text === GREETING, 5000, 20);
      expect(session!.conversation[0]).toMatchObject({ role: 'assistant', text: GREETING });
      const heardBefore = t.heardAudio.length;
      t.say((await readWavFile(QUESTION)).samples);
      const caller = await t.next('transcript', 15_000, (e) => e.final);
      expect(caller.text).toBe('what time do you open today');
      const done = await t.next('agent-done', 15_000, (e) => e.turn === 1);
      expect(done).toMatchObject({ spokenText: HOURS, interrupted: false });
      expect(t.of('agent-text').filter((e) => e.turn === 1).map((e) => e.text).join(' ')).toBe(HOURS);
      // The model's audio (a tone standing in for speech) reached the caller.
      expect(heardSince(t, heardBefore)).toBeGreaterThan(-30);
      // The caller's audio reached the model, committed as one user turn.
      expect(session!.appendedMs).toBeGreaterThan(1000);
      expect(session!.conversation.filter((i) => i.role === 'user')).toHaveLength(1);
      await t.close();
      // What the call used of the model, for its record and metrics.
      expect(t.of('realtime-usage')[0]).toMatchObject({ provider: protocol.startsWith('OpenAI') ? 'openai' : 'gemini', responses: 1, reconnects: 0, fellBack: false, inputTokens: 10, outputTokens: 20 });
      expect(t.of('realtime-usage')[0]!.audioInMs).toBeGreaterThan(1000);
      expect(t.of('realtime-usage')[0]!.audioOutMs).toBeGreaterThan(1000);
    } finally {
      await t.close();
    }
  }, 40_000);

  it('on a barge-in stops at once, cancels the response and truncates the item at what the caller heard', async () => {
    answer = () => ({ text: 'Let me tell you all about our menu, we have many pizzas and pastas and salads and desserts, all of them made fresh every day by our cooks.' });
    const t = await TestCall.open({ config: tenant, providers: providers(), prompts, options: { turn: {} } });
    try {
      await t.session.start();
      await t.next('agent-done', 10_000, (e) => e.turn === 0);
      const session = server.sessions.at(-1)!;
      const question = (await readWavFile(QUESTION)).samples;
      t.say(question);
      await t.next('agent-text', 15_000, (e) => e.turn === 1);
      await sleep(1000);
      // The caller talks over the model's long answer.
      t.say(question);
      const bargeIn = await t.next('barge-in', 10_000);
      const done = await t.next('agent-done', 5000, (e) => e.turn === 1);
      expect(done.interrupted).toBe(true);
      if (session instanceof Object && 'truncations' in session) {
        const openai = session as unknown as { truncations: { audioEndMs: number }[]; cancels: number };
        await pollUntil(() => openai.truncations.length, (n) => n === 1, 3000, 20);
        expect(openai.cancels).toBeGreaterThanOrEqual(1);
        // The model forgets what was not heard: its item is cut where our playout stopped.
        expect(Math.abs(openai.truncations[0]!.audioEndMs - bargeIn.playedMs)).toBeLessThan(60);
      } else {
        // Gemini: the caller's new activity interrupts it, and it is told how much was heard.
        const gemini = session as unknown as { interrupts: number; conversation: ConversationItem[] };
        await pollUntil(() => gemini.interrupts, (n) => n >= 1, 3000, 20);
        const heard = await pollUntil(() => gemini.conversation.find((i) => i.text.includes('I heard only')), (i) => i !== undefined, 3000, 20);
        expect(Number(/first ([\d.]+) s/.exec(heard!.text)![1]) * 1000).toBeCloseTo(bargeIn.playedMs, -2);
      }
      // No resume of a model's reply (its context no longer holds the rest).
      expect(t.of('barge-in-resumed')).toHaveLength(0);
    } finally {
      await t.close();
    }
  }, 40_000);

  it("runs the model's tool calls through the call's tools", async () => {
    answer = () => ({ tool: { name: 'lookup_order', arguments: '{"id":"42"}' } });
    const ran: string[] = [];
    const tools = {
      specs: [{ name: 'lookup_order', description: 'Finds an order', parameters: { type: 'object' } }],
      filler: () => undefined,
      run: async (call: { name: string; arguments: string }) => {
        ran.push(`${call.name} ${call.arguments}`);
        return { ok: true, content: JSON.stringify({ status: 'ships today' }) };
      },
    };
    const t = await TestCall.open({ config: tenant, providers: providers(), prompts, tools });
    try {
      await t.session.start();
      await t.next('agent-done', 10_000, (e) => e.turn === 0);
      expect(server.toolsOf(server.sessions.length - 1)).toContain('lookup_order');
      t.say((await readWavFile(QUESTION)).samples);
      const done = await t.next('agent-done', 15_000, (e) => e.turn === 1);
      expect(ran).toEqual(['lookup_order {"id":"42"}']);
      expect(done.spokenText).toBe('Your order ships today.');
      expect(t.of('tool')[0]).toMatchObject({ name: 'lookup_order', ok: true });
    } finally {
      await t.close();
    }
  }, 40_000);

  it("with the model's own turn detection: it ends the caller's turns, answers by itself, and stops when talked over", async () => {
    const openai = protocol.startsWith('OpenAI');
    const voice = openai ? 'marin' : 'Kore';
    const config: AgentConfigInput = { ...tenant, providers: { realtime: openai ? 'openai' : 'gemini', realtimeTurnDetection: 'model', realtimeVoice: voice } };
    const long = 'Let me tell you all about our menu, we have many pizzas and pastas and salads and desserts, all of them made fresh every day by our cooks.';
    let answers = 0;
    answer = () => (++answers === 2 ? { text: long } : brief(HOURS));
    const t = await TestCall.open({ config, providers: { ...registry.forCall(resolveAgentConfig(config)), realtime: server.provider() }, prompts });
    try {
      await t.session.start();
      await t.next('agent-done', 10_000, (e) => e.turn === 0);
      const session = server.sessions.at(-1)! as unknown as { session?: Record<string, unknown>; setup?: Record<string, unknown>; speechStarts: number; conversation: ConversationItem[]; truncations?: { audioEndMs: number }[] };
      // The model was set up with its own detection, and the tenant's voice.
      const setup = JSON.stringify(session.session ?? session.setup);
      expect(setup).toContain(openai ? '"server_vad"' : '"disabled":false');
      expect(setup).toContain(voice);
      const question = (await readWavFile(QUESTION)).samples;
      t.say(question);
      // Nobody committed the turn or asked for the answer: the model's detection did both.
      const done = await t.next('agent-done', 15_000, (e) => e.turn === 1);
      expect(done).toMatchObject({ spokenText: HOURS, interrupted: false });
      expect(session.speechStarts).toBeGreaterThanOrEqual(1);
      expect((await t.next('transcript', 5000, (e) => e.final)).text).toBe('what time do you open today');
      expect(t.session.transcript.filter((m) => m.role === 'user').map((m) => m.content)).toEqual(['what time do you open today']);
      // A second question, with a long answer the caller talks over.
      t.say(question);
      await t.next('agent-text', 15_000, (e) => e.turn === 2);
      // While it is still answering: Gemini's own detection reports an interruption only then.
      await sleep(300);
      t.say(question);
      const bargeIn = await t.next('barge-in', 10_000);
      expect((await t.next('agent-done', 5000, (e) => e.turn === 2)).interrupted).toBe(true);
      if (session.truncations) {
        await pollUntil(() => session.truncations!.length, (n) => n === 1, 3000, 20);
        expect(Math.abs(session.truncations[0]!.audioEndMs - bargeIn.playedMs)).toBeLessThan(60);
      } else {
        const heard = await pollUntil(() => session.conversation.find((i) => i.text.includes('I heard only')), (i) => i !== undefined, 3000, 20);
        expect(Number(/first ([\d.]+) s/.exec(heard!.text)![1]) * 1000).toBeCloseTo(bargeIn.playedMs, -2);
      }
      // The model answers the interrupting turn by itself, and none of the cut answer's audio follows.
      expect((await t.next('agent-done', 15_000, (e) => e.turn === 3)).spokenText).toBe(HOURS);
      expect(t.hangups).toEqual([]);
    } finally {
      await t.close();
    }
  }, 60_000);

  it('reopens a dropped connection with the conversation so far, and when it is gone for good the cascade answers', async () => {
    answer = () => ({ text: 'The model answers.' });
    const t = await TestCall.open({ config: tenant, providers: providers(), prompts });
    try {
      await t.session.start();
      await t.next('agent-done', 10_000, (e) => e.turn === 0);
      const sessionsBefore = server.sessions.length;
      server.dropAll();
      await pollUntil(() => server.sessions.length, (n) => n === sessionsBefore + 1, 5000, 20);
      // The new session knows the greeting.
      await pollUntil(() => server.sessions.at(-1)!.conversation.length, (n) => n >= 1, 3000, 20);
      expect(server.sessions.at(-1)!.conversation[0]!.text).toBe(GREETING);
      const question = (await readWavFile(QUESTION)).samples;
      t.say(question);
      expect((await t.next('agent-done', 15_000, (e) => e.turn === 1)).spokenText).toBe('The model answers.');
      // Gone again, and refused: the cascade (pocketsphinx, the scripted responder, flite) takes over.
      server.refusing = true;
      server.dropAll();
      await sleep(300);
      t.say(question);
      const done = await t.next('agent-done', 20_000, (e) => e.turn === 2);
      expect(done.spokenText).toBe(HOURS);
      expect(t.hangups).toEqual([]);
      await t.close();
      expect(t.of('realtime-usage')[0]).toMatchObject({ reconnects: 1, fellBack: true });
    } finally {
      server.refusing = false;
      await t.close();
    }
  }, 60_000);
});
});
