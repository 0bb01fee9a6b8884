import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { CallgateError } from '../errors.js';
import type { TenantCache } from '../tenants/TenantCache.js';
import type { Room, RoomAgent, RoomPerson, RoomStore } from '../tenants/RoomStore.js';
import { LiveRoom, type LiveRoomDeps, type LiveRoomOptions, type MemberChange, type ParticipantView } from './LiveRoom.js';

/**
 * The rooms whose audio this gateway holds. A join takes the room's owner lease in Redis (or learns
 * which gateway has it: CG_ROOM_ELSEWHERE with its URL), checks the PIN and the room's size, and adds
 * the person to the live room, made on the first join with the room's agents. The last person out
 * closes it: agents leave, the lease is given back.
 */
export interface RoomHubOptions {
  /** This gateway's id in owner leases. */
  readonly gatewayId: string;
  /** Where this gateway's room pages are reached (PUBLIC_BASE_URL, else the listening URL). */
  readonly url: () => string;
  /** The owner lease: renewed at a third of it; a gateway that stops loses its rooms this long after. */
  readonly leaseMs: number;
  readonly room?: Partial<LiveRoomOptions>;
}

export const defaultRoomHubOptions = {
  /** 15 s: a crashed gateway's rooms can be taken over by another 15 s later. */
  leaseMs: 15_000,
} as const satisfies Partial<RoomHubOptions>;

export interface RoomHubDeps extends Omit<LiveRoomDeps, 'logger'> {
  readonly store: RoomStore;
  readonly tenants: TenantCache;
  readonly logger: LiveRoomDeps['logger'];
}

export interface JoinRequest {
  readonly name: string;
  readonly door: 'web' | 'sip';
  readonly pin?: string;
  /** A returning participant's id (a page reconnecting); a new one is made otherwise. */
  readonly participantId?: string;
  /** Called when the person is removed by the API or the room ends, to close their connection. */
  readonly kicked: (reason: string) => void;
}

export interface Joined {
  readonly room: Room;
  readonly live: LiveRoom;
  readonly participantId: string;
}

/** A participant joined or left a room held here (the tenant's room webhook). */
export interface RoomParticipantEvent extends MemberChange {
  readonly roomId: string;
  readonly tenantId: string;
  readonly at: string;
}

export class RoomHub extends EventEmitter<{ participant: [RoomParticipantEvent] }> {
  private readonly live = new Map<string, Promise<LiveRoom>>();
  private readonly kicks = new Map<string, (reason: string) => void>();
  private readonly options: RoomHubOptions;
  private readonly renewal: NodeJS.Timeout;

  constructor(
    private readonly deps: RoomHubDeps,
    options: Partial<RoomHubOptions> & Pick<RoomHubOptions, 'url'>,
  ) {
    super();
    this.options = { gatewayId: `gw-${randomBytes(6).toString('hex')}`, ...defaultRoomHubOptions, ...options };
    this.renewal = setInterval(() => void this.renewLeases(), this.options.leaseMs / 3);
    this.renewal.unref();
  }

  get store(): RoomStore {
    return this.deps.store;
  }

  /** A person joins `roomId` here. Refusals: CG_ROOM_NOT_FOUND, _EXPIRED, _PIN, _FULL, _ELSEWHERE. */
  async join(roomId: string, request: JoinRequest): Promise<Joined> {
    const { store } = this.deps;
    const room = await store.joinable(roomId);
    if (room.pin !== undefined && request.pin !== room.pin) throw new CallgateError('CG_ROOM_PIN', request.pin === undefined ? 'the room asks for a PIN' : 'wrong PIN');
    await this.takeOwnership(room);
    const participantId = request.participantId ?? `p-${randomBytes(8).toString('hex')}`;
    const person: RoomPerson = { participantId, name: request.name, door: request.door, joinedAt: new Date().toISOString() };
    await store.join(room, person);
    const live = await this.liveRoom(room);
    live.addPerson(person);
    this.kicks.set(key(roomId, participantId), request.kicked);
    return { room, live, participantId };
  }

  /** The person is gone (left, hung up, never came back within the resume window). */
  async leave(roomId: string, participantId: string): Promise<void> {
    this.kicks.delete(key(roomId, participantId));
    await this.deps.store.leave(roomId, participantId).catch((err: unknown) => this.deps.logger.warn({ err: String(err), roomId }, 'room leave not written'));
    const live = await this.live.get(roomId)?.catch(() => undefined);
    live?.removePerson(participantId);
  }

