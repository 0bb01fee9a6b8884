import { EventEmitter } from 'node:events';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isCallgateError } from '../errors.js';
import type { SttStream, SttStreamEvents } from '../providers/types.js';
import { TextEndOfTurn } from './EndOfTurn.js';
import { CallerInput, type CallerInputHandlers } from './CallerInput.js';
import type { VoiceActivityDetector } from './vad/VoiceActivityDetector.js';

/** A frame at -20 dBFS whose first sample tags it, and that the fake VAD calls speech or not. */
const frame = (speech: boolean, tag: number) => {
  const f = new Int16Array(320).fill(speech ? 3000 : 0);
  f[0] = tag;
  return f;
};

const vad: VoiceActivityDetector = { name: 'fake', process: (f) => (f[1]! > 0 ? 1 : 0), reset: () => undefined, close: vi.fn() };

class FakeStt extends EventEmitter<SttStreamEvents> implements SttStream {
  pushed: number[] = [];
  finalText: Promise<string> = Promise.resolve('  hello there ');
  closed = false;
  push(f: Int16Array): void {
    this.pushed.push(f[0]!);
  }
  finalize(): Promise<string> {
    return this.finalText;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

function input(opts: { endpointingMs?: number; sttFinalTimeoutMs?: number } = {}) {
  const seen: string[] = [];
  const handlers: CallerInputHandlers = {
    speechStarted: () => seen.push('start'),
    speechEnded: (_at, _now, forced) => seen.push(forced ? 'end (forced)' : 'end'),
    sttResult: (r) => seen.push(`text ${r.text}`),
    sttError: (_err, code) => seen.push(`error ${code}`),
  };
  const ci = new CallerInput(
    vad,
    { turn: { endpointingMs: opts.endpointingMs ?? 100, minSpeechMs: 60 }, echo: {}, prerollMs: 100, sttFinalTimeoutMs: opts.sttFinalTimeoutMs ?? 1000, log: pino({ level: 'silent' }) },
    handlers,
  );
  return { ci, seen };
}

let tag = 0;
const feed = (ci: CallerInput, speech: boolean, n: number) => {
  for (let i = 0; i < n; i++) ci.frame(frame(speech, ++tag));
};

afterEach(() => {
  vi.useRealTimers();
  tag = 0;
});

describe('CallerInput', () => {
  it('opens a turn on speech and ends it after the endpointing silence', async () => {
    const { ci, seen } = input({ endpointingMs: 100 });
    await ci.open(async () => new FakeStt());
    feed(ci, false, 10);
    expect(seen).toEqual([]);
    feed(ci, true, 3);
    expect(seen).toEqual(['start']);
    feed(ci, false, 4);
    expect(seen).toEqual(['start']);
    feed(ci, false, 1);
    expect(seen).toEqual(['start', 'end']);
    await ci.close();
  });

  it('streams a taken turn to the STT from its pre-roll, and stops at its end', async () => {
    const { ci } = input({ endpointingMs: 100 });
    const stt = new FakeStt();
    await ci.open(async () => stt);
    feed(ci, false, 10); // tags 1..10
    feed(ci, true, 3); // 11..13: the turn opens on the third
    expect(stt.pushed).toEqual([]);
    ci.streamTurn();
    // 100 ms of pre-roll: the five frames up to the one that opened the turn.
    expect(stt.pushed).toEqual([9, 10, 11, 12, 13]);
    feed(ci, true, 2); // 14, 15
    feed(ci, false, 5); // 16..20: the turn ends on the fifth
    feed(ci, false, 3);
    expect(stt.pushed).toEqual([9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
    expect(ci.unfinalized).toBe(true);
    await expect(ci.finalize(new AbortController().signal)).resolves.toBe('hello there');
    expect(ci.unfinalized).toBe(false);
    // Nothing heard since: no request to the engine, nothing to say.
    stt.finalText = Promise.reject(new Error('must not be asked'));
    stt.finalText.catch(() => undefined);
    await expect(ci.finalize(new AbortController().signal)).resolves.toBe('');
  });

  it('gives up on a final text that does not come, with CG_STT_TIMEOUT', async () => {
    const { ci } = input({ sttFinalTimeoutMs: 30 });
    const stt = new FakeStt();
    stt.finalText = new Promise(() => undefined);
    await ci.open(async () => stt);
    feed(ci, true, 3);
    ci.streamTurn();
    const err = await ci.finalize(new AbortController().signal).catch((e: unknown) => e);
    expect(isCallgateError(err) && err.code).toBe('CG_STT_TIMEOUT');
  });

  it('ends a turn whose audio stops (no silence frames come), as forced', async () => {
    vi.useFakeTimers();
    const { ci, seen } = input({ endpointingMs: 100 });
    await ci.open(async () => new FakeStt());
    feed(ci, true, 5);
    expect(seen).toEqual(['start']);
    vi.advanceTimersByTime(139);
    expect(seen).toEqual(['start']);
    vi.advanceTimersByTime(1);
    expect(seen).toEqual(['start', 'end (forced)']);
  });

  it('reports an STT that cannot open and one that fails later; passes results on', async () => {
    const { ci, seen } = input();
    await ci.open(() => Promise.reject(new Error('no engine')));
    expect(seen).toEqual(['error CG_STT_UNAVAILABLE']);
    const stt = new FakeStt();
    await ci.open(async () => stt);
    stt.emit('result', { text: 'hel', final: false });
    stt.emit('error', new Error('gone') as never);
    expect(seen).toEqual(['error CG_STT_UNAVAILABLE', 'text hel', 'error CG_STT_FAILED']);
  });

  it('closes the STT and the VAD, and one that opens after close at once', async () => {
    const { ci, seen } = input();
    const stt = new FakeStt();
    await ci.open(async () => stt);
    await ci.close();
    expect(stt.closed).toBe(true);
    expect(vad.close).toHaveBeenCalled();
    const late = new FakeStt();
    await ci.open(async () => late);
    expect(late.closed).toBe(true);
    feed(ci, true, 5);
    expect(seen).toEqual([]);
  });

  describe('adaptive endpointing with an STT that has no interim words', () => {
    function adaptive() {
      const seen: string[] = [];
      const ci = new CallerInput(
        vad,
        {
          turn: { endpointingMs: 500, minSpeechMs: 60 },
          echo: {},
          prerollMs: 100,
          sttFinalTimeoutMs: 1000,
          lookAtPauseMs: 200,
          endOfTurn: new TextEndOfTurn({ finishedMs: 300, unknownMs: 500, noWordsMs: 1250, unfinishedMs: 1800 }),
          log: pino({ level: 'silent' }),
        },
        {
          speechStarted: () => {
            seen.push('start');
            ci.streamTurn();
          },
          speechEnded: () => seen.push('end'),
          sttResult: () => undefined,
          sttError: () => undefined,
        },
      );
      return { ci, seen };
    }
    const settle = () => new Promise((r) => setImmediate(r));

    it('looks at a pause and ends a finished sentence after the short silence', async () => {
      const { ci, seen } = adaptive();
      const stt = new FakeStt();
      stt.finalText = Promise.resolve('what time do you open today');
      await ci.open(async () => stt);
      feed(ci, true, 10);
      feed(ci, false, 10); // 200 ms: the look
      await settle();
      expect(ci.turnSoFar().text).toBe('what time do you open today');
      feed(ci, false, 4);
      expect(seen).toEqual(['start']);
      feed(ci, false, 1); // 300 ms
      expect(seen).toEqual(['start', 'end']);
      expect(await ci.finalize(new AbortController().signal)).toBe('what time do you open today');
    });

    it('waits out an unfinished clause, and sends the whole turn again when the caller goes on', async () => {
      const { ci, seen } = adaptive();
      const stt = new FakeStt();
      stt.finalText = Promise.resolve("I'd like a table for");
      await ci.open(async () => stt);
      feed(ci, true, 10);
      feed(ci, false, 10);
      await settle();
      const firstHalf = stt.pushed.length;
      feed(ci, false, 40); // 1 s of pause
      expect(seen).toEqual(['start']);
      feed(ci, true, 5); // "…four people"
      // The engine hears the turn from its start again: pre-roll, first half, the pause, and on.
      expect(stt.pushed.length).toBeGreaterThan(firstHalf + 50);
      expect(stt.pushed.slice(firstHalf, firstHalf + 3)).toEqual(stt.pushed.slice(0, 3));
      stt.finalText = Promise.resolve("I'd like a table for four people");
      feed(ci, false, 10);
      await settle();
      feed(ci, false, 5);
      expect(seen).toEqual(['start', 'end']);
      expect(await ci.finalize(new AbortController().signal)).toBe("I'd like a table for four people");
    });
  });
});
