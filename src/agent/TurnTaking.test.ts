import { EventEmitter } from 'node:events';
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { SttStream, SttStreamEvents } from '../providers/types.js';
import type { BargeInMode } from './AgentConfig.js';
import { BackchannelLexicon, backchannelsFor } from './backchannels.js';
import type { BargeIn } from './BargeIn.js';
import { defaultInterruptionJudgeOptions, InterruptionJudge } from './InterruptionJudge.js';
import { CallerInput } from './CallerInput.js';
import type { AgentEvent } from './events.js';
import { SessionEvents } from './SessionEvents.js';
import { TurnTaking } from './TurnTaking.js';
import type { VoiceActivityDetector } from './vad/VoiceActivityDetector.js';

const vad: VoiceActivityDetector = { name: 'fake', process: (f) => (f[0]! > 0 ? 1 : 0), reset: () => undefined, close: () => undefined };
const frame = (speech: boolean) => new Int16Array(320).fill(speech ? 3000 : 0);

/** An STT that answers each finalize with the next text of its script (or fails on `null`). */
class ScriptedStt extends EventEmitter<SttStreamEvents> implements SttStream {
  constructor(private readonly texts: (string | null)[]) {
    super();
  }
  push(): void {}
  async finalize(): Promise<string> {
    const t = this.texts.shift();
    if (t === null) throw new Error('engine gone');
    return t ?? '';
  }
  async close(): Promise<void> {}
}

async function setup(texts: (string | null)[], opts: { agentTalking?: boolean; bargeIn?: BargeInMode; pending?: boolean } = {}) {
  let agentTalking = opts.agentTalking ?? false;
  const got: AgentEvent[] = [];
  const calls: string[] = [];
  let work = Promise.resolve();
  const events = new SessionEvents((e) => got.push(e), pino({ level: 'silent' }), () => tt.turn);
  const bargeIn = {
    interrupt: vi.fn((by: string) => void calls.push(`interrupt ${by}`)),
    pending: opts.pending ?? false,
    resumeInterrupted: vi.fn(() => void calls.push('resume')),
  } as unknown as BargeIn;
  const input = new CallerInput(vad, { turn: { endpointingMs: 100, minSpeechMs: 60 }, echo: {}, prerollMs: 100, sttFinalTimeoutMs: 1000, log: pino({ level: 'silent' }) }, {
    speechStarted: (a, n) => tt.speechStarted(a, n),
    speechEnded: (a, n, f, ms) => tt.speechEnded(a, n, f, ms),
    turnFrame: (speech, voice, n) => tt.turnFrame(speech, voice, n),
    sttResult: () => undefined,
    sttError: () => undefined,
  });
  await input.open(async () => new ScriptedStt(texts));
  const tt: TurnTaking = new TurnTaking(input, bargeIn, events, new AbortController().signal, pino({ level: 'silent' }), {
    isClosed: () => false,
    agentTalking: () => agentTalking,
    bargeInMode: () => opts.bargeIn ?? 'immediate',
    judge: (ago, carried) => new InterruptionJudge(defaultInterruptionJudgeOptions, new BackchannelLexicon(backchannelsFor('en')), ago, carried),
    duck: (on) => void calls.push(on ? 'duck' : 'unduck'),
    hold: (on) => void calls.push(on ? 'hold' : 'unhold'),
    didNotCatch: async (turn) => void calls.push(`didNotCatch ${turn}`),
    respond: async (text, turn) => void calls.push(`respond ${turn}: ${text}`),
    failTurn: async (turn) => void calls.push(`fail ${turn}`),
    listen: () => void calls.push('listen'),
    quiet: () => void calls.push('quiet'),
    enqueue: (task) => void (work = work.then(task)),
  }, 200);
  const feed = (speech: boolean, n: number) => {
    for (let i = 0; i < n; i++) input.frame(frame(speech));
  };
  const settled = async () => {
    await work;
    await work;
  };
  return { tt, got, calls, feed, settled, bargeIn, input, agentDone: () => void (agentTalking = false) };
}

