import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentEvent } from '../agent/events.js';
import { CallRecorder } from './CallRecorder.js';
import { CallRecordStore, defaultCallRecordStoreOptions, type CallRecord } from './CallRecordStore.js';
import { connectRedis, deletePrefix, keys, testPrefix, type Redis } from './redisClient.js';
import { startRedis } from './testing/ownRedis.js';
import { describeWith } from '../../tests/support/tools.js';
import { until } from '../util/testing/wait.js';

function record(callId: string, overrides: Partial<CallRecord> = {}): CallRecord {
  return {
    callId,
    tenantId: 'acme',
    door: 'sip',
    from: 'sip:+14155550100@carrier.example',
    to: '+14155550199',
    startedAt: '2026-11-21T10:00:00.000Z',
    answeredAt: '2026-11-21T10:00:00.200Z',
    endedAt: '2026-11-21T10:01:00.000Z',
    outcome: 'caller-hangup',
    latency: [],
    transcript: [{ role: 'agent', text: 'Hi, this is Ava.', atMs: 10, turn: 0 }],
    ...overrides,
  };
}

describe('CallRecordStore on the shared Redis', () => {
  const prefix = testPrefix();
  let redis: Redis;
  let store: CallRecordStore;

  beforeAll(async () => {
    redis = await connectRedis({ prefix });
    store = new CallRecordStore(redis, { prefix });
  });

  afterAll(async () => {
    await store.close();
    await deletePrefix(redis, prefix);
    await redis.close();
  });

  it('writes, lists newest first and gets one record by call id', async () => {
    for (const id of ['c1', 'c2', 'c3']) expect(await store.write(record(id))).toBe('written');
    const page = await store.list('acme');
    expect(page.records.map((r) => r.callId)).toEqual(['c3', 'c2', 'c1']);
    expect(page.next).toBeUndefined();
    expect(await store.get('acme', 'c2')).toEqual(record('c2'));
    await expect(store.get('acme', 'nope')).rejects.toMatchObject({ code: 'CG_CALL_RECORD_NOT_FOUND', status: 404 });
    await expect(store.get('other-tenant', 'c2')).rejects.toMatchObject({ code: 'CG_CALL_RECORD_NOT_FOUND' });
    expect(store.stats()).toEqual({ queued: 0, dropped: 0, written: 3 });
    // The stream and its index expire with the retention, so an idle tenant leaves nothing behind.
    const ttl = await redis.pTTL(keys(prefix).callRecords('acme'));
    expect(ttl).toBeGreaterThan(defaultCallRecordStoreOptions.retentionDays * 86_400_000 - 60_000);
  });

  it('pages through a tenant with the cursor of the previous page', async () => {
    const ids = Array.from({ length: 7 }, (_, i) => `p${i}`);
    for (const id of ids) await store.write(record(id, { tenantId: 'pager' }));
    const seen: string[] = [];
    let before: string | undefined;
    let pages = 0;
    do {
      const page = await store.list('pager', { limit: 3, ...(before ? { before } : {}) });
      seen.push(...page.records.map((r) => r.callId));
      before = page.next;
      pages++;
    } while (before);
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].reverse());
    await expect(store.list('pager', { limit: 0 })).rejects.toMatchObject({ code: 'CG_CALL_RECORD_INVALID' });
    await expect(store.list('pager', { before: 'x; FLUSHALL' })).rejects.toMatchObject({ code: 'CG_CALL_RECORD_INVALID' });
  });

  it('records a rejected call with its error code, and refuses an invalid record', async () => {
    const rejected = record('r1', {
      tenantId: 'busy',
      outcome: 'rejected',
      transcript: [],
      error: { code: 'CG_CALL_LIMIT_REACHED', message: 'tenant busy has 10 of 10 calls' },
    });
    delete (rejected as { answeredAt?: string }).answeredAt;
    await store.write(rejected);
    expect(await store.get('busy', 'r1')).toEqual(rejected);
    await expect(store.write(record('bad', { door: 'fax' as 'sip' }))).rejects.toMatchObject({ code: 'CG_CALL_RECORD_INVALID' });
    await expect(store.write(record('bad', { error: { code: 'CG_NO_SUCH' as 'CG_INTERNAL' } }))).rejects.toMatchObject({
      code: 'CG_CALL_RECORD_INVALID',
    });
  });

  it('writes a call id once even when the write is repeated (a retry after a lost reply)', async () => {
    await store.write(record('dup', { tenantId: 'dups' }));
    await store.write(record('dup', { tenantId: 'dups', outcome: 'failed' }));
    const page = await store.list('dups');
    expect(page.records.map((r) => [r.callId, r.outcome])).toEqual([['dup', 'caller-hangup']]);
  });

  it('trims by age: records older than the retention go on the next write, index included', async () => {
    // 50 ms of retention, trimmed exactly (approximate trimming only drops whole stream nodes).
    const short = new CallRecordStore(redis, { prefix, retentionDays: 50 / 86_400_000, exactTrim: true });
    try {
      await short.write(record('old', { tenantId: 'aging' }));
      // The keys expire with the retention too; lift that so only MINID trimming can remove 'old'.
      await redis.persist(keys(prefix).callRecords('aging'));
      await redis.persist(`${keys(prefix).callRecords('aging')}:ids`);
      await sleep(120);
      await short.write(record('new', { tenantId: 'aging' }));
      expect((await short.list('aging')).records.map((r) => r.callId)).toEqual(['new']);
      await expect(short.get('aging', 'old')).rejects.toMatchObject({ code: 'CG_CALL_RECORD_NOT_FOUND' });
      expect(await redis.zRange(`${keys(prefix).callRecords('aging')}:ids`, 0, -1)).toEqual(['new']);
    } finally {
      await short.close();
    }
  });

  it('caps a tenant at maxPerTenant records, newest kept', async () => {
    const capped = new CallRecordStore(redis, { prefix, maxPerTenant: 3, exactTrim: true });
    try {
      for (let i = 0; i < 6; i++) await capped.write(record(`m${i}`, { tenantId: 'capped' }));
      expect((await capped.list('capped')).records.map((r) => r.callId)).toEqual(['m5', 'm4', 'm3']);
      expect(await redis.xLen(keys(prefix).callRecords('capped'))).toBe(3);
      await expect(capped.get('capped', 'm0')).rejects.toMatchObject({ code: 'CG_CALL_RECORD_NOT_FOUND' });
      expect((await capped.get('capped', 'm3')).callId).toBe('m3');
    } finally {
      await capped.close();
    }
  });

  it('builds a record from an agent session’s events: transcript in order, latency per turn', async () => {
    const recorder = new CallRecorder(store, {
      callId: 'agent-1',
      tenantId: 'joes',
      door: 'webrtc',
      from: 'https://joes.example',
      to: 'demo',
      startedAt: new Date('2026-11-21T10:00:00.000Z'),
    });
    const events: AgentEvent[] = [
      { type: 'session-started', atMs: 0 },
      { type: 'greeting', atMs: 1, text: 'Hi, Ava at Joe’s Pizza.', cached: true },
      { type: 'agent-text', atMs: 2, turn: 0, text: 'Hi, Ava at Joe’s Pizza.' },
      { type: 'agent-done', atMs: 1800, turn: 0, spokenText: 'Hi, Ava at Joe’s Pizza.', interrupted: false },
      { type: 'turn-started', atMs: 2100, turn: 1, onsetAtMs: 2000 },
      { type: 'turn-ended', atMs: 3500, turn: 1, speechEndAtMs: 3000 },
      { type: 'latency', atMs: 3500, turn: 1, mark: 'endOfTurn', sinceSpeechEndMs: 500 },
      { type: 'transcript', atMs: 3400, turn: 1, text: 'are you open', final: false },
      { type: 'transcript', atMs: 3600, turn: 1, text: 'are you open today', final: true },
      { type: 'latency', atMs: 3600, turn: 1, mark: 'sttFinal', sinceSpeechEndMs: 600 },
      { type: 'latency', atMs: 3650, turn: 1, mark: 'llmFirstToken', sinceSpeechEndMs: 650 },
      { type: 'agent-text', atMs: 3700, turn: 1, text: 'Yes, we are open' },
      { type: 'latency', atMs: 3720, turn: 1, mark: 'ttsFirstAudio', sinceSpeechEndMs: 720 },
      { type: 'latency', atMs: 3740, turn: 1, mark: 'firstPacketOut', sinceSpeechEndMs: 740 },
      { type: 'agent-text', atMs: 3800, turn: 1, text: 'until ten tonight.' },
      // The caller barges in: turn 2 starts before the reply's agent-done arrives.
      { type: 'turn-started', atMs: 4600, turn: 2, onsetAtMs: 4500 },
      { type: 'barge-in', atMs: 4600, turn: 1, playedMs: 800, by: 'speech' },
      { type: 'agent-done', atMs: 4610, turn: 1, spokenText: 'Yes, we are open', interrupted: true },
      { type: 'turn-ended', atMs: 5600, turn: 2, speechEndAtMs: 5100 },
      { type: 'latency', atMs: 5600, turn: 2, mark: 'endOfTurn', sinceSpeechEndMs: 500 },
      { type: 'transcript', atMs: 5700, turn: 2, text: 'thanks bye', final: true },
      { type: 'dtmf', atMs: 5800, digit: '4' },
      { type: 'dtmf', atMs: 5900, digit: '2' },
      { type: 'error', atMs: 5950, code: 'CG_TTS_TIMEOUT', message: 'no audio in 2 s', during: 'tts' },
      { type: 'agent-text', atMs: 6000, turn: 2, text: 'Goodbye!' },
      { type: 'agent-done', atMs: 6900, turn: 2, spokenText: 'Goodbye!', interrupted: false },
      { type: 'session-ended', atMs: 7000, reason: 'agent-goodbye' },
    ];
    const emitter = new EventEmitter<{ event: [AgentEvent] }>();
    const detach = recorder.attach(emitter);
    for (const e of events) emitter.emit('event', e);
    detach();
    expect(emitter.listenerCount('event')).toBe(0);

    expect(await recorder.finish({ endedAt: new Date('2026-11-21T10:00:07.000Z') })).toBe('written');
    // Idempotent: a second finish neither writes again nor changes the outcome.
    expect(await recorder.finish({ outcome: 'failed' })).toBe('written');
    const stored = await store.get('joes', 'agent-1');
    expect(stored.outcome).toBe('agent-goodbye');
    expect(stored.answeredAt).toBeDefined();
    expect(stored.endedAt).toBe('2026-11-21T10:00:07.000Z');
    expect(stored.transcript).toEqual([
      { role: 'agent', text: 'Hi, Ava at Joe’s Pizza.', atMs: 2, turn: 0 },
      { role: 'caller', text: 'are you open today', atMs: 2000, turn: 1 },
      { role: 'agent', text: 'Yes, we are open', atMs: 3700, turn: 1, interrupted: true },
      { role: 'caller', text: 'thanks bye', atMs: 4500, turn: 2 },
      { role: 'caller', text: '42', atMs: 5800, dtmf: true },
      { role: 'agent', text: 'Goodbye!', atMs: 6000, turn: 2 },
    ]);
    expect(stored.latency).toEqual([
      { turn: 1, marks: { endOfTurn: 500, sttFinal: 600, llmFirstToken: 650, ttsFirstAudio: 720, firstPacketOut: 740 } },
      { turn: 2, marks: { endOfTurn: 500 } },
    ]);
    expect(stored.errors).toEqual([{ code: 'CG_TTS_TIMEOUT', during: 'tts', atMs: 5950 }]);
  });

  it('a recorder for a refused call writes a rejected record with no answer and no transcript', async () => {
    const recorder = new CallRecorder(store, { callId: 'refused-1', tenantId: 'joes', door: 'sip', from: 'sip:a@b', to: '+1555' });
    await recorder.finish({ outcome: 'rejected', error: { code: 'CG_CALL_LIMIT_REACHED' } });
    const stored = await store.get('joes', 'refused-1');
    expect(stored).toMatchObject({ outcome: 'rejected', error: { code: 'CG_CALL_LIMIT_REACHED' }, transcript: [], latency: [] });
    expect(stored.answeredAt).toBeUndefined();
  });

  it('a session closed after a session error is a failed call carrying that code', () => {
    const recorder = new CallRecorder(store, { callId: 'f', tenantId: 'joes', door: 'test', from: '', to: '' });
    recorder.observe({ type: 'session-started', atMs: 0 });
    recorder.observe({ type: 'error', atMs: 5, code: 'CG_STT_UNAVAILABLE', message: 'no engine', during: 'session' });
    recorder.observe({ type: 'session-ended', atMs: 6, reason: 'closed' });
    expect(recorder.build()).toMatchObject({ outcome: 'failed', error: { code: 'CG_STT_UNAVAILABLE' } });
  });
});

