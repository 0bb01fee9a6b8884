import { z } from 'zod';
import { ENDPOINTING_RANGE_MS } from '../agent/AgentConfig.js';
import { renderTemplate, templateVariables } from '../agent/template.js';

/**
 * The data model operators write (API bodies, dialplan YAML) as zod schemas: one definition validates
 * requests, dialplans and what is read back from Redis. docs/data-model.md describes the same fields.
 */

const id = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and dashes, starting with a letter or digit');

export const intentSchema = z.object({
  name: z.string().min(1).max(64),
  phrases: z.array(z.string().min(1).max(200)).max(50).default([]),
  reply: z.string().min(1).max(1000),
  dtmf: z
    .string()
    .regex(/^[0-9*A-D]+$/, "keypad keys 0-9, *, A-D ('#' ends an entry)")
    .optional(),
});

export const turnSchema = z.object({
  endpointingMs: z.number().int().min(ENDPOINTING_RANGE_MS.min).max(ENDPOINTING_RANGE_MS.max).optional(),
  bargeIn: z.boolean().optional(),
  noInputMs: z.number().int().min(1000).max(60_000).optional(),
  maxReprompts: z.number().int().min(0).max(10).optional(),
});

const providerName = z.string().min(1).max(40);
/** A provider, or a fallback chain of them in order. */
const providerChoice = z.union([providerName, z.array(providerName).min(1).max(4)]);
const modelName = z.string().min(1).max(100);

export const providersSchema = z.object({
  stt: providerChoice.optional(),
  llm: providerChoice.optional(),
  tts: providerChoice.optional(),
  models: z.object({ stt: modelName.optional(), llm: modelName.optional(), tts: modelName.optional() }).strict().optional(),
});

/** Variables a tenant's own greeting may use besides the call URL's: the tenant's names. */
export const TENANT_TEMPLATE_VARIABLES = ['agentName', 'business'] as const;

/** A tenant's fields (unknown keys are refused by `tenantSchema`: a typo must not be silently dropped). */
export const tenantFields = z.object({
  id,
  /** The business as callers know it ("Joe's Pizza"); `{{business}}` in templates. */
  displayName: z.string().min(1).max(120),
  /** The agent's name ("Ava"); `{{agentName}}` in templates. */
  agentName: z.string().min(1).max(60).default('Ava'),
  greeting: z.string().min(1).max(500).optional(),
  systemPrompt: z.string().min(1).max(8000).optional(),
  language: z.string().min(2).max(20).optional(),
  voice: z.string().min(1).max(60).optional(),
  providers: providersSchema.optional(),
  /** Vendor API keys by provider name; stored encrypted, never returned or logged. */
  providerKeys: z.record(z.string().min(1).max(40), z.string().min(1).max(500)).optional(),
  turn: turnSchema.optional(),
  intents: z.array(intentSchema).max(100).optional(),
  fallbackReply: z.string().min(1).max(500).optional(),
  goodbye: z.object({ phrases: z.array(z.string().min(1).max(200)).max(20).optional(), reply: z.string().min(1).max(500).optional() }).optional(),
  reprompt: z.string().min(1).max(500).optional(),
  apology: z.string().min(1).max(500).optional(),
  unavailableMessage: z.string().min(1).max(500).optional(),
  shutdownMessage: z.string().min(1).max(500).optional(),
  maxCallDurationMs: z.number().int().min(1000).max(4 * 3600_000).optional(),
  /** Calls in progress at once, cluster-wide. */
  maxConcurrentCalls: z.number().int().min(1).max(10_000).default(10),
});

/** Checks across a tenant's fields: intents, keypad keys, the greeting template. */
export function refineTenant(t: z.output<typeof tenantFields>, ctx: z.RefinementCtx): void {
  const dtmf = new Set<string>();
  t.intents?.forEach((intent, i) => {
    if (intent.phrases.length === 0 && intent.dtmf === undefined) {
      ctx.addIssue({ code: 'custom', path: ['intents', i, 'phrases'], message: 'an intent needs phrases or a dtmf key' });
    }
    if (intent.dtmf !== undefined) {
      if (dtmf.has(intent.dtmf)) ctx.addIssue({ code: 'custom', path: ['intents', i, 'dtmf'], message: `dtmf '${intent.dtmf}' is used by another intent` });
      dtmf.add(intent.dtmf);
    }
  });
  if (t.greeting !== undefined) checkTemplate(t.greeting, TENANT_TEMPLATE_VARIABLES, ['greeting'], ctx);
}

export const tenantSchema = tenantFields.strict().superRefine(refineTenant);

export type TenantInput = z.input<typeof tenantSchema>;
export type Tenant = z.output<typeof tenantSchema>;

