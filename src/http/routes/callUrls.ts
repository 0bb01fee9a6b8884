import type { FastifyInstance } from 'fastify';
import { CallgateError } from '../../errors.js';
import type { CallUrlPatch, CallUrlView } from '../../tenants/CallUrlStore.js';
import { callUrlSchema, type CallUrlInput } from '../../tenants/schema.js';
import { jsonSchema, params, responses } from '../openapi.js';
import { objectBody, param, withTenant, type RouteContext } from './context.js';

const callUrlOut = {
  ...jsonSchema(callUrlSchema, 'output'),
  additionalProperties: true,
  description: 'A call URL with its public `url`, `uses` so far and `createdAt`.',
};
const body = jsonSchema(callUrlSchema.omit({ tenantId: true }));
const tags = ['call URLs'];

export function callUrlRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { callUrls, tenants } = ctx;
  /** The slug's call URL if it belongs to the tenant in the path; another tenant's slug reads as absent. */
  const owned = async (tenantId: string, slug: string): Promise<CallUrlView> => {
    const view = await callUrls.get(slug);
    if (view.tenantId !== tenantId) throw new CallgateError('CG_CALL_URL_NOT_FOUND', slug, { details: { slug } });
    return view;
  };

  app.post('/v1/tenants/:id/call-urls', {
    config: { access: 'tenant' },
    schema: { tags, summary: 'Create a call URL (random slug when none is given)', params: params('id'), body, response: responses({ 201: callUrlOut }) },
    handler: async (request, reply) => {
      const id = param(request, 'id');
      const created = await callUrls.create(withTenant(objectBody(request), id) as CallUrlInput);
      await ctx.changed(id);
      return reply.status(201).send(created);
    },
  });
  app.get('/v1/tenants/:id/call-urls', {
    config: { access: 'tenant' },
    schema: { tags, summary: "List a tenant's call URLs", params: params('id'), response: responses({ 200: { type: 'array', items: callUrlOut } }) },
    handler: async (request) => {
      const id = param(request, 'id');
      // The store lists nothing for an unknown tenant; the API says so.
      if (!(await tenants.exists(id))) throw new CallgateError('CG_TENANT_NOT_FOUND', id, { details: { id } });
      return callUrls.listByTenant(id);
    },
  });
  app.get('/v1/tenants/:id/call-urls/:slug', {
    config: { access: 'tenant' },
    schema: { tags, summary: 'Get a call URL', params: params('id', 'slug'), response: responses({ 200: callUrlOut }) },
    handler: async (request) => owned(param(request, 'id'), param(request, 'slug')),
  });
  app.patch('/v1/tenants/:id/call-urls/:slug', {
    config: { access: 'tenant' },
    schema: {
      tags,
      summary: 'Update a call URL (JSON Merge Patch; slug and tenant cannot change; uses are kept)',
      params: params('id', 'slug'),
      body: jsonSchema(callUrlSchema.omit({ tenantId: true, slug: true }).partial()),
      response: responses({ 200: callUrlOut }),
    },
    handler: async (request) => {
      const id = param(request, 'id');
      const slug = param(request, 'slug');
      await owned(id, slug);
      const updated = await callUrls.update(slug, withTenant(objectBody(request), id) as CallUrlPatch);
      await ctx.changed(id);
      return updated;
    },
  });
  app.delete('/v1/tenants/:id/call-urls/:slug', {
    config: { access: 'tenant' },
    schema: { tags, summary: 'Delete a call URL', params: params('id', 'slug'), response: responses({ 204: undefined }) },
    handler: async (request, reply) => {
      const id = param(request, 'id');
      const slug = param(request, 'slug');
      await owned(id, slug);
      await callUrls.delete(slug);
      await ctx.changed(id);
      return reply.status(204).send();
    },
  });
}