  /** Removes anyone (API DELETE): a person's connection is closed, an agent leaves. */
  async remove(room: Room, participantId: string): Promise<void> {
    const live = await this.live.get(room.roomId)?.catch(() => undefined);
    const wasAgent = await this.deps.store.removeAgent(room.roomId, participantId);
    if (wasAgent) {
      await live?.removeAgent(participantId);
      return;
    }
    const kick = this.kicks.get(key(room.roomId, participantId));
    const known = (await this.deps.store.people(room.roomId)).some((p) => p.participantId === participantId);
    if (!kick && !known && !live?.has(participantId)) throw new CallgateError('CG_ROOM_PARTICIPANT_NOT_FOUND', participantId.slice(0, 64));
    kick?.('removed');
    await this.leave(room.roomId, participantId);
  }

  /** An agent was added through the API: it joins at once if the room is live here. */
  async agentAdded(room: Room, agent: RoomAgent): Promise<void> {
    const live = await this.live.get(room.roomId)?.catch(() => undefined);
    if (live) void live.addAgent(agent);
  }

  /** The room was deleted: everyone in it here is told and disconnected. */
  async roomDeleted(roomId: string): Promise<void> {
    const live = await this.live.get(roomId)?.catch(() => undefined);
    if (!live) return;
    for (const [k, kick] of this.kicks) if (k.startsWith(`${roomId}/`)) kick('room-deleted');
    await this.closeRoom(roomId, 'room-deleted');
  }

  /** Who is in the room now: live (with who is speaking) when its audio is here, else as Redis has it. */
  async participants(room: Room): Promise<ParticipantView[]> {
    const live = await this.live.get(room.roomId)?.catch(() => undefined);
    if (live) return live.view();
    const [people, agents] = await Promise.all([this.deps.store.people(room.roomId), this.deps.store.agents(room.roomId)]);
    return [
      ...people.map((p): ParticipantView => ({ participantId: p.participantId, name: p.name, kind: 'person', door: p.door, speaking: false, muted: false })),
      ...agents.map((a): ParticipantView => ({ participantId: a.agentId, name: a.name, kind: 'agent', door: 'agent', speaking: false, muted: false })),
    ];
  }

  liveRoom(room: Room): Promise<LiveRoom> {
    let live = this.live.get(room.roomId);
    if (!live) {
      live = this.openRoom(room);
      this.live.set(room.roomId, live);
      live.catch(() => this.live.delete(room.roomId));
    }
    return live;
  }

  get liveRooms(): number {
    return this.live.size;
  }

  async closeAll(reason = 'shutdown'): Promise<void> {
    clearInterval(this.renewal);
    for (const kick of this.kicks.values()) kick(reason);
    this.kicks.clear();
    await Promise.all([...this.live.keys()].map((id) => this.closeRoom(id, reason)));
  }

  private async openRoom(room: Room): Promise<LiveRoom> {
    const tenant = await this.deps.tenants.get(room.tenantId);
    const live = new LiveRoom(room, tenant, { ...this.deps, logger: this.deps.logger }, this.options.room);
    live.on('empty', () => void this.closeRoom(room.roomId, 'empty'));
    live.on('member', (m) => {
      try {
        this.emit('participant', { ...m, roomId: room.roomId, tenantId: room.tenantId, at: new Date().toISOString() });
      } catch (err) {
        this.deps.logger.warn({ err: String(err), roomId: room.roomId }, 'room participant listener failed');
      }
    });
    for (const agent of await this.deps.store.agents(room.roomId)) void live.addAgent(agent);
    return live;
  }

  private async closeRoom(roomId: string, reason: string): Promise<void> {
    const pending = this.live.get(roomId);
    if (!pending) return;
    this.live.delete(roomId);
    const live = await pending.catch(() => undefined);
    await live?.close(reason);
    await this.deps.store.disown(roomId, this.options.gatewayId).catch(() => undefined);
  }

  private async takeOwnership(room: Room): Promise<void> {
    const me = { gatewayId: this.options.gatewayId, url: this.options.url() };
    const owner = await this.deps.store.own(room.roomId, me, this.options.leaseMs);
    if (owner.gatewayId !== me.gatewayId) {
      throw new CallgateError('CG_ROOM_ELSEWHERE', `room ${room.roomId} is held by ${owner.url}`, { details: { url: `${owner.url.replace(/\/$/, '')}/r/${room.roomId}` } });
    }
  }

  private async renewLeases(): Promise<void> {
    const me = { gatewayId: this.options.gatewayId, url: this.options.url() };
    for (const roomId of this.live.keys()) {
      await this.deps.store.own(roomId, me, this.options.leaseMs).catch((err: unknown) => this.deps.logger.warn({ err: String(err), roomId }, 'room lease not renewed'));
    }
  }
}

const key = (roomId: string, participantId: string): string => `${roomId}/${participantId}`;
