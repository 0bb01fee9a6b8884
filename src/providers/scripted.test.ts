import { describe, expect, it } from 'vitest';
import { CallgateError } from '../errors.js';
import { ScriptedResponder, words, type ScriptedResponderOptions } from './scripted.js';
import { dtmfUserText, type ChatMessage, type LlmEvent } from './types.js';

const OPTIONS: ScriptedResponderOptions = {
  intents: [
    { name: 'hours', phrases: ['what time do you open', 'opening hours'], reply: 'We open at nine and close at five.', dtmf: '1' },
    { name: 'directions', phrases: ['where are you', 'how do I get there'], reply: 'We are at 1 Main Street.', dtmf: '2' },
    { name: 'booking', phrases: ['book a table'], reply: 'For how many people?' },
  ],
  fallbackReply: 'Sorry, I did not get that.',
  goodbye: { phrases: ['goodbye', 'bye', "that's all"], reply: 'Thanks for calling. Goodbye!' },
};

async function collect(responder: ScriptedResponder, messages: readonly ChatMessage[], signal = new AbortController().signal): Promise<LlmEvent[]> {
  const out: LlmEvent[] = [];
  for await (const ev of responder.stream({ messages, signal })) out.push(ev);
  return out;
}

const user = (content: string): ChatMessage[] => [
  { role: 'system', content: 'You are a phone agent.' },
  { role: 'user', content },
];

describe('words', () => {
  it('lower-cases, drops apostrophes and splits on anything else', () => {
    expect(words("That's ALL, thanks!  Room 12-B")).toEqual(['thats', 'all', 'thanks', 'room', '12', 'b']);
    expect(words(' … ')).toEqual([]);
  });
});

describe('ScriptedResponder.match', () => {
  const r = new ScriptedResponder(OPTIONS);

  it('matches an intent phrase said in full, inside a longer utterance, in any case', () => {
    expect(r.match('Hi, WHAT TIME do you open on Mondays?')).toEqual({ kind: 'intent', intent: 'hours', reply: OPTIONS.intents[0]!.reply });
    expect(r.match('I would like to book a table for two')).toMatchObject({ kind: 'intent', intent: 'booking' });
  });

  it('tolerates recognition slips: enough of the phrase’s words is a match, a word or two is not', () => {
    // 4 of 5 words ("do" lost).
    expect(r.match('what time you open today')).toMatchObject({ kind: 'intent', intent: 'hours' });
    // 2 of 5 words.
    expect(r.match('what time is it')).toMatchObject({ kind: 'fallback' });
    // A two-word phrase needs both words at the default share.
    expect(r.match('what are your hours')).toMatchObject({ kind: 'fallback' });
    expect(new ScriptedResponder({ ...OPTIONS, minWordShare: 0.5 }).match('what are your hours')).toMatchObject({ kind: 'intent', intent: 'hours' });
  });

  it('picks the intent whose phrase matches best, the first listed on a tie', () => {
    expect(r.match('where are you and how do I get there')).toMatchObject({ intent: 'directions' });
    expect(r.match('opening hours please, and how to get there')).toMatchObject({ intent: 'hours' });
    expect(r.match('opening hours and where are you')).toMatchObject({ intent: 'hours' });
  });

  it('says goodbye for a goodbye phrase said as whole words', () => {
    for (const said of ['Goodbye.', 'ok bye', "No, that's all, thanks", 'thats all']) {
      expect(r.match(said), said).toEqual({ kind: 'goodbye', reply: OPTIONS.goodbye.reply });
    }
  });

  it('does not hang up on a goodbye word inside another word, or when an intent matches fully', () => {
    expect(r.match('byebye')).toMatchObject({ kind: 'fallback' });
    expect(r.match('can I book a table for Bye Street')).toMatchObject({ kind: 'intent', intent: 'booking' });
    // A partial intent match does not outweigh a clear goodbye.
    expect(r.match('what time you open, bye')).toMatchObject({ kind: 'goodbye' });
  });

  it('answers keypad entries by the intent’s dtmf key, and falls back for other keys', () => {
    expect(r.match(dtmfUserText('2'))).toEqual({ kind: 'intent', intent: 'directions', reply: OPTIONS.intents[1]!.reply });
    expect(r.match(dtmfUserText('9'))).toEqual({ kind: 'fallback', reply: OPTIONS.fallbackReply });
    expect(r.match(dtmfUserText('12'))).toMatchObject({ kind: 'fallback' });
  });

  it('falls back for empty or unrelated speech', () => {
    expect(r.match('')).toEqual({ kind: 'fallback', reply: OPTIONS.fallbackReply });
    expect(r.match('  ...  ')).toMatchObject({ kind: 'fallback' });
    expect(r.match('the weather is nice')).toMatchObject({ kind: 'fallback' });
  });
});

