import { describe, expect, it } from 'vitest';
import type { AgentEvent } from '../agent/events.js';
import { callRecordSchema, type CallRecord } from './CallRecordStore.js';
import { CallRecorder } from './CallRecorder.js';

describe('CallRecorder', () => {
  it("keeps each interruption by voice with its reaction time (onset to barge-in); keypad interruptions are not voice reactions", async () => {
    const written: CallRecord[] = [];
    const recorder = new CallRecorder({ write: async (r) => (written.push(r), 'written') }, { callId: 'c', tenantId: 't', door: 'test', from: 'a', to: 'b' });
    const events: AgentEvent[] = [
      { type: 'session-started', atMs: 0 },
      { type: 'turn-started', atMs: 1040, turn: 1, onsetAtMs: 1000 },
      { type: 'barge-in', atMs: 1042, turn: 1, playedMs: 900, by: 'speech' },
      { type: 'barge-in', atMs: 3000, turn: 2, playedMs: 100, by: 'dtmf' },
      { type: 'session-ended', atMs: 4000, reason: 'caller-hangup' },
    ];
    for (const e of events) recorder.observe(e);
    await recorder.finish();
    expect(written[0]!.bargeIns).toEqual([{ turn: 1, reactionMs: 42 }]);
    expect(callRecordSchema.safeParse(written[0]).success).toBe(true);
  });
});
