import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { serializePolicy, type ContentSecurityPolicy } from './securityHeaders.js';

/**
 * The OpenAPI document (`/docs/json`) and its page (`/docs`, swagger-ui's files served from the npm
 * package, so it works offline). Both are public: the spec describes the API, it holds no data, and
 * an operator must be able to read it before holding a token. The API itself stays authenticated.
 *
 * Body schemas come from the zod definitions in src/tenants/schema.ts via `z.toJSONSchema`, so the
 * docs cannot drift from what is enforced. Fastify's own (ajv) validation is switched off in
 * adminApp.ts: the stores already parse every body with those zod schemas and answer with one code
 * (CG_TENANT_INVALID, every issue listed); ajv in front would refuse the same bodies with other words.
 */
export const DOCS_PREFIX = '/docs';

/**
 * swagger-ui's policy (on every route under /docs): its scripts and styles are files it serves, its
 * icons `data:` URLs; it fetches the spec and "Try it out" requests from this origin. No site may frame
 * it (it holds a token once one is typed in). Checked in Chromium with no violations
 * (tests/security/pages-browser.test.ts), which also catches a swagger-ui upgrade that changes the
 * one inline style below.
 */
export const docsPolicy = {
  'default-src': ["'none'"],
  'script-src': ["'self'"],
  // The topbar logo (an SVG in swagger-ui-standalone-preset.js) carries one <style>: its hash, rather
  // than 'unsafe-inline' for every style.
  'style-src': ["'self'", "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='"],
  'img-src': ["'self'", 'data:'],
  'font-src': ["'self'", 'data:'],
  'connect-src': ["'self'"],
  'base-uri': ["'none'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
} as const satisfies ContentSecurityPolicy;

export type JsonSchema = Record<string, unknown>;

/** A zod schema as OpenAPI 3.0 JSON schema (refinements cannot be expressed and are left out). */
export function jsonSchema(schema: z.ZodType, io: 'input' | 'output' = 'input'): JsonSchema {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { target: 'openapi-3.0', io, unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

export const errorSchema = {
  type: 'object',
  description: 'Every error: a stable code (docs/errors.md), a message for people, sometimes details.',
  properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'object', additionalProperties: true } },
  required: ['code', 'message'],
} as const;

const anyObject = { type: 'object', additionalProperties: true } as const;

/** Responses for a route: the given successes plus the one error shape for 4xx/5xx. */
export function responses(ok: Record<number, JsonSchema | undefined>): Record<string, JsonSchema> {
  const out: Record<string, JsonSchema> = {};
  for (const [status, schema] of Object.entries(ok)) out[status] = schema ?? { description: 'No content', type: 'null' };
  return { ...out, '4xx': errorSchema, '5xx': errorSchema };
}

export function objectSchema(description: string, properties: Record<string, JsonSchema> = {}): JsonSchema {
  return { ...anyObject, description, properties };
}

export function params(...names: string[]): JsonSchema {
  return { type: 'object', properties: Object.fromEntries(names.map((n) => [n, { type: 'string' }])), required: names };
}

export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'callgate admin API',
        version: '1',
        description:
          'Configure tenants, call URLs, numbers and trunks. Authenticate with `Authorization: Bearer <token>`: the admin token may do everything; a tenant key (`cgk_…`) only its own tenant\'s routes.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: DOCS_PREFIX, staticCSP: serializePolicy(docsPolicy) });
}
