import type { FastifyInstance } from 'fastify';
import { CallgateError } from '../../errors.js';
import type { NumberPatch } from '../../tenants/NumberStore.js';
import { numberSchema, type NumberRoute } from '../../tenants/schema.js';
import { jsonSchema, params, responses } from '../openapi.js';
import { objectBody, param, withTenant, type RouteContext } from './context.js';

/**
 * Numbers under their tenant. Tenant keys may read them; writes need the admin token, because numbers
 * are one namespace for the whole gateway: a tenant key could otherwise claim a number its tenant
 * does not own (and receive its calls) or hand one to another tenant.
 */
const numberOut = { ...jsonSchema(numberSchema, 'output'), description: 'A number routed to a tenant, optionally only from one trunk.' };
const tags = ['numbers'];
const numberParams = params('id', 'number');

export function numberRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { numbers, tenants } = ctx;
  const owned = async (tenantId: string, number: string): Promise<NumberRoute> => {
    const route = await numbers.getNumber(number);
    if (route.tenantId !== tenantId) throw new CallgateError('CG_NUMBER_NOT_FOUND', undefined, { details: { number: route.number } });
    return route;
  };

  app.post('/v1/tenants/:id/numbers', {
    config: { access: 'admin' },
    schema: { tags, summary: 'Route a number to the tenant (admin)', params: params('id'), body: jsonSchema(numberSchema.omit({ tenantId: true })), response: responses({ 201: numberOut }) },
    handler: async (request, reply) => {
      const id = param(request, 'id');
      const created = await numbers.createNumber(withTenant(objectBody(request), id) as NumberRoute);
      await ctx.changed(id);
      return reply.status(201).send(created);
    },
  });
  app.get('/v1/tenants/:id/numbers', {
    config: { access: 'tenant' },
    schema: { tags, summary: "List a tenant's numbers", params: params('id'), response: responses({ 200: { type: 'array', items: numberOut } }) },
    handler: async (request) => {
      const id = param(request, 'id');
      if (!(await tenants.exists(id))) throw new CallgateError('CG_TENANT_NOT_FOUND', id, { details: { id } });
      return numbers.listNumbers(id);
    },
  });
  app.get('/v1/tenants/:id/numbers/:number', {
    config: { access: 'tenant' },
    schema: { tags, summary: 'Get a number (URL-encode it: %2B14155550100)', params: numberParams, response: responses({ 200: numberOut }) },
    handler: async (request) => owned(param(request, 'id'), param(request, 'number')),
  });
  app.patch('/v1/tenants/:id/numbers/:number', {
    config: { access: 'admin' },
    schema: {
      tags,
      summary: 'Move a number to another tenant or trunk (admin; trunk: null unpins it)',
      params: numberParams,
      body: jsonSchema(numberSchema.omit({ number: true }).partial()),
      response: responses({ 200: numberOut }),
    },
    handler: async (request) => {
      const id = param(request, 'id');
      await owned(id, param(request, 'number'));
      const updated = await numbers.updateNumber(param(request, 'number'), objectBody(request) as NumberPatch);
      await ctx.changed(id);
      if (updated.tenantId !== id) await ctx.changed(updated.tenantId);
      return updated;
    },
  });
  app.delete('/v1/tenants/:id/numbers/:number', {
    config: { access: 'admin' },
    schema: { tags, summary: 'Stop routing a number (admin)', params: numberParams, response: responses({ 204: undefined }) },
    handler: async (request, reply) => {
      const id = param(request, 'id');
      const route = await owned(id, param(request, 'number'));
      await numbers.deleteNumber(route.number);
      await ctx.changed(id);
      return reply.status(204).send();
    },
  });
}
