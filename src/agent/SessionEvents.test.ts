import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import { CallgateError } from '../errors.js';
import type { AgentEvent } from './events.js';
import { SessionEvents } from './SessionEvents.js';

beforeEach(() => vi.useFakeTimers({ toFake: ['performance'] }));
afterEach(() => vi.useRealTimers());

function events(turn = 3) {
  const got: AgentEvent[] = [];
  return { ev: new SessionEvents((e) => got.push(e), pino({ level: 'silent' }), () => turn), got };
}

describe('SessionEvents', () => {
  it('stamps events with the time since the session started', () => {
    const { ev, got } = events();
    vi.advanceTimersByTime(250);
    ev.emit({ type: 'session-started' });
    ev.emit({ type: 'dtmf', digit: '5' }, ev.startedAt + 40);
    expect(got).toEqual([
      { type: 'session-started', atMs: 250 },
      { type: 'dtmf', digit: '5', atMs: 40 },
    ]);
    expect(ev.rel(ev.startedAt + 12)).toBe(12);
  });

  it('reports each expected latency mark once, from the end of speech, for the current turn', () => {
    const { ev, got } = events(3);
    ev.expectMarks(ev.startedAt + 100, ['sttFinal', 'ttsFirstAudio']);
    vi.advanceTimersByTime(400);
    ev.mark('sttFinal');
    ev.mark('sttFinal');
    ev.mark('llmFirstToken');
    expect(got).toEqual([{ type: 'latency', turn: 3, mark: 'sttFinal', sinceSpeechEndMs: 300, atMs: 400 }]);
    ev.clearMarks();
    ev.mark('ttsFirstAudio');
    expect(got).toHaveLength(1);
  });

  it('reports a failure as an error event with its catalogue code, wrapping a plain error', () => {
    const { ev, got } = events();
    ev.error(new Error('socket closed'), 'tts', 'CG_TTS_FAILED');
    ev.error(new CallgateError('CG_STT_TIMEOUT', 'late'), 'stt', 'CG_STT_FAILED');
    expect(got.map((e) => e.type === 'error' && [e.code, e.during])).toEqual([
      ['CG_TTS_FAILED', 'tts'],
      ['CG_STT_TIMEOUT', 'stt'],
    ]);
    expect(got[0]!.type === 'error' && got[0]!.message).toContain('socket closed');
  });
});
