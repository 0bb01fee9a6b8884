import { afterEach, describe, expect, it } from 'vitest';
import type { AgentConfigInput } from '../../src/agent/AgentConfig.js';
import { FakeStt, FakeTts, voiceLike } from '../../src/providers/testing/FakeProviders.js';
import { ScriptedResponder } from '../../src/providers/scripted.js';
import { concatSamples } from '../../src/media/signal.js';
import { pinkNoise, silence } from '../../bench/support/callerAudio.js';
import { sleep, TestCall } from './harness.js';

/**
 * The default turn-taking (adaptive barge-in, adaptive endpointing, "didn't catch that", the voicing
 * gate) through a real AgentSession over loopback UDP, with fake providers. docs/turn-taking.md.
 */
const LONG_REPLY =
  'We open at eleven in the morning every day of the week. On Fridays and Saturdays we stay open until midnight. Delivery runs until ten at night.';
const DID_NOT_CATCH = 'Sorry, I missed that.';
const intents = [{ name: 'hours', phrases: ['what time do you open'], reply: LONG_REPLY }];
const config = { tenantId: 't-adaptive', greeting: 'Hi {{caller}}, this is the test line.', intents, didNotCatch: DID_NOT_CATCH } satisfies AgentConfigInput;

function providers(transcripts: string[]) {
  return {
    stt: new FakeStt({ transcripts }),
    llm: new ScriptedResponder({ intents, fallbackReply: 'Sorry?', goodbye: { phrases: ['goodbye'], reply: 'Bye now.' } }),
    tts: new FakeTts({ msPerChar: 25 }),
  };
}

let calls: TestCall[] = [];
afterEach(async () => {
  for (const t of calls) await t.close();
  calls = [];
});

/** A call whose greeting has been said: the caller has the floor. */
async function greeted(transcripts: string[]): Promise<TestCall> {
  const t = await TestCall.open({ config, providers: providers(transcripts) });
  calls.push(t);
  await t.session.start();
  await t.next('agent-done', 5000, (e) => e.turn === 0);
  return t;
}

/** A call 800 ms into the agent's long answer to the caller's first question. */
async function answered(transcripts: string[]): Promise<TestCall> {
  const t = await greeted(transcripts);
  t.say(voiceLike(700, -22));
  await t.next('latency', 10_000, (e) => e.mark === 'firstPacketOut' && e.turn === 1);
  await sleep(800);
  return t;
}

describe('adaptive turn-taking through a real AgentSession', () => {
  it('a backchannel over the agent lowers its voice and lets it go on: no barge-in, the reply is said whole', async () => {
    const t = await answered(['what time do you open', 'uh huh']);
    t.say(voiceLike(200, -22)); // "yeah"
    const done = await t.next('agent-done', 15_000, (e) => e.turn === 1);
    expect(done).toMatchObject({ interrupted: false, spokenText: LONG_REPLY });
    expect(t.of('agent-ducked')).toHaveLength(1);
    expect(t.of('backchannel')).toHaveLength(1);
    expect(t.of('barge-in')).toHaveLength(0);
    expect(t.of('turn-started')).toHaveLength(1);
  }, 30_000);

  it('a real interruption pauses the agent within ~300 ms and then cuts it; history keeps what was heard', async () => {
    const t = await answered(['what time do you open', 'wait do you deliver']);
    const onset = performance.now();
    t.say(voiceLike(1500, -22));
    const barge = await t.next('barge-in', 3000);
    const cut = await t.next('agent-done', 3000, (e) => e.turn === 1);
    expect(cut.interrupted).toBe(true);
    expect(LONG_REPLY.startsWith(cut.spokenText.replace(/…$/, ''))).toBe(true);
    expect(barge.playedMs).toBeGreaterThan(500);
    await sleep(300);
    // Loose (bench:turns measures it): the agent's sound stopped at the hold, well before the cut.
    expect(t.lastSpeechPacketAt()! - onset).toBeLessThan(600);
  }, 30_000);

  it('steady noise and a cough open no turn; the agent does not even duck', async () => {
    const t = await greeted(['what time do you open']);
    t.say(concatSamples([pinkNoise(1500, -25, 7), silence(200)]));
    await sleep(2100);
    expect(t.of('turn-started')).toHaveLength(0);
    expect(t.of('agent-ducked')).toHaveLength(0);
    // The same line with a voice in it: a turn opens and is answered.
    t.say(voiceLike(800, -22));
    await t.next('agent-done', 15_000, (e) => e.turn === 1);
    expect(t.of('turn-started')).toHaveLength(1);
  }, 30_000);

  it('speech with no words in it gets the tenant phrase, counted as a reprompt', async () => {
    const t = await greeted(['']);
    t.say(voiceLike(900, -22));
    const text = await t.next('agent-text', 5000, (e) => e.turn === 1);
    expect(text.text).toBe(DID_NOT_CATCH);
    expect(t.of('reprompt')).toMatchObject([{ count: 1 }]);
  }, 30_000);

  it('a finished question is answered sooner than the endpointing window', async () => {
    const t = await greeted(['what time do you open']);
    t.say(voiceLike(700, -22));
    const end = await t.next('latency', 10_000, (e) => e.mark === 'endOfTurn');
    // 300 ms of silence after a finished sentence, not the tenant's 500.
    expect(end.sinceSpeechEndMs).toBeLessThan(450);
    expect(end.sinceSpeechEndMs).toBeGreaterThanOrEqual(280);
  }, 30_000);
});
