import { CallgateError } from '../../errors.js';
import type { LlmEvent, LlmProvider, LlmRequest } from '../types.js';
import { streamDownChain, type ChainContext, type ChainLink } from './chain.js';

/**
 * An LLM chain (streamDownChain): a provider that fails before its first token hands the request to
 * the next; a failure after text was spoken is thrown, and the agent apologises.
 */
export class FallbackLlm implements LlmProvider {
  readonly name: string;

  constructor(
    private readonly links: readonly ChainLink<LlmProvider>[],
    private readonly ctx: ChainContext,
  ) {
    if (links.length === 0) throw new CallgateError('CG_PROVIDER_UNKNOWN', 'an LLM chain needs at least one provider');
    this.name = links.map((l) => l.name).join('>');
  }

  async *stream(request: LlmRequest): AsyncIterable<LlmEvent> {
    for await (const [event] of streamDownChain('llm', this.links, this.ctx, request.signal, (link) => link.provider.stream(request))) yield event;
  }
}
