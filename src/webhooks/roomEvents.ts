import type { Logger } from 'pino';
import { rootLogger } from '../log.js';
import type { Tenant } from '../tenants/schema.js';
import type { Delivery } from './DeliveryQueue.js';

/** A room participant's arrival or departure as src/rooms reports it (RoomHub's 'participant' event). */
export interface RoomParticipantEventLike {
  readonly change: 'joined' | 'left';
  readonly roomId: string;
  readonly tenantId: string;
  readonly at: string;
  readonly participant: { readonly participantId: string; readonly name: string; readonly kind: string; readonly door: string };
}

export interface RoomEventListenerDeps {
  readonly queue: { enqueue(delivery: Delivery): Promise<string> };
  /** The tenant as stored: its webhooks.roomEvents decides whether anything is sent. */
  readonly tenant: (tenantId: string) => Promise<Tenant>;
  readonly logger?: Logger;
}

/** The body a tenant's roomEvents URL receives. */
export function roomEventBody(e: RoomParticipantEventLike): Record<string, unknown> {
  const { participantId, name, kind, door } = e.participant;
  return { type: `room.participant_${e.change}`, roomId: e.roomId, tenantId: e.tenantId, at: e.at, participant: { participantId, name, kind, door } };
}

/**
 * A `hub.on('participant', …)` listener: each join and leave of a tenant with a roomEvents webhook is
 * queued (signed, retried like call.ended; the room id stands where a call id would). Never throws.
 */
export function roomEventListener(deps: RoomEventListenerDeps): (event: RoomParticipantEventLike) => void {
  const log = deps.logger ?? rootLogger;
  return (event) => {
    void (async () => {
      const tenant = await deps.tenant(event.tenantId);
      const url = tenant.webhooks?.roomEvents?.url;
      if (!url) return;
      await deps.queue.enqueue({ tenantId: event.tenantId, callId: event.roomId, url, body: JSON.stringify(roomEventBody(event)) });
    })().catch((err: unknown) => {
      log.error({ roomId: event.roomId, tenant: event.tenantId, err: err instanceof Error ? err.message : String(err) }, 'room webhook not queued');
    });
  };
}
