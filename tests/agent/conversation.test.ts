import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveAgentConfig, type AgentConfigInput } from '../../src/agent/AgentConfig.js';
import { PromptCache } from '../../src/agent/PromptCache.js';
import { offlineProviderRegistry, type ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { concatSamples } from '../../src/media/signal.js';
import { recognizePcm } from '../../src/providers/pocketsphinx/index.js';
import { capture, childProcesses, sleep, TestCall } from './harness.js';
import { describeWith } from '../support/tools.js';

/**
 * Whole calls with the offline providers — pocketsphinx hears the caller, the scripted responder
 * answers, flite speaks (in its worker pool) — over real UDP with PCMU, the caller's side replayed from
 * the RTP captures in tests/fixtures. What the agent said is checked by decoding its RTP at the caller
 * and recognising it with pocketsphinx.
 */
const GREETING = "Hi, I'm Ava from Joe's Pizza, what can I do for you today?";
const HOURS = 'We open at eleven in the morning today.';
const BOOKING =
  'Of course. We have tables for four at seven tonight, by the window or on the terrace. Which one would you like? I can also hold it for fifteen minutes if you are running late.';
const GOODBYE = "Thanks for calling Joe's Pizza. Goodbye!";

const tenant: AgentConfigInput = {
  tenantId: 'joes-pizza',
  greeting: GREETING,
  voice: 'slt',
  intents: [
    { name: 'hours', phrases: ['what time do you open today', 'when do you open'], reply: HOURS },
    { name: 'booking', phrases: ['i would like to book a table for four people at seven', 'book a table'], reply: BOOKING },
  ],
  goodbye: { phrases: ['thank you goodbye', 'goodbye'], reply: GOODBYE },
};

describeWith(['pocketsphinx'], 'a whole call with the offline providers over loopback UDP (PCMU)', () => {
  let registry: ProviderRegistry;
  const prompts = new PromptCache();

  beforeAll(async () => {
    registry = offlineProviderRegistry();
    // A process warms its tenants' greetings at start-up; so does this test.
    const config = resolveAgentConfig(tenant);
    await prompts.get({ tenantId: config.tenantId, text: GREETING, voice: config.voice, codec: 'PCMU' }, registry.forCall(config).tts);
  }, 30_000);

  afterAll(async () => {
    await registry.close();
  });

  it('greets (not fooled by its own echo at -20 dB), answers the question it hears, says goodbye and hangs up', async () => {
    const config = resolveAgentConfig(tenant);
    const t = await TestCall.open({ config: tenant, providers: registry.forCall(config), prompts });
    try {
      // The phone line returns the greeting 20 dB down, 60 ms late (the capture's own delay), while it plays.
      // The echo starts with the greeting's first packet, as a line's would: start() resolves only once
      // the STT is open (the first call of a process loads the dictionary), well after that packet left.
      const echo = await capture('ava-greeting-echo-20db.pcmu.pcap');
      const starting = t.session.start();
      t.playCapture(echo);
      await starting;
      const greeted = await t.next('agent-done', 10_000, (e) => e.turn === 0);
      expect(greeted.interrupted).toBe(false);
      expect(t.of('barge-in')).toHaveLength(0);
      expect(t.of('turn-started')).toHaveLength(0);

      await sleep(300);
      t.playCapture(await capture('caller-open-today.pcmu.pcap'));
      const heard = await t.next('transcript', 10_000, (e) => e.final && e.turn === 1);
      expect(heard.text).toBe('what time do you open today');
      const answered = await t.next('agent-done', 15_000, (e) => e.turn === 1);
      expect(answered.spokenText).toBe(HOURS);

      await sleep(300);
      t.playCapture(await capture('caller-goodbye.pcmu.pcap'));
      expect(await t.session.ended).toBe('agent-goodbye');
      expect(t.hangups).toEqual(['agent-goodbye']);
      const history = t.session.transcript.map((m) => m.content);
      expect(history).toEqual([GREETING, 'what time do you open today', HOURS, expect.stringMatching(/goodbye$/), GOODBYE]);
      // Either goodbye phrase is a right reading ("thank you" may go to the grammar's fallback path).
      expect(['thank you goodbye', 'goodbye']).toContain(history[3]);

      // What the caller actually heard: the agent's RTP, decoded, recognised against its three lines.
      const agentAudio = concatSamples(t.heardAudio);
      const recognised = await recognizePcm(agentAudio, { phrases: [GREETING, HOURS, GOODBYE] });
      expect(recognised).toContain("hi i'm ava from joe's pizza what can i do for you today");
      expect(recognised).toContain('we open at eleven in the morning today');
      expect(recognised).toContain("thanks for calling joe's pizza goodbye");
    } finally {
      await t.close();
    }
  }, 60_000);

  it('adaptive barge-in: the caller speaks 1 s into a long reply and stops it; a cough during the next one does not', async () => {
    const config = resolveAgentConfig(tenant);
    const t = await TestCall.open({ config: tenant, providers: registry.forCall(config), prompts });
    try {
      await t.session.start();
      await t.next('agent-done', 10_000, (e) => e.turn === 0);
      await sleep(300);
      t.playCapture(await capture('caller-book-table.pcmu.pcap'));
      await t.next('latency', 15_000, (e) => e.mark === 'firstPacketOut' && e.turn === 1);
      await sleep(1000);
      const onset = performance.now();
      t.playCapture(await capture('caller-open-today.pcmu.pcap'));
      const barge = await t.next('barge-in', 3000);
      expect(barge.playedMs).toBeGreaterThan(800);
      const cut = await t.next('agent-done', 3000, (e) => e.turn === 1);
      expect(cut.interrupted).toBe(true);
      expect(BOOKING.startsWith(cut.spokenText.replace(/…$/, ''))).toBe(true);
      expect(cut.spokenText.length).toBeLessThan(BOOKING.length / 2);
      await sleep(400);
      // Loose here (the benchmark measures it): the agent's sound stopped right after the onset.
      expect(t.lastSpeechPacketAt()! - onset).toBeLessThan(500);
      // The interruption was a question: it is answered.
      const answer = await t.next('agent-done', 15_000, (e) => e.turn === 2);
      expect(answer.spokenText).toBe(HOURS);

      // Now a cough 1 s into the next long reply: not voiced, so not speech: the agent says it all.
      await sleep(300);
      t.playCapture(await capture('caller-book-table.pcmu.pcap'));
      await t.next('latency', 15_000, (e) => e.mark === 'firstPacketOut' && e.turn === 3);
      await sleep(1000);
      t.playCapture(await capture('caller-cough.pcmu.pcap'));
      const done = await t.next('agent-done', 30_000, (e) => e.turn === 3);
      expect(done).toMatchObject({ interrupted: false, spokenText: BOOKING });
      expect(t.events.filter((e) => e.type === 'barge-in')).toHaveLength(1);
      expect(t.events.filter((e) => e.type === 'turn-started').map((e) => e.type === 'turn-started' && e.turn)).toEqual([1, 2, 3]);
    } finally {
      await t.close();
    }
    await sleep(200);
    // Nothing left running: the STT engine's processes went with the calls.
    expect(childProcesses().filter((c) => c.includes('pocketsphinx') || c === 'sh' || c === 'cat')).toEqual([]);
  }, 90_000);
});
