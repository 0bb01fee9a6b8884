import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentConfigInput } from '../../src/agent/AgentConfig.js';
import { mulawToLinear } from '../../src/media/codecs/g711.js';
import { concatSamples, dbfs } from '../../src/media/signal.js';
import { FakeLlm, FakeTts, voiceLike } from '../../src/providers/testing/FakeProviders.js';
import type { SttProvider, SttStream, SttStreamEvents } from '../../src/providers/types.js';
import { sleep, TestCall } from './harness.js';

/**
 * Endpointing through a real AgentSession: two AudioLegs on loopback UDP, the real VAD and turn
 * detector, fake providers. Every time is measured on the wire — the caller's speech as its packets
 * reach the agent's socket, the agent's audio as its packets reach the caller's socket — never from
 * the session's own events, so a session that reports one thing and does another is caught. Bounds are
 * generous (the machine is shared); each one still fails when the behaviour it guards is broken.
 */

/** Caller speech: the fake voice at a normal level (the VAD calls it speech; its syllable gaps are 250 ms). */
const speech = (ms: number): Int16Array => voiceLike(ms, -22);
const pause = (ms: number): Int16Array => new Int16Array(Math.round(16 * ms));

/** What the agent answers (about 1.4 s of fake voice). */
const REPLY = 'Right, I have noted that down for you.';

/** A frame counts as sound at or above this (the fake voice's syllables are near -22; its floor -75). */
const LOUD_DBFS = -45;

/** Milliseconds of 20 ms frames at or above LOUD_DBFS in 16 kHz PCM. */
function loudMs(pcm: Int16Array): number {
  let ms = 0;
  for (let i = 0; i + 320 <= pcm.length; i += 320) if (dbfs(pcm, { start: i, end: i + 320 }) >= LOUD_DBFS) ms += 20;
  return ms;
}

/**
 * An STT that keeps the audio of each turn as the session handed it over (everything pushed since the
 * previous finalize), so a test sees exactly what the engine would have transcribed. Its transcripts are
 * scripted, one per finalize of a turn with sound; the final comes `finalDelayMs` after finalize.
 */
class RecordingStt implements SttProvider {
  readonly name = 'recording-stt';
  /** One entry per finalize: the audio it covered and when it was asked. */
  readonly finals: { readonly audio: Int16Array; readonly at: number }[] = [];
  private next = 0;

  constructor(
    private readonly transcripts: readonly string[],
    readonly finalDelayMs = 0,
  ) {}

  async open(): Promise<SttStream> {
    return new RecordingStream(this);
  }

  /** The transcript of a finalized turn: the next scripted one if the turn had sound, else ''. */
  transcribe(audio: Int16Array): string {
    this.finals.push({ audio, at: performance.now() });
    return loudMs(audio) >= 100 ? (this.transcripts[this.next++] ?? '') : '';
  }
}

class RecordingStream extends EventEmitter<SttStreamEvents> implements SttStream {
  private frames: Int16Array[] = [];
  private closed = false;

  constructor(private readonly stt: RecordingStt) {
    super();
  }

  push(frame: Int16Array): void {
    if (!this.closed) this.frames.push(frame.slice());
  }

  async finalize(): Promise<string> {
    const audio = concatSamples(this.frames);
    this.frames = [];
    if (this.stt.finalDelayMs > 0) await sleep(this.stt.finalDelayMs);
    const text = this.stt.transcribe(audio);
    if (text && !this.closed) this.emit('result', { text, final: true });
    return text;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.removeAllListeners();
  }
}

/** Arrival times, at the agent's socket, of the caller's packets that carry sound (PCMU). */
function callerSoundAt(t: TestCall): number[] {
  const at: number[] = [];
  t.agentLeg.endpoint.on('packet', (p) => {
    if (p.payload.length !== 160) return; // 20 ms of PCMU; anything else (an event) is not voice
    if (dbfs(Int16Array.from(p.payload, mulawToLinear)) >= LOUD_DBFS) at.push(performance.now());
  });
  return at;
}

