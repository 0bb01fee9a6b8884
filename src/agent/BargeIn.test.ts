import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ChatMessage, LlmEvent } from '../providers/types.js';
import { BargeIn, type Interruptible } from './BargeIn.js';
import type { AgentEvent } from './events.js';
import { Reply } from './Reply.js';
import { SessionEvents } from './SessionEvents.js';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

/** A reply of two 1 s sentences, cut `playedMs` in. */
function fakeReplies(playedMs: number) {
  const reply = new Reply(2);
  reply.addAudio(reply.addPiece('We open at nine.'), 1000);
  reply.addAudio(reply.addPiece('We close at five.'), 1000);
  const spoken: { prefix: string; texts: string[] }[] = [];
  const log: string[] = [];
  let current: Reply | undefined = reply;
  const replies: Interruptible = {
    history: [] as ChatMessage[],
    cut: () => {
      log.push('cut');
      const r = current;
      current = undefined;
      return { reply: r, playedMs: r ? playedMs : 0 };
    },
    finishCurrent: (interrupted, played) => {
      log.push(`finish ${interrupted} ${played}`);
      replies.history.push({ role: 'assistant', content: reply.spokenText(played ?? 0) });
    },
    silenced: () => void log.push('silenced'),
    speak: async (r: Reply, events: AsyncIterable<LlmEvent>) => {
      const texts: string[] = [];
      for await (const e of events) if (e.type === 'text') texts.push(e.text.trim());
      spoken.push({ prefix: r.prefix, texts });
    },
  };
  return { replies, spoken, log };
}

function bargeIn(playedMs: number, turnOpen = false) {
  const r = fakeReplies(playedMs);
  const got: AgentEvent[] = [];
  const tasks: (() => Promise<void>)[] = [];
  const host = { open: turnOpen, listened: 0 };
  const b = new BargeIn(r.replies, new SessionEvents((e) => got.push(e), pino({ level: 'silent' }), () => 3), 1500, {
    callerTurnOpen: () => host.open,
    latestTurn: () => 3,
    listen: () => void host.listened++,
    enqueue: (task) => void tasks.push(task),
  });
  const run = async () => {
    for (const t of tasks.splice(0)) await t();
  };
  return { b, got, host, run, ...r };
}

describe('BargeIn', () => {
  it('silences the agent, reports what played, and keeps what was heard', () => {
    const t = bargeIn(1500);
    t.b.interrupt('speech', 0);
    expect(t.log).toEqual(['cut', 'finish true 1500', 'silenced']);
    expect(t.got.map((e) => e.type === 'barge-in' && [e.turn, e.playedMs, e.by])).toEqual([[3, 1500, 'speech']]);
    expect(t.b.pending).toBe(true);
  });

  it('resumes from the interrupted sentence when no words come within the false-interruption time', async () => {
    const t = bargeIn(1500);
    t.b.interrupt('speech', 0);
    vi.advanceTimersByTime(1499);
    expect(t.got.filter((e) => e.type === 'barge-in-resumed')).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(t.got.at(-1)).toMatchObject({ type: 'barge-in-resumed', turn: 2, fromText: 'We close at five.' });
    // The cut-off entry is replaced by the resumed reply.
    expect(t.replies.history).toEqual([]);
    await t.run();
    expect(t.spoken).toEqual([{ prefix: 'We open at nine.', texts: ['We close at five.'] }]);
    expect(t.b.pending).toBe(false);
  });

  it('does not resume when words were heard, or while the caller’s turn is open', () => {
    const heard = bargeIn(500);
    heard.b.interrupt('speech', 0);
    heard.b.heard('  ');
    heard.b.heard('wait');
    vi.advanceTimersByTime(5000);
    expect(heard.got.filter((e) => e.type === 'barge-in-resumed')).toEqual([]);

    const open = bargeIn(500, true);
    open.b.interrupt('speech', 0);
    vi.advanceTimersByTime(5000);
    expect(open.got.filter((e) => e.type === 'barge-in-resumed')).toEqual([]);
    // The turn's end decides: no words, so it resumes then.
    open.b.resumeInterrupted();
    expect(open.got.at(-1)).toMatchObject({ type: 'barge-in-resumed', fromText: 'We open at nine.' });
  });

  it('never resumes a keypad interruption, nor one cleared by an answer', () => {
    const key = bargeIn(500);
    key.b.interrupt('dtmf', 0);
    expect(key.b.pending).toBe(false);
    const answered = bargeIn(500);
    answered.b.interrupt('speech', 0);
    answered.b.clear();
    vi.advanceTimersByTime(5000);
    expect([...key.got, ...answered.got].filter((e) => e.type === 'barge-in-resumed')).toEqual([]);
  });

  it('listens again when the reply had been heard to its end', () => {
    const t = bargeIn(2000);
    t.b.interrupt('speech', 0);
    vi.advanceTimersByTime(1500);
    expect(t.host.listened).toBe(1);
    expect(t.got.filter((e) => e.type === 'barge-in-resumed')).toEqual([]);
  });
});