describe('ScriptedResponder.stream', () => {
  const r = new ScriptedResponder(OPTIONS);

  it('streams the reply word by word; the pieces join to the reply', async () => {
    const events = await collect(r, user('what time do you open'));
    expect(events.every((e) => e.type === 'text')).toBe(true);
    const texts = events.map((e) => (e.type === 'text' ? e.text : ''));
    expect(texts).toEqual(['We ', 'open ', 'at ', 'nine ', 'and ', 'close ', 'at ', 'five.']);
    expect(texts.join('')).toBe(OPTIONS.intents[0]!.reply);
  });

  it('ends with a hangup event after the goodbye reply', async () => {
    const events = await collect(r, user('bye'));
    expect(events.at(-1)).toEqual({ type: 'hangup' });
    expect(events.slice(0, -1).map((e) => (e.type === 'text' ? e.text : '')).join('')).toBe(OPTIONS.goodbye.reply);
  });

  it('stops streaming when the signal aborts, and sends no hangup', async () => {
    const abort = new AbortController();
    const events: LlmEvent[] = [];
    for await (const ev of r.stream({ messages: user('goodbye'), signal: abort.signal })) {
      events.push(ev);
      if (events.length === 2) abort.abort();
    }
    expect(events).toHaveLength(2);
    expect(events.some((e) => e.type === 'hangup')).toBe(false);
  });

  it('answers the latest user message of a longer conversation', async () => {
    const events = await collect(r, [
      ...user('what time do you open'),
      { role: 'assistant', content: 'We open at nine.' },
      { role: 'user', content: dtmfUserText('2') },
    ]);
    expect(events.map((e) => (e.type === 'text' ? e.text : '')).join('')).toBe(OPTIONS.intents[1]!.reply);
  });

  it('fails with CG_LLM_FAILED when the last message is not the caller’s', async () => {
    for (const messages of [[], [...user('hi'), { role: 'assistant', content: 'Hello.' }]] as ChatMessage[][]) {
      const err = await collect(r, messages).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CallgateError);
      expect((err as CallgateError).code).toBe('CG_LLM_FAILED');
    }
  });
});

describe('ScriptedResponder: intents that call tools (issue 19)', () => {
  const responder = new ScriptedResponder({
    intents: [
      { name: 'hours', phrases: ['what are your hours'], reply: 'We are open {{result.open}} on {{result.day|that day}}.', tool: { name: 'get_hours', arguments: { day: 'today', heard: '{{utterance}}' }, say: 'Let me check.' } },
      { name: 'plain', phrases: ['where are you'], reply: 'On Main Street.' },
    ],
    fallbackReply: 'Sorry?',
    goodbye: { phrases: ['goodbye'], reply: 'Bye.' },
  });
  const tools = [{ name: 'get_hours', description: 'd', parameters: {} }];
  const run = async (messages: ChatMessage[], offered = tools): Promise<LlmEvent[]> => {
    const out: LlmEvent[] = [];
    for await (const e of responder.stream({ messages, signal: new AbortController().signal, tools: offered })) out.push(e);
    return out;
  };

  it('says its line, then calls the tool with the mapped arguments', async () => {
    const events = await run([{ role: 'user', content: 'what are your hours' }]);
    expect(events.filter((e) => e.type === 'text').map((e) => (e.type === 'text' ? e.text : '')).join('')).toBe('Let me check.');
    const call = events.find((e) => e.type === 'tool-call');
    expect(call?.type === 'tool-call' && call.call.name).toBe('get_hours');
    expect(call?.type === 'tool-call' && JSON.parse(call.call.arguments)).toEqual({ day: 'today', heard: 'what are your hours' });
  });

  it('answers with the tool result filled into the reply, or says the tool failed', async () => {
    const first = await run([{ role: 'user', content: 'what are your hours' }]);
    const call = first.find((e) => e.type === 'tool-call');
    if (call?.type !== 'tool-call') throw new Error('no tool call');
    const asked: ChatMessage[] = [{ role: 'user', content: 'what are your hours' }, { role: 'assistant', content: 'Let me check.', toolCalls: [call.call] }];
    const text = (evs: LlmEvent[]): string => evs.map((e) => (e.type === 'text' ? e.text : '')).join('');
    expect(text(await run([...asked, { role: 'tool', toolCallId: call.call.id, content: '{"open":"nine to five","day":"Monday"}' }]))).toBe('We are open nine to five on Monday.');
    expect(text(await run([...asked, { role: 'tool', toolCallId: call.call.id, content: '{"error":"get_hours failed: HTTP 500"}' }]))).toBe("Sorry, I couldn't check that just now.");
  });

  it('answers with the plain reply when the tool is not offered', async () => {
    const events = await run([{ role: 'user', content: 'what are your hours' }], []);
    expect(events.some((e) => e.type === 'tool-call')).toBe(false);
  });
});
