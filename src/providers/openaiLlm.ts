import OpenAI from 'openai';
import { CallgateError } from '../errors.js';
import { stripUndefined } from '../util/options.js';
import { FirstByteDeadline, openAiClient, openAiErrorDetails, type OpenAiClientOptions } from './openaiClient.js';
import type { LlmEvent, LlmProvider, LlmRequest } from './types.js';

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

const END_CALL_TOOL = {
  type: 'function' as const,
  function: {
    name: 'end_call',
    description: 'End the phone call. Call it only after you have said goodbye to the caller.',
    parameters: { type: 'object', properties: {}, additionalProperties: false },
  },
};

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
    try {
      const stream = await this.client.chat.completions.create(
        {
          model: this.options.model,
          messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
          stream: true,
          tools: [END_CALL_TOOL],
          ...(this.options.temperature === undefined ? {} : { temperature: this.options.temperature }),
        },
        { signal: deadline.signal },
      );
      for await (const chunk of stream) {
        deadline.arrived();
        const delta = chunk.choices[0]?.delta;
        if (delta?.content) yield { type: 'text', text: delta.content };
        if (delta?.tool_calls?.some((t) => t.function?.name === 'end_call')) hangup = true;
      }
      // The SDK ends its stream quietly when its signal aborts, our deadline's included.
      if (deadline.timedOut) throw new Error('deadline passed');
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
