import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { CallgateError, isCallgateError } from '../errors.js';
import { rootLogger } from '../log.js';
import type { TenantPatch, TenantStore } from '../tenants/TenantStore.js';
import type { TenantInput } from '../tenants/schema.js';

/**
 * The admin API (`/v1`): what operators use to configure tenants. Every error has one shape,
 * `{ code, message, details? }`, with a stable code from src/errors.ts.
 *
 * This first slice serves tenants with the admin token; per-tenant keys, call URLs, numbers, call
 * records, rate limits and the OpenAPI page come with the rest of the tenants issue.
 */
export interface AdminAppOptions {
  readonly tenants: TenantStore;
  /** `CALLGATE_ADMIN_TOKEN`: the bearer token that may do everything. */
  readonly adminToken: string;
  /** Told after every tenant write, so every gateway's TenantCache drops its copy (within ms). */
  readonly invalidate?: (tenantId: string) => Promise<void>;
  readonly logger?: Logger;
}

/** Shortest admin token accepted: a guessable token would open every tenant. */
export const MIN_ADMIN_TOKEN_CHARS = 24;

export async function buildAdminApp(options: AdminAppOptions): Promise<AdminApp> {
  if (options.adminToken.length < MIN_ADMIN_TOKEN_CHARS) {
    throw new CallgateError('CG_CONFIG_INVALID', `CALLGATE_ADMIN_TOKEN must be at least ${MIN_ADMIN_TOKEN_CHARS} characters`);
  }
  const app = createFastify(options.logger ?? rootLogger);
  const token = Buffer.from(options.adminToken);

  app.setErrorHandler((err: FastifyError | CallgateError, request, reply) => {
    if (isCallgateError(err)) return reply.status(err.status).send(err.toJSON());
    if ((err as FastifyError).validation || (err as FastifyError).statusCode === 400) {
      const e = new CallgateError('CG_HTTP_BAD_REQUEST', err.message);
      return reply.status(400).send(e.toJSON());
    }
    request.log.error({ err: err.message, url: request.url }, 'admin API error');
    return reply.status(500).send(new CallgateError('CG_INTERNAL').toJSON());
  });
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send(new CallgateError('CG_HTTP_NOT_FOUND', `${request.method} ${request.url.split('?')[0]}`).toJSON());
  });

  app.addHook('onRequest', async (request: FastifyRequest) => {
    const header = request.headers.authorization ?? '';
    const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
    // Constant time: the comparison must not tell an attacker how much of a guess was right.
    if (given.length !== token.length || !timingSafeEqual(given, token)) throw new CallgateError('CG_HTTP_UNAUTHORIZED');
  });

  const { tenants } = options;
  const changed = async (id: string): Promise<void> => {
    await options.invalidate?.(id);
  };
  app.get('/v1/tenants', async (request) => {
    const q = request.query as { offset?: string; limit?: string };
    return tenants.list({ offset: toInt(q.offset, 'offset'), limit: toInt(q.limit, 'limit') });
  });
  app.post('/v1/tenants', async (request, reply) => {
    const created = await tenants.create(request.body as TenantInput);
    await changed(created.id);
    return reply.status(201).send(created);
  });
  app.get('/v1/tenants/:id', async (request) => tenants.get((request.params as { id: string }).id));
  app.patch('/v1/tenants/:id', async (request) => {
    const { id } = request.params as { id: string };
    const updated = await tenants.update(id, request.body as TenantPatch);
    await changed(id);
    return updated;
  });
  app.delete('/v1/tenants/:id', async (request, reply) => {
    const { id } = request.params as { id: string };
    await tenants.delete(id);
    await changed(id);
    return reply.status(204).send();
  });
  return app;
}

function toInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new CallgateError('CG_HTTP_BAD_REQUEST', `${name} must be a whole number ≥ 0`);
  return n;
}

export type AdminApp = Awaited<ReturnType<typeof createFastify>>;
function createFastify(logger: Logger) {
  return Fastify({ loggerInstance: logger, disableRequestLogging: true });
}
