import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { ChatMessage, LlmEvent, LlmProvider, LlmRequest, ToolCall } from '../providers/types.js';
import { END_CALL_TOOL } from '../providers/types.js';
import type { CallTools, ToolOutcome } from './CallTools.js';
import type { AgentEvent } from './events.js';
import { SessionEvents } from './SessionEvents.js';
import { toolLoop, type ReplyEvent } from './ToolLoop.js';

const silent = pino({ level: 'silent' });

/** A model that answers each request with `script(request, n)`: text, then tool calls. */
class ScriptLlm implements LlmProvider {
  readonly name = 'script';
  readonly requests: LlmRequest[] = [];
  constructor(private readonly script: (request: LlmRequest, n: number) => { text?: string; calls?: { name: string; arguments?: string }[] }) {}
  async *stream(request: LlmRequest): AsyncIterable<LlmEvent> {
    // A copy: the loop appends to the same history afterwards.
    this.requests.push({ ...request, messages: [...request.messages] });
    const answer = this.script(request, this.requests.length);
    for (const word of (answer.text ?? '').split(/(?<=\s)/).filter(Boolean)) yield { type: 'text', text: word };
    for (const [i, c] of (answer.calls ?? []).entries()) yield { type: 'tool-call', call: { id: `call_${this.requests.length}_${i}`, name: c.name, arguments: c.arguments ?? '{}' } };
  }
}

/** Tools that answer after `delayMs[name]` with `{"tool": name}`; records when each started and ended. */
class SlowTools implements CallTools {
  readonly specs = [END_CALL_TOOL, { name: 'lookup', description: 'd', parameters: { type: 'object' } }, { name: 'other', description: 'd', parameters: { type: 'object' } }];
  readonly runs: { name: string; start: number; end?: number }[] = [];
  constructor(private readonly delayMs: Record<string, number>) {}
  filler(name: string): string {
    return `Checking ${name}.`;
  }
  async run(call: ToolCall): Promise<ToolOutcome> {
    const entry: { name: string; start: number; end?: number } = { name: call.name, start: performance.now() };
    this.runs.push(entry);
    await new Promise((r) => setTimeout(r, this.delayMs[call.name] ?? 0));
    entry.end = performance.now();
    return { ok: true, content: JSON.stringify({ tool: call.name, args: JSON.parse(call.arguments) as unknown }) };
  }
}

function loop(llm: LlmProvider, tools: CallTools | undefined, signal = new AbortController().signal, opts: { fillerAfterMs?: number; maxToolRounds?: number } = {}) {
  const history: ChatMessage[] = [{ role: 'user', content: 'when do you open on saturday' }];
  const got: AgentEvent[] = [];
  let said = '';
  const events = toolLoop(
    {
      llm,
      tools,
      systemPrompt: 'You are a test.',
      history,
      opts: { maxToolRounds: opts.maxToolRounds ?? 5, fillerAfterMs: opts.fillerAfterMs ?? 700, llmFirstTokenTimeoutMs: 2000, llmStallTimeoutMs: 2000 },
      events: new SessionEvents((e) => got.push(e), silent, () => 1),
      turn: 1,
      log: silent,
      saidBeforeTools: (text) => (said = text),
    },
    signal,
  );
  return { events, history, got, said: () => said };
}

async function collect(events: AsyncIterable<ReplyEvent>): Promise<ReplyEvent[]> {
  const out: ReplyEvent[] = [];
  for await (const ev of events) out.push(ev);
  return out;
}
const textOf = (evs: readonly ReplyEvent[]): string => evs.map((e) => (e.type === 'text' ? e.text : e.type === 'flush' ? '|' : '')).join('');

