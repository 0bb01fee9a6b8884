import { z } from 'zod';
import { BARGE_IN_MODES, ENDPOINTING_MODES, ENDPOINTING_RANGE_MS, MAX_ENDPOINTING_RANGE_MS } from '../agent/AgentConfig.js';
import { renderTemplate, templateVariables } from '../util/template.js';
import { jsonSchemaProblem } from './jsonSchema.js';

/**
 * The data model operators write (API bodies, dialplan YAML) as zod schemas: one definition validates
 * requests, dialplans and what is read back from Redis. docs/data-model.md describes the same fields.
 */

const id = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and dashes, starting with a letter or digit');

/**
 * Every object in the data model refuses keys it does not know (`z.strictObject`): a typo such as
 * `bargein` for `bargeIn` must be a 400 naming it, not a 200 that silently drops the setting.
 * schema.test.ts walks every schema and proves it for each nested object.
 */
const object = z.strictObject;

/**
 * Lone UTF-16 surrogates: Redis's Lua (cjson, in CallUrlStore) refuses the "\ud800" escape
 * JSON.stringify writes for one, so a stored one fails every use of a call URL; nowhere is one text.
 */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** C0 controls, DEL and C1 controls: NUL, BEL, ESC… are never part of a name or a sentence. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** The same, less tab, line feed and carriage return, which long texts (a prompt, a greeting) may hold. */
const CONTROL_IN_TEXT = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;
/**
 * Bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069): invisible characters that
 * reorder what an operator reads ("Trojan Source"), so a name can show as something it is not.
 */
const BIDI_CONTROL = /[\u202a-\u202e\u2066-\u2069]/;
/**
 * Direction marks (LRM, RLM, ALM) and the line/paragraph separators: invisible in a one-line name and
 * a way to make two names look alike. Long texts keep the marks, which mixed-script prose needs.
 */
const NAME_ONLY = /[\u200e\u200f\u061c\u2028\u2029]/;