/** Arrival times, at the caller's socket, of the agent's packets with sound (after `from`). */
const agentSoundAt = (t: TestCall, from = 0): number[] => t.heardPackets.filter((p) => p.speech && p.at >= from).map((p) => p.at);

/** Runs of sound separated by more than `gapMs` of none: [start, end] of each (packet arrival times). */
function bursts(times: readonly number[], gapMs = 300): [number, number][] {
  const out: [number, number][] = [];
  for (const at of times) {
    const last = out.at(-1);
    if (last && at - last[1] <= gapMs) last[1] = at;
    else out.push([at, at]);
  }
  return out;
}

/**
 * Fixed endpointing and immediate barge-in: what these tests pin down is the window itself (adaptive
 * endpointing and barge-in: tests/agent/adaptive-turns.test.ts and docs/turn-taking.md).
 */
const baseConfig = { tenantId: 't-endpointing', greeting: 'Hi {{caller}}, this is the test line.', turn: { endpointing: 'fixed', bargeIn: 'immediate' } } satisfies AgentConfigInput;
let calls: TestCall[] = [];

async function open(config: AgentConfigInput, stt: SttProvider, llm = new FakeLlm({ reply: () => REPLY })): Promise<TestCall> {
  // A fast talker (35 ms a character) keeps the tests short; timing is what is under test.
  const t = await TestCall.open({ config, providers: { stt, llm, tts: new FakeTts({ msPerChar: 25 }) } });
  calls.push(t);
  return t;
}

/** Starts the session and waits until the greeting has played out at the caller. */
async function greeted(t: TestCall): Promise<void> {
  await t.session.start();
  await t.next('agent-done', 8000, (e) => e.turn === 0);
}

afterEach(async () => {
  for (const t of calls) await t.close();
  calls = [];
});

