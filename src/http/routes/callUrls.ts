import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CallgateError } from '../../errors.js';
import { escapeHtml } from '../../util/html.js';
import type { CallUrlPatch, CallUrlView } from '../../tenants/CallUrlStore.js';
import { callUrlSchema, type CallUrlInput } from '../../tenants/schema.js';
import { jsonSchema, params, responses } from '../openapi.js';
import { objectBody, param, withTenant, type RouteContext } from './context.js';

const callUrlOut = {
  ...jsonSchema(callUrlSchema, 'output'),
  additionalProperties: true,
  description:
    'A call URL with its public `url` (absolute: on PUBLIC_BASE_URL, or the address this request came to), `uses` so far, `createdAt`, ' +
    'and `embed`: the tag that puts a call button for it on any website its `allowedOrigins` allow.',
};

/**
 * Where people reach this gateway: PUBLIC_BASE_URL when the deployment says, else the scheme and host
 * this request came to — the address the operator is using, which is right on a laptop and behind a
 * proxy that keeps the Host header. Only the caller of the admin API sees it: a forged Host misleads
 * no one but the one who forged it.
 */
export function publicBase(request: FastifyRequest, configured: string | undefined): string {
  return (configured ?? `${request.protocol}://${request.host}`).replace(/\/+$/, '');
}

/** The copy-paste tag for a website (web-phone/src/widget.ts reads `data-call-url`). */
export function embedSnippet(base: string, slug: string): string {
  return `<script src="${escapeHtml(`${base}/widget.js`)}" data-call-url="${escapeHtml(slug)}" async></script>`;
}

/** A view as the API returns it: absolute `url`, and its `embed` tag. */
function linked<T extends CallUrlView>(view: T, base: string): T & { embed: string } {
  return { ...view, url: `${base}/c/${view.slug}`, embed: embedSnippet(base, view.slug) };
}
const body = jsonSchema(callUrlSchema.omit({ tenantId: true }));
const tags = ['call URLs'];

export function callUrlRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { callUrls, tenants } = ctx;
  const base = (request: FastifyRequest): string => publicBase(request, ctx.publicBaseUrl);
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
      return reply.status(201).send(linked(created, base(request)));
    },
  });
  app.get('/v1/tenants/:id/call-urls', {
    config: { access: 'tenant' },
    schema: { tags, summary: "List a tenant's call URLs", params: params('id'), response: responses({ 200: { type: 'array', items: callUrlOut } }) },
    handler: async (request) => {
      const id = param(request, 'id');
      // The store lists nothing for an unknown tenant; the API says so.
      if (!(await tenants.exists(id))) throw new CallgateError('CG_TENANT_NOT_FOUND', id, { details: { id } });
      return (await callUrls.listByTenant(id)).map((u) => linked(u, base(request)));
    },
  });
  app.get('/v1/tenants/:id/call-urls/:slug', {
    config: { access: 'tenant' },
    schema: { tags, summary: 'Get a call URL', params: params('id', 'slug'), response: responses({ 200: callUrlOut }) },
    handler: async (request) => linked(await owned(param(request, 'id'), param(request, 'slug')), base(request)),
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
      return linked(updated, base(request));
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
