import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { renderTemplate } from '../../util/template.js';
import { CallgateError, isCallgateError } from '../../errors.js';
import { PIPELINE_RATE } from '../../media/types.js';
import { encodeWav } from '../../media/wav.js';
import { defaultFliteOptions, FLITE_VOICES, type FliteVoice } from '../../providers/fliteTts.js';
import { callUrlSchema } from '../../tenants/schema.js';
import { parseOrThrow } from '../../tenants/storeUtil.js';
import { agentConfigFor } from '../../tenants/TenantStore.js';
import { costlyRouteLimit } from '../auth.js';
import { jsonSchema, objectSchema, params, responses } from '../openapi.js';
import { objectBody, param, type RouteContext } from './context.js';

/** Live state and previews of a tenant: active calls, and its greeting as the caller would hear it. */
export const previewSchema = z.strictObject({ variables: callUrlSchema.shape.variables.optional() });
const dialFields = {
  to: z.string().regex(/^\+[1-9]\d{6,14}$/, 'an E.164 number (+ and 7–15 digits)'),
  /** A trunk with outbound settings whose `tenants` lists the calling tenant. */
  trunk: z.string().min(1).max(64),
  variables: callUrlSchema.shape.variables.optional(),
};
/** Or one of the tenant's devices (docs/devices.md): its registered contacts ring, the first to answer talks to the agent. */
const deviceDialFields = {
  device: z.string().min(1).max(64),
  variables: callUrlSchema.shape.variables.optional(),
};
export const trunkDialSchema = z.strictObject(dialFields);
export const deviceDialSchema = z.strictObject(deviceDialFields);
export const dialSchema = z.union([trunkDialSchema, deviceDialSchema]);
export const adminDialSchema = z.union([z.strictObject({ tenant: z.string().min(1).max(64), ...dialFields }), z.strictObject({ tenant: z.string().min(1).max(64), ...deviceDialFields })]);
type Dial = z.output<typeof dialSchema>;

/**
 * The body by the schema its fields choose (`device` → a device call, else a number through a trunk),
 * so a mistake is a 400 naming the field rather than a union's "invalid input".
 */
function parseDial(body: Record<string, unknown>, withTenant: false): Dial;
function parseDial(body: Record<string, unknown>, withTenant: true): Dial & { tenant: string };
function parseDial(body: Record<string, unknown>, withTenant: boolean): Dial & { tenant?: string } {
  const tenant = withTenant ? { tenant: z.string().min(1).max(64) } : {};
  const schema = 'device' in body ? z.strictObject({ ...tenant, ...deviceDialFields }) : z.strictObject({ ...tenant, ...dialFields });
  return parseOrThrow(schema, body, 'call') as Dial & { tenant?: string };
}
const dialOut = objectSchema('Outbound call started', { callId: { type: 'string' }, status: { type: 'string', enum: ['dialing'] } });
const tags = ['calls'];

export function callRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { tenants, limiter } = ctx;
  /**
   * 202: the call is placed once the tenant, trunk and a line are checked; whether it was answered
   * and how it went is in the call record (GET /v1/tenants/:id/calls/:callId) when it ends.
   * The trunk must list the tenant (admin calls too: the admin token acts for a tenant here, and the
   * carrier bills that tenant); one it does not list is CG_TRUNK_NOT_FOUND like one that does not exist.
   */
  const dial = async (tenantId: string, body: Dial): Promise<{ callId: string; status: 'dialing' }> => {
    if ('trunk' in body) await ctx.numbers.trunkForTenant(body.trunk, tenantId);
    else await ctx.devices.get(tenantId, body.device);
    if (!ctx.dialer) throw new CallgateError('CG_SIP_UNAVAILABLE', 'this gateway has no SIP door (configure DRACHTIO_HOST)');
    const variables = body.variables ? { variables: body.variables } : {};
    const target = 'trunk' in body ? { to: body.to, trunk: body.trunk } : { device: body.device };
    const { callId } = await ctx.dialer.dial({ tenantId, ...target, ...variables });
    return { callId, status: 'dialing' };
  };
  app.post('/v1/calls', {
    config: { access: 'admin' },
    schema: { tags, summary: "Call a number through a trunk, or one of the tenant's registered devices; the tenant's agent talks when answered", body: jsonSchema(adminDialSchema), response: responses({ 202: dialOut }) },
    handler: async (request, reply) => {
      const { tenant, ...body } = parseDial(objectBody(request), true);
      return reply.code(202).send(await dial(tenant, body));
    },
  });
  app.post('/v1/tenants/:id/calls', {
    config: { access: 'tenant' },
    schema: { tags, summary: "Call a number through a trunk, or a registered device (`device`: its username), for this tenant (tenant keys may)", params: params('id'), body: jsonSchema(dialSchema), response: responses({ 202: dialOut }) },
    handler: async (request, reply) => {
      const body = parseDial(objectBody(request), false);
      return reply.code(202).send(await dial(param(request, 'id'), body));
    },
  });
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
      // A client that hangs up drops its queued job (or the result of a running one).
      const gone = new AbortController();
      reply.raw.once('close', () => {
        if (!reply.raw.writableEnded) gone.abort();
      });
      let samples: Int16Array | undefined;
      try {
        samples = await ctx.previewSpeech.run(rendered.text, voice, gone.signal);
      } catch (err) {
        // The request's own fault (text over flite's limit) stays a 400; anything else is the worker's
        // (crashed, could not start, pool closing): a retryable 503 that says why, never a crash.
        if (isCallgateError(err) && err.code === 'CG_TTS_BAD_REQUEST') throw err;
        const reason = err instanceof Error ? err.message : String(err);
        throw new CallgateError('CG_PREVIEW_UNAVAILABLE', reason, { cause: err, details: { reason } });
      }
      // Nobody is left to answer.
      if (!samples) return reply.hijack();
      return reply.type('audio/wav').header('x-callgate-voice', voice).send(encodeWav({ samples, sampleRate: PIPELINE_RATE }));
    },
  });
}
