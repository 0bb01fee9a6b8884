import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caught } from './testing/caught.js';
import { connectRedis, deletePrefix, keys, testPrefix, type Redis } from './redisClient.js';
import { RoomStore } from './RoomStore.js';
import { TenantStore } from './TenantStore.js';

const prefix = testPrefix();
const k = keys(prefix);
let redis: Redis;
let rooms: RoomStore;
const person = (id: string) => ({ participantId: id, name: id, door: 'web' as const, joinedAt: new Date().toISOString() });

beforeAll(async () => {
  redis = await connectRedis({ prefix });
  rooms = new RoomStore(redis, { prefix, maxRoomsPerTenant: 3 });
  const tenants = new TenantStore(redis, undefined, { prefix });
  await tenants.create({ id: 'acme', displayName: 'Acme' });
  await tenants.create({ id: 'other', displayName: 'Other' });
});

afterAll(async () => {
  await deletePrefix(redis, prefix);
  await redis.close();
});

describe('RoomStore', () => {
  it('makes a room with an unguessable id and defaults, readable only through its own tenant', async () => {
    const room = await rooms.create('acme', { name: 'Standup', pin: '1234' });
    expect(room.roomId).toMatch(/^[A-Za-z0-9]{22}$/);
    expect(room).toMatchObject({ tenantId: 'acme', name: 'Standup', maxParticipants: 8, respond: 'addressed', pin: '1234' });
    expect(await rooms.get(room.roomId, 'acme')).toEqual(room);
    expect((await caught(rooms.get(room.roomId, 'other'))).code).toBe('CG_ROOM_NOT_FOUND');
    expect((await rooms.listByTenant('acme')).map((r) => r.roomId)).toContain(room.roomId);
    await rooms.delete(room.roomId, 'acme');
  });

  it('refuses bad input with the field named, an unknown tenant, and more rooms than the tenant may have', async () => {
    const bad = await caught(rooms.create('acme', { maxParticipants: 1, pin: '12' }));
    expect(bad.code).toBe('CG_HTTP_BAD_REQUEST');
    expect((await caught(rooms.create('acme', { expiresAt: '2001-01-01T00:00:00Z' }))).message).toContain('past');
    expect((await caught(rooms.create('nobody', {}))).code).toBe('CG_TENANT_NOT_FOUND');
    const made = [await rooms.create('acme', {}), await rooms.create('acme', {}), await rooms.create('acme', {})];
    expect((await caught(rooms.create('acme', {}))).code).toBe('CG_ROOM_LIMIT_REACHED');
    // Another tenant's count is its own.
    await rooms.delete((await rooms.create('other', {})).roomId, 'other');
    for (const r of made) await rooms.delete(r.roomId, 'acme');
    expect(await redis.exists([k.room(made[0]!.roomId), k.roomAgents(made[0]!.roomId)])).toBe(0);
  });

  it('counts people and agents toward the room size; a rejoin under the same id is no second person', async () => {
    const room = await rooms.create('acme', { maxParticipants: 3 });
    const agent = await rooms.addAgent(room, { description: 'Max, a travel agent.' });
    expect(agent).toMatchObject({ name: 'Max', description: 'Max, a travel agent.' });
    await rooms.join(room, person('p1'));
    await rooms.join(room, person('p1'));
    await rooms.join(room, person('p2'));
    expect((await caught(rooms.join(room, person('p3')))).code).toBe('CG_ROOM_FULL');
    expect((await caught(rooms.addAgent(room, { description: 'Nora.' }))).code).toBe('CG_ROOM_FULL');
    expect(await rooms.leave(room.roomId, 'p2')).toBe(true);
    await rooms.join(room, person('p3'));
    expect((await rooms.people(room.roomId)).map((p) => p.participantId).sort()).toEqual(['p1', 'p3']);
    await rooms.delete(room.roomId, 'acme');
  });

  it('ends joins after expiresAt (410), and keeps the room long enough to say so', async () => {
    const now = Date.now();
    const room = await rooms.create('acme', { expiresAt: new Date(now + 60_000).toISOString() }, now);
    expect((await rooms.joinable(room.roomId, now)).roomId).toBe(room.roomId);
    expect((await caught(rooms.joinable(room.roomId, now + 61_000))).code).toBe('CG_ROOM_EXPIRED');
    expect(await redis.pTTL(k.room(room.roomId))).toBeGreaterThan(6 * 24 * 3600_000);
    await rooms.delete(room.roomId, 'acme');
  });

  it('gives a room to one gateway at a time: the lease is renewed by its owner, and free once given back', async () => {
    const room = await rooms.create('acme', {});
    const a = { gatewayId: 'gw-a', url: 'http://a' };
    const b = { gatewayId: 'gw-b', url: 'http://b' };
    expect(await rooms.own(room.roomId, a, 5000)).toEqual(a);
    expect(await rooms.own(room.roomId, b, 5000)).toEqual(a);
    expect(await rooms.own(room.roomId, a, 5000)).toEqual(a);
    await rooms.disown(room.roomId, 'gw-b');
    expect(await rooms.owner(room.roomId)).toEqual(a);
    await rooms.disown(room.roomId, 'gw-a');
    expect(await rooms.own(room.roomId, b, 5000)).toEqual(b);
    await rooms.delete(room.roomId, 'acme');
    expect(await rooms.owner(room.roomId)).toBeUndefined();
  });
});
