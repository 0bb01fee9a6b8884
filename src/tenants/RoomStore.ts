import { randomBytes } from 'node:crypto';
import { CallgateError } from '../errors.js';
import { stripUndefined } from '../util/options.js';
import { randomSlug } from './CallUrlStore.js';
import { defaultRedisOptions, keys, type Keys, type Redis } from './redisClient.js';
import { roomAgentSchema, roomSchema, type RoomAgentInput, type RoomInput, type RoomRespond } from './schema.js';
import { LuaScript, parseOrThrow, scriptError } from './storeUtil.js';

/**
 * Rooms in Redis: the room (`room:<id>`), its AI participants (`room:<id>:agents`), the people in it
 * now (`room:<id>:people`), and which gateway holds its audio (`room:<id>:owner`, a lease). Every
 * gateway can answer the API from these; the audio of a room lives on the one gateway that owns it.
 */
export interface RoomStoreOptions {
  readonly prefix: string;
  /** Rooms one tenant may have at once. */
  readonly maxRoomsPerTenant: number;
  /** A room's keys outlive its `expiresAt` this long (a join then gets 410, not 404), then Redis drops them. */
  readonly keepExpiredMs: number;
}

export const defaultRoomStoreOptions = {
  prefix: defaultRedisOptions.prefix,
  /** 100: rooms are cheap at rest (a few keys); a tenant making more is leaking them. */
  maxRoomsPerTenant: 100,
  /** 7 days: long enough for a late link to say "this room has ended". */
  keepExpiredMs: 7 * 24 * 3600_000,
} as const satisfies RoomStoreOptions;

export interface Room {
  readonly roomId: string;
  readonly tenantId: string;
  readonly name?: string;
  readonly maxParticipants: number;
  readonly expiresAt?: string;
  readonly pin?: string;
  readonly respond: RoomRespond;
  readonly createdAt: string;
}

export interface RoomAgent {
  readonly agentId: string;
  readonly name: string;
  readonly description: string;
  readonly voice?: string;
  readonly greeting?: string;
  readonly tools?: readonly string[];
  readonly createdAt: string;
}

export interface RoomPerson {
  readonly participantId: string;
  readonly name: string;
  readonly door: 'web' | 'sip';
  readonly joinedAt: string;
}

export interface RoomOwner {
  readonly gatewayId: string;
  /** Where that gateway's room pages and signalling are reached. */
  readonly url: string;
}

const createScript = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('CG_TENANT_NOT_FOUND') end
if redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[3]) then return redis.error_reply('CG_ROOM_LIMIT_REACHED') end
redis.call('SET', KEYS[2], ARGV[1])
if tonumber(ARGV[4]) > 0 then redis.call('PEXPIREAT', KEYS[2], ARGV[4]) end
redis.call('SADD', KEYS[3], ARGV[2])
return 1
`);

/** Adds a person unless the room (people + agents) is full. KEYS: people, agents. ARGV: id, json, max. */
const joinScript = new LuaScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1 end
if redis.call('HLEN', KEYS[1]) + redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[3]) then return redis.error_reply('CG_ROOM_FULL') end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`);

/** Takes or renews the owner lease; returns the owner's JSON (ours when taken). KEYS: owner. ARGV: json, gatewayId, ttl. */
const ownScript = new LuaScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, o = pcall(cjson.decode, cur)
  if ok and o.gatewayId ~= ARGV[2] then return cur end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return ARGV[1]
`);

/** Drops the lease only if it is ours. */
const disownScript = new LuaScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local ok, o = pcall(cjson.decode, cur)
if ok and o.gatewayId == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
`);

export class RoomStore {
  readonly #redis: Redis;
  readonly #keys: Keys;
  readonly #options: RoomStoreOptions;

  constructor(redis: Redis, options: Partial<RoomStoreOptions> = {}) {
    this.#redis = redis;
    this.#options = { ...defaultRoomStoreOptions, ...stripUndefined(options) };
    this.#keys = keys(this.#options.prefix);
  }

