import type { Logger } from 'pino';
import type { ToolOutcome } from '../agent/CallTools.js';
import type { ToolCall } from '../providers/types.js';
import { argumentChecker } from '../tenants/jsonSchema.js';
import type { ToolDefinition } from '../tenants/schema.js';
import { send, SendError } from '../webhooks/send.js';
import { signedHeaders } from '../webhooks/sign.js';
import { capToolResult, toolFailed, type ToolSource } from './ToolSource.js';

/** What a tool webhook is told about the call it serves (`call` in the request body). */
export interface ToolCallContext {
  readonly callId: string;
  readonly tenantId: string;
  readonly call: { readonly door: string; readonly from: string; readonly to: string; readonly variables: Readonly<Record<string, string>> };
  /** Signs each request; without one the request carries the delivery id only. */
  readonly secret: string | undefined;
  readonly allowPrivate: boolean;
  readonly log: Logger;
}

/**
 * The largest answer read from a tool webhook (1 MB). The model gets at most 16 KB of it, but the
 * answer must be read whole to know it is valid JSON.
 */
const MAX_ANSWER_BYTES = 1024 * 1024;

const NO_PARAMETERS = { type: 'object', properties: {} } as const;

/**
 * A tenant's webhook tools: each call is an HTTP request to the tenant's server, signed, with the
 * model's arguments, whose JSON answer goes back to the model as the tool message.
 */
export function webhookTools(tools: readonly ToolDefinition[], ctx: ToolCallContext): ToolSource {
  const byName = new Map(tools.map((t) => [t.name, { tool: t, check: argumentChecker(t.parameters ?? NO_PARAMETERS) }]));
  return {
    specs: tools.map((t) => ({ name: t.name, description: t.description, parameters: t.parameters ?? NO_PARAMETERS })),
    filler: (name) => byName.get(name)?.tool.filler,
    async run(call: ToolCall, args: Record<string, unknown>, signal: AbortSignal): Promise<ToolOutcome> {
      const entry = byName.get(call.name);
      if (!entry) return toolFailed(call.name, 'no such tool');
      const { tool, check } = entry;
      const problem = check(args);
      if (problem) return toolFailed(tool.name, `the arguments do not match its parameters (${problem})`);
      const body = JSON.stringify({ type: 'tool.call', callId: ctx.callId, tenantId: ctx.tenantId, tool: tool.name, arguments: args, call: ctx.call });
      const log = ctx.log.child({ tool: tool.name });
      try {
        const answer = await send(tool.webhook.url, {
          method: tool.webhook.method,
          // The signature comes last: a tenant's header of the same name cannot replace it.
          headers: { ...tool.webhook.headers, ...signedHeaders(ctx.secret, body) },
          body,
          timeoutMs: tool.webhook.timeoutMs,
          maxResponseBytes: MAX_ANSWER_BYTES,
          allowPrivate: ctx.allowPrivate,
          signal,
        });
        if (answer.status < 200 || answer.status > 299) {
          log.warn({ status: answer.status, ms: Math.round(answer.elapsedMs) }, 'tool webhook answered with an error status');
          return toolFailed(tool.name, `its server answered HTTP ${answer.status}`);
        }
        if (answer.truncated || !isJson(answer.body)) {
          log.warn({ status: answer.status, bytes: answer.body.length, truncated: answer.truncated }, 'tool webhook answer is not JSON');
          return toolFailed(tool.name, answer.truncated ? 'its answer was larger than 1 MB' : 'its answer was not valid JSON');
        }
        log.debug({ ms: Math.round(answer.elapsedMs) }, 'tool webhook answered');
        return { ok: true, content: capToolResult(answer.body) };
      } catch (err) {
        const why = err instanceof SendError ? (err.kind === 'timeout' ? `no answer within ${tool.webhook.timeoutMs} ms` : err.kind === 'refused' ? 'its address is not allowed' : `it could not be reached (${err.message})`) : String(err);
        log.warn({ err: err instanceof Error ? err.message : String(err) }, 'tool webhook failed');
        return toolFailed(tool.name, why);
      }
    },
  };
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return text.trim().length > 0;
  } catch {
    return false;
  }
}
