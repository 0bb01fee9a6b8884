import type { FastifyInstance } from 'fastify';
import { CallgateError } from '../../errors.js';
import { apiKeyInputSchema, type ApiKeyInput } from '../../tenants/ApiKeyStore.js';
import { jsonSchema, params, responses } from '../openapi.js';
import { objectBody, param, type RouteContext } from './context.js';

/** A tenant's API keys: admin token only (a key that could mint keys could never be fully revoked). */
const keyInfo = {
  type: 'object',
  properties: { keyId: { type: 'string' }, tenantId: { type: 'string' }, name: { type: 'string' }, createdAt: { type: 'string', format: 'date-time' } },
  required: ['keyId', 'tenantId', 'createdAt'],
};
const created = {
  ...keyInfo,
  description: 'The new key. `key` is shown this once: callgate keeps only its SHA-256.',
  properties: { ...keyInfo.properties, key: { type: 'string', description: 'cgk_<keyId>_<secret>' } },
  required: [...keyInfo.required, 'key'],
};
const tags = ['API keys'];
const access = 'admin' as const;

export function keyRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { apiKeys, tenants } = ctx;
  app.post('/v1/tenants/:id/keys', {
    config: { access },
    schema: { tags, summary: 'Create an API key for the tenant (admin)', params: params('id'), body: jsonSchema(apiKeyInputSchema), response: responses({ 201: created }) },
    handler: async (request, reply) => reply.status(201).send(await apiKeys.create(param(request, 'id'), objectBody(request) as ApiKeyInput)),
  });
  app.get('/v1/tenants/:id/keys', {
    config: { access },
    schema: { tags, summary: "List the tenant's API keys, without secrets (admin)", params: params('id'), response: responses({ 200: { type: 'array', items: keyInfo } }) },
    handler: async (request) => {
      const id = param(request, 'id');
      if (!(await tenants.exists(id))) throw new CallgateError('CG_TENANT_NOT_FOUND', id, { details: { id } });
      return apiKeys.list(id);
    },
  });
  app.delete('/v1/tenants/:id/keys/:keyId', {
    config: { access },
    schema: { tags, summary: 'Revoke an API key at once (admin)', params: params('id', 'keyId'), response: responses({ 204: undefined }) },
    handler: async (request, reply) => {
      await apiKeys.delete(param(request, 'id'), param(request, 'keyId'));
      return reply.status(204).send();
    },
  });
}
