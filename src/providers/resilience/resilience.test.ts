import { EventEmitter } from 'node:events';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CallgateError } from '../../errors.js';
import type { LlmEvent, LlmProvider, SttProvider, SttStream, SttStreamEvents, TtsChunk, TtsProvider } from '../types.js';
import { CircuitBreaker, CircuitBreakers } from './CircuitBreaker.js';
import { FallbackLlm } from './fallbackLlm.js';
import { FallbackStt } from './fallbackStt.js';
import { FallbackTts } from './fallbackTts.js';
import { ProviderMetrics, providerErrorKind } from './ProviderMetrics.js';

const opts = { failureThreshold: 3, openMs: 1000, permanentOpenMs: 60_000 };

describe('CircuitBreaker', () => {
  it('opens after three failures in a row, lets one probe through after openMs, and closes on its success', () => {
    let now = 0;
    const b = new CircuitBreaker(opts, () => now);
    b.failure();
    b.failure();
    expect(b.state).toBe('closed');
    b.success(); // a success in between resets the count
    b.failure();
    b.failure();
    expect(b.tryAcquire()).toBe(true);
    b.failure();
    expect(b.state).toBe('open');
    expect(b.tryAcquire()).toBe(false);
    now = 1000;
    expect(b.state).toBe('half-open');
    expect(b.tryAcquire()).toBe(true);
    expect(b.tryAcquire()).toBe(false); // one probe at a time
    b.success();
    expect(b.state).toBe('closed');
  });

  it('a failed probe opens it again; a permanent failure opens it at once for longer; release frees a probe', () => {
    let now = 0;
    const b = new CircuitBreaker(opts, () => now);
    for (let i = 0; i < 3; i++) b.failure();
    now = 1000;
    expect(b.tryAcquire()).toBe(true);
    b.failure();
    expect(b.state).toBe('open');
    now = 2000;
    expect(b.tryAcquire()).toBe(true);
    b.release(); // aborted by barge-in: no verdict
    expect(b.tryAcquire()).toBe(true);
    b.success();

    b.failure(true);
    expect(b.state).toBe('open');
    now += 59_000;
    expect(b.state).toBe('open');
    now += 1000;
    expect(b.state).toBe('half-open');
  });

  it('breakers are per key', () => {
    const all = new CircuitBreakers(opts);
    for (let i = 0; i < 3; i++) all.get('tts:elevenlabs:aaa').failure();
    expect(all.get('tts:elevenlabs:bbb').state).toBe('closed');
    expect(all.openKeys()).toEqual(['tts:elevenlabs:aaa']);
  });
});

// ─── Chains over scripted fakes ────────────────────────────────────────────────────────────────

const err = (code: 'CG_LLM_FAILED' | 'CG_LLM_TIMEOUT' | 'CG_TTS_FAILED' | 'CG_STT_FAILED', status?: number): CallgateError =>
  new CallgateError(code, `test ${status ?? ''}`, { details: status === undefined ? {} : { status, permanent: status < 500 && status !== 429 ? true : undefined } });

function llm(name: string, script: () => AsyncIterable<LlmEvent>): LlmProvider & { calls: number } {
  const p = {
    name,
    calls: 0,
    stream: () => {
      p.calls++;
      return script();
    },
  };
  return p;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function metricValue(metrics: ProviderMetrics, name: string, labels: Record<string, string>): Promise<number> {
  const m = await metrics.registry.getSingleMetric(name)?.get();
  const match = m?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val) && !('le' in v.labels) && !String((v as { metricName?: string }).metricName ?? '').endsWith('_sum'));
  return match?.value ?? 0;
}

function setup() {
  let now = 0;
  const breakers = new CircuitBreakers(opts, () => now);
  const metrics = new ProviderMetrics(new Registry());
  return { breakers, metrics, ctx: { metrics }, advance: (ms: number) => (now += ms) };
}

