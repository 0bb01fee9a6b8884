import type { Logger } from 'pino';
import type { CallTools, ToolOutcome } from '../agent/CallTools.js';
import type { AgentProviders, ChatMessage, ToolCall, ToolSpec } from '../providers/types.js';
import type { CallDoor } from '../tenants/CallRecordStore.js';
import type { McpServerDefinition, Tenant } from '../tenants/schema.js';
import { stripUndefined } from '../util/options.js';
import { builtinTools } from './builtins.js';
import type { CallControls } from './controls.js';
import { toolFailed, type ToolSource } from './ToolSource.js';
import { webhookTools } from './webhookTools.js';

/** What a call's tools are made from. */
export interface ToolBoxRequest {
  readonly tenant: Tenant;
  /** Sent with every tool webhook (`call` in its body). */
  readonly call: { readonly callId: string; readonly door: CallDoor; readonly from: string; readonly to: string; readonly variables: Readonly<Record<string, string>> };
  readonly controls: CallControls;
  /** The call's providers: a warm transfer's summary is written by its LLM and spoken by its TTS. */
  readonly providers: AgentProviders;
  readonly voice: string;
  /** The conversation so far. */
  transcript(): readonly ChatMessage[];
  readonly log: Logger;
}

export interface ToolBoxFactory {
  forCall(request: ToolBoxRequest): Promise<CallTools & { close(): Promise<void> | void }>;
}

/** What the ToolBox needs of the MCP client (src/tools/mcp/McpTools.ts). */
export interface McpToolProvider {
  forCall(tenantId: string, servers: readonly McpServerDefinition[], log: Logger): Promise<ToolSource & { close(): Promise<void> }>;
}

export interface ToolBoxOptions {
  /** Spoken when a tool with no filler of its own is slow. */
  readonly defaultFiller: string;
  /** Tool webhooks (and MCP servers) on private addresses are refused unless this is set. */
  readonly allowPrivate: boolean;
  readonly mcp: McpToolProvider | undefined;
}

export const defaultToolBoxOptions = {
  /** The issue's own example, and what a person says when they look something up. */
  defaultFiller: 'One moment while I check.',
  allowPrivate: false,
  mcp: undefined,
} as const satisfies ToolBoxOptions;

/**
 * Each call's tools: the built-ins, the tenant's webhooks, and its MCP servers' tools, in that order
 * (a name taken by an earlier one is not offered twice). Every call the model makes is routed to the
 * source that offered it, its arguments parsed first.
 */
export class ToolBoxes implements ToolBoxFactory {
  private readonly opts: ToolBoxOptions;

  constructor(options: Partial<ToolBoxOptions> = {}) {
    this.opts = { ...defaultToolBoxOptions, ...stripUndefined(options) };
  }

  async forCall(r: ToolBoxRequest): Promise<CallTools & { close(): Promise<void> }> {
    const { tenant } = r;
    const sources: (ToolSource & { close?(): Promise<void> })[] = [
      builtinTools({ tenant, controls: r.controls, providers: r.providers, voice: r.voice, transcript: () => r.transcript() }),
    ];
    if (tenant.tools?.length) {
      sources.push(
        webhookTools(tenant.tools, {
          callId: r.call.callId,
          tenantId: tenant.id,
          call: { door: r.call.door, from: r.call.from, to: r.call.to, variables: r.call.variables },
          secret: tenant.webhooks?.secret,
          allowPrivate: this.opts.allowPrivate,
          log: r.log,
        }),
      );
    }
    if (tenant.mcpServers?.length && this.opts.mcp) sources.push(await this.opts.mcp.forCall(tenant.id, tenant.mcpServers, r.log));
    const route = new Map<string, ToolSource>();
    const specs: ToolSpec[] = [];
    for (const source of sources) {
      for (const spec of source.specs) {
        if (route.has(spec.name)) {
          r.log.warn({ tool: spec.name }, 'two tools share a name; the first is offered');
          continue;
        }
        route.set(spec.name, source);
        specs.push(spec);
      }
    }
    const { defaultFiller } = this.opts;
    return {
      specs,
      filler: (name) => route.get(name)?.filler?.(name) ?? defaultFiller,
      async run(call: ToolCall): Promise<ToolOutcome> {
        const source = route.get(call.name);
        if (!source) return toolFailed(call.name, 'no such tool');
        let args: unknown;
        try {
          args = JSON.parse(call.arguments || '{}');
        } catch {
          return toolFailed(call.name, 'its arguments were not valid JSON');
        }
        if (typeof args !== 'object' || args === null || Array.isArray(args)) return toolFailed(call.name, 'its arguments must be a JSON object');
        try {
          return await source.run(call, args as Record<string, unknown>, new AbortController().signal);
        } catch (err) {
          // A source's bug is the tool's failure, not the call's.
          r.log.error({ tool: call.name, err: err instanceof Error ? err.stack : String(err) }, 'tool source threw');
          return toolFailed(call.name, 'internal error');
        }
      },
      async close(): Promise<void> {
        await Promise.all(sources.map((s) => s.close?.()));
      },
    };
  }
}
