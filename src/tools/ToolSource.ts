import type { ToolOutcome } from '../agent/CallTools.js';
import type { ToolCall, ToolSpec } from '../providers/types.js';

/**
 * One family of tools a call can use (the tenant's webhooks, one MCP server, the built-ins). The call's
 * ToolBox offers the specs of all of them and sends each call to the source that named it.
 */
export interface ToolSource {
  readonly specs: readonly ToolSpec[];
  /** Never rejects: a failure is an outcome (`ok: false`, content saying why in a line the model can use). */
  run(call: ToolCall, args: Record<string, unknown>, signal: AbortSignal): Promise<ToolOutcome>;
  /** The source's own filler for a slow `name`, if it has one. */
  filler?(name: string): string | undefined;
}

/** The longest tool answer given back to the model (16 KB): more is cut, and the model is told. */
export const MAX_TOOL_RESULT_BYTES = 16 * 1024;

/** A tool answer cut to MAX_TOOL_RESULT_BYTES on a character boundary. */
export function capToolResult(text: string): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= MAX_TOOL_RESULT_BYTES) return text;
  // Decoding a cut buffer may end in a replacement character; drop it.
  return `${bytes.subarray(0, MAX_TOOL_RESULT_BYTES - 40).toString('utf8').replace(/\uFFFD$/, '')}… [cut at 16 KB]`;
}

/** A failure, said briefly for the model ("get_hours failed: no answer within 3000 ms"). */
export function toolFailed(name: string, why: string): ToolOutcome {
  return { ok: false, content: JSON.stringify({ error: `${name} failed: ${why}` }) };
}
