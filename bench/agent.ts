/**
 * npm run bench:agent [-- --quick] [-- --concurrency 4] [-- --vad fvad|silero]
 *
 * The agent's own latency over real UDP on loopback, with fake providers (src/providers/testing/FakeProviders.ts) so that
 * only callgate's part is measured. Each trial is one call: a raw-socket caller sends PCMU every 20 ms
 * on the process's media clock and timestamps what it sends and receives; the agent side is the real
 * AudioLeg + AgentSession + fvad VAD.
 *
 * 1. barge-in reaction: the agent is speaking; the caller starts talking; time from the caller's first
 *    speech packet (the onset) to the last agent packet with sound. Goal ≤ 100 ms p95.
 * 2. gateway overhead: zero-latency providers; from the caller's last speech packet to the agent's first
 *    reply packet, minus the endpointing silence. Goal ≤ 10 ms p95.
 * 3. voice-to-voice: STT final +150 ms, LLM first token 300 ms (then a word every 15 ms), TTS first audio
 *    100 ms; from the caller's last speech packet to the first reply packet. Goal ≤ endpointing + 600 ms.
 * 4. greeting: session start → first greeting packet at the caller, greeting already cached. Goal ≤ 50 ms p95.
 * The last line printed is one JSON object.
 */
import './support/logsToStderr.js';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { resolveAgentConfig } from '../src/agent/AgentConfig.js';
import { AgentSession } from '../src/agent/AgentSession.js';
import { CallSession } from '../src/agent/CallSession.js';
import { PromptCache } from '../src/agent/PromptCache.js';
import { createVad } from '../src/agent/vad/createVad.js';
import { openAudioLeg, type LegCodec } from '../src/media/AudioLeg.js';
import { sharedMediaClock } from '../src/media/MediaClock.js';
import { dbfs } from '../src/media/signal.js';
import { RtpCaller } from '../src/media/testing/RtpCaller.js';
import { FakeLlm, FakeStt, FakeTts, voiceLike, type FakeLlmOptions, type FakeSttOptions, type FakeTtsOptions } from '../src/providers/testing/FakeProviders.js';
import { percentile, sortedAscending } from '../src/util/percentile.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    concurrency: { type: 'string' },
    /** fvad (default) or silero. */
    vad: { type: 'string' },
  },
});
const quick = values.quick;
/** Calls in flight at once. 4 keeps a 2-core machine far from saturation, so the figures are latency, not queueing. */
const concurrency = Number(values.concurrency ?? 4);
const ENDPOINTING_MS = 500;
const vadEngine = values.vad === 'silero' ? 'silero' : 'fvad';
const PCMU: LegCodec = { name: 'PCMU', payloadType: 0 };
const SPEECH_DBFS = -40;

/** Caller speech: voice-like, cut at a syllable peak so its end is sharp (the last speech frame is known). */
const CALLER_SPEECH = voiceLike(1125, -22);
const LONG_GREETING =
  'Thank you for calling the benchmark line. This greeting is long on purpose, so that the caller has plenty of time to interrupt it at any moment they like.';
const REPLY = 'We open at eleven in the morning, and we close at ten at night. Is there anything else?';

interface TrialProviders {
  stt?: Partial<FakeSttOptions>;
  llm?: Partial<FakeLlmOptions>;
  tts?: Partial<FakeTtsOptions>;
}

const prompts = new PromptCache();