describe('CallRecordStore: calls whose gateway died (open-call snapshots)', () => {
  const prefix = testPrefix();
  let redis: Redis;
  /** Two gateways' stores on one Redis: one is "killed", the other reaps. */
  let dying: CallRecordStore;
  let survivor: CallRecordStore;

  beforeAll(async () => {
    redis = await connectRedis({ prefix });
    dying = new CallRecordStore(redis, { prefix, openCallTtlMs: 300 });
    survivor = new CallRecordStore(redis, { prefix, openCallTtlMs: 300 });
  });

  afterAll(async () => {
    await survivor.close();
    await deletePrefix(redis, prefix);
    await redis.close();
  });

  const speak = (recorder: CallRecorder, text: string): void => {
    recorder.observe({ type: 'session-started', atMs: 0 });
    recorder.observe({ type: 'agent-text', atMs: 10, turn: 0, text });
    recorder.observe({ type: 'agent-done', atMs: 900, turn: 0, spokenText: text, interrupted: false } as AgentEvent);
  };

  it('a call cut off with its gateway gets a lost record with its transcript so far, written once by whoever reaps', async () => {
    const recorder = new CallRecorder(dying, { callId: 'killed-1', tenantId: 'acme', door: 'sip', from: 'sip:a@b', to: '+1555' });
    speak(recorder, 'Hi, this is Ava.');
    // Renewed while the gateway lives: nothing to reap.
    await sleep(500);
    expect(await survivor.reapLost()).toBe(0);
    // The gateway dies: its recorder never finishes and stops renewing (what a SIGKILL does to it).
    await dying.close();
    await sleep(450);
    const [a, b] = await Promise.all([survivor.reapLost(), survivor.reapLost()]);
    expect(a + b).toBe(1);
    const lost = await survivor.get('acme', 'killed-1');
    expect(lost).toMatchObject({ outcome: 'lost', error: { code: 'CG_CALL_LOST' }, door: 'sip', to: '+1555' });
    expect(lost.answeredAt).toBeDefined();
    expect(lost.transcript).toEqual([{ role: 'agent', text: 'Hi, this is Ava.', atMs: 10, turn: 0 }]);
    expect(await redis.zCard(keys(prefix).openCalls())).toBe(0);
    expect(await redis.hLen(keys(prefix).openCallSnapshots())).toBe(0);
  });

  it('a call that ends normally leaves no open snapshot and is never reaped', async () => {
    const recorder = new CallRecorder(survivor, { callId: 'fine-1', tenantId: 'acme', door: 'webrtc', from: 'web:x', to: 'callurl:x' });
    speak(recorder, 'Hello.');
    await sleep(50);
    expect(await redis.zScore(keys(prefix).openCalls(), 'acme\nfine-1')).not.toBeNull();
    await recorder.finish({ outcome: 'caller-hangup' });
    expect(await redis.zScore(keys(prefix).openCalls(), 'acme\nfine-1')).toBeNull();
    await sleep(450);
    expect(await survivor.reapLost()).toBe(0);
    expect((await survivor.get('acme', 'fine-1')).outcome).toBe('caller-hangup');
  });

  it("the real record replaces a lost one written while its gateway was only cut off, and a late lost one never replaces a real one", async () => {
    const snapshot = record('cut-off-1', { outcome: 'lost', error: { code: 'CG_CALL_LOST' } });
    expect(await survivor.write(snapshot)).toBe('written');
    expect((await survivor.get('acme', 'cut-off-1')).outcome).toBe('lost');
    expect(await survivor.write(record('cut-off-1'))).toBe('written');
    expect(await survivor.get('acme', 'cut-off-1')).toEqual(record('cut-off-1'));
    const all = await survivor.list('acme', { limit: 500 });
    expect(all.records.filter((r) => r.callId === 'cut-off-1')).toHaveLength(1);
    await survivor.write(snapshot);
    expect((await survivor.get('acme', 'cut-off-1')).outcome).toBe('caller-hangup');
  });
});

