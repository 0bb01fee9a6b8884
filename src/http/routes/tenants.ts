import type { FastifyInstance } from 'fastify';
import { CallgateError } from '../../errors.js';
import type { TenantPatch } from '../../tenants/TenantStore.js';
import { tenantFields, tenantSchema, type TenantInput } from '../../tenants/schema.js';
import { assertMayPatchTenant, principalOf } from '../auth.js';
import { jsonSchema, objectSchema, params, responses } from '../openapi.js';
import { objectBody, param, type RouteContext } from './context.js';

const tenantOut = {
  ...jsonSchema(tenantFields.omit({ providerKeys: true }), 'output'),
  additionalProperties: true,
  description: 'A tenant; provider keys appear only as {set, last4}.',
};
const tags = ['tenants'];

export function tenantRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { tenants } = ctx;
  app.get('/v1/tenants', {
    config: { access: 'admin' },
    schema: {
      tags,
      summary: 'List tenants (admin)',
      querystring: { type: 'object', properties: { offset: { type: 'integer', minimum: 0 }, limit: { type: 'integer', minimum: 0 } } },
      response: responses({ 200: objectSchema('A page of tenants', { items: { type: 'array', items: tenantOut }, total: { type: 'integer' } }) }),
    },
    handler: async (request) => {
      const q = request.query as { offset?: string; limit?: string };
      return tenants.list({ offset: toInt(q.offset, 'offset'), limit: toInt(q.limit, 'limit') });
    },
  });
  app.post('/v1/tenants', {
    config: { access: 'admin' },
    schema: { tags, summary: 'Create a tenant (admin)', body: jsonSchema(tenantSchema), response: responses({ 201: tenantOut }) },
    handler: async (request, reply) => {
      const created = await tenants.create(objectBody(request) as TenantInput);
      await ctx.changed(created.id);
      return reply.status(201).send(created);
    },
  });
  app.get('/v1/tenants/:id', {
    config: { access: 'tenant' },
    schema: { tags, summary: 'Get a tenant', params: params('id'), response: responses({ 200: tenantOut }) },
    handler: async (request) => tenants.get(param(request, 'id')),
  });
  app.patch('/v1/tenants/:id', {
    config: { access: 'tenant' },
    schema: {
      tags,
      summary: 'Update a tenant (JSON Merge Patch: null removes a field); maxConcurrentCalls needs the admin token',
      params: params('id'),
      body: jsonSchema(tenantFields.partial()),
      response: responses({ 200: tenantOut }),
    },
    handler: async (request) => {
      const id = param(request, 'id');
      const patch = objectBody(request);
      assertMayPatchTenant(principalOf(request), patch);
      const updated = await tenants.update(id, patch as TenantPatch);
      await ctx.changed(id);
      return updated;
    },
  });
  app.delete('/v1/tenants/:id', {
    // Admin only: deleting takes the tenant's numbers, call URLs and keys with it.
    config: { access: 'admin' },
    schema: { tags, summary: 'Delete a tenant with its call URLs, numbers, devices and API keys (admin)', params: params('id'), response: responses({ 204: undefined }) },
    handler: async (request, reply) => {
      const id = param(request, 'id');
      await tenants.delete(id);
      // After the tenant: a key or a trunk listing must never outlive it (a tenant re-created under the
      // id starts keyless and with no carrier).
      await ctx.apiKeys.deleteAll(id);
      await ctx.devices.deleteAll(id);
      await ctx.numbers.removeTenantFromTrunks(id);
      await ctx.changed(id);
      return reply.status(204).send();
    },
  });
}

function toInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new CallgateError('CG_HTTP_BAD_REQUEST', `${name} must be a whole number ≥ 0`);
  return n;
}
