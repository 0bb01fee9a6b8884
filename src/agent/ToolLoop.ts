import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { END_CALL_TOOL, type ChatMessage, type LlmEvent, type LlmProvider, type ToolCall } from '../providers/types.js';
import type { CallTools, ToolOutcome } from './CallTools.js';
import { withTimeouts } from './deadlines.js';
import type { SessionEvents } from './SessionEvents.js';

/** What a reply is made of: the model's events, and a point where the text so far must be spoken now. */
export type ReplyEvent = LlmEvent | { readonly type: 'flush' };

export interface ToolLoopOptions {
  /** Model requests that may end in tool calls for one caller turn; the next one gets no tools but end_call. */
  readonly maxToolRounds: number;
  /** A tool still running after this gets its filler spoken, so the caller never sits in silence. */
  readonly fillerAfterMs: number;
  readonly llmFirstTokenTimeoutMs: number;
  readonly llmStallTimeoutMs: number;
}

export interface ToolLoopDeps {
  readonly llm: LlmProvider;
  readonly tools: CallTools | undefined;
  readonly systemPrompt: string;
  /** The conversation; tool calls and their answers are appended as they complete. */
  readonly history: ChatMessage[];
  readonly opts: ToolLoopOptions;
  readonly events: SessionEvents;
  readonly turn: number;
  readonly log: Logger;
  /** Told the text the model said before its tool calls, which history already holds. */
  readonly saidBeforeTools: (text: string) => void;
}

/**
 * One caller turn's exchange with the model: stream, and when the model asks for tools, say what it
 * said so far, run them (in parallel), give it their answers and stream again, up to `maxToolRounds`
 * times. The caller is never left in silence (the filler) and never waits on a tool after
 * interrupting (the turn's signal ends the wait; a late answer is logged and dropped).
 */
export async function* toolLoop(deps: ToolLoopDeps, signal: AbortSignal): AsyncIterable<ReplyEvent> {
  const { opts, tools } = deps;
  let said = '';
  for (let round = 0; ; round++) {
    const lastRound = round >= opts.maxToolRounds;
    const specs = tools && !lastRound ? tools.specs : tools?.specs.filter((s) => s.name === END_CALL_TOOL.name);
    const messages: ChatMessage[] = [{ role: 'system', content: deps.systemPrompt }, ...deps.history];
    const stream = deps.llm.stream({ messages, signal, ...(specs ? { tools: specs } : {}) });
    const calls: ToolCall[] = [];
    let roundText = '';
    for await (const ev of withTimeouts(stream, opts.llmFirstTokenTimeoutMs, opts.llmStallTimeoutMs, 'CG_LLM_TIMEOUT')) {
      if (ev.type === 'tool-call') calls.push(ev.call);
      else {
        if (ev.type === 'text') roundText += ev.text;
        yield ev;
      }
    }
    if (calls.length === 0 || !tools || signal.aborted) return;
    if (lastRound) {
      deps.log.warn({ calls: calls.map((c) => c.name), rounds: round }, 'the model kept calling tools; this turn ends without them');
      return;
    }
    // What the model said before asking is spoken now, not held back until its next sentence.
    yield { type: 'flush' };
    said += roundText;
    deps.history.push({ role: 'assistant', content: roundText, toolCalls: calls });
    const answers = yield* runTools(deps, tools, calls, signal);
    for (const [i, call] of calls.entries()) deps.history.push({ role: 'tool', toolCallId: call.id, content: answers[i]!.content });
    deps.saidBeforeTools(said);
    if (signal.aborted) return;
  }
}

const INTERRUPTED: ToolOutcome = { ok: false, content: JSON.stringify({ error: 'not used: the caller interrupted before it answered' }) };

/** Runs the calls in parallel; the filler is yielded if they are slow. Interrupted: the unanswered ones say so. */
async function* runTools(deps: ToolLoopDeps, tools: CallTools, calls: readonly ToolCall[], signal: AbortSignal): AsyncGenerator<ReplyEvent, ToolOutcome[]> {
  const answers: (ToolOutcome | undefined)[] = calls.map(() => undefined);
  const started = performance.now();
  const running = calls.map((call, i) =>
    tools.run(call).then((outcome) => {
      const durationMs = performance.now() - started;
      if (signal.aborted) {
        deps.log.info({ tool: call.name, ok: outcome.ok, durationMs: Math.round(durationMs) }, 'tool answered after the caller interrupted or hung up: dropped');
        return;
      }
      answers[i] = outcome;
      deps.events.emit({ type: 'tool', turn: deps.turn, name: call.name, ok: outcome.ok, durationMs });
    }),
  );
  const all = Promise.all(running);
  const aborted = new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
  let timer: NodeJS.Timeout | undefined;
  const slow = new Promise<'slow'>((resolve) => (timer = setTimeout(() => resolve('slow'), deps.opts.fillerAfterMs)));
  const first = await Promise.race([all.then(() => 'done' as const), aborted.then(() => 'aborted' as const), slow]);
  clearTimeout(timer);
  if (first === 'slow') {
    const pending = calls.find((_, i) => answers[i] === undefined);
    const filler = tools.filler(pending?.name ?? calls[0]!.name);
    if (filler) {
      yield { type: 'text', text: `${filler} ` };
      yield { type: 'flush' };
    }
    await Promise.race([all, aborted]);
  }
  return answers.map((a) => a ?? INTERRUPTED);
}
