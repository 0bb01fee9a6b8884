import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallgateError } from '../../errors.js';
import { dbfs, tone } from '../../media/signal.js';
import { pollUntil } from '../../util/testing/wait.js';
import { OpenAiRealtime } from './openaiRealtime.js';
import { OpenAiRealtimeServer } from './testing/OpenAiRealtimeServer.js';
import type { RealtimeSession, RealtimeSessionOptions } from '../types.js';

const options: RealtimeSessionOptions = {
  instructions: 'You are Ava.',
  voice: 'marin',
  language: 'en-US',
  tools: [{ name: 'lookup_order', description: 'Finds an order', parameters: { type: 'object', properties: { id: { type: 'string' } } } }],
  turnDetection: 'ours',
  history: [{ role: 'assistant', content: 'Hi, this is Ava.' }],
};

describe('OpenAI Realtime through the official SDK, against a local server', () => {
  let server: OpenAiRealtimeServer;
  let provider: OpenAiRealtime;
  const open: RealtimeSession[] = [];

  beforeAll(async () => {
    server = await OpenAiRealtimeServer.start({
      transcribe: (_ms, i) => (i === 0 ? 'where is my order' : 'thanks'),
      answer: (conversation) => {
        const last = conversation.at(-1);
        if (last?.type === 'message' && last.text === 'where is my order') return { tool: { name: 'lookup_order', arguments: '{"id":"42"}' } };
        if (last?.type === 'function_call_output') return { text: `Your order ${JSON.parse(last.text).status} today.` };
        return { text: 'You are welcome, have a good day and thanks for calling us today.' };
      },
      chunkIntervalMs: 5,
    });
    provider = new OpenAiRealtime({ apiKey: 'sk-test', baseURL: server.baseURL, model: 'gpt-realtime-test', ca: server.ca });
  });
  afterAll(async () => {
    for (const s of open) await s.close();
    await server?.stop();
  });

  it('configures the session (model, instructions, PCM 24 kHz, our turn detection, tools) and replays the history', async () => {
    const s = await provider.open(options);
    open.push(s);
    const state = server.sessions.at(-1)!;
    expect(state.model).toBe('gpt-realtime-test');
    expect(state.session).toMatchObject({
      type: 'realtime',
      instructions: 'You are Ava.',
      audio: { input: { format: { type: 'audio/pcm', rate: 24000 }, turn_detection: null }, output: { format: { type: 'audio/pcm', rate: 24000 }, voice: 'marin' } },
      tools: [{ type: 'function', name: 'lookup_order' }],
    });
    await pollUntil(() => state.conversation.length, (n) => n === 1, 2000, 10);
    expect(state.conversation[0]).toMatchObject({ role: 'assistant', text: 'Hi, this is Ava.' });
  });

  it('streams caller audio resampled to 24 kHz, hears the transcription, runs a tool call, and speaks 16 kHz audio with its words', async () => {
    const s = await provider.open(options);
    open.push(s);
    const state = server.sessions.at(-1)!;
    const callerText: string[] = [];
    const calls: { id: string; name: string; arguments: string }[] = [];
    const audio: Int16Array[] = [];
    const words: string[] = [];
    const done: string[] = [];
    s.on('caller-text', (t, final) => final && callerText.push(t));
    s.on('tool-call', (c) => calls.push(c));
    s.on('audio', (pcm) => audio.push(pcm));
    s.on('agent-text', (t, _id, final) => final && words.push(t));
    s.on('response-done', (d) => done.push(d.status));
    // 1 s of caller audio in 20 ms frames, then our turn-taking ends the turn.
    const speech = tone(300, 1000);
    for (let i = 0; i < speech.length; i += 320) s.appendAudio(speech.subarray(i, i + 320));
    s.commit();
    s.respond();
    await pollUntil(() => calls.length, (n) => n === 1, 3000, 10);
    expect(Math.round(state.appendedMs)).toBe(1000);
    expect(callerText).toEqual(['where is my order']);
    expect(calls[0]).toMatchObject({ name: 'lookup_order', arguments: '{"id":"42"}' });
    s.toolResult(calls[0]!.id, JSON.stringify({ status: 'ships' }));
    s.respond();
    await pollUntil(() => words.length, (n) => n === 1, 5000, 10);
    expect(words[0]).toBe('Your order ships today.');
    const samples = audio.reduce((n, a) => n + a.length, 0);
    // The answer's audio at our rate: ~60 ms a character, 16 kHz.
    expect(samples / 16).toBeGreaterThan(1000);
    expect(Math.max(...audio.map((a) => dbfs(a)))).toBeGreaterThan(-20);
    expect(done).toEqual(['completed', 'completed']);
  });

  it('cancels a response on barge-in and truncates the item at what the caller heard', async () => {
    const s = await provider.open(options);
    open.push(s);
    const state = server.sessions.at(-1)!;
    let itemId = '';
    let got = 0;
    const done: string[] = [];
    s.on('audio', (pcm, id) => {
      itemId = id;
      got += pcm.length;
    });
    s.on('response-done', (d) => done.push(d.status));
    s.commit();
    s.commit();
    s.respond();
    await pollUntil(() => got, (n) => n >= 16000 * 0.5, 3000, 5);
    s.cancel();
    s.truncate(itemId, 420);
    await pollUntil(() => done.length, (n) => n === 1, 3000, 10);
    expect(done).toEqual(['cancelled']);
    await pollUntil(() => state.truncations.length, (n) => n === 1, 2000, 10);
    expect(state.truncations[0]).toEqual({ itemId, audioEndMs: 420 });
    expect(state.conversation.find((i) => i.id === itemId)!.text.endsWith('…')).toBe(true);
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
    expect(err).toBeInstanceOf(CallgateError);
    expect((err as CallgateError).code).toBe('CG_REALTIME_UNAVAILABLE');
    const nowhere = new OpenAiRealtime({ apiKey: 'sk-test', baseURL: 'https://127.0.0.1:9/v1', connectTimeoutMs: 1000, ca: server.ca });
    expect(((await nowhere.open(options).catch((e: unknown) => e)) as CallgateError).code).toBe('CG_REALTIME_UNAVAILABLE');
  });
});
