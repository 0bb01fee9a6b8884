import type { FastifyInstance } from 'fastify';
import { CallgateError } from '../../errors.js';
import { params } from '../openapi.js';
import { param, type RouteContext } from './context.js';

/** Call records with transcripts, newest first, paged by the opaque `next` cursor. */
const tags = ['call records'];

export function recordRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { tenants, records } = ctx;
  app.get('/v1/tenants/:id/calls', {
    config: { access: 'tenant' },
    schema: {
      tags,
      summary: 'Call records, newest first; pass `next` back as `before` for the next page',
      params: params('id'),
      querystring: { type: 'object', properties: { before: { type: 'string' }, limit: { type: 'string' } } },
    },
    handler: async (request) => {
      const tenant = await tenants.get(param(request, 'id'));
      const q = request.query as { before?: string; limit?: string };
      const limit = q.limit === undefined ? undefined : Number(q.limit);
      if (limit !== undefined && !Number.isInteger(limit)) throw new CallgateError('CG_HTTP_BAD_REQUEST', 'limit must be a whole number');
      return records.list(tenant.id, { ...(q.before ? { before: q.before } : {}), ...(limit === undefined ? {} : { limit }) });
    },
  });
  app.get('/v1/tenants/:id/calls/:callId', {
    config: { access: 'tenant' },
    schema: { tags, summary: 'One call record with its transcript and latency marks', params: params('id', 'callId') },
    handler: async (request) => records.get(param(request, 'id'), param(request, 'callId')),
  });
}