const codePoint = (ch: string): string => `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/** The first character a string may not hold, with why; undefined when it is clean. */
function forbiddenCharacter(value: string, kind: 'name' | 'text'): string | undefined {
  const surrogate = LONE_SURROGATE.exec(value);
  if (surrogate) return 'must be well-formed Unicode (no lone surrogate)';
  const control = (kind === 'name' ? CONTROL : CONTROL_IN_TEXT).exec(value);
  if (control) return `contains the control character ${codePoint(control[0])}${kind === 'text' ? ' (only tab and line breaks are allowed)' : ''}`;
  const bidi = BIDI_CONTROL.exec(value) ?? (kind === 'name' ? NAME_ONLY.exec(value) : null);
  if (bidi) return `contains the invisible formatting character ${codePoint(bidi[0])}`;
  return undefined;
}

const clean =
  (kind: 'name' | 'text') =>
  (value: string, ctx: z.RefinementCtx): void => {
    const problem = forbiddenCharacter(value, kind);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  };

/** A name-like, one-line string (a display name, an intent's name, a phrase): printable text only. */
export const line = (min: number, max: number) => z.string().min(min).max(max).superRefine(clean('name'));
/** A long text spoken or sent to a model (a greeting, a prompt, a reply): line breaks and tabs allowed, other controls not. */
export const text = (min: number, max: number) => z.string().min(min).max(max).superRefine(clean('text'));

export const intentSchema = object({
  name: line(1, 64),
  phrases: z.array(line(1, 200)).max(50).default([]),
  reply: text(1, 1000),
  dtmf: z
    .string()
    .regex(/^[0-9*A-D]+$/, "keypad keys 0-9, *, A-D ('#' ends an entry)")
    .optional(),
  /** The offline responder calls this tool: says `say`, runs it, then says `reply` with `{{result…}}` filled in. */
  tool: object({
    name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'letters, digits, _ and -, 1–64 characters'),
    arguments: z.record(z.string().max(64), z.union([line(0, 500), z.number(), z.boolean()])).default({}),
    say: text(1, 500).optional(),
  }).optional(),
});

export const turnSchema = object({
  endpointingMs: z.number().int().min(ENDPOINTING_RANGE_MS.min).max(ENDPOINTING_RANGE_MS.max).optional(),
  /** 'off' | 'immediate' | 'adaptive'; the old boolean is kept as written (true: adaptive, false: off). */
  bargeIn: z.union([z.boolean(), z.enum(BARGE_IN_MODES)]).optional(),
  endpointing: z.enum(ENDPOINTING_MODES).optional(),
  maxEndpointingMs: z.number().int().min(MAX_ENDPOINTING_RANGE_MS.min).max(MAX_ENDPOINTING_RANGE_MS.max).optional(),
  /** Replaces the language's backchannel words ("uh-huh", "okay") that do not stop the agent. */
  backchannels: z.array(line(1, 40)).max(100).optional(),
  noInputMs: z.number().int().min(1000).max(60_000).optional(),
  maxReprompts: z.number().int().min(0).max(10).optional(),
});

const providerName = line(1, 40);
/** A provider, or a fallback chain of them in order. */
const providerChoice = z.union([providerName, z.array(providerName).min(1).max(4)]);
const modelName = line(1, 100);

/** Speech-to-speech models callgate speaks to (docs/realtime.md). */
export const REALTIME_PROVIDERS = ['openai', 'gemini'] as const;
/** Who decides a caller's turn ended on a speech-to-speech call: our turn-taking, or the model's own VAD. */
export const REALTIME_TURN_DETECTION = ['ours', 'model'] as const;

export const providersSchema = object({
  stt: providerChoice.optional(),
  llm: providerChoice.optional(),
  tts: providerChoice.optional(),
  /** A speech-to-speech model instead of the stt → llm → tts cascade (which stays the fallback). */
  realtime: z.enum(REALTIME_PROVIDERS).optional(),
  /** The model's voice by its vendor's name (OpenAI: marin, alloy, …; Gemini: Puck, Kore, …); the vendor's default when absent. */
  realtimeVoice: line(1, 60).optional(),
  /** `ours` (default): our VAD, adaptive barge-in and echo guard; `model`: the model's own VAD ends turns and interrupts. */
  realtimeTurnDetection: z.enum(REALTIME_TURN_DETECTION).optional(),
  models: object({ stt: modelName.optional(), llm: modelName.optional(), tts: modelName.optional(), realtime: modelName.optional() }).optional(),
});

/** A tool's or MCP server's name: what the model calls it (OpenAI's function-name rule). */
export const toolName = z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'letters, digits, _ and -, 1–64 characters');

/**
 * Where the gateway sends a request (a tool's webhook, an MCP server, a call webhook): http(s) only. A
 * destination on loopback, private or link-local addresses is refused when saved and again when
 * connecting (src/util/destination.ts), unless CALLGATE_WEBHOOK_ALLOW_PRIVATE=true.
 */
export const destinationUrl = z
  .url({ protocol: /^https?$/, error: 'an http:// or https:// URL' })
  .max(2000)
  .refine(wellFormedUrl, 'must be well-formed Unicode (no lone surrogate)');

/** Request headers sent with a webhook or to an MCP server. Their values are secrets: stored encrypted, never returned. */
export const secretHeaders = z
  .record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/, 'an HTTP header name'), line(1, 4000))
  .refine((h) => Object.keys(h).length <= 20, 'at most 20 headers');

/** A JSON Schema object describing a tool's arguments; compiled (Ajv) when saved, see refineTenant. */
const jsonSchemaObject = z.record(z.string(), z.unknown()).refine((v) => v.type === 'object', 'must be a JSON Schema with "type": "object"');

export const toolSchema = object({
  name: toolName,
  description: text(1, 1000),
  /** The arguments' JSON Schema; absent: the tool takes none. */
  parameters: jsonSchemaObject.optional(),
  webhook: object({
    url: destinationUrl,
    method: z.enum(['POST', 'PUT', 'PATCH']).default('POST'),
    headers: secretHeaders.optional(),
    /** 3 s: a caller hears the filler after 0.7 s; past 3 s the model should say the tool is not answering. */
    timeoutMs: z.number().int().min(100).max(30_000).default(3000),
  }),
  /** Spoken when the tool has not answered after ~700 ms, so the caller is not left in silence. */
  filler: text(1, 300).optional(),
});
export type ToolDefinition = z.output<typeof toolSchema>;

export const mcpServerSchema = object({
  name: toolName,
  url: destinationUrl,
  headers: secretHeaders.optional(),
  /** The server's tools the model is offered; all of them when absent. */
  allowedTools: z.array(toolName).max(100).optional(),
});
export type McpServerDefinition = z.output<typeof mcpServerSchema>;

export const webhooksSchema = object({
  /** Signs every request (X-Callgate-Signature); stored encrypted, never returned. */
  secret: line(16, 200).optional(),
  /** Sent when a call is answered; may answer `{"variables": {…}}` within 1.5 s for the greeting and prompt. */
  callStart: object({ url: destinationUrl }).optional(),
  /** Sent once a call has ended, at least once (queued in Redis, retried for 24 h). */
  callEnd: object({ url: destinationUrl }).optional(),
  /** Sent when someone joins or leaves one of the tenant's rooms (`room.participant_joined` / `_left`), queued like callEnd. */
  roomEvents: object({ url: destinationUrl }).optional(),
});

export const transferTargetSchema = object({
  name: toolName,
  description: text(1, 500).optional(),
  uri: z.string().max(300).refine((v) => /^sips?:[^@\s\p{Cc}]+@[^@\s\p{Cc}]+$/u.test(v) || /^tel:\+[1-9]\d{6,14}$/.test(v), 'a SIP URI (sip:user@host) or tel:+E.164'),
  /** cold: the caller is handed over at once; warm: the agent tells the person who answers first. */
  mode: z.enum(['cold', 'warm']).default('cold'),
});
export type TransferTarget = z.output<typeof transferTargetSchema>;

export const transferSchema = object({
  targets: z.array(transferTargetSchema).max(20).default([]),
  /** 30 s: about six rings; a caller on hold for longer would rather hear the agent again. */
  timeoutMs: z.number().int().min(5000).max(120_000).default(30_000),
  /** The trunk a transfer to tel: (or to a SIP URI, when set) is dialled through. */
  trunk: id.optional(),
});

/** The model's built-in tools; `end_call` is on unless the list leaves it out. */
export const BUILTIN_TOOLS = ['end_call', 'transfer_call', 'send_dtmf'] as const;
export type BuiltinTool = (typeof BUILTIN_TOOLS)[number];

function wellFormedUrl(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}

/** Variables a tenant's own greeting may use besides the call URL's: the tenant's names. */
export const TENANT_TEMPLATE_VARIABLES = ['agentName', 'business'] as const;

/** A tenant's fields (unknown keys are refused, at every level: a typo must not be silently dropped). */
export const tenantFields = object({
  id,
  /** The business as callers know it ("Joe's Pizza"); `{{business}}` in templates. */
  displayName: line(1, 120),
  /** The agent's name ("Ava"); `{{agentName}}` in templates. */
  agentName: line(1, 60).default('Ava'),
  greeting: text(1, 500).optional(),
  systemPrompt: text(1, 8000).optional(),
  language: line(2, 20).optional(),
  voice: line(1, 60).optional(),
  providers: providersSchema.optional(),
  /** Vendor API keys by provider name; stored encrypted, never returned or logged. */
  providerKeys: z.record(line(1, 40), line(1, 500)).optional(),
  turn: turnSchema.optional(),
  intents: z.array(intentSchema).max(100).optional(),
  fallbackReply: text(1, 500).optional(),
  goodbye: object({ phrases: z.array(line(1, 200)).max(20).optional(), reply: text(1, 500).optional() }).optional(),
  reprompt: text(1, 500).optional(),
  /** Said when the caller spoke and no words could be made out. */
  didNotCatch: text(1, 500).optional(),
  apology: text(1, 500).optional(),
  unavailableMessage: text(1, 500).optional(),
  shutdownMessage: text(1, 500).optional(),
  maxCallDurationMs: z.number().int().min(1000).max(4 * 3600_000).optional(),
  /** Calls in progress at once, cluster-wide. */
  maxConcurrentCalls: z.number().int().min(1).max(10_000).default(10),
  /** Tools the model may call: webhooks the tenant runs (docs/tools.md). */
  tools: z.array(toolSchema).max(64).optional(),
  mcpServers: z.array(mcpServerSchema).max(8).optional(),
  /** Built-in tools offered to the model; default `["end_call"]`. */
  builtinTools: z.array(z.enum(BUILTIN_TOOLS)).max(BUILTIN_TOOLS.length).optional(),
  webhooks: webhooksSchema.optional(),
  transfer: transferSchema.optional(),
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
  refineTools(t, ctx);
}

/** Tool names unique across the tenant's tools and built-ins, parameter schemas that compile, transfer targets named once. */
function refineTools(t: z.output<typeof tenantFields>, ctx: z.RefinementCtx): void {
  const names = new Map<string, string>(BUILTIN_TOOLS.map((b) => [b, 'a built-in tool']));
  t.tools?.forEach((tool, i) => {
    const taken = names.get(tool.name);
    if (taken) ctx.addIssue({ code: 'custom', path: ['tools', i, 'name'], message: `'${tool.name}' is already ${taken}` });
    names.set(tool.name, 'another tool');
    const problem = tool.parameters && jsonSchemaProblem(tool.parameters);
    if (problem) ctx.addIssue({ code: 'custom', path: ['tools', i, 'parameters', ...problem.path], message: problem.message });
  });
  const servers = new Set<string>();
  t.mcpServers?.forEach((server, i) => {
    if (servers.has(server.name)) ctx.addIssue({ code: 'custom', path: ['mcpServers', i, 'name'], message: `'${server.name}' is used by another MCP server` });
    servers.add(server.name);
  });
  const targets = new Set<string>();
  t.transfer?.targets.forEach((target, i) => {
    if (targets.has(target.name)) ctx.addIssue({ code: 'custom', path: ['transfer', 'targets', i, 'name'], message: `'${target.name}' is used by another target` });
    targets.add(target.name);
  });
  if (t.builtinTools?.includes('transfer_call') && targets.size === 0) {
    ctx.addIssue({ code: 'custom', path: ['builtinTools'], message: 'transfer_call needs at least one transfer.targets entry' });
  }
  if (t.webhooks && (t.webhooks.callStart || t.webhooks.callEnd || t.webhooks.roomEvents) && !t.webhooks.secret) {
    ctx.addIssue({ code: 'custom', path: ['webhooks', 'secret'], message: 'call webhooks are signed: set a secret (16+ characters)' });
  }
}

export const tenantSchema = tenantFields.superRefine(refineTenant);

export type TenantInput = z.input<typeof tenantSchema>;
export type Tenant = z.output<typeof tenantSchema>;

const wellFormed = (s: string): boolean => !LONE_SURROGATE.test(s);
const WELL_FORMED = 'must be well-formed Unicode (no lone surrogate)';

export const callUrlSchema = object({
  /** Readable (`joes-pizza`) or, when absent, a random unguessable token is made. */
  slug: z
    .string()
    .min(3)
    .max(64)
    .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, - and _')
    .optional(),
  tenantId: id,
  /** Values for the greeting template (`{{name}}`). */
  variables: z.record(z.string().regex(/^[A-Za-z_][\w.-]*$/), line(0, 200)).default({}),
  /** ISO 8601; the URL stops working then. */
  expiresAt: z.iso.datetime({ offset: true }).optional(),
  /** Calls the URL may start; unlimited when absent. */
  maxUses: z.number().int().min(1).optional(),
  /** Sites allowed to start calls with it and to embed its phone (Origin check, CSP frame-ancestors); any when empty. */
  allowedOrigins: z.array(z.url().refine(wellFormed, WELL_FORMED)).default([]),
  enabled: z.boolean().default(true),
});

/** How a room's agents take turns (docs/rooms.md): only when named, on every turn, or never (listeners). */
export const ROOM_RESPOND = ['addressed', 'always', 'never'] as const;
export type RoomRespond = (typeof ROOM_RESPOND)[number];

/** A room: several people and AI participants on one conversation (`/r/<roomId>`). */
export const roomSchema = object({
  name: line(1, 100).optional(),
  /** People and agents at once; 8 by default (a meeting, not a broadcast: every member gets its own mix). */
  maxParticipants: z.number().int().min(2).max(32).default(8),
  /** ISO 8601; joins are refused (410) after it. */
  expiresAt: z.iso.datetime({ offset: true }).optional(),
  /** Asked of everyone who joins (the page's field, a SIP caller's keypad). */
  pin: z.string().regex(/^\d{4,8}$/, '4 to 8 digits').optional(),
  respond: z.enum(ROOM_RESPOND).default('addressed'),
});
export type RoomInput = z.input<typeof roomSchema>;

/** An AI participant, made from a short description of who it is and what it does. */
export const roomAgentSchema = object({
  description: text(1, 2000),
  /** Taken from the description ("Max, a travel agent…") when absent. */
  name: line(1, 60).optional(),
  voice: line(1, 60).optional(),
  greeting: text(1, 500).optional(),
  /** Names of the tenant's tools this agent may call. */
  tools: z.array(line(1, 64)).max(20).optional(),
});
export type RoomAgentInput = z.input<typeof roomAgentSchema>;

export type CallUrlInput = z.input<typeof callUrlSchema>;
export type CallUrl = z.output<typeof callUrlSchema> & { readonly slug: string };

/** E.164 (`+14155550100`) or a SIP URI user@host (`sip:support@example.com`). */
export const numberSchema = object({
  number: z
    .string()
    .refine((v) => /^\+[1-9]\d{6,14}$/.test(v) || /^sips?:[^@\s\p{Cc}]+@[^@\s\p{Cc}]+$/u.test(v), 'an E.164 number (+ and 7–15 digits) or a SIP URI (sip:user@host)'),
  tenantId: id,
  /** Only calls from this trunk may use the number (optional). */
  trunk: id.optional(),
  /** Callers join this room (a room id of the same tenant) instead of talking to the tenant's agent. */
  room: z.string().regex(/^[A-Za-z0-9]{1,64}$/, 'a room id').optional(),
});
export type NumberRoute = z.output<typeof numberSchema>;

const cidr = z.string().refine((v) => /^(\d{1,3}\.){3}\d{1,3}\/(\d|[12]\d|3[0-2])$/.test(v) || /^[0-9a-fA-F:]+\/\d{1,3}$/.test(v), 'a CIDR like 203.0.113.0/24');
/** Digest credentials a trunk answers with (the password is stored encrypted). */
export const trunkAuthSchema = object({ username: line(1, 100), password: line(8, 200) });

/** In a trunk's `tenants`: every tenant may use the trunk (a carrier the operator shares among all). */
export const ALL_TENANTS = '*';

export const trunkSchema = object({
  name: id,
  /** Source addresses the carrier sends from. */
  sourceCidrs: z.array(cidr).min(1),
  /**
   * The tenants that may use the trunk: dial out through it and pin their numbers to it. `['*']`: every
   * tenant. Absent or empty: none (an operator's trunk is nobody's until it says whose).
   */
  tenants: z.array(z.union([id, z.literal(ALL_TENANTS)])).max(1000).optional(),
  auth: trunkAuthSchema.optional(),
  /** Where outbound calls through this trunk go (`POST /v1/calls`); absent: the trunk is inbound only. */
  outbound: object({
    /** The carrier's SIP host: a name or an IPv4 address (no scheme, no port). */
    host: z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/, 'a host name or IPv4 address'),
    port: z.number().int().min(1).max(65535).default(5060),
    transport: z.enum(['udp', 'tcp']).default('udp'),
    /** The number presented as the caller (E.164); the carrier may require one of yours. */
    callerId: z.string().regex(/^\+[1-9]\d{6,14}$/, 'an E.164 number').optional(),
  }).optional(),
});
export type Trunk = z.output<typeof trunkSchema>;

/** Whether `trunk` lets `tenantId` dial out through it or pin a number to it. */
export function trunkAllows(trunk: Pick<Trunk, 'tenants'>, tenantId: string): boolean {
  return (trunk.tenants ?? []).some((t) => t === ALL_TENANTS || t === tenantId);
}

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