describeWith(['redis-server'], 'CallRecordStore through a Redis outage (a Redis of its own)', () => {
  it('queues records while Redis is down and flushes them in order once it is back', async () => {
    const prefix = testPrefix();
    const server = await startRedis();
    const client = await connectRedis({ url: server.url, prefix });
    // A retry timer far beyond the test: the client's 'ready' event is what must trigger the flush.
    const store = new CallRecordStore(client, { prefix, commandTimeoutMs: 300, retryBaseMs: 60_000 });
    let again: Awaited<ReturnType<typeof startRedis>> | undefined;
    try {
      for (const id of ['a1', 'a2']) expect(await store.write(record(id))).toBe('written');

      await server.stop();
      for (const id of ['b1', 'b2', 'b3']) expect(await store.write(record(id))).toBe('queued');
      expect(store.stats()).toEqual({ queued: 3, dropped: 0, written: 2 });
      await expect(store.list('acme')).rejects.toMatchObject({ code: 'CG_REDIS_UNAVAILABLE' });

      // Same port, and an empty Redis (no persistence): the client reconnects by itself, 'ready' flushes.
      again = await startRedis(server.port);
      await until(() => store.stats().queued === 0, 8000, 'the record queue to drain');
      expect(store.stats()).toEqual({ queued: 0, dropped: 0, written: 5 });
      expect((await store.list('acme')).records.map((r) => r.callId)).toEqual(['b3', 'b2', 'b1']);
      expect(await store.write(record('c1'))).toBe('written');
      expect((await store.get('acme', 'b1')).callId).toBe('b1');
    } finally {
      await store.close(500);
      client.destroy();
      await again?.stop();
      await server.stop();
    }
  }, 20_000);

  it('bounds the queue (oldest dropped and counted), flushes on its retry timer, and close() gives up after its timeout', async () => {
    const prefix = testPrefix();
    const server = await startRedis();
    const client = await connectRedis({ url: server.url, prefix });
    const store = new CallRecordStore(client, { prefix, maxQueued: 3, commandTimeoutMs: 300, retryBaseMs: 50, retryMaxMs: 200 });
    let again: Awaited<ReturnType<typeof startRedis>> | undefined;
    try {
      await server.stop();
      for (let i = 0; i < 5; i++) await store.write(record(`q${i}`));
      expect(store.stats()).toEqual({ queued: 3, dropped: 2, written: 0 });

      again = await startRedis(server.port);
      await until(() => store.stats().queued === 0, 8000, 'the record queue to drain');
      expect((await store.list('acme')).records.map((r) => r.callId)).toEqual(['q4', 'q3', 'q2']);

      await again.stop();
      await store.write(record('late'));
      expect(await store.close(200)).toEqual({ queued: 0, dropped: 3, written: 3 });
      expect(await store.write(record('after-close'))).toBe('dropped');
    } finally {
      await store.close();
      client.destroy();
      await again?.stop();
      await server.stop();
    }
  }, 20_000);
});
