import { describe, expect, it } from 'vitest';
import type { Tenant } from '../tenants/schema.js';
import type { Delivery } from './DeliveryQueue.js';
import { roomEventListener } from './roomEvents.js';

const event = {
  change: 'joined' as const,
  roomId: 'room1',
  tenantId: 'acme',
  at: '2026-12-06T00:00:00.000Z',
  participant: { participantId: 'p-1', name: 'Ana', kind: 'person', door: 'web', speaking: true },
};

describe('room webhooks', () => {
  it("queues room.participant_joined / _left for a tenant with a roomEvents URL, and nothing for one without", async () => {
    const queued: Delivery[] = [];
    const queue = { enqueue: async (d: Delivery) => (queued.push(d), 'id') };
    const tenants: Record<string, Tenant> = {
      acme: { id: 'acme', webhooks: { secret: 's'.repeat(16), roomEvents: { url: 'https://hooks.example.com/rooms' } } } as Tenant,
      quiet: { id: 'quiet' } as Tenant,
    };
    const listen = roomEventListener({ queue, tenant: async (id) => tenants[id]! });
    listen(event);
    listen({ ...event, change: 'left' });
    listen({ ...event, tenantId: 'quiet' });
    await new Promise((r) => setTimeout(r, 10));
    expect(queued.map((d) => JSON.parse(d.body).type)).toEqual(['room.participant_joined', 'room.participant_left']);
    expect(queued[0]).toMatchObject({ tenantId: 'acme', callId: 'room1', url: 'https://hooks.example.com/rooms' });
    // Only what a listener needs: no speaking state, nothing secret.
    expect(JSON.parse(queued[0]!.body).participant).toEqual({ participantId: 'p-1', name: 'Ana', kind: 'person', door: 'web' });
  });
});
