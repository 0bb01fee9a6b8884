import { createHash } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Logger } from 'pino';
import type { ToolOutcome } from '../../agent/CallTools.js';
import { rootLogger } from '../../log.js';
import type { ToolCall, ToolSpec } from '../../providers/types.js';
import type { McpServerDefinition } from '../../tenants/schema.js';
import { privateDestinationsAllowed } from '../../util/destination.js';
import { stripUndefined } from '../../util/options.js';
import { guardedFetch } from '../../webhooks/guardedFetch.js';
import type { McpToolProvider } from '../ToolBox.js';
import { capToolResult, toolFailed, type ToolSource } from '../ToolSource.js';

/**
 * A tenant's MCP servers as tools for one call, through the official SDK's client over Streamable HTTP.
 * Tools are listed when the call starts and the list is cached briefly per tenant and server, so a
 * busy line does not list on every call; a call whose list came from the cache connects to the server
 * only when the model first calls one of its tools, and keeps that connection for the rest of the call.
 */
export interface McpToolsOptions {
  /** How long a server's tool list is reused. */
  readonly listCacheMs: number;
  /** Connecting and listing at call start; a slower server gives this call no tools. */
  readonly connectTimeoutMs: number;
  /** One tool call. */
  readonly callTimeoutMs: number;
  readonly allowPrivate: boolean;
  readonly logger: Logger;
}

export const defaultMcpToolsOptions = {
  /** 30 s: a tenant's change of tools shows within a call or two; a busy line lists twice a minute, not per call. */
  listCacheMs: 30_000,
  /** 2 s: the listing runs while the caller's side is still answering; longer would delay the greeting. */
  connectTimeoutMs: 2000,
  /** 10 s: past the filler, a caller waits a few seconds at most; the model is then told the tool failed. */
  callTimeoutMs: 10_000,
  allowPrivate: privateDestinationsAllowed(),
  logger: rootLogger,
} satisfies McpToolsOptions;

interface Listed {
  readonly at: number;
  readonly tools: readonly ToolSpec[];
}

/** One server for one call: its connection, made at most once. */
class ServerSession {
  private client: Promise<Client> | undefined;
  constructor(
    readonly server: McpServerDefinition,
    private readonly opts: McpToolsOptions,
  ) {}

  connect(timeoutMs: number): Promise<Client> {
    this.client ??= (async () => {
      const client = new Client({ name: 'callgate', version: '1' });
      const transport = new StreamableHTTPClientTransport(new URL(this.server.url), {
        requestInit: { headers: { ...this.server.headers } },
        fetch: guardedFetch(this.opts.allowPrivate),
      });
      await client.connect(transport, { timeout: timeoutMs });
      return client;
    })();
    // A failed connection is not kept: the next tool call tries again.
    this.client.catch(() => (this.client = undefined));
    return this.client;
  }

  async close(): Promise<void> {
    const client = await this.client?.catch(() => undefined);
    await client?.close().catch(() => undefined);
  }
}

export class McpTools implements McpToolProvider {
  private readonly opts: McpToolsOptions;
  private readonly lists = new Map<string, Listed>();

  constructor(options: Partial<McpToolsOptions> = {}) {
    this.opts = { ...defaultMcpToolsOptions, ...stripUndefined(options) };
  }