describe('FallbackLlm', () => {
  it('hands a request that failed before its first token to the next provider, counts it, and opens the circuit after three', async () => {
    const s = setup();
    const dead = llm('openai', async function* () {
      throw err('CG_LLM_FAILED', 500);
    });
    const backup = llm('scripted', async function* () {
      yield { type: 'text', text: 'We open at eleven.' };
    });
    const chain = new FallbackLlm(
      [
        { provider: dead, name: 'openai', breaker: s.breakers.get('llm:openai') },
        { provider: backup, name: 'scripted', breaker: s.breakers.get('llm:scripted') },
      ],
      s.ctx,
    );
    const signal = new AbortController().signal;
    for (let i = 0; i < 4; i++) expect(await collect(chain.stream({ messages: [], signal }))).toEqual([{ type: 'text', text: 'We open at eleven.' }]);
    // Three failures opened the circuit: the fourth request did not wait for the dead provider.
    expect(dead.calls).toBe(3);
    expect(backup.calls).toBe(4);
    expect(await metricValue(s.metrics, 'callgate_provider_errors_total', { kind: 'llm', provider: 'openai', error: 'server' })).toBe(3);
    expect(await metricValue(s.metrics, 'callgate_provider_fallbacks_total', { kind: 'llm', from: 'openai', to: 'scripted' })).toBe(3);
    expect(await metricValue(s.metrics, 'callgate_provider_skipped_total', { kind: 'llm', provider: 'openai' })).toBe(1);

    // After openMs one probe goes through; it fails again, so the circuit stays open.
    s.advance(1000);
    await collect(chain.stream({ messages: [], signal }));
    expect(dead.calls).toBe(4);
    expect(s.breakers.get('llm:openai').state).toBe('open');
  });

  it('a failure after text was spoken is thrown (the agent apologises), not replayed on another model', async () => {
    const s = setup();
    const partial = llm('openai', async function* () {
      yield { type: 'text', text: 'We open ' };
      throw err('CG_LLM_FAILED', 502);
    });
    const backup = llm('scripted', async function* () {
      yield { type: 'text', text: 'never' };
    });
    const chain = new FallbackLlm(
      [
        { provider: partial, name: 'openai', breaker: s.breakers.get('a') },
        { provider: backup, name: 'scripted', breaker: s.breakers.get('b') },
      ],
      s.ctx,
    );
    const got: LlmEvent[] = [];
    await expect(
      (async () => {
        for await (const e of chain.stream({ messages: [], signal: new AbortController().signal })) got.push(e);
      })(),
    ).rejects.toMatchObject({ code: 'CG_LLM_FAILED' });
    expect(got).toEqual([{ type: 'text', text: 'We open ' }]);
    expect(backup.calls).toBe(0);
  });

  it('when every circuit is open, the last provider is still tried; an abort is no failure', async () => {
    const s = setup();
    for (let i = 0; i < 3; i++) {
      s.breakers.get('a').failure();
      s.breakers.get('b').failure();
    }
    const last = llm('scripted', async function* () {
      yield { type: 'text', text: 'ok' };
    });
    const chain = new FallbackLlm(
      [
        { provider: llm('openai', async function* () {}), name: 'openai', breaker: s.breakers.get('a') },
        { provider: last, name: 'scripted', breaker: s.breakers.get('b') },
      ],
      s.ctx,
    );
    expect(await collect(chain.stream({ messages: [], signal: new AbortController().signal }))).toEqual([{ type: 'text', text: 'ok' }]);

    const abort = new AbortController();
    const slow = llm('openai', async function* () {
      abort.abort();
      throw new Error('aborted by the caller');
    });
    const s2 = setup();
    const chain2 = new FallbackLlm([{ provider: slow, name: 'openai', breaker: s2.breakers.get('x') }], s2.ctx);
    expect(await collect(chain2.stream({ messages: [], signal: abort.signal }))).toEqual([]);
    expect(await metricValue(s2.metrics, 'callgate_provider_errors_total', { kind: 'llm', provider: 'openai', error: 'other' })).toBe(0);
  });
});

describe('FallbackTts', () => {
  it("falls back per sentence with the next provider's voice, marking its audio degraded", async () => {
    const s = setup();
    const voices: string[] = [];
    const chunk: TtsChunk = { samples: new Int16Array(320), sampleRate: 16000 };
    const stalled: TtsProvider = {
      name: 'elevenlabs',
      // eslint-disable-next-line require-yield
      async *synthesize() {
        throw new CallgateError('CG_TTS_TIMEOUT', 'no audio within 2000 ms');
      },
    };
    const flite: TtsProvider = {
      name: 'flite',
      async *synthesize({ voice }) {
        voices.push(voice);
        yield chunk;
      },
    };
    const chain = new FallbackTts(
      [
        { provider: stalled, name: 'elevenlabs', breaker: s.breakers.get('t1'), voiceFor: (v) => v },
        { provider: flite, name: 'flite', breaker: s.breakers.get('t2'), voiceFor: (v) => (v === 'slt' ? v : 'slt') },
      ],
      s.ctx,
    );
    const got = await collect(chain.synthesize({ text: 'Hello.', voice: '21m00Tcm4TlvDq8ikWAM', signal: new AbortController().signal }));
    expect(got).toEqual([{ ...chunk, degraded: true }]);
    expect(voices).toEqual(['slt']);
    expect(await metricValue(s.metrics, 'callgate_provider_errors_total', { kind: 'tts', provider: 'elevenlabs', error: 'timeout' })).toBe(1);
    const hist = await s.metrics.registry.getSingleMetric('callgate_provider_first_result_seconds')?.get();
    expect(hist?.values.find((v) => v.labels['provider'] === 'flite' && (v as { metricName?: string }).metricName === 'callgate_provider_first_result_seconds_count')?.value).toBe(1);
  });
});

// ─── STT ────────────────────────────────────────────────────────────────────────────────────────