async function openCall(greeting: string, p: TrialProviders) {
  // The same raw-socket phone bench:bargein and the SIP barge-in test use, on the agent's media clock.
  const caller = await RtpCaller.open();
  // Immediate barge-in and fixed endpointing: the figures here are defined by them (the 60 ms confirmation,
  // the endpointing window); adaptive turn-taking is measured by bench:turns.
  const config = resolveAgentConfig({ tenantId: 'bench', greeting, turn: { endpointingMs: ENDPOINTING_MS, endpointing: 'fixed', bargeIn: 'immediate' } });
  const leg = await openAudioLeg({ callId: `bench-${Math.random()}`, legId: 'agent', codec: PCMU, clock: sharedMediaClock(), env: {}, endpoint: { remote: caller.address } });
  const call = new CallSession({ callId: 'bench', config, media: leg, hangup: () => leg.close() });
  const providers = {
    stt: new FakeStt({ transcripts: Array(4).fill('what time do you open'), ...p.stt }),
    llm: new FakeLlm({ reply: () => REPLY, ...p.llm }),
    tts: new FakeTts(p.tts),
  };
  // Warm the greeting so every trial measures the cached path.
  await prompts.get({ tenantId: 'bench', text: greeting, voice: config.voice, codec: 'PCMU' }, providers.tts);
  const session = new AgentSession({ call, providers, vad: await createVad({ engine: vadEngine }), prompts });
  caller.start(leg.endpoint.localAddress);
  const close = async (): Promise<void> => {
    call.remoteHangup();
    await session.ended;
    await leg.close();
    caller.close();
  };
  return { caller, session, call, leg, close };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Index of the last 20 ms frame (16 kHz) with speech energy. */
function lastSpeechFrame(pcm: Int16Array): number {
  let last = -1;
  for (let i = 0; i * 320 < pcm.length; i++) if (dbfs(pcm, { start: i * 320, end: (i + 1) * 320 }) >= SPEECH_DBFS) last = i;
  return last;
}
/** In 8 kHz caller frames, the same index (both are 20 ms). */
const SPEECH_END_FRAME = lastSpeechFrame(CALLER_SPEECH);

interface BargeTrial {
  bargeInMs: number;
  greetingMs: number;
}

async function bargeInTrial(seed: number): Promise<BargeTrial> {
  const c = await openCall(LONG_GREETING, { tts: { msPerChar: 70 } });
  try {
    const t0 = performance.now();
    await c.session.start();
    await waitUntil(() => c.caller.firstSoundAfter(t0) !== undefined, 2000);
    const greetingMs = c.caller.firstSoundAfter(t0)! - t0;
    // Interrupt at a different point of the greeting each time (300–900 ms in).
    await sleep(300 + ((seed * 7919) % 600));
    const [onset] = await c.caller.speak(CALLER_SPEECH, 1);
    await sleep(400);
    const last = c.caller.lastSoundBefore()!;
    return { bargeInMs: last - onset!, greetingMs };
  } finally {
    await c.close();
  }
}

async function replyTrial(p: TrialProviders): Promise<{ sinceSpeechEndMs: number; greetingMs: number }> {
  const c = await openCall('Hi.', p);
  try {
    const t0 = performance.now();
    await c.session.start();
    await waitUntil(() => c.caller.firstSoundAfter(t0) !== undefined, 2000);
    const greetingMs = c.caller.firstSoundAfter(t0)! - t0;
    await sleep(400);
    const times = await c.caller.speak(CALLER_SPEECH);
    const speechEnd = times[SPEECH_END_FRAME]!;
    await waitUntil(() => c.caller.firstSoundAfter(speechEnd) !== undefined, 5000);
    return { sinceSpeechEndMs: c.caller.firstSoundAfter(speechEnd)! - speechEnd, greetingMs };
  } finally {
    await c.close();
  }
}

async function waitUntil(cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms`);
    await sleep(5);
  }
}

async function runTrials<T>(n: number, trial: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, n) }, async (_, w) => {
    // Staggered, so concurrent calls do not all end their turns on the same tick.
    await sleep(w * 97);
    while (next < n) {
      const i = next++;
      out.push(await trial(i));
    }
  });
  await Promise.all(workers);
  return out;
}

const round = (x: number): number => Math.round(x * 10) / 10;
function stats(xs: number[]): { p50: number; p95: number; max: number; n: number } {
  const s = sortedAscending(xs);
  return { p50: round(percentile(s, 0.5)), p95: round(percentile(s, 0.95)), max: round(s.at(-1)!), n: s.length };
}

// One call first, not counted: module loading, JIT and the first VAD instance are start-up costs.
await replyTrial({});

const counts = quick ? { barge: 50, overhead: 24, v2v: 16 } : { barge: 200, overhead: 100, v2v: 60 };
const started = performance.now();

const barge = await runTrials(counts.barge, bargeInTrial);
const bargeStats = stats(barge.map((b) => b.bargeInMs));
console.log(`barge-in reaction (onset → last agent packet): ${JSON.stringify(bargeStats)}`);

const overhead = await runTrials(counts.overhead, () => replyTrial({}));
const overheadStats = stats(overhead.map((o) => o.sinceSpeechEndMs - ENDPOINTING_MS));
console.log(`gateway overhead (zero-latency providers, minus ${ENDPOINTING_MS} ms endpointing): ${JSON.stringify(overheadStats)}`);

// STT: a streaming engine whose final comes 150 ms after the speech ends (FakeStt finalises on its own).
const simulated: TrialProviders = { stt: { finalDelayMs: 150 }, llm: { firstTokenMs: 300, tokenIntervalMs: 15 }, tts: { firstAudioMs: 100 } };
const v2v = await runTrials(counts.v2v, () => replyTrial(simulated));
const v2vStats = stats(v2v.map((o) => o.sinceSpeechEndMs));
console.log(`voice-to-voice (STT +150, LLM 300 + 15 ms/word, TTS 100): ${JSON.stringify(v2vStats)}`);

const greetingStats = stats([...barge, ...overhead, ...v2v].map((t) => t.greetingMs));
if (process.env["BENCH_DEBUG"]) console.log("greeting ms", barge.map((b) => Math.round(b.greetingMs)).join(" "), "/", overhead.map((b) => Math.round(b.greetingMs)).join(" "));
console.log(`greeting first packet (cached): ${JSON.stringify(greetingStats)}`);

console.log(
  JSON.stringify({
    bench: 'agent',
    quick,
    concurrency,
    vad: vadEngine,
    endpointingMs: ENDPOINTING_MS,
    bargeInTrials: bargeStats.n,
    bargeInP50Ms: bargeStats.p50,
    bargeInP95Ms: bargeStats.p95,
    overheadP50Ms: overheadStats.p50,
    overheadP95Ms: overheadStats.p95,
    voiceToVoiceP50Ms: v2vStats.p50,
    voiceToVoiceP95Ms: v2vStats.p95,
    greetingFirstPacketP50Ms: greetingStats.p50,
    greetingFirstPacketP95Ms: greetingStats.p95,
    durationS: round((performance.now() - started) / 1000),
  }),
);
process.exit(0);
