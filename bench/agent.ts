/**
 * npm run bench:agent [-- --quick] [-- --concurrency 4] [-- --vad fvad|silero]
 *
 * The agent's own latency over real UDP on loopback, with fake providers (src/providers/fake) so that
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
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { resolveAgentConfig } from '../src/agent/AgentConfig.js';
import { AgentSession } from '../src/agent/AgentSession.js';
import { CallSession } from '../src/agent/CallSession.js';
import { PromptCache } from '../src/agent/PromptCache.js';
import { createVad } from '../src/agent/vad/createVad.js';
import { openAudioLeg, type LegCodec } from '../src/media/AudioLeg.js';
import { createEncoder } from '../src/media/codecs/registry.js';
import { sharedMediaClock } from '../src/media/MediaClock.js';
import { resample } from '../src/media/Resampler.js';
import { parseRtp, serializeRtp } from '../src/media/rtp/RtpPacket.js';
import { dbfs } from '../src/media/signal.js';
import { FakeLlm, FakeStt, FakeTts, voiceLike, type FakeLlmOptions, type FakeSttOptions, type FakeTtsOptions } from '../src/providers/fake/FakeProviders.js';
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

/** A caller on a raw UDP socket: sends one PCMU frame per tick of the media clock, timestamps everything. */
class BenchCaller {
  readonly socket = dgram.createSocket('udp4');
  /** Arrival time of every agent packet, and whether it carried sound. */
  readonly heard: { at: number; speech: boolean }[] = [];
  private script: Int16Array[] = [];
  private sentAt: number[] = [];
  private seq = 0;
  private ts = 0;
  private readonly encoder = createEncoder('PCMU');
  private unsubscribe: (() => void) | undefined;
  private target: { address: string; port: number } | undefined;

  async bind(): Promise<{ address: string; port: number }> {
    await new Promise<void>((r) => this.socket.bind(0, '127.0.0.1', () => r()));
    this.socket.on('message', (msg) => {
      const p = parseRtp(msg);
      if (!p.ok) return;
      const speech = p.value.payload.some((b) => b !== 0xff && b !== 0x7f);
      this.heard.push({ at: performance.now(), speech });
    });
    return { address: '127.0.0.1', port: this.socket.address().port };
  }

  start(target: { address: string; port: number }): void {
    this.target = target;
    this.unsubscribe = sharedMediaClock().subscribe(() => this.tick());
  }

  /** Queues 16 kHz speech; resolves with the send times of its 20 ms frames (the first `framesWanted`). */
  speak(pcm16k: Int16Array, framesWanted?: number): Promise<number[]> {
    const pcm8k = resample(pcm16k, 16000, 8000);
    const first = this.script.length;
    for (let off = 0; off < pcm8k.length; off += 160) {
      const f = new Int16Array(160);
      f.set(pcm8k.subarray(off, off + 160));
      this.script.push(f);
    }
    const last = framesWanted === undefined ? this.script.length : first + framesWanted;
    return new Promise((resolve) => {
      const check = setInterval(() => {
        if (this.sentAt.length >= last) {
          clearInterval(check);
          resolve(this.sentAt.slice(first, last));
        }
      }, 20);
    });
  }

  private tick(): void {
    if (!this.target) return;
    const frame = this.script[this.sentAt.length];
    const payload = frame ? this.encoder.encode(frame) : this.encoder.silence;
    const packet = serializeRtp({ marker: false, payloadType: 0, sequenceNumber: this.seq, timestamp: this.ts, ssrc: 0xbe7c }, payload);
    this.seq = (this.seq + 1) & 0xffff;
    this.ts = (this.ts + 160) >>> 0;
    this.socket.send(packet, this.target.port, this.target.address);
    if (frame) this.sentAt.push(performance.now());
    else {
      // Idle: silence frames are not part of any utterance's timing.
      this.script.length = this.sentAt.length;
    }
  }

  firstSpeechAfter(t: number): number | undefined {
    return this.heard.find((h) => h.speech && h.at > t)?.at;
  }

  lastSpeech(): number | undefined {
    for (let i = this.heard.length - 1; i >= 0; i--) if (this.heard[i]!.speech) return this.heard[i]!.at;
    return undefined;
  }

  close(): void {
    this.unsubscribe?.();
    this.encoder.close();
    this.socket.close();
  }
}

interface TrialProviders {
  stt?: Partial<FakeSttOptions>;
  llm?: Partial<FakeLlmOptions>;
  tts?: Partial<FakeTtsOptions>;
}

const prompts = new PromptCache();

async function openCall(greeting: string, p: TrialProviders) {
  const caller = new BenchCaller();
  const callerAddress = await caller.bind();
  const config = resolveAgentConfig({ tenantId: 'bench', greeting, turn: { endpointingMs: ENDPOINTING_MS } });
  const leg = await openAudioLeg({ callId: `bench-${Math.random()}`, legId: 'agent', codec: PCMU, clock: sharedMediaClock(), env: {}, endpoint: { remote: callerAddress } });
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
    await waitUntil(() => c.caller.firstSpeechAfter(t0) !== undefined, 2000);
    const greetingMs = c.caller.firstSpeechAfter(t0)! - t0;
    // Interrupt at a different point of the greeting each time (300–900 ms in).
    await sleep(300 + ((seed * 7919) % 600));
    const [onset] = await c.caller.speak(CALLER_SPEECH, 1);
    await sleep(400);
    const last = c.caller.lastSpeech()!;
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
    await waitUntil(() => c.caller.firstSpeechAfter(t0) !== undefined, 2000);
    const greetingMs = c.caller.firstSpeechAfter(t0)! - t0;
    await sleep(400);
    const times = await c.caller.speak(CALLER_SPEECH);
    const speechEnd = times[SPEECH_END_FRAME]!;
    await waitUntil(() => c.caller.firstSpeechAfter(speechEnd) !== undefined, 5000);
    return { sinceSpeechEndMs: c.caller.firstSpeechAfter(speechEnd)! - speechEnd, greetingMs };
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