describe('endpointing through a real AgentSession (loopback UDP, real VAD, fake providers)', () => {
  it('a pause shorter than the endpointing window does not end the turn: one turn, one reply, the STT hears all of it', async () => {
    const window = 1000;
    const stt = new RecordingStt(['i would like a table for four', 'never said']);
    const llm = new FakeLlm({ reply: () => REPLY });
    const t = await open({ ...baseConfig, turn: { endpointing: 'fixed', bargeIn: 'immediate', endpointingMs: window } }, stt, llm);
    const caller = callerSoundAt(t);
    await greeted(t);
    const before = speech(1200);
    const after = speech(1200);
    // 60 % of the window between the two halves (plus the voice's own 250 ms syllable gaps inside each).
    t.say(concatSamples([before, pause(0.6 * window), after]));
    const done = await t.next('agent-done', 15_000, (e) => e.turn === 1);
    // Whatever a wrongly split turn would bring (a second turn, a second request) has had time to come.
    await sleep(window + 500);

    expect(t.of('turn-started')).toHaveLength(1);
    expect(t.of('turn-ended')).toHaveLength(1);
    expect(t.of('barge-in')).toHaveLength(0);
    expect(done.interrupted).toBe(false);
    expect(done.spokenText).toBe(REPLY);
    // The STT was asked once, for audio holding both halves; the model once, with the whole utterance.
    expect(stt.finals).toHaveLength(1);
    expect(loudMs(stt.finals[0]!.audio)).toBeGreaterThanOrEqual(0.9 * (loudMs(before) + loudMs(after)));
    expect(llm.requests).toHaveLength(1);
    expect(llm.requests[0]!.messages.at(-1)).toEqual({ role: 'user', content: 'i would like a table for four' });
    // On the wire: the caller's speech spans both halves, and the reply came only after all of it.
    const spoke = bursts(caller, window - 100);
    expect(spoke).toHaveLength(1);
    const [callerStart, callerEnd] = spoke[0]!;
    expect(callerEnd - callerStart).toBeGreaterThan(2400);
    expect(agentSoundAt(t, callerStart).filter((at) => at <= callerEnd + window - 60)).toEqual([]);
    expect(agentSoundAt(t, callerEnd).length).toBeGreaterThan(0);
  }, 40_000);

  it.each([600, 1200])('a pause as long as the window (%i ms) ends the turn: the reply starts after the window, not before', async (window) => {
    const stt = new RecordingStt(['what time do you open']);
    const t = await open({ ...baseConfig, turn: { endpointing: 'fixed', bargeIn: 'immediate', endpointingMs: window } }, stt);
    const caller = callerSoundAt(t);
    await greeted(t);
    t.say(speech(1200));
    await t.next('agent-done', 15_000, (e) => e.turn === 1);

    expect(t.of('turn-ended')).toHaveLength(1);
    const [callerStart, callerEnd] = [caller[0]!, caller.at(-1)!];
    expect(callerEnd - callerStart).toBeGreaterThan(1000);
    const replyStart = agentSoundAt(t, callerStart)[0]!;
    expect(replyStart).toBeDefined();
    const silenceMs = replyStart - callerEnd;
    // Not before the window: the caller's last sound plus the window (less 3 frames: packets arrive
    // with some scheduling jitter on a busy machine; measured here ~25 ms over the window).
    expect(silenceMs).toBeGreaterThanOrEqual(window - 60);
    // And not much after it: the fake providers answer at once, so the rest is the pipeline and load.
    expect(silenceMs).toBeLessThan(window + 1000);
  }, 30_000);

  it('the no-input reprompt fires once and on time; the goodbye follows on time', async () => {
    const noInputMs = 2000;
    const t = await open({ ...baseConfig, turn: { endpointing: 'fixed', bargeIn: 'immediate', noInputMs, maxReprompts: 1 } }, new RecordingStt([]));
    await t.session.start();
    expect(await t.session.ended).toBe('no-input');

    expect(t.of('reprompt').map((e) => e.count)).toEqual([1]);
    expect(t.session.transcript.map((m) => m.content)).toEqual(['Hi Sam, this is the test line.', t.config.reprompt, t.config.goodbye.reply]);
    // On the wire: greeting, reprompt, goodbye — three runs of sound, each gap the no-input time.
    const heard = bursts(agentSoundAt(t));
    expect(heard).toHaveLength(3);
    const [greeting, reprompt, goodbye] = heard as [[number, number], [number, number], [number, number]];
    for (const gap of [reprompt[0] - greeting[1], goodbye[0] - reprompt[1]]) {
      expect(gap).toBeGreaterThanOrEqual(noInputMs - 60);
      expect(gap).toBeLessThan(noInputMs + 750);
    }
    // Said once: the reprompt's sound lasts as long as its text takes the fake voice (35 ms a
    // character, 200 ms at least), not twice that.
    const oneRepromptMs = Math.max(200, t.config.reprompt.length * 35);
    expect(reprompt[1] - reprompt[0]).toBeLessThan(oneRepromptMs + 200);
  }, 30_000);

  it('no reprompt while the caller speaks across the no-input deadline; the timer restarts after the reply', async () => {
    const noInputMs = 2000;
    const stt = new RecordingStt(['i am still thinking about it']);
    const t = await open({ ...baseConfig, turn: { endpointing: 'fixed', bargeIn: 'immediate', noInputMs, maxReprompts: 1, endpointingMs: 500 } }, stt);
    const caller = callerSoundAt(t);
    await greeted(t);
    // Start 1.2 s into the no-input time and keep talking (short pauses) until 1.5 s past its deadline.
    await sleep(1200);
    t.say(concatSamples([speech(900), pause(300), speech(900), pause(300), speech(900)]));
    const reply = await t.next('agent-done', 15_000, (e) => e.turn === 1);
    expect(reply.spokenText).toBe(REPLY);
    expect(t.of('reprompt')).toHaveLength(0);
    // The reprompt, when it comes, is the no-input time after the reply, not after the greeting.
    const reprompt = await t.next('reprompt', noInputMs + 3000);
    expect(reprompt.count).toBe(1);
    await t.next('agent-done', 5000, (e) => e.spokenText === t.config.reprompt);
    await sleep(100); // the last packet reaches the caller just after the drain that ends the reply
    const heard = bursts(agentSoundAt(t));
    expect(heard).toHaveLength(3);
    const [greeting, replied, reprompted] = heard as [[number, number], [number, number], [number, number]];
    const [callerStart, callerEnd] = [caller[0]!, caller.at(-1)!];
    expect(callerEnd - greeting[1]).toBeGreaterThan(noInputMs + 1000);
    expect(reprompted[0] - replied[1]).toBeGreaterThanOrEqual(noInputMs - 60);
    expect(reprompted[0] - replied[1]).toBeLessThan(noInputMs + 750);
    // Nothing of the agent's reached the caller while they spoke.
    expect(agentSoundAt(t, callerStart).filter((at) => at <= callerEnd)).toEqual([]);
  }, 40_000);

  it('with barge-in off, a caller who talks on past the end of the reply still gets the reprompt after their silence', async () => {
    // Their speech over the reply is ignored (barge-in off), and the reply's end arms no timer while
    // they talk: the end of their turn must, or the call sits in silence until its time limit.
    const noInputMs = 2000;
    const window = 500;
    const t = await open({ ...baseConfig, turn: { endpointing: 'fixed', bargeIn: 'off', noInputMs, maxReprompts: 1, endpointingMs: window } }, new RecordingStt(['what time do you open']));
    const caller = callerSoundAt(t);
    await greeted(t);
    t.say(speech(800));
    await t.next('latency', 8000, (e) => e.mark === 'firstPacketOut' && e.turn === 1);
    await sleep(500);
    // Three seconds of talk, starting 0.5 s into a 1.4 s reply.
    t.say(concatSamples([speech(900), pause(300), speech(900), pause(300), speech(900)]));
    const reprompt = await t.next('reprompt', 15_000);
    expect(reprompt.count).toBe(1);
    await t.next('agent-done', 5000, (e) => e.spokenText === t.config.reprompt);
    await sleep(100);

    expect(t.of('barge-in')).toHaveLength(0);
    const callerEnd = caller.at(-1)!;
    const replyEnd = agentSoundAt(t).filter((at) => at < callerEnd).at(-1)!;
    expect(callerEnd - replyEnd).toBeGreaterThan(1000);
    // The reprompt is the no-input time after the caller's turn ended (their last sound + the window).
    const repromptStart = agentSoundAt(t, callerEnd)[0]!;
    expect(repromptStart - callerEnd).toBeGreaterThanOrEqual(noInputMs + window - 60);
    expect(repromptStart - callerEnd).toBeLessThan(noInputMs + window + 750);
  }, 40_000);

  it('never answers over a caller who keeps talking with short pauses (measured at the caller)', async () => {
    const window = 700;
    const stt = new RecordingStt(['so the thing is i need to change my booking']);
    const t = await open({ ...baseConfig, turn: { endpointing: 'fixed', bargeIn: 'immediate', endpointingMs: window } }, stt);
    const caller = callerSoundAt(t);
    await greeted(t);
    // Six seconds of talk; every pause is ~65 % of the window.
    const parts: Int16Array[] = [];
    for (let i = 0; i < 5; i++) parts.push(speech(900), pause(450));
    t.say(concatSamples([...parts, speech(900)]));
    const done = await t.next('agent-done', 20_000, (e) => e.turn === 1);
    expect(done.interrupted).toBe(false);

    const [callerStart, callerEnd] = [caller[0]!, caller.at(-1)!];
    expect(callerEnd - callerStart).toBeGreaterThan(6000);
    expect(agentSoundAt(t, callerStart).filter((at) => at <= callerEnd)).toEqual([]);
    // The agent did answer, once the caller was done.
    expect(agentSoundAt(t, callerEnd)[0]! - callerEnd).toBeGreaterThanOrEqual(window - 60);
    expect(t.of('turn-started')).toHaveLength(1);
  }, 40_000);

  it('an interruption that goes on past the false-interruption time is not talked over, even with an STT that sends no interim words', async () => {
    // pocketsphinx and OpenAI transcribe at the turn's end only: no word arrives while the caller
    // talks, so "no words yet" must not be read as "a cough" while the caller's turn is still open.
    const stt = new RecordingStt(['what time do you open', 'no wait i meant tomorrow at noon']);
    const long = 'We open at eleven in the morning every day of the week. On Fridays and Saturdays we stay open until midnight.';
    const llm = new FakeLlm({ reply: (req) => (req.messages.length <= 3 ? long : REPLY) });
    const t = await open({ ...baseConfig, turn: { endpointing: 'fixed', bargeIn: 'immediate', endpointingMs: 500 } }, stt, llm);
    const caller = callerSoundAt(t);
    await greeted(t);
    t.say(speech(800));
    await t.next('latency', 8000, (e) => e.mark === 'firstPacketOut' && e.turn === 1);
    await sleep(800);
    const spokeFrom = caller.length;
    // Three seconds of talk with short pauses: twice the false-interruption time (1.5 s).
    t.say(concatSamples([speech(900), pause(300), speech(900), pause(300), speech(900)]));
    await t.next('barge-in', 3000);
    const answer = await t.next('agent-done', 20_000, (e) => e.turn === 2);
    await sleep(100);

    const [interruptStart, interruptEnd] = [caller[spokeFrom]!, caller.at(-1)!];
    expect(interruptEnd - interruptStart).toBeGreaterThan(2500);
    // The agent went quiet soon after the caller started (a loose bound; bench:agent measures it) and
    // stayed quiet until they were done.
    expect(agentSoundAt(t, interruptStart + 400).filter((at) => at <= interruptEnd)).toEqual([]);
    expect(t.of('barge-in-resumed')).toHaveLength(0);
    // What the caller said was heard and answered.
    expect(llm.requests).toHaveLength(2);
    expect(llm.requests[1]!.messages.at(-1)).toEqual({ role: 'user', content: 'no wait i meant tomorrow at noon' });
    expect(answer.spokenText).toBe(REPLY);
  }, 40_000);

  it('never answers over a caller who resumes before the STT returns: both parts are answered together after', async () => {
    // The caller's pause ends the turn, but they go on talking before the STT's final (600 ms later)
    // arrives: answering the first half then would talk over the second.
    const stt = new RecordingStt(['i would like to book', 'a table for four tonight'], 600);
    const llm = new FakeLlm({ reply: () => REPLY });
    const t = await open({ ...baseConfig, turn: { endpointing: 'fixed', bargeIn: 'immediate', endpointingMs: 500 } }, stt, llm);
    const caller = callerSoundAt(t);
    await greeted(t);
    t.say(concatSamples([speech(1200), pause(700), speech(900), pause(300), speech(1200)]));
    const done = await t.next('agent-done', 20_000, (e) => e.turn >= 1);

    const [callerStart, callerEnd] = [caller[0]!, caller.at(-1)!];
    expect(agentSoundAt(t, callerStart).filter((at) => at <= callerEnd)).toEqual([]);
    expect(t.of('turn-ended').length).toBe(2);
    expect(llm.requests).toHaveLength(1);
    expect(llm.requests[0]!.messages.at(-1)).toEqual({ role: 'user', content: 'i would like to book a table for four tonight' });
    expect(done.spokenText).toBe(REPLY);
    expect(agentSoundAt(t, callerEnd).length).toBeGreaterThan(0);
  }, 40_000);
});