describe('TurnTaking', () => {
  it('opens a turn on speech and answers its final text when it ends', async () => {
    const t = await setup(['what time do you open']);
    t.feed(true, 5);
    t.feed(false, 6);
    await t.settled();
    expect(t.got.map((e) => e.type)).toEqual(['turn-started', 'turn-ended', 'latency', 'latency', 'transcript']);
    expect(t.calls).toEqual(['quiet', 'respond 1: what time do you open']);
  });

  it('interrupts a talking agent when barge-in is on, and only hears the caller when it is off', async () => {
    const on = await setup(['wait'], { agentTalking: true });
    on.feed(true, 5);
    expect(on.calls).toEqual(['quiet', 'interrupt speech']);

    const off = await setup(['wait'], { agentTalking: true, bargeIn: 'off' });
    off.feed(true, 5);
    off.feed(false, 6);
    await off.settled();
    expect(off.got).toEqual([]);
    expect(off.tt.turn).toBe(0);
    expect(off.calls).toEqual(['quiet']);
  });

  it('answers both parts together when the caller went on talking while the STT finished', async () => {
    const t = await setup(["I'd like", 'a table for four']);
    t.feed(true, 5);
    t.feed(false, 6); // the first turn ends…
    t.feed(true, 5); // …and the caller is talking again before its text is handled
    await t.settled();
    expect(t.calls.filter((c) => c.startsWith('respond'))).toEqual([]);
    t.feed(false, 6);
    await t.settled();
    expect(t.calls.filter((c) => c.startsWith('respond'))).toEqual(["respond 2: I'd like a table for four"]);
  });

  it('resumes an interrupted reply when the interruption had no words, and listens otherwise', async () => {
    const resumed = await setup([''], { pending: true });
    resumed.feed(true, 5);
    resumed.feed(false, 6);
    await resumed.settled();
    expect(resumed.calls).toEqual(['quiet', 'resume']);

    const silent = await setup(['']);
    silent.feed(true, 5);
    silent.feed(false, 6);
    await silent.settled();
    expect(silent.calls).toEqual(['quiet', 'listen']);

    // Longer speech with no words in it is not ignored: the caller hears the tenant's "didn't catch that".
    const mumble = await setup(['']);
    mumble.feed(true, 15);
    mumble.feed(false, 6);
    await mumble.settled();
    expect(mumble.calls).toEqual(['quiet', 'didNotCatch 1']);
    // No answer comes, so no more latency marks are reported for the turn.
    expect(silent.got.filter((e) => e.type === 'latency').map((e) => e.type === 'latency' && e.mark)).toEqual(['endOfTurn', 'sttFinal']);
  });

  it('reports an STT failure and fails the turn', async () => {
    const t = await setup([null]);
    t.feed(true, 5);
    t.feed(false, 6);
    await t.settled();
    expect(t.got.filter((e) => e.type === 'error').map((e) => e.type === 'error' && e.during)).toEqual(['stt']);
    expect(t.calls).toEqual(['quiet', 'fail 1']);
  });

  describe('adaptive barge-in', () => {
    it('keeps talking through a backchannel or a cough: ducks, then goes on, and no turn opens', async () => {
      const t = await setup(['uh huh'], { agentTalking: true, bargeIn: 'adaptive' });
      t.feed(true, 10); // 200 ms of sound: "yeah", a cough
      t.feed(false, 8);
      await t.settled();
      // Back at full level at once.
      expect(t.calls).toEqual(['quiet', 'duck', 'unhold', 'unduck']);
      expect(t.tt.turn).toBe(0);
      expect(t.got.map((e) => e.type)).toEqual(['agent-ducked', 'backchannel']);
      // The words of the backchannel are not carried into the caller's next turn.
      t.agentDone();
      t.feed(true, 5);
      t.feed(false, 6);
      await t.settled();
      expect(t.tt.turn).toBe(1);
    });

    it('pauses during a longer sound and goes on when it ends short of an interruption', async () => {
      const t = await setup([''], { agentTalking: true, bargeIn: 'adaptive' });
      t.feed(true, 22); // 440 ms: "okay", "uh-huh"
      t.feed(false, 8);
      await t.settled();
      expect(t.calls).toEqual(['quiet', 'duck', 'hold', 'unhold', 'unduck']);
      expect(t.tt.turn).toBe(0);
      t.tt.close();
    });

    it('stops for a real interruption: held first, then cut, and the turn is answered', async () => {
      const t = await setup(['wait can you tell me the hours'], { agentTalking: true, bargeIn: 'adaptive' });
      t.feed(true, 40);
      expect(t.calls).toEqual(['quiet', 'duck', 'hold', 'interrupt speech', 'unhold', 'unduck']);
      t.agentDone();
      t.feed(false, 6);
      await t.settled();
      expect(t.calls.at(-1)).toBe('respond 1: wait can you tell me the hours');
    });

    it('stops as soon as the words are not a backchannel, and not for words that are', async () => {
      const t = await setup([], { agentTalking: true, bargeIn: 'adaptive' });
      t.feed(true, 5);
      t.tt.heard('okay', performance.now());
      expect(t.calls).toEqual(['quiet', 'duck']);
      t.tt.heard('okay wait', performance.now());
      expect(t.calls).toEqual(['quiet', 'duck', 'interrupt speech', 'unhold', 'unduck']);
      expect(t.tt.turn).toBe(1);
    });

    it('a key pressed while a sound is judged drops the sound and leaves the agent at full level', async () => {
      const t = await setup([], { agentTalking: true, bargeIn: 'adaptive' });
      t.feed(true, 14);
      t.tt.keyedTurn();
      expect(t.calls).toEqual(['quiet', 'duck', 'hold', 'unhold', 'unduck']);
      expect(t.tt.turn).toBe(1);
      // Speech that goes on is a new sound, judged from its own start (not carried over the key press).
      t.feed(true, 5);
      expect(t.calls.slice(5)).toEqual(['quiet', 'duck']);
    });

    it('makes a turn of the sound when the agent finished while it was judged', async () => {
      const t = await setup(['yes'], { agentTalking: true, bargeIn: 'adaptive' });
      t.feed(true, 5);
      t.agentDone();
      t.feed(false, 30);
      await t.settled();
      expect(t.calls).toEqual(['quiet', 'duck', 'unhold', 'unduck', 'respond 1: yes']);
    });

    it('a sound right after one it let go continues it: "wait," then a pause, then the rest stops the agent', async () => {
      const t = await setup(['wait what time do you open'], { agentTalking: true, bargeIn: 'adaptive' });
      t.feed(true, 15); // "wait," (300 ms)
      t.feed(false, 8); // the comma: let go, the agent goes on
      expect(t.calls).toEqual(['quiet', 'duck', 'hold', 'unhold', 'unduck']);
      t.feed(true, 20); // "what time do you open": held at once, and 300 + 400 ms of speech is an interruption
      expect(t.calls.slice(5)).toEqual(['quiet', 'duck', 'hold', 'interrupt speech', 'unhold', 'unduck']);
      expect(t.calls.indexOf('interrupt speech')).toBeGreaterThan(0);
    });
  });
});
