import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { EncodedPrompt } from '../media/AudioLeg.js';
import type { DtmfEvent } from '../media/types.js';
import { FakeLlm, FakeTts } from '../providers/testing/FakeProviders.js';
import type { LlmEvent, LlmProvider, LlmRequest } from '../providers/types.js';
import { resolveAgentConfig } from './AgentConfig.js';
import { defaultAgentSessionOptions } from './AgentSessionOptions.js';
import { CallPrompts } from './CallPrompts.js';
import { CallSession, type CallMedia } from './CallSession.js';
import { EchoGuard } from './EchoGuard.js';
import type { AgentEvent, EndReason } from './events.js';
import { PromptCache } from './PromptCache.js';
import { ReplyPipeline } from './ReplyPipeline.js';
import { SessionEvents } from './SessionEvents.js';

/** A leg that keeps count of queued audio and sends nothing until the test drains it. */
class FakeMedia implements CallMedia {
  readonly codec = { name: 'PCMU' as const };
  queuedMs = 0;
  duck(): void {}
  hold(): void {}
  on(_event: string, _listener: ((frame: Int16Array) => void) | ((event: DtmfEvent) => void) | (() => void)): unknown {
    return this;
  }
  off(_event: string, _listener: ((frame: Int16Array) => void) | ((event: DtmfEvent) => void) | (() => void)): unknown {
    return this;
  }
  play(pcm: Int16Array): boolean {
    this.queuedMs += pcm.length / 16;
    return true;
  }
  playEncoded(prompt: EncodedPrompt): boolean {
    this.queuedMs += prompt.durationMs;
    return true;
  }
  flush(): number {
    const dropped = this.queuedMs;
    this.queuedMs = 0;
    return dropped;
  }
}

function pipeline(llm: LlmProvider = new FakeLlm({ reply: () => 'We open at nine. We close at five.' }), maxFailedTurns = 2) {
  const media = new FakeMedia();
  const hangups: EndReason[] = [];
  const call = new CallSession({ callId: 'c1', config: resolveAgentConfig({ tenantId: 't1' }), media, hangup: (r) => void hangups.push(r) });
  const got: AgentEvent[] = [];
  const played: number[] = [];
  const events = new SessionEvents((e) => got.push(e), pino({ level: 'silent' }), () => 1);
  const tts = new FakeTts({ msPerChar: 10 });
  const replies = new ReplyPipeline({
    call,
    providers: { llm, tts },
    prompts: new CallPrompts(new PromptCache(), call, tts, {}),
    opts: { ...defaultAgentSessionOptions, maxFailedTurns },
    echo: new EchoGuard(),
    events,
    ended: new Promise(() => undefined),
    host: { isClosed: () => false, latestTurn: () => 1, replyStarted: () => undefined, replyPlayed: (r) => void played.push(r.turn) },
  });
  /** The leg sent everything. */
  const drain = () => {
    media.queuedMs = 0;
    replies.drained();
  };
  const of = <T extends AgentEvent['type']>(type: T) => got.filter((e): e is Extract<AgentEvent, { type: T }> => e.type === type);
  return { replies, media, drain, of, played, hangups, call };
}

afterEach(() => vi.useRealTimers());

describe('ReplyPipeline', () => {
  it('speaks the model’s reply sentence by sentence and is done when the leg drains', async () => {
    const p = pipeline();
    await p.replies.respond('When do you open?', 1);
    expect(p.of('agent-text').map((e) => e.text)).toEqual(['We open at nine.', 'We close at five.']);
    expect(p.replies.talking).toBe(true);
    expect(p.of('agent-done')).toEqual([]);
    p.drain();
    expect(p.of('agent-done').map((e) => [e.spokenText, e.interrupted])).toEqual([['We open at nine. We close at five.', false]]);
    expect(p.played).toEqual([1]);
    expect(p.replies.talking).toBe(false);
    expect(p.replies.history).toEqual([
      { role: 'user', content: 'When do you open?' },
      { role: 'assistant', content: 'We open at nine. We close at five.' },
    ]);
  });

  it('keeps in history only what the caller heard of a reply cut off', async () => {
    const p = pipeline();
    await p.replies.respond('When do you open?', 1);
    // Both sentences (of about the same length) are queued; the caller heard the first and half the second.
    const total = p.media.queuedMs;
    p.media.queuedMs = total / 4;
    const { reply, playedMs } = p.replies.cut(performance.now());
    expect(reply?.turn).toBe(1);
    expect(playedMs).toBeCloseTo((total * 3) / 4, 6);
    p.replies.finishCurrent(true, playedMs);
    p.replies.silenced();
    const done = p.of('agent-done')[0]!;
    expect(done.interrupted).toBe(true);
    expect(done.spokenText).toMatch(/^We open at nine\. We close…$/);
    expect(p.replies.history.at(-1)).toEqual({ role: 'assistant', content: done.spokenText });
    expect(p.media.queuedMs).toBe(0);
    expect(p.replies.talking).toBe(false);
  });

  it('apologises for a model that fails, and ends the call politely when it fails again', async () => {
    const failing: LlmProvider = {
      name: 'failing',
      // eslint-disable-next-line require-yield
      async *stream(_request: LlmRequest): AsyncIterable<LlmEvent> {
        throw new Error('model down');
      },
    };
    const p = pipeline(failing, 2);
    await p.replies.respond('Hello?', 1);
    expect(p.of('error').map((e) => e.code)).toEqual(['CG_LLM_FAILED']);
    expect(p.of('agent-text').map((e) => e.text).join(' ')).toBe(p.call.config.apology);
    p.drain();
    expect(p.hangups).toEqual([]);
    await p.replies.respond('Hello again?', 2);
    expect(p.of('agent-text').at(-1)!.text.length).toBeGreaterThan(0);
    p.drain();
    expect(p.hangups).toEqual(['provider-failure']);
  });

  it('hangs up with the goodbye’s reason once it has played', async () => {
    const p = pipeline();
    await p.replies.goodbye('Goodbye.', 'no-input');
    expect(p.hangups).toEqual([]);
    p.drain();
    expect(p.hangups).toEqual(['no-input']);
    expect(p.played).toEqual([]);
  });
});