  async forCall(tenantId: string, servers: readonly McpServerDefinition[], log: Logger = this.opts.logger): Promise<ToolSource & { close(): Promise<void> }> {
    const sessions = servers.map((s) => new ServerSession(s, this.opts));
    const listed = await Promise.all(sessions.map((session) => this.list(tenantId, session, log)));
    const route = new Map<string, ServerSession>();
    const specs: ToolSpec[] = [];
    listed.forEach((tools, i) => {
      const session = sessions[i]!;
      const allowed = session.server.allowedTools;
      for (const tool of tools) {
        if (allowed && !allowed.includes(tool.name)) continue;
        if (route.has(tool.name)) {
          log.warn({ tool: tool.name, server: session.server.name, offeredBy: route.get(tool.name)!.server.name }, 'two MCP servers offer the same tool; the first is used');
          continue;
        }
        route.set(tool.name, session);
        specs.push(tool);
      }
    });
    const { callTimeoutMs, connectTimeoutMs } = this.opts;
    return {
      specs,
      async run(call: ToolCall, args: Record<string, unknown>, signal: AbortSignal): Promise<ToolOutcome> {
        const session = route.get(call.name);
        if (!session) return toolFailed(call.name, 'no such tool');
        try {
          const client = await session.connect(connectTimeoutMs);
          const result = await client.callTool({ name: call.name, arguments: args }, undefined, { signal, timeout: callTimeoutMs });
          const text = resultText(result as { content?: unknown; structuredContent?: unknown });
          if (result.isError) return toolFailed(call.name, text.slice(0, 300) || 'the server reported an error');
          return { ok: true, content: capToolResult(text) };
        } catch (err) {
          const why = err instanceof Error ? err.message : String(err);
          log.warn({ tool: call.name, server: session.server.name, err: why }, 'MCP tool call failed');
          return toolFailed(call.name, /timed out|timeout/i.test(why) ? `no answer within ${callTimeoutMs} ms` : `its server failed (${why.slice(0, 120)})`);
        }
      },
      async close(): Promise<void> {
        await Promise.all(sessions.map((s) => s.close()));
      },
    };
  }

  /** The server's tools, from the cache or listed now (bounded in time); none when it cannot be reached. */
  private async list(tenantId: string, session: ServerSession, log: Logger): Promise<readonly ToolSpec[]> {
    const key = cacheKey(tenantId, session.server);
    const cached = this.lists.get(key);
    if (cached && performance.now() - cached.at < this.opts.listCacheMs) return cached.tools;
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      const listing = (async () => {
        const client = await session.connect(this.opts.connectTimeoutMs);
        const tools: ToolSpec[] = [];
        let cursor: string | undefined;
        // Pages, bounded: a server that keeps returning cursors must not hold the call start.
        for (let page = 0; page < 10; page++) {
          const result = await client.listTools(cursor ? { cursor } : undefined, { timeout: this.opts.connectTimeoutMs });
          for (const t of result.tools) tools.push({ name: t.name, description: t.description ?? t.title ?? t.name, parameters: { ...t.inputSchema } });
          cursor = result.nextCursor;
          if (!cursor) break;
        }
        return tools;
      })();
      const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no tool list within ${this.opts.connectTimeoutMs} ms`)), this.opts.connectTimeoutMs)));
      const tools = await Promise.race([listing, timeout]);
      this.lists.set(key, { at: performance.now(), tools });
      log.debug({ server: session.server.name, tools: tools.length, ms: Math.round(performance.now() - started) }, 'MCP tools listed');
      return tools;
    } catch (err) {
      log.warn({ server: session.server.name, err: err instanceof Error ? err.message : String(err) }, 'MCP server unavailable; its tools are not offered on this call');
      void session.close();
      return [];
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Tenant, URL and headers: a changed header (a rotated key) lists again. Hashed: the key holds no secret. */
function cacheKey(tenantId: string, server: McpServerDefinition): string {
  const headers = createHash('sha256').update(JSON.stringify(Object.entries(server.headers ?? {}).sort())).digest('hex').slice(0, 16);
  return `${tenantId}\u0000${server.url}\u0000${headers}`;
}

/** A tool result as the tool message: its text parts, else its structured content, else its content as JSON. */
function resultText(result: { content?: unknown; structuredContent?: unknown }): string {
  const content = Array.isArray(result.content) ? (result.content as { type?: string; text?: string }[]) : [];
  const texts = content.filter((c) => c.type === 'text' && typeof c.text === 'string').map((c) => c.text!);
  if (texts.length > 0) return texts.join('\n');
  if (result.structuredContent !== undefined) return JSON.stringify(result.structuredContent);
  return JSON.stringify(content);
}
