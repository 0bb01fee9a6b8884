import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentConfigInput } from '../../src/agent/AgentConfig.js';
import { FakeStt, FakeTts, voiceLike } from '../../src/providers/testing/FakeProviders.js';
import { ScriptedResponder } from '../../src/providers/scripted.js';
import { concatSamples } from '../../src/media/signal.js';
import { atLevel, pinkNoise, silence } from '../../bench/support/callerAudio.js';
import { RtpCaller } from '../../src/media/testing/RtpCaller.js';
import { decodeWav } from '../../src/media/wav.js';
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
let phones: RtpCaller[] = [];
afterEach(async () => {
  for (const t of calls) await t.close();
  for (const p of phones) await p.close();
  calls = [];
  phones = [];
});

const fixture = async (name: string): Promise<Int16Array> => decodeWav(await readFile(new URL(`../fixtures/${name}`, import.meta.url))).samples;

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

  it("a caller as soft as the agent's own echo still interrupts it: the echo canceller learnt the line", async () => {
    // A speakerphone (RtpCaller.echo): the agent's voice (-20 dBFS) comes back 120 ms later and 20 dB
    // down, mixed with what the caller says; the caller (another voice) talks at the echo's level. The
    // level-only echo guard's bar is above that, so without the canceller this is no barge-in (seen:
    // with echoCanceller false the reply plays out whole); the echo alone interrupts nothing either.
    // The agent talks with a real voice (flite's, from the fixtures): FakeTts's 250 ms gaps between
    // syllables would let any caller through the level-only guard.
    const voice = atLevel(await fixture('ava-greeting.wav'), -20);
    const tts = {
      name: 'recorded',
      async *synthesize(request: { text: string }) {
        const n = Math.min(voice.length, request.text.length * 60 * 16);
        for (let i = 0; i < n; i += 1600) yield { samples: voice.subarray(i, Math.min(n, i + 1600)), sampleRate: 16000 };
      },
    };
    const t = await TestCall.open({
      config,
      providers: { ...providers(['what time do you open', 'what time do you open']), tts },
      noCaller: true,
      options: { echoCanceller: {} },
    });
    calls.push(t);
    const phone = await RtpCaller.open();
    phones.push(phone);
    phone.start(t.agentLeg.endpoint.localAddress);
    t.agentLeg.endpoint.setRemote(phone.address);
    phone.echo({ delayMs: 120, gainDb: -20 });
    await t.session.start();
    await t.next('agent-done', 5000, (e) => e.turn === 0);
    void phone.speak(voiceLike(700, -22)).catch(() => undefined);
    await t.next('latency', 10_000, (e) => e.mark === 'firstPacketOut' && e.turn === 1);
    await sleep(1500);
    expect(t.of('agent-ducked')).toHaveLength(0); // 2 s of echo so far, and nothing heard in it
    void phone.speak(atLevel(await fixture('caller-open-today.wav'), -40)).catch(() => undefined);
    const barge = await t.next('barge-in', 4000);
    expect(barge.by).toBe('speech');
    const cut = await t.next('agent-done', 3000, (e) => e.turn === 1);
    expect(cut.interrupted).toBe(true);
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
