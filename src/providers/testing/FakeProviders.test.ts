import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { CallgateError } from '../../errors.js';
import { concatSamples, dbfs, tone } from '../../media/signal.js';
import type { LlmEvent, LlmRequest, SttResult, TtsChunk } from '../types.js';
import { FakeLlm, FakeStt, FakeTts, voiceLike } from './FakeProviders.js';

const STT_OPTIONS = { language: 'en-US', phrases: [] };
/** 20 ms frames at 16 kHz. */
const LOUD = tone(300, 20); // ~-12 dBFS
const QUIET = new Int16Array(320).fill(30); // ~-61 dBFS: line noise, not speech

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CallgateError);
  return (err as CallgateError).code;
}

function pushFrames(stream: { push(f: Int16Array): void }, frame: Int16Array, n: number): void {
  for (let i = 0; i < n; i++) stream.push(frame);
}

describe('FakeStt', () => {
  it('gives the transcripts in order, only for turns with at least minSpeechMs of loud audio', async () => {
    const stt = new FakeStt({ transcripts: ['first', 'second'], minSpeechMs: 300 });
    const stream = await stt.open(STT_OPTIONS);
    const finals: SttResult[] = [];
    stream.on('result', (r) => r.final && finals.push(r));

    pushFrames(stream, QUIET, 50);
    pushFrames(stream, LOUD, 14); // 280 ms: a cough
    expect(await stream.finalize()).toBe('');
    pushFrames(stream, LOUD, 15); // 300 ms
    expect(await stream.finalize()).toBe('first');
    expect(await stream.finalize()).toBe(''); // nothing pushed since
    pushFrames(stream, LOUD, 30);
    expect(await stream.finalize()).toBe('second');
    pushFrames(stream, LOUD, 30);
    expect(await stream.finalize()).toBe(''); // the script ran out
    expect(finals).toEqual([
      { text: 'first', final: true },
      { text: 'second', final: true },
    ]);
    await stream.close();
  });

  it('sends one interim result per turn once the speech is long enough', async () => {
    const stream = await new FakeStt({ transcripts: ['a', 'b'], minSpeechMs: 100 }).open(STT_OPTIONS);
    const interims: number[] = [];
    let frames = 0;
    stream.on('result', (r) => {
      if (!r.final) interims.push(frames);
    });
    for (; frames < 12; frames++) stream.push(LOUD);
    expect(interims).toEqual([4]); // on the 5th frame (100 ms), once
    await stream.finalize();
    for (frames = 0; frames < 6; frames++) stream.push(LOUD);
    expect(interims).toEqual([4, 4]);
    await stream.close();
  });

  it('continues the script across streams of the same provider', async () => {
    const stt = new FakeStt({ transcripts: ['one', 'two'], minSpeechMs: 20 });
    const a = await stt.open(STT_OPTIONS);
    a.push(LOUD);
    expect(await a.finalize()).toBe('one');
    const b = await stt.open(STT_OPTIONS);
    b.push(LOUD);
    expect(await b.finalize()).toBe('two');
    expect(stt.streams).toHaveLength(2);
    await Promise.all([a.close(), b.close()]);
  });

  it('answers finalize after finalDelayMs, and fails it when the stream closes meanwhile', async () => {
    const stt = new FakeStt({ transcripts: ['late'], minSpeechMs: 20, finalDelayMs: 30 });
    const stream = await stt.open(STT_OPTIONS);
    stream.push(LOUD);
    let answered = false;
    const final = stream.finalize().then((t) => ((answered = true), t));
    await new Promise((r) => setImmediate(r));
    expect(answered).toBe(false);
    expect(await final).toBe('late');

    stream.push(LOUD);
    const pending = stream.finalize();
    await stream.close();
    expect(await codeOf(pending)).toBe('CG_STT_FAILED');
  });

  it('finalises on its own finalDelayMs after the speech ends; finalize() then answers at once', async () => {
    const stream = await new FakeStt({ transcripts: ['on its own', 'next'], minSpeechMs: 20, finalDelayMs: 100 }).open(STT_OPTIONS);
    const finals: string[] = [];
    stream.on('result', (r) => r.final && finals.push(r.text));
    pushFrames(stream, LOUD, 5);
    pushFrames(stream, QUIET, 4); // 80 ms of silence: not yet
    expect(finals).toEqual([]);
    pushFrames(stream, QUIET, 1);
    expect(finals).toEqual(['on its own']);
    pushFrames(stream, LOUD, 5); // the caller goes on in the same turn: still one transcript
    pushFrames(stream, QUIET, 10);
    let answered = false;
    const final = stream.finalize().then((t) => ((answered = true), t));
    await new Promise((r) => setImmediate(r));
    expect(answered).toBe(true);
    expect(await final).toBe('on its own');
    expect(finals).toEqual(['on its own']);
    await stream.close();
  });

  it('ignores audio after close, and fails at open when set to', async () => {
    const stt = new FakeStt();
    const stream = await stt.open(STT_OPTIONS);
    stream.push(LOUD);
    await stream.close();
    stream.push(LOUD);
    expect(stt.streams[0]!.pushedFrames).toBe(1);
    expect(await codeOf(new FakeStt({ failOpen: true }).open(STT_OPTIONS))).toBe('CG_STT_UNAVAILABLE');
  });
});

