import type { FastifyInstance } from 'fastify';
import type { TrunkPatch } from '../../tenants/NumberStore.js';
import { trunkSchema, type Trunk } from '../../tenants/schema.js';
import { jsonSchema, params, responses } from '../openapi.js';
import { objectBody, param, type RouteContext } from './context.js';

/**
 * Trunks belong to the operator, who shares each out by its `tenants` list (ids, or `*` for all): only
 * listed tenants may dial out through it or pin numbers to it. Admin token only. Passwords come back
 * as {set, last4}.
 */
const trunkOut = { ...jsonSchema(trunkSchema.omit({ auth: true }), 'output'), additionalProperties: true, description: 'A trunk; auth.password appears only as {set, last4}.' };
const tags = ['trunks'];
const access = 'admin' as const;
/** Any tenant's numbers may be pinned to a trunk, so a trunk change concerns every cached tenant. */
const ALL = '*';

export function trunkRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { numbers } = ctx;
  app.post('/v1/trunks', {
    config: { access },
    schema: { tags, summary: 'Create a trunk (`tenants`: who may dial out through it and pin numbers to it; none when absent)', body: jsonSchema(trunkSchema), response: responses({ 201: trunkOut }) },
    handler: async (request, reply) => {
      const created = await numbers.createTrunk(objectBody(request) as Trunk);
      await ctx.changed(ALL);
      return reply.status(201).send(created);
    },
  });
  app.get('/v1/trunks', {
    config: { access },
    schema: { tags, summary: 'List trunks', response: responses({ 200: { type: 'array', items: trunkOut } }) },
    handler: async () => numbers.listTrunks(),
  });
  app.get('/v1/trunks/:name', {
    config: { access },
    schema: { tags, summary: 'Get a trunk', params: params('name'), response: responses({ 200: trunkOut }) },
    handler: async (request) => numbers.getTrunk(param(request, 'name')),
  });
  app.patch('/v1/trunks/:name', {
    config: { access },
    schema: {
      tags,
      summary: 'Update a trunk (auth.password omitted keeps the stored one; auth: null removes credentials)',
      params: params('name'),
      body: jsonSchema(trunkSchema.partial()),
      response: responses({ 200: trunkOut }),
    },
    handler: async (request) => {
      const updated = await numbers.updateTrunk(param(request, 'name'), objectBody(request) as TrunkPatch);
      await ctx.changed(ALL);
      return updated;
    },
  });
  app.delete('/v1/trunks/:name', {
    config: { access },
    schema: { tags, summary: 'Delete a trunk (numbers pinned to it stay, and match no caller until moved)', params: params('name'), response: responses({ 204: undefined }) },
    handler: async (request, reply) => {
      await numbers.deleteTrunk(param(request, 'name'));
      await ctx.changed(ALL);
      return reply.status(204).send();
    },
  });
}
