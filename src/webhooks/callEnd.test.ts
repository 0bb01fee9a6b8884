import { describe, expect, it } from 'vitest';
import { CallgateError } from '../errors.js';
import type { CallRecord } from '../tenants/CallRecordStore.js';
import { tenantSchema, type Tenant } from '../tenants/schema.js';
import { pollUntil } from '../util/testing/wait.js';
import { callEndedBody, callEndListener, currentSecret } from './callEnd.js';
import type { Delivery } from './DeliveryQueue.js';

const record: CallRecord = {
  callId: 'call-9',
  tenantId: 'acme',
  door: 'sip',
  from: 'sip:+15550001@carrier',
  to: 'sip:+15550002@gw',
  startedAt: '2026-01-02T10:00:00.000Z',
  answeredAt: '2026-01-02T10:00:01.500Z',
  endedAt: '2026-01-02T10:00:31.500Z',
  outcome: 'transferred',
  latency: [],
  transfer: { target: 'sales', mode: 'cold', method: 'refer', result: 'transferred', atMs: 20_000, setupMs: 800 },
  transcript: [
    { role: 'agent', text: 'Hello, Acme.', atMs: 120, turn: 0 },
    { role: 'caller', text: 'Sales please.', atMs: 2500.4 },
  ],
};

describe('callEndedBody', () => {
  it('has the call, its times, how it ended, the transfer and the transcript with ISO times from the answer', () => {
    expect(callEndedBody(record)).toEqual({
      type: 'call.ended',
      callId: 'call-9',
      tenantId: 'acme',
      call: {
        door: 'sip',
        from: 'sip:+15550001@carrier',
        to: 'sip:+15550002@gw',
        startedAt: '2026-01-02T10:00:00.000Z',
        answeredAt: '2026-01-02T10:00:01.500Z',
        endedAt: '2026-01-02T10:00:31.500Z',
        durationMs: 30_000,
        endReason: 'transferred',
        transfer: { target: 'sales', mode: 'cold', method: 'refer', result: 'transferred', atMs: 20_000, setupMs: 800 },
        transcript: [
          { role: 'agent', text: 'Hello, Acme.', at: '2026-01-02T10:00:01.620Z' },
          { role: 'caller', text: 'Sales please.', at: '2026-01-02T10:00:04.000Z' },
        ],
      },
    });
  });

  it('a call never answered: duration 0, no answeredAt, no transfer', () => {
    const { answeredAt: _a, transfer: _t, ...rest } = record;
    const body = callEndedBody({ ...rest, outcome: 'rejected', transcript: [] });
    expect(body.call.durationMs).toBe(0);
    expect(body.call).not.toHaveProperty('answeredAt');
    expect(body.call).not.toHaveProperty('transfer');
    expect(body.call.endReason).toBe('rejected');
  });
});

describe('callEndListener', () => {
  const withHook: Tenant = tenantSchema.parse({ id: 'acme', displayName: 'Acme', webhooks: { secret: 'x'.repeat(16), callEnd: { url: 'https://hooks.example.com/ended' } } });
  const without: Tenant = tenantSchema.parse({ id: 'plain', displayName: 'Plain' });

  it('queues call.ended for a tenant with a callEnd webhook, ignores other events and tenants without one', async () => {
    const queued: Delivery[] = [];
    const listen = callEndListener({
      queue: { enqueue: async (d) => (queued.push(d), 'id') },
      tenant: async (id) => {
        if (id === 'acme') return withHook;
        if (id === 'plain') return without;
        throw new CallgateError('CG_TENANT_NOT_FOUND');
      },
    });
    listen({ type: 'call.answered' });
    listen({ type: 'call.ended', record: { ...record, tenantId: 'plain' } });
    listen({ type: 'call.ended', record: { ...record, tenantId: 'missing' } }); // logged, not thrown
    listen({ type: 'call.ended', record });
    await pollUntil(() => queued.length, (n) => n >= 1, 1000);
    await new Promise((r) => setTimeout(r, 20));
    expect(queued).toHaveLength(1);
    expect(queued[0]).toMatchObject({ tenantId: 'acme', callId: 'call-9', url: 'https://hooks.example.com/ended' });
    expect(JSON.parse(queued[0]!.body)).toEqual(callEndedBody(record));
  });
});

describe('currentSecret', () => {
  it("is the tenant's secret now; undefined for a tenant gone or without one; an outage rejects (retried later)", async () => {
    let secret = 'first-secret-0123456789';
    const secretFor = currentSecret(async (id) => {
      if (id === 'gone') throw new CallgateError('CG_TENANT_NOT_FOUND');
      if (id === 'down') throw new CallgateError('CG_REDIS_UNAVAILABLE');
      if (id === 'plain') return tenantSchema.parse({ id, displayName: 'Plain' });
      return tenantSchema.parse({ id, displayName: 'Acme', webhooks: { secret, callEnd: { url: 'https://hooks.example.com/x' } } });
    });
    expect(await secretFor('acme')).toBe('first-secret-0123456789');
    secret = 'second-secret-0123456789';
    expect(await secretFor('acme')).toBe('second-secret-0123456789');
    expect(await secretFor('plain')).toBeUndefined();
    expect(await secretFor('gone')).toBeUndefined();
    await expect(secretFor('down')).rejects.toMatchObject({ code: 'CG_REDIS_UNAVAILABLE' });
  });
});