describe('FakeLlm', () => {
  const request = (signal = new AbortController().signal): LlmRequest => ({ messages: [{ role: 'user', content: 'hi' }], signal });

  async function collect(llm: FakeLlm, req: LlmRequest, onEvent?: (ev: LlmEvent, n: number) => void): Promise<LlmEvent[]> {
    const out: LlmEvent[] = [];
    for await (const ev of llm.stream(req)) {
      out.push(ev);
      onEvent?.(ev, out.length);
    }
    return out;
  }

  it('streams the reply word by word and records the request', async () => {
    const llm = new FakeLlm({ reply: (r) => `You said ${r.messages.at(-1)!.content}.` });
    const req = request();
    expect(await collect(llm, req)).toEqual([
      { type: 'text', text: 'You ' },
      { type: 'text', text: 'said ' },
      { type: 'text', text: 'hi.' },
    ]);
    expect(llm.requests).toEqual([req]);
    expect(llm.aborted).toBe(0);
  });

  it('streams given events as they are, hangup included', async () => {
    const events: LlmEvent[] = [{ type: 'text', text: 'Bye.' }, { type: 'hangup' }];
    expect(await collect(new FakeLlm({ reply: () => events, tokenIntervalMs: 1 }), request())).toEqual(events);
  });

  it('ends quietly and counts the abort when aborted before the first token', async () => {
    const llm = new FakeLlm({ reply: () => 'Too late.', firstTokenMs: 200 });
    const abort = new AbortController();
    const done = collect(llm, request(abort.signal));
    await sleep(5);
    abort.abort();
    expect(await done).toEqual([]);
    expect(llm.aborted).toBe(1);
  });

  it('stops mid-reply when aborted between tokens', async () => {
    const llm = new FakeLlm({ reply: () => 'one two three four five', tokenIntervalMs: 5 });
    const abort = new AbortController();
    const events = await collect(llm, request(abort.signal), (_, n) => n === 2 && abort.abort());
    expect(events).toHaveLength(2);
    expect(llm.aborted).toBe(1);
  });

  it('does not count a stream the consumer simply stops reading', async () => {
    const llm = new FakeLlm({ reply: () => 'one two three' });
    for await (const _ of llm.stream(request())) break;
    expect(llm.aborted).toBe(0);
  });

  it('fails with CG_LLM_FAILED after failAfterWords words', async () => {
    const llm = new FakeLlm({ reply: () => 'one two three four', failAfterWords: 2 });
    const seen: LlmEvent[] = [];
    const code = await codeOf(collect(llm, request(), (ev) => seen.push(ev)));
    expect(code).toBe('CG_LLM_FAILED');
    expect(seen.map((e) => (e.type === 'text' ? e.text : ''))).toEqual(['one ', 'two ']);
    expect(llm.aborted).toBe(0);
  });
});

describe('FakeTts', () => {
  async function chunksOf(tts: FakeTts, text: string, signal = new AbortController().signal): Promise<TtsChunk[]> {
    const out: TtsChunk[] = [];
    for await (const c of tts.synthesize({ text, voice: 'slt', signal })) out.push(c);
    return out;
  }

  it('speaks for about msPerChar per character, in chunkMs chunks at 16 kHz, at the chosen level', async () => {
    const tts = new FakeTts({ msPerChar: 70, chunkMs: 200, levelDbfs: -20 });
    const text = 'We open at nine.'; // 16 characters: 1120 ms
    const chunks = await chunksOf(tts, text);
    expect(chunks.map((c) => c.samples.length)).toEqual([3200, 3200, 3200, 3200, 3200, 1920]);
    expect(chunks.every((c) => c.sampleRate === 16000)).toBe(true);
    const pcm = concatSamples(chunks.map((c) => c.samples));
    // Voiced frames sit near the level; the pauses between syllables are silent (so the RMS of the whole
    // signal is ~6 dB lower).
    const frames = Array.from({ length: pcm.length / 320 }, (_, i) => dbfs(pcm, { start: i * 320, end: (i + 1) * 320 }));
    expect(Math.max(...frames)).toBeGreaterThan(-23);
    expect(Math.max(...frames)).toBeLessThan(-19);
    expect(frames.filter((l) => l < -60).length).toBeGreaterThan(frames.length / 3);
    // Chunks join into one continuous signal, the same as generating it whole.
    expect(pcm).toEqual(voiceLike(1120, -20));
    expect(tts.requests).toEqual([text]);
  });

  it('gives at least 200 ms for a very short text', async () => {
    const chunks = await chunksOf(new FakeTts({ msPerChar: 10 }), 'Hi');
    expect(chunks.reduce((n, c) => n + c.samples.length, 0)).toBe(3200);
  });

  it('fails with CG_TTS_FAILED for the texts failWhen picks', async () => {
    const tts = new FakeTts({ failWhen: (t) => t.includes('fail') });
    expect(await codeOf(chunksOf(tts, 'please fail'))).toBe('CG_TTS_FAILED');
    await expect(chunksOf(tts, 'fine')).resolves.not.toHaveLength(0);
    expect(tts.requests).toEqual(['please fail', 'fine']);
  });

  it('stops and counts the abort when aborted before the first audio or between chunks', async () => {
    const tts = new FakeTts({ firstAudioMs: 200, msPerChar: 70, chunkMs: 100 });
    const early = new AbortController();
    const pending = chunksOf(tts, 'never heard', early.signal);
    await sleep(5);
    early.abort();
    expect(await pending).toEqual([]);

    const fast = new FakeTts({ msPerChar: 70, chunkMs: 100 });
    const mid = new AbortController();
    const got: TtsChunk[] = [];
    for await (const c of fast.synthesize({ text: 'a sentence that lasts a while', voice: 'slt', signal: mid.signal })) {
      got.push(c);
      if (got.length === 2) mid.abort();
    }
    expect(got).toHaveLength(2);
    expect([tts.aborted, fast.aborted]).toEqual([1, 1]);
  });
});