/**
 * Call URLs are read back by Redis's Lua (cjson, in CallUrlStore), which refuses the "\ud800" escape
 * JSON.stringify writes for a lone UTF-16 surrogate: one in a stored string fails every use of the URL.
 */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const wellFormed = (s: string): boolean => !LONE_SURROGATE.test(s);
const WELL_FORMED = 'must be well-formed Unicode (no lone surrogate)';

export const callUrlSchema = z
  .object({
    /** Readable (`joes-pizza`) or, when absent, a random unguessable token is made. */
    slug: z
      .string()
      .min(3)
      .max(64)
      .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, - and _')
      .optional(),
    tenantId: id,
    /** Values for the greeting template (`{{name}}`). */
    variables: z.record(z.string().regex(/^[A-Za-z_][\w.-]*$/), z.string().max(200).refine(wellFormed, WELL_FORMED)).default({}),
    /** ISO 8601; the URL stops working then. */
    expiresAt: z.iso.datetime({ offset: true }).optional(),
    /** Calls the URL may start; unlimited when absent. */
    maxUses: z.number().int().min(1).optional(),
    /** Page origins allowed to start calls with it (CORS / Origin check); any when empty. */
    allowedOrigins: z.array(z.url().refine(wellFormed, WELL_FORMED)).default([]),
    enabled: z.boolean().default(true),
  });

export type CallUrlInput = z.input<typeof callUrlSchema>;
export type CallUrl = z.output<typeof callUrlSchema> & { readonly slug: string };

/** E.164 (`+14155550100`) or a SIP URI user@host (`sip:support@example.com`). */
export const numberSchema = z.object({
  number: z
    .string()
    .refine((v) => /^\+[1-9]\d{6,14}$/.test(v) || /^sips?:[^@\s]+@[^@\s]+$/.test(v), 'an E.164 number (+ and 7–15 digits) or a SIP URI (sip:user@host)'),
  tenantId: id,
  /** Only calls from this trunk may use the number (optional). */
  trunk: id.optional(),
});
export type NumberRoute = z.output<typeof numberSchema>;

const cidr = z.string().refine((v) => /^(\d{1,3}\.){3}\d{1,3}\/(\d|[12]\d|3[0-2])$/.test(v) || /^[0-9a-fA-F:]+\/\d{1,3}$/.test(v), 'a CIDR like 203.0.113.0/24');
export const trunkSchema = z.object({
  name: id,
  /** Source addresses the carrier sends from. */
  sourceCidrs: z.array(cidr).min(1),
  /** Digest credentials the trunk must answer with (optional; the password is stored encrypted). */
  auth: z.object({ username: z.string().min(1).max(100), password: z.string().min(8).max(200) }).optional(),
  /** Where outbound calls through this trunk go (`POST /v1/calls`); absent: the trunk is inbound only. */
  outbound: z
    .object({
      /** The carrier's SIP host: a name or an IPv4 address (no scheme, no port). */
      host: z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/, 'a host name or IPv4 address'),
      port: z.number().int().min(1).max(65535).default(5060),
      transport: z.enum(['udp', 'tcp']).default('udp'),
      /** The number presented as the caller (E.164); the carrier may require one of yours. */
      callerId: z.string().regex(/^\+[1-9]\d{6,14}$/, 'an E.164 number').optional(),
    })
    .strict()
    .optional(),
});
export type Trunk = z.output<typeof trunkSchema>;

/**
 * A template is checked when it is saved, not when a caller is waiting: balanced braces, and every
 * variable either known (`allowed`) or given a fallback (`{{name|…}}`).
 */
export function checkTemplate(template: string, allowed: readonly string[], path: (string | number)[], ctx: z.RefinementCtx): void {
  const opens = (template.match(/\{\{/g) ?? []).length;
  const closes = (template.match(/\}\}/g) ?? []).length;
  if (opens !== closes || opens !== templateVariables(template).length) {
    ctx.addIssue({ code: 'custom', path, message: 'template has an unbalanced or malformed {{…}}' });
    return;
  }
  const withoutFallback = [...template.matchAll(/\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}/g)].map((m) => m[1]!);
  const unknown = withoutFallback.filter((v) => !allowed.includes(v));
  if (unknown.length > 0) {
    ctx.addIssue({
      code: 'custom',
      path,
      message: `template uses ${unknown.map((v) => `{{${v}}}`).join(', ')}, which no call provides; give a fallback ({{${unknown[0]}|…}}) or use ${allowed.map((v) => `{{${v}}}`).join(', ')}`,
    });
  }
  // Rendering must succeed with the allowed variables alone.
  renderTemplate(template, Object.fromEntries(allowed.map((v) => [v, v])));
}
