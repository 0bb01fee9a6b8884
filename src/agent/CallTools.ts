import type { ToolCall, ToolSpec } from '../providers/types.js';

/**
 * What the agent may do besides talk, for one call: the tools offered to the model and how to run
 * them. The agent knows nothing of webhooks, MCP or SIP; src/tools builds this from the tenant.
 */
export interface CallTools {
  /** Offered to the model with every request (the built-in `end_call` included when enabled). */
  readonly specs: readonly ToolSpec[];
  /**
   * What the agent says when `name` has not answered after a moment (the tool's filler, or a default);
   * undefined: nothing (a transfer, whose door plays ringback instead).
   */
  filler(name: string): string | undefined;
  /**
   * Runs one call the model asked for. Never rejects: a failure (timeout, non-2xx, bad JSON, unknown
   * tool) is an outcome the model is told about, so the call goes on.
   */
  run(call: ToolCall): Promise<ToolOutcome>;
}

export interface ToolOutcome {
  /** The tool message's content: the answer as received (JSON text), or why it failed. */
  readonly content: string;
  readonly ok: boolean;
}

