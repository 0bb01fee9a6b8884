import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CallgateError } from '../../errors.js';
import type { ParticipantView } from '../../rooms/LiveRoom.js';
import type { RoomHub } from '../../rooms/RoomHub.js';
import type { Room, RoomAgent, RoomStore } from '../../tenants/RoomStore.js';
import { roomAgentSchema, roomSchema, type RoomAgentInput, type RoomInput } from '../../tenants/schema.js';
import { jsonSchema, objectSchema, params, responses } from '../openapi.js';
import { publicBase } from './callUrls.js';
import { objectBody, param, type RouteContext } from './context.js';

/**
 * Rooms (docs/rooms.md): several people and AI participants in one conversation at `/r/<roomId>`.
 * Tenant-scoped like call URLs. The live parts (who is in the room and speaking, removing someone)
 * come from the gateway holding the room's audio when it is this one, else from Redis.
 */
export interface RoomRouteDeps {
  readonly store: RoomStore;
  /** Absent: this process holds no room audio (the API still creates and lists rooms). */
  readonly hub: RoomHub | undefined;
}

const tags = ['rooms'];
const roomOut = objectSchema('A room with its absolute `url` (the page people open), `sipPin` when it has a PIN, and who is in it now.', {
  roomId: { type: 'string' },
  url: { type: 'string' },
  sipPin: { type: 'string' },
  participants: { type: 'array', items: { type: 'object', additionalProperties: true } },
});
const agentOut = objectSchema('An AI participant: its id (a participant id), name, description, voice, greeting, tools.', {
  agentId: { type: 'string' },
  name: { type: 'string' },
});

function view(room: Room, base: string, participants: readonly ParticipantView[]): Record<string, unknown> {
  const { pin, ...rest } = room;
  return { ...rest, url: `${base}/r/${room.roomId}`, ...(pin !== undefined ? { sipPin: pin } : {}), participants };
}

export function roomRoutes(app: FastifyInstance, ctx: Pick<RouteContext, 'tenants' | 'publicBaseUrl'>, deps: RoomRouteDeps): void {
  const { store, hub } = deps;
  const base = (request: FastifyRequest): string => publicBase(request, ctx.publicBaseUrl);
  const participants = async (room: Room): Promise<ParticipantView[]> => {
    if (hub) return hub.participants(room);
    const [people, agents] = await Promise.all([store.people(room.roomId), store.agents(room.roomId)]);
    return [
      ...people.map((p): ParticipantView => ({ participantId: p.participantId, name: p.name, kind: 'person', door: p.door, speaking: false, muted: false })),
      ...agents.map((a): ParticipantView => ({ participantId: a.agentId, name: a.name, kind: 'agent', door: 'agent', speaking: false, muted: false })),
    ];
  };

  app.post('/v1/tenants/:id/rooms', {
    config: { access: 'tenant' },
    schema: { tags, summary: 'Create a room (its URL is what people open to join)', params: params('id'), body: jsonSchema(roomSchema), response: responses({ 201: roomOut }) },
    handler: async (request, reply) => {
      const room = await store.create(param(request, 'id'), objectBody(request) as RoomInput);
      return reply.status(201).send(view(room, base(request), []));
    },
  });
  app.get('/v1/tenants/:id/rooms', {
    config: { access: 'tenant' },
    schema: { tags, summary: "List a tenant's rooms", params: params('id'), response: responses({ 200: { type: 'array', items: roomOut } }) },
    handler: async (request) => {
      const id = param(request, 'id');
      if (!(await ctx.tenants.exists(id))) throw new CallgateError('CG_TENANT_NOT_FOUND', id, { details: { id } });
      const rooms = await store.listByTenant(id);
      return Promise.all(rooms.map(async (r) => view(r, base(request), await participants(r))));
    },
  });
  app.get('/v1/tenants/:id/rooms/:roomId', {
    config: { access: 'tenant' },
    schema: { tags, summary: 'Get a room: its settings and who is in it (and speaking) now', params: params('id', 'roomId'), response: responses({ 200: roomOut }) },
    handler: async (request) => {
      const room = await store.get(param(request, 'roomId'), param(request, 'id'));
      return view(room, base(request), await participants(room));
    },
  });
  app.delete('/v1/tenants/:id/rooms/:roomId', {
    config: { access: 'tenant' },
    schema: { tags, summary: 'Delete a room: everyone in it is disconnected', params: params('id', 'roomId'), response: responses({ 204: undefined }) },
    handler: async (request, reply) => {
      const roomId = param(request, 'roomId');
      await store.delete(roomId, param(request, 'id'));
      await hub?.roomDeleted(roomId);
      return reply.status(204).send();
    },
  });
  app.post('/v1/tenants/:id/rooms/:roomId/agents', {
    config: { access: 'tenant' },
    schema: {
      tags,
      summary: 'Add an AI participant made from a description (name, manner, what it does); it joins at once when the room is live',
      params: params('id', 'roomId'),
      body: jsonSchema(roomAgentSchema),
      response: responses({ 201: agentOut }),
    },
    handler: async (request, reply) => {
      const room = await store.get(param(request, 'roomId'), param(request, 'id'));
      const agent: RoomAgent = await store.addAgent(room, objectBody(request) as RoomAgentInput);
      await hub?.agentAdded(room, agent);
      return reply.status(201).send(agent);
    },
  });
  app.delete('/v1/tenants/:id/rooms/:roomId/participants/:participantId', {
    config: { access: 'tenant' },
    schema: { tags, summary: 'Remove a participant (a person is disconnected, an agent leaves)', params: params('id', 'roomId', 'participantId'), response: responses({ 204: undefined }) },
    handler: async (request, reply) => {
      const room = await store.get(param(request, 'roomId'), param(request, 'id'));
      const participantId = param(request, 'participantId');
      if (hub) await hub.remove(room, participantId);
      else if (!(await store.removeAgent(room.roomId, participantId)) && !(await store.leave(room.roomId, participantId))) {
        throw new CallgateError('CG_ROOM_PARTICIPANT_NOT_FOUND', participantId.slice(0, 64));
      }
      return reply.status(204).send();
    },
  });
}
