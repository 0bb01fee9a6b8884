import type { Logger } from 'pino';
import { isCallgateError } from '../errors.js';
import { rootLogger } from '../log.js';
import type { CallDoor, CallOutcome, CallRecord, TransferRecord } from '../tenants/CallRecordStore.js';
import type { Tenant } from '../tenants/schema.js';
import type { Delivery } from './DeliveryQueue.js';

/**
 * The tenant's callEnd webhook: `call.ended` with the call's times, how it ended and its transcript,
 * built from the call's record and handed to the DeliveryQueue (at least once, retried for a day).
 */
export interface CallEndedBody {
  readonly type: 'call.ended';
  readonly callId: string;
  readonly tenantId: string;
  readonly call: {
    readonly door: CallDoor;
    readonly from: string;
    readonly to: string;
    readonly startedAt: string;
    /** Absent for a call never answered (rejected, failed during setup). */
    readonly answeredAt?: string;
    readonly endedAt: string;
    /** From the answer to the end (0 for a call never answered): the time the caller spent with the agent or a person. */
    readonly durationMs: number;
    /** The record's outcome (callRecordSchema). */
    readonly endReason: CallOutcome;
    readonly transfer?: TransferRecord;
    /** `at`: when the speaker began, as an ISO time. */
    readonly transcript: readonly { readonly role: 'caller' | 'agent'; readonly text: string; readonly at: string }[];
  };
}

export function callEndedBody(record: CallRecord): CallEndedBody {
  const ended = Date.parse(record.endedAt);
  const answered = record.answeredAt !== undefined ? Date.parse(record.answeredAt) : undefined;
  // Transcript times are ms since the agent session began, which is the answer (or, unanswered, the start).
  const origin = answered ?? Date.parse(record.startedAt);
  return {
    type: 'call.ended',
    callId: record.callId,
    tenantId: record.tenantId,
    call: {
      door: record.door,
      from: record.from,
      to: record.to,
      startedAt: record.startedAt,
      ...(record.answeredAt !== undefined ? { answeredAt: record.answeredAt } : {}),
      endedAt: record.endedAt,
      durationMs: answered === undefined ? 0 : Math.max(0, ended - answered),
      endReason: record.outcome,
      ...(record.transfer ? { transfer: record.transfer } : {}),
      transcript: record.transcript.map((e) => ({ role: e.role, text: e.text, at: new Date(origin + Math.round(e.atMs)).toISOString() })),
    },
  };
}

/** The call event as this listener reads it; CallRunner's CallEvent union fits it. */
export interface CallEventLike {
  readonly type: string;
  readonly record?: CallRecord;
}

export interface CallEndListenerDeps {
  readonly queue: { enqueue(delivery: Delivery): Promise<string> };
  /** The tenant as stored (TenantCache.get): its webhooks.callEnd decides whether anything is sent. */
  readonly tenant: (tenantId: string) => Promise<Tenant>;
  readonly logger?: Logger;
}

/**
 * A `runner.on('call', …)` listener: every `call.ended` whose tenant has a callEnd webhook is queued.
 * Calls that were refused before being answered are sent too (endReason `rejected`/`failed`): a tenant
 * counting its calls wants those as well. Never throws; a failure is logged with the call and tenant.
 */
export function callEndListener(deps: CallEndListenerDeps): (event: CallEventLike) => void {
  const log = deps.logger ?? rootLogger;
  return (event) => {
    if (event.type !== 'call.ended' || !event.record) return;
    const record = event.record;
    void (async () => {
      const tenant = await deps.tenant(record.tenantId);
      const url = tenant.webhooks?.callEnd?.url;
      if (!url) return;
      const id = await deps.queue.enqueue({ tenantId: record.tenantId, callId: record.callId, url, body: JSON.stringify(callEndedBody(record)) });
      log.debug({ callId: record.callId, tenant: record.tenantId, deliveryId: id }, 'call.ended queued');
    })().catch((err: unknown) => {
      log.error({ callId: record.callId, tenant: record.tenantId, err: err instanceof Error ? err.message : String(err) }, 'call.ended webhook not queued');
    });
  };
}

/**
 * DeliveryQueueDeps.secretFor over a tenant lookup (TenantCache.get): the tenant's secret now; undefined
 * for a tenant deleted or without one (its deliveries are dropped); an outage rejects (retried later).
 */
export function currentSecret(tenant: (tenantId: string) => Promise<Tenant>): (tenantId: string) => Promise<string | undefined> {
  return (tenantId) =>
    tenant(tenantId).then(
      (t) => t.webhooks?.secret,
      (err: unknown) => {
        if (isCallgateError(err) && err.code === 'CG_TENANT_NOT_FOUND') return undefined;
        throw err;
      },
    );
}