describe('toolLoop: the model asks for tools, gets their answers, and goes on', () => {
  it('says what came before the tool call, runs it, gives the answer back as a tool message and streams the next reply', async () => {
    const llm = new ScriptLlm((req) => (req.messages.at(-1)?.role === 'tool' ? { text: 'We open at nine.' } : { text: 'Let me check. ', calls: [{ name: 'lookup', arguments: '{"day":"saturday"}' }] }));
    const { events, history, said } = loop(llm, new SlowTools({}));
    const evs = await collect(events);
    // The pre-tool sentence is flushed before the tool runs, then the answer follows.
    expect(textOf(evs)).toBe('Let me check. |We open at nine.');
    expect(llm.requests).toHaveLength(2);
    expect(llm.requests[0]!.tools?.map((t) => t.name)).toEqual(['end_call', 'lookup', 'other']);
    const [, asked, answered] = llm.requests[1]!.messages.slice(1);
    expect(asked).toEqual({ role: 'assistant', content: 'Let me check. ', toolCalls: [{ id: 'call_1_0', name: 'lookup', arguments: '{"day":"saturday"}' }] });
    expect(answered).toEqual({ role: 'tool', toolCallId: 'call_1_0', content: '{"tool":"lookup","args":{"day":"saturday"}}' });
    expect(history.map((m) => m.role)).toEqual(['user', 'assistant', 'tool']);
    expect(said()).toBe('Let me check. ');
  });

  it('runs several calls of one answer in parallel and answers each by its id', async () => {
    const llm = new ScriptLlm((req) => (req.messages.at(-1)?.role === 'tool' ? { text: 'Done.' } : { calls: [{ name: 'lookup' }, { name: 'other' }] }));
    const tools = new SlowTools({ lookup: 150, other: 150 });
    await collect(loop(llm, tools, undefined, { fillerAfterMs: 10_000 }).events);
    // Both started before either ended: parallel, not one after the other.
    expect(tools.runs[1]!.start).toBeLessThan(tools.runs[0]!.end!);
    const tail = llm.requests[1]!.messages.slice(-2);
    expect(tail.map((m) => (m.role === 'tool' ? m.toolCallId : ''))).toEqual(['call_1_0', 'call_1_1']);
  });

  it('speaks the filler when a tool is slow, and not when it is quick', async () => {
    const llm = () => new ScriptLlm((req) => (req.messages.at(-1)?.role === 'tool' ? { text: 'Here it is.' } : { calls: [{ name: 'lookup' }] }));
    const slow = textOf(await collect(loop(llm(), new SlowTools({ lookup: 250 }), undefined, { fillerAfterMs: 60 }).events));
    expect(slow).toBe('|Checking lookup. |Here it is.');
    const quick = textOf(await collect(loop(llm(), new SlowTools({ lookup: 5 }), undefined, { fillerAfterMs: 200 }).events));
    expect(quick).toBe('|Here it is.');
  });

  it('stops offering tools after maxToolRounds: the last request offers end_call only', async () => {
    const llm = new ScriptLlm(() => ({ calls: [{ name: 'lookup' }] }));
    const tools = new SlowTools({});
    await collect(loop(llm, tools, undefined, { maxToolRounds: 3 }).events);
    expect(llm.requests).toHaveLength(4);
    expect(tools.runs).toHaveLength(3);
    expect(llm.requests[3]!.tools?.map((t) => t.name)).toEqual(['end_call']);
  });

  it('a caller who interrupts ends the wait at once; the unanswered call is told as not used; the late answer is dropped', async () => {
    const llm = new ScriptLlm(() => ({ calls: [{ name: 'lookup' }] }));
    const tools = new SlowTools({ lookup: 400 });
    const abort = new AbortController();
    const { events, history, got } = loop(llm, tools, abort.signal, { fillerAfterMs: 10_000 });
    setTimeout(() => abort.abort(), 50);
    await collect(events);
    // The loop was done before the tool answered.
    expect(tools.runs[0]!.end).toBeUndefined();
    expect(history.at(-1)).toMatchObject({ role: 'tool', toolCallId: 'call_1_0' });
    expect(history.at(-1)!.content).toMatch(/not used: the caller interrupted/);
    await new Promise((r) => setTimeout(r, 450));
    // The answer came, after the interruption: no tool event, and no second model request.
    expect(tools.runs[0]!.end).toBeDefined();
    expect(got.filter((e) => e.type === 'tool')).toHaveLength(0);
    expect(llm.requests).toHaveLength(1);
  });

  it('without tools the request offers none of its own (the provider then offers end_call alone)', async () => {
    const llm = new ScriptLlm(() => ({ text: 'Hello.', calls: [{ name: 'lookup' }] }));
    const evs = await collect(loop(llm, undefined).events);
    expect(textOf(evs)).toBe('Hello.');
    expect(llm.requests[0]!.tools).toBeUndefined();
    expect(llm.requests).toHaveLength(1);
  });
});
