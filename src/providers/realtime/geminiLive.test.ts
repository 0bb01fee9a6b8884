import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallgateError } from '../../errors.js';
import { dbfs, tone } from '../../media/signal.js';
import { pollUntil } from '../../util/testing/wait.js';
import { GeminiLive } from './geminiLive.js';
import { GeminiLiveServer } from './testing/GeminiLiveServer.js';
import type { RealtimeSession, RealtimeSessionOptions } from '../types.js';

const options: RealtimeSessionOptions = {
  instructions: 'You are Ava.',
  voice: undefined,
  language: 'en-US',
  tools: [{ name: 'lookup_order', description: 'Finds an order', parameters: { type: 'object', properties: { id: { type: 'string' } } } }],
  turnDetection: 'ours',
  history: [{ role: 'assistant', content: 'Hi, this is Ava.' }],
};

describe('Gemini Live through the official SDK, against a local server', () => {
  let server: GeminiLiveServer;
  let provider: GeminiLive;
  const open: RealtimeSession[] = [];

  beforeAll(async () => {
    server = await GeminiLiveServer.start({
      transcribe: () => 'where is my order',
      answer: (conversation) => {
        const last = conversation.at(-1);
        if (last?.type === 'message' && last.text === 'where is my order') return { tool: { name: 'lookup_order', arguments: '{"id":"42"}' } };
        if (last?.type === 'function_call_output') return { text: `Your order ${(JSON.parse(last.text) as { status: string }).status} today.` };
        return { text: 'Let me tell you about all of our pizzas and pastas, made fresh every single day.' };
      },
      chunkIntervalMs: 5,
    });
    provider = new GeminiLive({ apiKey: 'test-key', baseUrl: server.baseUrl, model: 'gemini-test' });
  });
  afterAll(async () => {
    for (const s of open) await s.close();
    await server?.stop();
  });

  it('sets the session up (model, instructions, audio out, manual activity, transcriptions, tools) and replays the history', async () => {
    const s = await provider.open(options);
    open.push(s);
    const state = server.sessions.at(-1)!;
    expect(state.model).toBe('models/gemini-test');
    expect(JSON.stringify(state.setup)).toContain('You are Ava.');
    expect(state.setup).toMatchObject({ generationConfig: { responseModalities: ['AUDIO'] }, realtimeInputConfig: { automaticActivityDetection: { disabled: true } } });
    expect(JSON.stringify(state.setup)).toContain('lookup_order');
    await pollUntil(() => state.conversation.length, (n) => n === 1, 2000, 10);
    expect(state.conversation[0]).toMatchObject({ role: 'assistant', text: 'Hi, this is Ava.' });
  });

  it('frames a turn with activity start and end, hears its transcription, runs a tool call and speaks 16 kHz audio with its words', async () => {
    const s = await provider.open(options);
    open.push(s);
    const state = server.sessions.at(-1)!;
    const callerText: string[] = [];
    const calls: { id: string; name: string; arguments: string }[] = [];
    const audio: Int16Array[] = [];
    const words: string[] = [];
    s.on('caller-text', (t, final) => final && callerText.push(t));
    s.on('tool-call', (c) => calls.push(c));
    s.on('audio', (pcm) => audio.push(pcm));
    s.on('agent-text', (t, _id, final) => final && words.push(t));
    const speech = tone(300, 1000);
    for (let i = 0; i < speech.length; i += 320) s.appendAudio(speech.subarray(i, i + 320));
    s.commit();
    s.respond();
    await pollUntil(() => calls.length, (n) => n === 1, 3000, 10);
    expect(state.activityStarts).toBe(1);
    expect(Math.round(state.appendedMs)).toBe(1000);
    expect(callerText).toEqual(['where is my order']);
    expect(calls[0]).toMatchObject({ name: 'lookup_order', arguments: '{"id":"42"}' });
    s.toolResult(calls[0]!.id, JSON.stringify({ status: 'ships' }));
    s.respond();
    await pollUntil(() => words.length, (n) => n === 1, 5000, 10);
    expect(words[0]).toBe('Your order ships today.');
    expect(audio.reduce((n, a) => n + a.length, 0) / 16).toBeGreaterThan(1000);
    expect(Math.max(...audio.map((a) => dbfs(a)))).toBeGreaterThan(-20);
  });

  it('is interrupted by a barge-in and told what the caller heard', async () => {
    const s = await provider.open({ ...options, history: [] });
    open.push(s);
    const state = server.sessions.at(-1)!;
    let got = 0;
    const done: string[] = [];
    s.on('audio', (pcm) => (got += pcm.length));
    s.on('response-done', (d) => done.push(d.status));
    s.respond('Tell me about the menu.');
    await pollUntil(() => got, (n) => n >= 16000 * 0.5, 3000, 5);
    s.cancel();
    s.truncate('turn_1', 700);
    await pollUntil(() => done, (d) => d.includes('cancelled'), 3000, 10);
    expect(state.interrupts).toBe(1);
    await pollUntil(() => state.conversation.at(-1)?.text ?? '', (t) => t.includes('0.7 s'), 2000, 10);
  });

  it('reports a dropped connection, and a model that cannot be reached as CG_REALTIME_UNAVAILABLE', async () => {
    const s = await provider.open(options);
    open.push(s);
    let closed = false;
    s.on('closed', () => (closed = true));
    s.on('error', () => undefined);
    server.dropAll();
    await pollUntil(() => closed, (c) => c, 2000, 10);
    server.refusing = true;
    const err = await provider.open(options).then(() => undefined, (e: unknown) => e);
    server.refusing = false;
    expect((err as CallgateError).code).toBe('CG_REALTIME_UNAVAILABLE');
    const nowhere = new GeminiLive({ apiKey: 'k', baseUrl: 'http://127.0.0.1:9', connectTimeoutMs: 1000 });
    expect(((await nowhere.open(options).catch((e: unknown) => e)) as CallgateError).code).toBe('CG_REALTIME_UNAVAILABLE');
  });
});
