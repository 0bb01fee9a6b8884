import OpenAI from 'openai';
import { CallgateError } from '../errors.js';
import { stripUndefined } from '../util/options.js';
import { FirstByteDeadline, openAiClient, openAiErrorDetails, type OpenAiClientOptions } from './openaiClient.js';
import { END_CALL_TOOL, type ChatMessage, type LlmEvent, type LlmProvider, type LlmRequest, type ToolCall, type ToolSpec } from './types.js';

/**
 * LLM through the official `openai` SDK's streaming chat completions, with `baseURL` so that OpenAI,
 * Ollama, vLLM or any OpenAI-compatible server works. Protocol followed:
 * https://platform.openai.com/docs/api-reference/chat/create and
 * https://platform.openai.com/docs/api-reference/chat/streaming (SSE `data:` chunks, `[DONE]`).
 *
 * The agent ends a call when the model calls the `end_call` tool (after saying goodbye); a barge-in
 * aborts the request through the SDK's `signal`, which closes the HTTP connection.
 */
export interface OpenAiLlmOptions extends OpenAiClientOptions {
  readonly model: string;
  /** No first token within this is CG_LLM_TIMEOUT: the caller should not wait in silence. */
  readonly firstTokenTimeoutMs: number;
  /** Once tokens flow, a gap longer than this is CG_LLM_TIMEOUT (the reply stalled halfway). */
  readonly stallTimeoutMs: number;
  readonly temperature: number | undefined;
}

export const defaultOpenAiLlmOptions = {
  baseURL: undefined,
  model: 'gpt-4o-mini',
  /** 3 s: a voice caller hears silence after ~1 s; past 3 s an apology is better than more waiting. */
  firstTokenTimeoutMs: 3000,
  /** 5 s: models pause between tokens for tens of ms; seconds of nothing is a dead stream. */
  stallTimeoutMs: 5000,
  /** 1: one retry fits the first-token budget when a 429 says how long to wait; more would not. */
  maxRetries: 1,
  temperature: undefined,
} as const satisfies Partial<OpenAiLlmOptions>;

export class OpenAiLlm implements LlmProvider {
  readonly name = 'openai';
  readonly options: OpenAiLlmOptions;
  private readonly client: OpenAI;

  constructor(options: Partial<OpenAiLlmOptions> & { apiKey: string }) {
    this.options = { ...defaultOpenAiLlmOptions, ...stripUndefined(options) } as OpenAiLlmOptions;
    this.client = openAiClient(this.options, this.options.firstTokenTimeoutMs);
  }

  async *stream(request: LlmRequest): AsyncIterable<LlmEvent> {
    const deadline = new FirstByteDeadline(request.signal, this.options.firstTokenTimeoutMs, this.options.stallTimeoutMs);
    let hangup = false;
    // Streamed tool calls arrive as deltas keyed by index: the first names the call, later ones append
    // to its arguments. Each is complete only when the stream ends.
    const calls = new Map<number, { id: string; name: string; arguments: string }>();
    try {
      const stream = await this.client.chat.completions.create(
        {
          model: this.options.model,
          messages: request.messages.map(toOpenAiMessage),
          stream: true,
          // An empty list is refused by the API ("expected an array with minimum length 1"): none is omitted.
          ...((request.tools ?? [END_CALL_TOOL]).length > 0 ? { tools: (request.tools ?? [END_CALL_TOOL]).map(toOpenAiTool) } : {}),
          ...(this.options.temperature === undefined ? {} : { temperature: this.options.temperature }),
        },
        { signal: deadline.signal },
      );
      for await (const chunk of stream) {
        deadline.arrived();
        const delta = chunk.choices[0]?.delta;
        if (delta?.content) yield { type: 'text', text: delta.content };
        for (const t of delta?.tool_calls ?? []) {
          const call = calls.get(t.index) ?? { id: '', name: '', arguments: '' };
          if (t.id) call.id = t.id;
          if (t.function?.name) call.name += t.function.name;
          if (t.function?.arguments) call.arguments += t.function.arguments;
          calls.set(t.index, call);
        }
      }
      // The SDK ends its stream quietly when its signal aborts, our deadline's included.
      if (deadline.timedOut) throw new Error('deadline passed');
      for (const [index, call] of [...calls].sort(([a], [b]) => a - b)) {
        if (call.name === END_CALL_TOOL.name) hangup = true;
        else if (call.name) yield { type: 'tool-call', call: { id: call.id || `call_${index}`, name: call.name, arguments: call.arguments || '{}' } satisfies ToolCall };
      }
      if (hangup) yield { type: 'hangup' };
    } catch (err) {
      if (request.signal.aborted) return; // barge-in or hangup: not a failure
      throw toCallgateError(err, deadline, this.options);
    } finally {
      deadline.dispose();
    }
  }
}

/** The SDK's errors as catalogue errors: status and retryability kept, the body's message only. */
function toCallgateError(err: unknown, deadline: FirstByteDeadline, o: OpenAiLlmOptions): CallgateError {
  if (deadline.stalled) return new CallgateError('CG_LLM_TIMEOUT', `the reply stalled for ${o.stallTimeoutMs} ms`, { cause: err });
  if (deadline.timedOut || err instanceof OpenAI.APIConnectionTimeoutError) {
    return new CallgateError('CG_LLM_TIMEOUT', `no first token within ${o.firstTokenTimeoutMs} ms`, { cause: err });
  }
  if (err instanceof OpenAI.APIError) {
    return new CallgateError('CG_LLM_FAILED', `${err.status ?? 'connection'}: ${err.message}`.slice(0, 300), { cause: err, details: openAiErrorDetails(err) });
  }
  return new CallgateError('CG_LLM_FAILED', String(err).slice(0, 300), { cause: err });
}

function toOpenAiTool(tool: ToolSpec): OpenAI.Chat.ChatCompletionFunctionTool {
  return { type: 'function', function: { name: tool.name, description: tool.description, parameters: { ...tool.parameters } } };
}

function toOpenAiMessage(m: ChatMessage): OpenAI.Chat.ChatCompletionMessageParam {
  switch (m.role) {
    case 'tool':
      return { role: 'tool', tool_call_id: m.toolCallId, content: m.content };
    case 'assistant':
      return m.toolCalls?.length
        ? { role: 'assistant', content: m.content || null, tool_calls: m.toolCalls.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.arguments } })) }
        : { role: 'assistant', content: m.content };
    default:
      return { role: m.role, content: m.content };
  }
}