class FakeStream extends EventEmitter<SttStreamEvents> implements SttStream {
  frames = 0;
  closed = false;
  constructor(private readonly finalizeImpl: (frames: number) => Promise<string>) {
    super();
  }
  push(): void {
    this.frames++;
  }
  finalize(): Promise<string> {
    const n = this.frames;
    this.frames = 0;
    return this.finalizeImpl(n);
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

function stt(name: string, open: () => Promise<FakeStream>): SttProvider & { streams: FakeStream[] } {
  const p = {
    name,
    streams: [] as FakeStream[],
    open: async () => {
      const s = await open();
      p.streams.push(s);
      return s;
    },
  };
  return p;
}

describe('FallbackStt', () => {
  const frame = new Int16Array(320);

  it('opens the next provider when the first cannot connect', async () => {
    const s = setup();
    const refused = stt('deepgram', () => Promise.reject(new CallgateError('CG_STT_UNAVAILABLE', '401', { details: { status: 401, permanent: true } })));
    const local = stt('pocketsphinx', () => Promise.resolve(new FakeStream(async (n) => `heard ${n}`)));
    const chain = new FallbackStt(
      [
        { provider: refused, name: 'deepgram', breaker: s.breakers.get('d') },
        { provider: local, name: 'pocketsphinx', breaker: s.breakers.get('p') },
      ],
      s.ctx,
    );
    const stream = await chain.open({ language: 'en-US', phrases: [] });
    stream.push(frame);
    expect(await stream.finalize()).toBe('heard 1');
    // 401 is permanent: the circuit opened at once.
    expect(s.breakers.get('d').state).toBe('open');
    expect(providerErrorKind(new CallgateError('CG_STT_UNAVAILABLE', 'x', { details: { status: 401 } }))).toBe('auth');
    expect(providerErrorKind(new CallgateError('CG_STT_FAILED', 'x', { details: { closeCode: 1011 } }))).toBe('server');
    expect(providerErrorKind(new CallgateError('CG_STT_FAILED', 'x', { details: { closeCode: 1006 } }))).toBe('connection');
    expect(providerErrorKind(new CallgateError('CG_LLM_FAILED', 'x', { details: { status: 429 } }))).toBe('rate_limited');
    expect(providerErrorKind(new Error('x'))).toBe('other');
    await stream.close();
    expect(local.streams[0]!.closed).toBe(true);
  });

  it("replays the turn's audio into the next provider when a finalize fails, so the caller need not repeat", async () => {
    const s = setup();
    const flaky = stt('deepgram', () => Promise.resolve(new FakeStream(() => Promise.reject(err('CG_STT_FAILED', 502)))));
    const local = stt('pocketsphinx', () => Promise.resolve(new FakeStream(async (n) => `heard ${n}`)));
    const chain = new FallbackStt(
      [
        { provider: flaky, name: 'deepgram', breaker: s.breakers.get('d') },
        { provider: local, name: 'pocketsphinx', breaker: s.breakers.get('p') },
      ],
      s.ctx,
    );
    const stream = await chain.open({ language: 'en-US', phrases: [] });
    for (let i = 0; i < 25; i++) stream.push(frame);
    expect(await stream.finalize()).toBe('heard 25');
    expect(flaky.streams[0]!.closed).toBe(true);
    // The next turn goes straight to the provider that works, with only its own audio.
    for (let i = 0; i < 5; i++) stream.push(frame);
    expect(await stream.finalize()).toBe('heard 5');
    expect(await metricValue(s.metrics, 'callgate_provider_fallbacks_total', { kind: 'stt', from: 'deepgram', to: 'pocketsphinx' })).toBe(1);
    await stream.close();
  });

  it("a stream's mid-call 'error' switches providers before the turn ends; with none left, finalize rejects", async () => {
    const s = setup();
    const dropping = stt('deepgram', () => Promise.resolve(new FakeStream(async () => 'never')));
    const local = stt('pocketsphinx', () => Promise.resolve(new FakeStream(async (n) => `heard ${n}`)));
    const chain = new FallbackStt(
      [
        { provider: dropping, name: 'deepgram', breaker: s.breakers.get('d') },
        { provider: local, name: 'pocketsphinx', breaker: s.breakers.get('p') },
      ],
      s.ctx,
    );
    const stream = await chain.open({ language: 'en-US', phrases: [] });
    const errors: unknown[] = [];
    stream.on('error', (e) => errors.push(e));
    for (let i = 0; i < 3; i++) stream.push(frame);
    dropping.streams[0]!.emit('error', err('CG_STT_FAILED'));
    for (let i = 0; i < 2; i++) stream.push(frame);
    expect(await stream.finalize()).toBe('heard 5');
    expect(errors).toEqual([]); // handled inside the chain

    local.streams[0]!.emit('error', err('CG_STT_FAILED'));
    stream.push(frame);
    await expect(stream.finalize()).rejects.toMatchObject({ code: 'CG_STT_FAILED' });
    expect(errors).toHaveLength(1);
    await stream.close();
  });
});
