import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PromptCache } from '../agent/PromptCache.js';
import { CallgateError } from '../errors.js';
import { CallLimiter } from '../tenants/CallLimiter.js';
import { CallRecordStore } from '../tenants/CallRecordStore.js';
import type { CallRecordSink } from '../tenants/CallRecorder.js';
import { connectRedis, deletePrefix, testPrefix, type Redis } from '../tenants/redisClient.js';
import { CallRunner, type CallEvent } from './CallRunner.js';

/**
 * The runner's bookkeeping around a call, on a real Redis (lines, records). The agent part of `run()`
 * is exercised through the doors, with real SIP and WebRTC, in tests/sip and tests/webrtc.
 */
function logged(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

describe('CallRunner', () => {
  const prefix = testPrefix();
  let redis: Redis;
  let limiter: CallLimiter;
  let records: CallRecordStore;

  beforeAll(async () => {
    redis = await connectRedis({ prefix });
    limiter = new CallLimiter(redis, { prefix });
    records = new CallRecordStore(redis, { prefix });
  });
  afterAll(async () => {
    await records.close(500);
    await deletePrefix(redis, prefix);
    await redis.quit();
  });

  const start = (callId: string, log: pino.Logger) => ({ callId, tenantId: 'acme', door: 'sip' as const, from: '+15550001', to: '+15550002', log });

  it('writes the record once, emits started and ended, then tears down newest first and gives the line back', async () => {
    const { log } = logged();
    const runner = new CallRunner({ records, limiter, prompts: new PromptCache() });
    const events: CallEvent[] = [];
    runner.on('call', (e) => events.push(e));
    const call = runner.begin(start('c-1', log));
    await call.takeLine(1);
    expect(await limiter.active('acme')).toBe(1);
    const order: string[] = [];
    call.scope.defer('socket', () => void order.push('socket'));
    call.scope.defer('peer', () => void order.push('peer'));
    call.end({ outcome: 'rejected', error: { code: 'CG_SDP_NO_AUDIO' } });
    call.end({ outcome: 'failed' }); // the first end said counts
    await Promise.all([call.close(), call.close()]);
    expect(order).toEqual(['peer', 'socket']);
    expect(await limiter.active('acme')).toBe(0);
    expect(await records.get('acme', 'c-1')).toMatchObject({ outcome: 'rejected', error: { code: 'CG_SDP_NO_AUDIO' }, door: 'sip', from: '+15550001' });
    expect(events).toEqual([
      { type: 'call.started', callId: 'c-1', tenantId: 'acme', door: 'sip', from: '+15550001', to: '+15550002' },
      { type: 'call.ended', callId: 'c-1', tenantId: 'acme', door: 'sip', outcome: 'rejected', error: { code: 'CG_SDP_NO_AUDIO' }, record: expect.objectContaining({ callId: 'c-1', outcome: 'rejected', from: '+15550001' }) },
    ]);
  });

  it("refuses a line past the tenant's limit with CG_CALL_LIMIT_REACHED, and the refused call holds none", async () => {
    const { log } = logged();
    const runner = new CallRunner({ records, limiter, prompts: new PromptCache() });
    const first = runner.begin(start('c-2', log));
    await first.takeLine(1);
    const second = runner.begin(start('c-3', log));
    const refused = await second.takeLine(1).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(CallgateError);
    expect((refused as CallgateError).code).toBe('CG_CALL_LIMIT_REACHED');
    second.end({ outcome: 'rejected', error: { code: 'CG_CALL_LIMIT_REACHED' } });
    await second.close();
    expect(await limiter.active('acme')).toBe(1);
    await first.close();
    expect(await limiter.active('acme')).toBe(0);
  });

  it('a record that cannot be written and a listener that throws are logged with the call; the teardown still runs', async () => {
    const { log, lines } = logged();
    const broken: CallRecordSink = { write: () => Promise.reject(new Error('disk on fire')) };
    const runner = new CallRunner({ records: broken, limiter, prompts: new PromptCache() });
    runner.on('call', (e) => {
      if (e.type === 'call.ended') throw new Error('listener bug');
    });
    const call = runner.begin(start('c-4', log.child({ callId: 'c-4', tenant: 'acme' })));
    await call.takeLine(1);
    let released = false;
    call.scope.defer('socket', () => void (released = true));
    await call.close();
    expect(released).toBe(true);
    expect(await limiter.active('acme')).toBe(0);
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'call record not written', err: 'disk on fire', callId: 'c-4', tenant: 'acme' }));
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'call event listener failed', event: 'call.ended', callId: 'c-4' }));
  });

  it('keeps no record for a call refused straight to its requester (close with record: false), and still says it ended', async () => {
    const { log } = logged();
    const runner = new CallRunner({ records, limiter, prompts: new PromptCache() });
    const ended: CallEvent[] = [];
    runner.on('call', (e) => e.type === 'call.ended' && ended.push(e));
    const call = runner.begin(start('c-5', log));
    call.end({ outcome: 'rejected', error: { code: 'CG_TRUNK_NO_OUTBOUND' } });
    await call.close({ record: false });
    await expect(records.get('acme', 'c-5')).rejects.toMatchObject({ code: 'CG_CALL_RECORD_NOT_FOUND' });
    expect(ended).toEqual([expect.objectContaining({ callId: 'c-5', outcome: 'rejected' })]);
  });
});