  async create(tenantId: string, input: RoomInput, now: number = Date.now()): Promise<Room> {
    const parsed = parseOrThrow(roomSchema, input, 'room', 'CG_HTTP_BAD_REQUEST');
    if (parsed.expiresAt !== undefined && Date.parse(parsed.expiresAt) <= now) {
      throw new CallgateError('CG_HTTP_BAD_REQUEST', 'room: expiresAt is in the past', { details: { issues: [{ path: 'expiresAt', message: 'is in the past' }] } });
    }
    const room: Room = stripUndefined({ roomId: randomSlug(), tenantId, ...parsed, createdAt: new Date(now).toISOString() }) as Room;
    const k = this.#keys;
    const dropAt = room.expiresAt ? Date.parse(room.expiresAt) + this.#options.keepExpiredMs : 0;
    try {
      await createScript.run(this.#redis, [k.tenant(tenantId), k.room(room.roomId), k.tenantRooms(tenantId)], [JSON.stringify(room), room.roomId, String(this.#options.maxRoomsPerTenant), String(dropAt)]);
    } catch (err) {
      throw scriptError(err, (code) => (code === 'CG_TENANT_NOT_FOUND' ? tenantId : undefined));
    }
    return room;
  }

  /** The room, or CG_ROOM_NOT_FOUND; with `tenantId`, a room of another tenant is not found either. */
  async get(roomId: string, tenantId?: string): Promise<Room> {
    const raw = roomId.length <= 64 ? await this.#redis.get(this.#keys.room(roomId)) : null;
    const room = raw === null ? undefined : (JSON.parse(raw) as Room);
    if (!room || (tenantId !== undefined && room.tenantId !== tenantId)) throw new CallgateError('CG_ROOM_NOT_FOUND', roomId.slice(0, 64));
    return room;
  }

  /** The room if it can be joined now: CG_ROOM_EXPIRED after its `expiresAt`. */
  async joinable(roomId: string, now: number = Date.now()): Promise<Room> {
    const room = await this.get(roomId);
    if (room.expiresAt !== undefined && Date.parse(room.expiresAt) <= now) throw new CallgateError('CG_ROOM_EXPIRED', `room ${roomId} ended at ${room.expiresAt}`);
    return room;
  }

  async listByTenant(tenantId: string): Promise<Room[]> {
    const ids = (await this.#redis.sMembers(this.#keys.tenantRooms(tenantId))).sort();
    if (ids.length === 0) return [];
    const raws = await this.#redis.mGet(ids.map((id) => this.#keys.room(id)));
    const gone = ids.filter((_, i) => raws[i] === null);
    // Rooms Redis dropped after their expiry leave the index too.
    if (gone.length > 0) await this.#redis.sRem(this.#keys.tenantRooms(tenantId), gone);
    return raws.flatMap((raw) => (raw === null ? [] : [JSON.parse(raw) as Room]));
  }

  async delete(roomId: string, tenantId: string): Promise<void> {
    await this.get(roomId, tenantId);
    const k = this.#keys;
    await this.#redis.multi().del([k.room(roomId), k.roomAgents(roomId), k.roomPeople(roomId), k.roomOwner(roomId)]).sRem(k.tenantRooms(tenantId), roomId).exec();
  }

  async addAgent(room: Room, input: RoomAgentInput, now: number = Date.now()): Promise<RoomAgent> {
    const parsed = parseOrThrow(roomAgentSchema, input, 'agent', 'CG_HTTP_BAD_REQUEST');
    const agent: RoomAgent = stripUndefined({
      agentId: `a-${randomBytes(6).toString('hex')}`,
      ...parsed,
      name: parsed.name ?? nameFromDescription(parsed.description),
      createdAt: new Date(now).toISOString(),
    }) as RoomAgent;
    const k = this.#keys;
    // Agents count toward the room's size like people.
    try {
      await joinScript.run(this.#redis, [k.roomAgents(room.roomId), k.roomPeople(room.roomId)], [agent.agentId, JSON.stringify(agent), String(room.maxParticipants)]);
    } catch (err) {
      throw scriptError(err, () => room.roomId);
    }
    return agent;
  }

  async agents(roomId: string): Promise<RoomAgent[]> {
    const all = await this.#redis.hVals(this.#keys.roomAgents(roomId));
    return all.map((raw) => JSON.parse(raw) as RoomAgent).sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.agentId.localeCompare(b.agentId));
  }

  async removeAgent(roomId: string, agentId: string): Promise<boolean> {
    return (await this.#redis.hDel(this.#keys.roomAgents(roomId), agentId)) === 1;
  }

  /** A person joins (or rejoins under the same id); CG_ROOM_FULL when people and agents fill the room. */
  async join(room: Room, person: RoomPerson): Promise<void> {
    const k = this.#keys;
    try {
      await joinScript.run(this.#redis, [k.roomPeople(room.roomId), k.roomAgents(room.roomId)], [person.participantId, JSON.stringify(person), String(room.maxParticipants)]);
    } catch (err) {
      throw scriptError(err, () => room.roomId);
    }
  }

  async leave(roomId: string, participantId: string): Promise<boolean> {
    return (await this.#redis.hDel(this.#keys.roomPeople(roomId), participantId)) === 1;
  }

  async people(roomId: string): Promise<RoomPerson[]> {
    const all = await this.#redis.hVals(this.#keys.roomPeople(roomId));
    return all.map((raw) => JSON.parse(raw) as RoomPerson).sort((a, b) => a.joinedAt.localeCompare(b.joinedAt));
  }

  /** Takes the room's audio for `owner` (or renews it); returns whoever owns it now. */
  async own(roomId: string, owner: RoomOwner, leaseMs: number): Promise<RoomOwner> {
    const raw = (await ownScript.run(this.#redis, [this.#keys.roomOwner(roomId)], [JSON.stringify(owner), owner.gatewayId, String(leaseMs)])) as string;
    return JSON.parse(raw) as RoomOwner;
  }

  async owner(roomId: string): Promise<RoomOwner | undefined> {
    const raw = await this.#redis.get(this.#keys.roomOwner(roomId));
    return raw === null ? undefined : (JSON.parse(raw) as RoomOwner);
  }

  async disown(roomId: string, gatewayId: string): Promise<void> {
    await disownScript.run(this.#redis, [this.#keys.roomOwner(roomId)], [gatewayId]);
  }
}

/**
 * The name a description gives ("Max, a cheerful travel agent…", "You are Nora, …"), or a plain one.
 * The first capitalised word that is not a sentence opener is taken.
 */
export function nameFromDescription(description: string): string {
  const skip = new Set(['You', 'A', 'An', 'The', 'I', 'Your', 'This', 'He', 'She', 'They', 'It', 'Is', 'Am', 'Called', 'Named']);
  const named = /\b(?:named|called|name is|I am|I'm|You are)\s+([A-Z][a-z]+)/.exec(description);
  if (named?.[1] && !skip.has(named[1])) return named[1];
  for (const word of description.match(/\b[A-Z][a-z]{1,20}\b/g) ?? []) {
    if (!skip.has(word)) return word;
  }
  return 'Assistant';
}
