import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { renderTemplate } from '../../agent/template.js';
import { CallgateError } from '../../errors.js';
import { encodeWav } from '../../media/wav.js';
import { defaultFliteOptions, FLITE_VOICES, synthesize, type FliteVoice } from '../../providers/fliteTts.js';
import { callUrlSchema } from '../../tenants/schema.js';
import { parseOrThrow } from '../../tenants/storeUtil.js';
import { agentConfigFor } from '../../tenants/TenantStore.js';
import { costlyRouteLimit } from '../auth.js';
import { jsonSchema, objectSchema, params, responses } from '../openapi.js';
import { objectBody, param, type RouteContext } from './context.js';

/** Live state and previews of a tenant: active calls, and its greeting as the caller would hear it. */
const previewSchema = z.object({ variables: callUrlSchema.shape.variables.optional() }).strict();
const tags = ['calls'];

export function callRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { tenants, limiter } = ctx;
  app.get('/v1/tenants/:id/active-calls', {
    config: { access: 'tenant' },
    schema: {
      tags,
      summary: 'Calls in progress across the cluster, and the limit',
      params: params('id'),
      response: responses({ 200: objectSchema('Active calls', { active: { type: 'integer' }, limit: { type: 'integer' } }) }),
    },
    handler: async (request) => {
      const tenant = await tenants.get(param(request, 'id'));
      return { active: await limiter.active(tenant.id), limit: tenant.maxConcurrentCalls };
    },
  });
  app.post('/v1/tenants/:id/greeting-preview', {
    config: { access: 'tenant' },
    preHandler: costlyRouteLimit(app, 'preview', ctx.rateLimit.previewPerKey, ctx.rateLimit.windowMs),
    schema: {
      tags,
      summary: "The tenant's greeting rendered with the given variables and spoken by the offline flite voice (audio/wav)",
      params: params('id'),
      body: jsonSchema(previewSchema),
      response: responses({ 200: { description: 'WAV, mono 16-bit PCM', type: 'string', format: 'binary' } }),
    },
    handler: async (request, reply) => {
      const { variables } = parseOrThrow(previewSchema, objectBody(request), 'greeting preview');
      const tenant = await tenants.get(param(request, 'id'));
      const { config, variables: all } = agentConfigFor(tenant, variables ?? {});
      const rendered = renderTemplate(config.greeting, all);
      if (rendered.missing.length > 0) {
        throw new CallgateError('CG_AGENT_TEMPLATE_VARIABLE', rendered.missing.map((v) => `{{${v}}}`).join(', '), { details: { missing: rendered.missing } });
      }
      // Only flite runs offline; a tenant on another TTS hears its words in flite's default voice.
      const voice: FliteVoice = (FLITE_VOICES as readonly string[]).includes(config.voice) ? (config.voice as FliteVoice) : defaultFliteOptions.voice;
      const speech = await synthesize(rendered.text, { voice });
      return reply.type('audio/wav').header('x-callgate-voice', voice).send(encodeWav(speech));
    },
  });
}
