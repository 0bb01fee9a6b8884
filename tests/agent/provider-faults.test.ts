import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AgentSessionOptions } from '../../src/agent/AgentSession.js';
import { ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { resolveAgentConfig } from '../../src/agent/AgentConfig.js';
import { CallgateError } from '../../src/errors.js';
import { FakeLlm, FakeStt, FakeTts, voiceLike } from '../../src/providers/testing/FakeProviders.js';
import { ProviderMetrics } from '../../src/providers/resilience/ProviderMetrics.js';
import { ScriptedResponder } from '../../src/providers/scripted.js';
import type { AgentProviders, LlmProvider, LlmRequest, SttProvider, SttStream, SttStreamEvents, SttStreamOptions } from '../../src/providers/types.js';
import { CallRecorder } from '../../src/tenants/CallRecorder.js';
import { CallRecordStore, type CallRecord } from '../../src/tenants/CallRecordStore.js';
import { connectRedis, deletePrefix, testPrefix, type Redis } from '../../src/tenants/redisClient.js';
import { TestCall } from './harness.js';

/**
 * A provider stalls or fails in the middle of a call (over real UDP legs, the real VAD, fake providers).
 * Each call either goes on — the caller's next turn gets a normal answer — or ends cleanly with the
 * right outcome, and its call record (CallRecorder → CallRecordStore on Redis) says what happened:
 * outcome, the conversation as the caller heard it, the errors, and latency marks for the good turns.
 * tests/agent/session-fakes.test.ts and cloud-providers.test.ts cover the agent's and vendors' side of
 * failures; this file is about stalls (no error, just nothing) and the record.
 */

const TENANT = 't-faults';
const HOURS = 'We open at eleven.';
const DELIVERY = 'Yes, we deliver until ten.';
const intents = [
  { name: 'hours', phrases: ['what time do you open'], reply: HOURS },
  { name: 'delivery', phrases: ['do you deliver'], reply: DELIVERY },
];
/** Fixed endpointing and immediate barge-in: the fake voice's 250 ms gaps between syllables stay inside a turn. */
const config = { tenantId: TENANT, greeting: 'Hi {{caller}}, this is the test line.', intents, turn: { endpointing: 'fixed', bargeIn: 'immediate' } } as const;
const { apology, unavailableMessage } = resolveAgentConfig(config);
/** A stall budget far below the 8–10 s defaults, so the suite stays quick; the mechanism is the same. */
const STALL_MS = 1500;
/** Scheduling slack on a loaded machine (other test files and helpers share the CPU). */
const SLACK_MS = 1500;
const ALL_MARKS = ['endOfTurn', 'sttFinal', 'llmFirstToken', 'ttsFirstAudio', 'firstPacketOut'];

/** Caller speech: a voice-like signal (the fake STT transcribes it by script). */
const speech = (ms = 800): Int16Array => voiceLike(ms, -22);

const scripted = (): ScriptedResponder => new ScriptedResponder({ intents, fallbackReply: 'Sorry?', goodbye: { phrases: ['goodbye'], reply: 'Bye now.' } });

/** Hands each call's n-th LLM request (0-based) to `byRequest[n]`, the last one after that. */
function llmSequence(...byRequest: LlmProvider[]): LlmProvider {
  let n = 0;
  return { name: 'sequence', stream: (req: LlmRequest) => byRequest[Math.min(n++, byRequest.length - 1)]!.stream(req) };
}

/**
 * An STT whose stream misbehaves in one caller turn (1-based): `stall` never answers that turn's
 * `finalize()` and drops its results (the engine went quiet); `drop` emits an error a few frames into
 * the turn (the socket closed), after which the stream is dead, as a real one is.
 */
class FaultySttProvider implements SttProvider {
  readonly name = 'faulty';
  readonly streams: FaultySttStream[] = [];
  constructor(
    private readonly inner: FakeStt,
    private readonly fault: { readonly kind: 'stall' | 'drop'; readonly turn: number },
  ) {}

  async open(options: SttStreamOptions): Promise<SttStream> {
    const stream = new FaultySttStream(await this.inner.open(options), this.fault);
    this.streams.push(stream);
    return stream;
  }
}

class FaultySttStream extends EventEmitter<SttStreamEvents> implements SttStream {
  private finalized = 0;
  private framesThisTurn = 0;
  dropped = false;
  stalledFinalizes = 0;

  constructor(
    private readonly inner: SttStream,
    private readonly fault: { readonly kind: 'stall' | 'drop'; readonly turn: number },
  ) {
    super();
    inner.on('result', (r) => {
      if (!this.inFaultyTurn()) this.emit('result', r);
    });
  }

  private inFaultyTurn(): boolean {
    return this.finalized + 1 === this.fault.turn;
  }

  push(frame: Int16Array): void {
    if (this.dropped) return;
    this.inner.push(frame);
    if (this.fault.kind === 'drop' && this.inFaultyTurn() && ++this.framesThisTurn === 10) {
      this.dropped = true;
      // A socket's close is reported from the event loop, not from inside push().
      setImmediate(() => this.emit('error', new CallgateError('CG_STT_FAILED', 'connection closed by the far end (1006)')));
    }
  }

  async finalize(): Promise<string> {
    if (this.dropped) throw new CallgateError('CG_STT_FAILED', 'stream closed');
    const stalls = this.fault.kind === 'stall' && this.inFaultyTurn();
    this.finalized++;
    const text = await this.inner.finalize(); // consumes the turn's script entry either way
    if (!stalls) return text;
    this.stalledFinalizes++;
    return new Promise<string>(() => undefined); // no final result, no error: ever
  }

  async close(): Promise<void> {
    await this.inner.close();
    this.removeAllListeners();
  }
}

let redis: Redis;
let records: CallRecordStore;
const prefix = testPrefix();
let calls: TestCall[] = [];

beforeAll(async () => {
  redis = await connectRedis({ prefix });
  records = new CallRecordStore(redis, { prefix });
});

afterEach(async () => {
  for (const t of calls) await t.close();
  calls = [];
});

afterAll(async () => {
  await records?.close();
  if (redis) {
    await deletePrefix(redis, prefix);
    redis.destroy();
  }
});

interface RecordedCall {
  readonly t: TestCall;
  readonly recorder: CallRecorder;
}

/** A call with a recorder on its events, as a door sets it up; resolves once the greeting has played. */
async function startCall(providers: Omit<AgentProviders, 'tts'> & Partial<AgentProviders>, options: Partial<AgentSessionOptions> = {}): Promise<RecordedCall> {
  // A fast talker (35 ms per character) keeps the suite quick.
  const t = await TestCall.open({ config, providers: { ...providers, tts: providers.tts ?? new FakeTts({ msPerChar: 25 }) }, options });
  calls.push(t);
  const recorder = new CallRecorder(records, { callId: t.call.callId, tenantId: TENANT, door: 'test', from: 'sam', to: '/c/faults' });
  recorder.attach(t.session);
  await t.session.start();
  await t.next('agent-done', 8000, (e) => e.turn === 0);
  return { t, recorder };
}

/** The caller says something; resolves with the agent's finished reply to that turn. */
async function turn(t: TestCall, n: number, timeoutMs = 10_000) {
  t.say(speech());
  return t.next('agent-done', timeoutMs, (e) => e.turn === n);
}

/** Hangs up (if the agent has not), writes the record and reads it back from Redis. */
async function storedRecord({ t, recorder }: RecordedCall): Promise<CallRecord> {
  await t.close();
  expect(await recorder.finish()).toBe('written');
  return records.get(TENANT, t.call.callId);
}

const lines = (r: CallRecord): string[] => r.transcript.map((e) => `${e.turn} ${e.role}${e.interrupted ? ' (cut)' : ''}: ${e.text}`);
const errorsOf = (r: CallRecord) => (r.errors ?? []).map(({ code, during }) => ({ code, during }));
const marksOf = (r: CallRecord, turn: number): string[] => Object.keys(r.latency.find((l) => l.turn === turn)?.marks ?? {}).sort();

describe('provider faults mid-call: the call goes on or ends cleanly, and its record says what happened', () => {
  it('STT stalls on a turn (no final, no error): apology after the final timeout, the next turn is understood', async () => {
    const stt = new FaultySttProvider(new FakeStt({ transcripts: ['what time do you open', 'is anyone there', 'do you deliver'] }), { kind: 'stall', turn: 2 });
    const call = await startCall({ stt, llm: scripted() }, { sttFinalTimeoutMs: STALL_MS });
    const { t } = call;
    expect((await turn(t, 1)).spokenText).toBe(HOURS);

    const second = await turn(t, 2, STALL_MS + 10_000);
    expect(stt.streams[0]!.stalledFinalizes).toBe(1);
    expect(second.spokenText).toBe(apology);
    const ended = t.of('turn-ended').find((e) => e.turn === 2)!;
    const err = t.of('error')[0]!;
    expect(err).toMatchObject({ code: 'CG_STT_TIMEOUT', during: 'stt' });
    // The apology comes once the STT's time is up, not sooner, and not much later.
    expect(err.atMs - ended.atMs).toBeGreaterThanOrEqual(STALL_MS - 50);
    expect(err.atMs - ended.atMs).toBeLessThan(STALL_MS + SLACK_MS);

    expect((await turn(t, 3)).spokenText).toBe(DELIVERY);
    expect(t.call.ended).toBeUndefined();

    const r = await storedRecord(call);
    expect(r.outcome).toBe('caller-hangup');
    expect(lines(r)).toEqual([
      '0 agent: Hi Sam, this is the test line.',
      '1 caller: what time do you open',
      `1 agent: ${HOURS}`,
      `2 agent: ${apology}`,
      '3 caller: do you deliver',
      `3 agent: ${DELIVERY}`,
    ]);
    expect(errorsOf(r)).toEqual([{ code: 'CG_STT_TIMEOUT', during: 'stt' }]);
    expect(marksOf(r, 1)).toEqual([...ALL_MARKS].sort());
    expect(marksOf(r, 3)).toEqual([...ALL_MARKS].sort());
    expect(marksOf(r, 2)).not.toContain('sttFinal');
  }, 30_000);

  it('STT connection drops mid-turn: the fallback chain replays the turn into the next engine; the words are recorded once', async () => {
    const primary = new FaultySttProvider(new FakeStt({ transcripts: ['what time do you open', 'lost with the connection'] }), { kind: 'drop', turn: 2 });
    const backup = new FakeStt({ transcripts: ['do you deliver', 'what time do you open'] });
    const metrics = new ProviderMetrics();
    const registry = new ProviderRegistry({
      factories: { stt: { primary: () => primary, backup: () => backup }, llm: { scripted: () => scripted() }, tts: { fake: () => new FakeTts({ msPerChar: 35 }) } },
      metrics,
    });
    const providers = registry.forCall(resolveAgentConfig({ ...config, providers: { stt: ['primary', 'backup'], llm: 'scripted', tts: 'fake' } }));
    const call = await startCall(providers);
    const { t } = call;
    expect((await turn(t, 1)).spokenText).toBe(HOURS);
    expect(backup.streams).toHaveLength(0);

    expect((await turn(t, 2)).spokenText).toBe(DELIVERY);
    expect(primary.streams[0]!.dropped).toBe(true);
    expect(backup.streams).toHaveLength(1);
    const fallbacks = await metrics.fallbacks.get();
    expect(fallbacks.values).toEqual([expect.objectContaining({ labels: { kind: 'stt', from: 'primary', to: 'backup' }, value: 1 })]);

    expect((await turn(t, 3)).spokenText).toBe(HOURS);

    const r = await storedRecord(call);
    expect(r.outcome).toBe('caller-hangup');
    expect(lines(r)).toEqual([
      '0 agent: Hi Sam, this is the test line.',
      '1 caller: what time do you open',
      `1 agent: ${HOURS}`,
      '2 caller: do you deliver',
      `2 agent: ${DELIVERY}`,
      '3 caller: what time do you open',
      `3 agent: ${HOURS}`,
    ]);
    // The chain recovered before the agent noticed: nothing failed from the call's point of view (the
    // failover is in the provider metrics and logs).
    expect(r.errors).toBeUndefined();
    for (const n of [1, 2, 3]) expect(marksOf(r, n)).toEqual([...ALL_MARKS].sort());
    await registry.close();
  }, 30_000);

  it('LLM stalls mid-reply (first sentence, then nothing): what was said stands, the apology follows, the call goes on', async () => {
    const stalling = new FakeLlm({ reply: () => 'We open at eleven in the morning. On Fridays we stay open until midnight.', stallAfterWords: 7 });
    const call = await startCall({ stt: new FakeStt({ transcripts: ['what time do you open', 'do you deliver'] }), llm: llmSequence(stalling, scripted()) }, { llmStallTimeoutMs: STALL_MS });
    const { t } = call;
    const first = await turn(t, 1, STALL_MS + 10_000);
    expect(first.spokenText).toBe(`We open at eleven in the morning. ${apology}`);
    expect(first.interrupted).toBe(false);
    expect(t.of('error').map(({ code, during }) => ({ code, during }))).toEqual([{ code: 'CG_LLM_TIMEOUT', during: 'llm' }]);
    // The stalled request was released, not left hanging.
    expect(stalling.aborted).toBe(1);
    // The apology's text went to the caller once the stall budget ran out (plus scheduling slack).
    const firstText = t.of('agent-text').find((e) => e.turn === 1)!;
    const apologyText = t.of('agent-text').find((e) => e.turn === 1 && apology.startsWith(e.text))!;
    expect(apologyText.atMs - firstText.atMs).toBeGreaterThanOrEqual(STALL_MS - 50);
    expect(apologyText.atMs - firstText.atMs).toBeLessThan(STALL_MS + SLACK_MS);

    expect((await turn(t, 2)).spokenText).toBe(DELIVERY);

    const r = await storedRecord(call);
    expect(r.outcome).toBe('caller-hangup');
    expect(lines(r)).toEqual([
      '0 agent: Hi Sam, this is the test line.',
      '1 caller: what time do you open',
      `1 agent: We open at eleven in the morning. ${apology}`,
      '2 caller: do you deliver',
      `2 agent: ${DELIVERY}`,
    ]);
    expect(errorsOf(r)).toEqual([{ code: 'CG_LLM_TIMEOUT', during: 'llm' }]);
    expect(marksOf(r, 1)).toEqual([...ALL_MARKS].sort());
    expect(marksOf(r, 2)).toEqual([...ALL_MARKS].sort());
  }, 30_000);

  it('TTS stalls mid-sentence: the caller is never left in silence longer than the stall budget, then hears the apology', async () => {
    const reply = 'We open at eleven in the morning. On Fridays we stay open until midnight. Delivery runs until ten.';
    const tts = new FakeTts({ msPerChar: 35, stallWhen: (text) => text.startsWith('On Fridays') });
    const llm = llmSequence(new FakeLlm({ reply: () => reply }), scripted());
    const call = await startCall({ stt: new FakeStt({ transcripts: ['what time do you open', 'do you deliver'] }), llm, tts }, { ttsStallTimeoutMs: STALL_MS });
    const { t } = call;
    const saidAt = performance.now();
    const first = await turn(t, 1, STALL_MS + 10_000);
    expect(t.of('error').map(({ code, during }) => ({ code, during }))).toEqual([{ code: 'CG_TTS_TIMEOUT', during: 'tts' }]);
    expect(tts.aborted).toBe(1);
    // The sentence after the stalled one was not attempted; the apology came instead.
    expect(tts.requests.some((text) => text.startsWith('Delivery'))).toBe(false);
    expect(first.spokenText.startsWith('We open at eleven in the morning.')).toBe(true);
    expect(first.spokenText.endsWith(apology)).toBe(true);
    expect(first.spokenText).not.toContain('Delivery');
    // What the caller heard: no gap in the agent's voice longer than the stall budget (plus slack).
    const voice = t.heardPackets.filter((p) => p.speech && p.at > saidAt).map((p) => p.at);
    let gap = 0;
    for (let i = 1; i < voice.length; i++) gap = Math.max(gap, voice[i]! - voice[i - 1]!);
    expect(gap).toBeLessThan(STALL_MS + SLACK_MS);

    expect((await turn(t, 2)).spokenText).toBe(DELIVERY);

    const r = await storedRecord(call);
    expect(r.outcome).toBe('caller-hangup');
    const text = lines(r);
    expect(text).toHaveLength(5);
    expect(text.slice(0, 2)).toEqual(['0 agent: Hi Sam, this is the test line.', '1 caller: what time do you open']);
    // Only the start of the stalled sentence played (one chunk): the record keeps that start, cut with an
    // ellipsis, not the whole sentence.
    expect(text[2]).toMatch(/^1 agent: We open at eleven in the morning\. (On[^.]*… )?Sorry, I'm having trouble/);
    expect(text[2]).not.toContain('midnight');
    expect(text.slice(3)).toEqual(['2 caller: do you deliver', `2 agent: ${DELIVERY}`]);
    expect(errorsOf(r)).toEqual([{ code: 'CG_TTS_TIMEOUT', during: 'tts' }]);
    expect(marksOf(r, 1)).toEqual([...ALL_MARKS].sort());
    expect(marksOf(r, 2)).toEqual([...ALL_MARKS].sort());
  }, 30_000);

  it('LLM fails on two turns in a row: apology, then the unavailable message and hang-up; the record says provider-failure', async () => {
    const dead: LlmProvider = { name: 'dead', stream: (req) => new FakeLlm({ reply: () => 'never heard', failAfterWords: 0 }).stream(req) };
    const call = await startCall({ stt: new FakeStt({ transcripts: ['what time do you open', 'do you deliver'] }), llm: dead });
    const { t } = call;
    await turn(t, 1);
    t.say(speech());
    expect(await t.session.ended).toBe('provider-failure');

    const r = await storedRecord(call);
    expect(r.outcome).toBe('provider-failure');
    expect(r.error).toBeUndefined();
    expect(lines(r)).toEqual([
      '0 agent: Hi Sam, this is the test line.',
      '1 caller: what time do you open',
      `1 agent: ${apology}`,
      '2 caller: do you deliver',
      `2 agent: ${unavailableMessage}`,
    ]);
    expect(errorsOf(r)).toEqual([
      { code: 'CG_LLM_FAILED', during: 'llm' },
      { code: 'CG_LLM_FAILED', during: 'llm' },
    ]);
    expect(marksOf(r, 1)).not.toContain('llmFirstToken');
  }, 30_000);
});
