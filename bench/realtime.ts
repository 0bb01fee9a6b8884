/**
 * npm run bench:realtime [-- --quick] [-- --calls 10,20,40]
 *
 * Calls answered by a speech-to-speech model (providers.realtime: 'openai', issue 23), against the local
 * server speaking OpenAI's Realtime protocol (src/providers/realtime/testing/OpenAiRealtimeServer.ts) with
 * zero latency (chunkIntervalMs 0: a response's audio deltas go out as fast as the socket takes them), so
 * only callgate's part is measured. Each call is the real thing on loopback: the official SDK over wss to
 * the server, AgentSession with fvad and the tenant's turn-taking, an AudioLeg (PCMU, real UDP) paced by
 * the process's media clock, and a raw-socket phone (src/media/testing/RtpCaller.ts) that sends PCMU every
 * 20 ms and timestamps every agent packet it receives.
 *
 * 1. overhead: for each model response, the server's send of its first `response.output_audio.delta`
 *    (timestamped in this process, where the server runs: same performance.now()) → the arrival, at the
 *    caller, of the first agent packet with sound. Nothing is subtracted. Split: send → the agent leg's
 *    play() of that audio (TLS loopback, the SDK's parse, base64, 24→16 kHz, the link's queue), play() →
 *    the packet handed to the agent's socket, and the rest (dgram's deferred send, loopback, the caller's
 *    turn of the event loop) — by wrapping the leg's play() and its endpoint's send() in this bench, as a
 *    profiler would; src/ is not changed. Short answers (1 s) on calls that only talk turns, and the long
 *    answers (18 s, one burst of 180 deltas) of the barge-in calls. Goal ≤ 5 ms p95.
 * 2. barge-in: the model is saying a long answer (18 s); 300–900 ms after its first packet the caller
 *    starts talking (tests/fixtures/caller-open-today.wav from its first speech frame, 2 s). Caller speech
 *    onset (its first speech packet sent) → arrival of the last agent packet with sound before onset +
 *    1000 ms; and onset → the session's barge-in event (the decision). The interruption is a turn: the
 *    model answers it (long again) and the caller interrupts again, so one call gives several. Both modes:
 *    the tenant default ('adaptive': duck, hold at 240 ms, decide) and 'immediate'. The server counts the
 *    response.cancel and conversation.item.truncate it got. Goal ≤ 100 ms p95.
 * 3. concurrency: K calls at once, each talking turns (1125 ms of voice-like caller speech, a 1.5 s
 *    answer), the model server in a child process (its TLS and base64 are not callgate's). This process's
 *    CPU (process.cpuUsage, which includes the K in-process phones: PCMU encode/decode, small) per call,
 *    and the media clock's lateness (every tick, from a subscriber of our own) over a measurement window.
 *    Calls per core: K / (CPU fraction) at the largest K whose lateness p99 stays ≤ 5 ms.
 * `--phases overhead,bargein,load` runs some of them; BENCH_DEBUG=1 prints each interruption's packets
 * (arrival ms from the onset : dBFS) and session events to stderr.
 * Logs and progress go to stderr; the last line of stdout is one JSON object.
 */
import './support/logsToStderr.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { resolveAgentConfig, type AgentConfigInput } from '../src/agent/AgentConfig.js';
import { AgentSession } from '../src/agent/AgentSession.js';
import { CallSession } from '../src/agent/CallSession.js';
import { PromptCache } from '../src/agent/PromptCache.js';
import { createVad } from '../src/agent/vad/createVad.js';
import { rootLogger } from '../src/log.js';
import { openAudioLeg, type AudioLeg, type LegCodec } from '../src/media/AudioLeg.js';
import { sharedMediaClock } from '../src/media/MediaClock.js';
import { RtpCaller } from '../src/media/testing/RtpCaller.js';
import { OpenAiRealtime } from '../src/providers/realtime/openaiRealtime.js';
import { OpenAiRealtimeServer } from '../src/providers/realtime/testing/OpenAiRealtimeServer.js';
import { FakeLlm, FakeStt, FakeTts, voiceLike } from '../src/providers/testing/FakeProviders.js';
import { percentile, sortedAscending } from '../src/util/percentile.js';
import { dbfs } from '../src/media/signal.js';
import { readWavFile } from '../src/media/wav.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    /** Comma-separated K for the concurrency phase. */
    calls: { type: 'string' },
    /** Comma-separated phases to run: overhead, bargein, load (all by default). */
    phases: { type: 'string', default: 'overhead,bargein,load' },
    /** Internal: run only the model server (the concurrency phase's child process). */
    'model-server': { type: 'boolean', default: false },
    'answer-ms': { type: 'string' },
  },
});
const quick = values.quick;
const phases = new Set(values.phases.split(','));

const PCMU: LegCodec = { name: 'PCMU', payloadType: 0 };
const GREETING = 'Hello, you are through to the realtime benchmark line.';
/** Caller speech: voice-like from its first sample, so its first packet is speech (as bench:agent's). */
const CALLER_SPEECH_MS = 1125;
const CALLER_SPEECH = voiceLike(CALLER_SPEECH_MS, -22);
/**
 * The caller's interruption: a real voice (tests/fixtures/caller-open-today.wav, "what time do you open
 * today", 2 s; made by `npm run fixtures`) from its first frame of speech, so its first packet is the onset.
 * Not voiceLike: its 250 ms syllables with 250 ms of near-silence between them are, to adaptive barge-in,
 * a string of short sounds each let go as a backchannel (see docs/benchmarks.md).
 */
let INTERRUPTION = new Int16Array(0);
async function loadInterruption(): Promise<void> {
  const wav = await readWavFile(fileURLToPath(new URL('../tests/fixtures/caller-open-today.wav', import.meta.url)));
  if (wav.sampleRate !== 16000) throw new Error('caller-open-today.wav: expected 16 kHz');
  let first = 0;
  while (first * 320 < wav.samples.length && dbfs(wav.samples, { start: first * 320, end: (first + 1) * 320 }) < -40) first++;
  INTERRUPTION = wav.samples.slice(first * 320);
}
const GOALS = { overheadP95Ms: 5, bargeInP95Ms: 100, clockLatenessP99Ms: 5 } as const;
/** The server's tone lasts 60 ms a character of the answer's text. */
const answerText = (ms: number): string => {
  const words = 'we open at eleven in the morning and close at ten at night every day of the week'.split(' ');
  let text = '';
  for (let i = 0; text.length * 60 < ms; i++) text += (text ? ' ' : '') + words[i % words.length]!;
  return text;
};
const SHORT_ANSWER_MS = 1000;
const LONG_ANSWER_MS = 18_000;
const LOAD_ANSWER_MS = 1500;
/** Barge-in: sound after onset + this is not counted (the next answer cannot start before the caller's speech ends). */
const WINDOW_MS = 1000;
/** The agent must have been heard this close before the onset for an interruption to count. */
const SPEAKING_BEFORE_MS = 100;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number): number => Math.round(x * 10) / 10;
function stats(xs: readonly number[]): { n: number; p50: number; p95: number; max: number } {
  const s = sortedAscending(xs);
  return { n: s.length, p50: round(percentile(s, 0.5)), p95: round(percentile(s, 0.95)), max: round(s.at(-1) ?? 0) };
}
const progress = (line: string): void => void process.stderr.write(`bench:realtime ${line}\n`);

async function waitFor(cond: () => boolean, timeoutMs: number, what: string, pollMs = 5): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pollMs);
  }
}

// ─── The model server's side: first audio delta of each response, by server socket ──────────────────

/** Send times of each response's first audio delta, per server-side socket. */
const firstDeltaSends = new Map<WebSocket, number[]>();
const lastResponse = new WeakMap<WebSocket, string>();
const DELTA = '"type":"response.output_audio.delta"';
{
  // The server's send() is ws's; the SDK's client sockets use the same class but never send audio deltas.
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (this: WebSocket, data: unknown, ...rest: unknown[]) {
    if (typeof data === 'string') {
      const head = data.slice(0, 160);
      if (head.includes(DELTA)) {
        const at = performance.now();
        const response = /"response_id":"([^"]+)"/.exec(head)?.[1] ?? '';
        if (lastResponse.get(this) !== response) {
          lastResponse.set(this, response);
          const list = firstDeltaSends.get(this) ?? [];
          list.push(at);
          firstDeltaSends.set(this, list);
        }
      }
    }
    return (send as (...a: unknown[]) => void).call(this, data, ...rest);
  } as typeof WebSocket.prototype.send;
}

function startModel(answerMs: number): Promise<OpenAiRealtimeServer> {
  const text = answerText(answerMs);
  return OpenAiRealtimeServer.start({ transcribe: () => 'what time do you open', answer: () => ({ text }), chunkMs: 100, chunkIntervalMs: 0 });
}

/** The concurrency phase's model server, in a child process (this same file, --model-server). */
async function modelInChild(answerMs: number): Promise<{ baseURL: string; ca: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--model-server', '--answer-ms', String(answerMs)], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, LOG_LEVEL: 'warn' },
  });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (l) => {
      rl.close();
      resolve(l);
    });
    child.once('exit', (code) => reject(new Error(`model server exited (${code})`)));
    setTimeout(() => reject(new Error('model server did not start within 20 s')), 20_000).unref();
  });
  const { baseURL, ca } = JSON.parse(line) as { baseURL: string; ca: string };
  return { baseURL, ca, child };
}

// ─── One call ─────────────────────────────────────────────────────────────────────────────────────

const prompts = new PromptCache();

interface BenchCall {
  readonly caller: RtpCaller;
  readonly leg: AudioLeg;
  readonly session: AgentSession;
  /** Times of the agent leg's play() calls (the model's audio; prompts go by playEncoded). */
  readonly plays: number[];
  /** Times the agent handed a packet with sound to its socket. */
  readonly soundSends: number[];
  /** The session's events with their emission times. */
  readonly events: { at: number; type: string }[];
  /** Send times of each response's first audio delta (same process only). */
  deltaSends(): number[];
  readonly server: OpenAiRealtimeServer | undefined;
  close(): Promise<void>;
}

async function openCall(model: { baseURL: string; ca: string; server?: OpenAiRealtimeServer }, bargeIn: 'adaptive' | 'immediate'): Promise<BenchCall> {
  const input: AgentConfigInput = { tenantId: 'bench-realtime', greeting: GREETING, providers: { realtime: 'openai' }, turn: { bargeIn } };
  const config = resolveAgentConfig(input);
  const caller = await RtpCaller.open();
  const leg = await openAudioLeg({ callId: `bench-rt-${Math.random().toString(36).slice(2, 10)}`, legId: 'agent', codec: PCMU, clock: sharedMediaClock(), env: {}, endpoint: { remote: caller.address } });
  const plays: number[] = [];
  const play = leg.play.bind(leg);
  leg.play = (pcm: Int16Array): boolean => {
    plays.push(performance.now());
    return play(pcm);
  };
  // And the agent's packets with sound as they are handed to its socket (dgram sends later, off the loop).
  const soundSends: number[] = [];
  const send = leg.endpoint.send.bind(leg.endpoint);
  leg.endpoint.send = (datagram: Uint8Array): boolean => {
    if (datagram.subarray(12).some((b) => b !== 0xff && b !== 0x7f)) soundSends.push(performance.now());
    return send(datagram);
  };
  const call = new CallSession({ callId: 'bench-rt', config, media: leg, hangup: () => leg.close() });
  const tts = new FakeTts();
  const providers = {
    // The cascade: there only as the fallback, which a zero-latency local model never needs.
    stt: new FakeStt({ transcripts: Array(50).fill('what time do you open') }),
    llm: new FakeLlm({ reply: () => 'The cascade answers.' }),
    tts,
    realtime: new OpenAiRealtime({ apiKey: 'sk-test', baseURL: model.baseURL, ca: model.ca }),
  };
  await prompts.get({ tenantId: config.tenantId, text: GREETING, voice: config.voice, codec: 'PCMU' }, tts);
  const session = new AgentSession({ call, providers, vad: await createVad({ engine: 'fvad' }), prompts });
  const events: { at: number; type: string }[] = [];
  session.on('event', (e) => void events.push({ at: performance.now(), type: e.type }));
  caller.start(leg.endpoint.localAddress);
  const server = model.server;
  return {
    caller,
    leg,
    session,
    plays,
    soundSends,
    events,
    server,
    deltaSends: () => (server ? server.sessions.flatMap((s) => firstDeltaSends.get(s.socket) ?? []) : []),
    async close() {
      call.remoteHangup();
      await session.ended;
      await leg.close();
      caller.close();
    },
  };
}

/** The agent has been silent at the caller for `quietMs` and has nothing queued. */
const quiet = (c: BenchCall, quietMs: number): boolean => c.leg.queuedMs === 0 && (c.caller.lastSoundBefore() ?? 0) < performance.now() - quietMs;

/** Starts the session and waits out the greeting (cached, ours, not the model's). */
async function greet(c: BenchCall): Promise<void> {
  const t0 = performance.now();
  await c.session.start();
  await waitFor(() => c.caller.firstSoundAfter(t0) !== undefined, 5000, 'the greeting');
  await waitFor(() => quiet(c, 300), 10_000, 'the end of the greeting');
}

// ─── 1. overhead ──────────────────────────────────────────────────────────────────────────────────

interface OverheadSample {
  totalMs: number;
  inProcessMs: number;
  pacerMs: number;
  /** play() → the packet handed to the agent's socket. */
  toSocketMs: number;
}

async function overheadCall(turns: number): Promise<{ samples: OverheadSample[]; skipped: string[] }> {
  const server = await startModel(SHORT_ANSWER_MS);
  const c = await openCall({ baseURL: server.baseURL, ca: server.ca, server }, 'adaptive');
  const samples: OverheadSample[] = [];
  const skipped: string[] = [];
  try {
    await greet(c);
    for (let i = 0; i < turns; i++) {
      const before = c.deltaSends().length;
      await c.caller.speak(CALLER_SPEECH);
      try {
        await waitFor(() => c.deltaSends().length > before, 6000, 'the model to answer');
      } catch (err) {
        skipped.push(String(err));
        continue;
      }
      const sent = c.deltaSends()[before]!;
      await waitFor(() => c.caller.firstSoundAfter(sent) !== undefined, 3000, 'the answer at the caller');
      const arrived = c.caller.firstSoundAfter(sent)!;
      const played = c.plays.find((t) => t >= sent);
      const lastBefore = c.caller.lastSoundBefore(sent);
      if (lastBefore !== undefined && lastBefore > sent - 100) skipped.push('the agent was still sounding when the answer came');
      else if (played === undefined) skipped.push('no play() after the delta');
      else samples.push({ totalMs: arrived - sent, inProcessMs: played - sent, pacerMs: arrived - played, toSocketMs: (c.soundSends.find((t) => t >= played) ?? NaN) - played });
      await waitFor(() => quiet(c, 300), 10_000, 'the end of the answer');
      await sleep(100 + ((i * 7919) % 200));
    }
  } finally {
    await c.close();
    await server.stop();
  }
  return { samples, skipped };
}

// ─── 2. barge-in ──────────────────────────────────────────────────────────────────────────────────

interface BargeResult {
  bargeInMs: number[];
  /** Overhead (as in 1.) of these long (18 s) answers, which arrive in one burst of 180 deltas. */
  overheadMs: number[];
  /** Of those, the server's send → the leg's play() of the audio. */
  overheadInProcessMs: number[];
  /** Onset → the session's barge-in event (the decision: VAD, and for adaptive the judge). */
  decisionMs: number[];
  invalid: string[];
  cancels: number;
  truncations: number;
  /** Interruptions made (counted or not). */
  interruptions: number;
}

async function bargeInCall(mode: 'adaptive' | 'immediate', interruptions: number, seed: number): Promise<BargeResult> {
  const server = await startModel(LONG_ANSWER_MS);
  const c = await openCall({ baseURL: server.baseURL, ca: server.ca, server }, mode);
  const out: BargeResult = { bargeInMs: [], overheadMs: [], overheadInProcessMs: [], decisionMs: [], invalid: [], cancels: 0, truncations: 0, interruptions: 0 };
  try {
    await greet(c);
    // The question; then each answer is interrupted, and the interruption is the next question.
    let speaking: Promise<unknown> = c.caller.speak(INTERRUPTION);
    for (let i = 0; i < interruptions; i++) {
      await speaking;
      const before = c.deltaSends().length;
      try {
        await waitFor(() => c.deltaSends().length > before, 8000, 'the model to answer');
        const sent = c.deltaSends()[before]!;
        await waitFor(() => c.caller.firstSoundAfter(sent) !== undefined, 3000, 'the answer at the caller');
        const played = c.plays.find((t) => t >= sent);
        if ((c.caller.lastSoundBefore(sent) ?? 0) < sent - 100 && played !== undefined) {
          out.overheadMs.push(c.caller.firstSoundAfter(sent)! - sent);
          out.overheadInProcessMs.push(played - sent);
        }
      } catch (err) {
        out.invalid.push(String(err));
        speaking = c.caller.speak(INTERRUPTION);
        continue;
      }
      await sleep(300 + (((seed + i) * 7919) % 600));
      // Resolves once the first frame has left, with its send time: the onset.
      const [onset] = await c.caller.speak(INTERRUPTION, 1);
      if (onset === undefined) throw new Error('the caller sent nothing');
      speaking = sleep(Math.max(0, onset + INTERRUPTION.length / 16 + 40 - performance.now()));
      await waitFor(() => performance.now() > onset + WINDOW_MS, WINDOW_MS + 2000, 'the window');
      out.interruptions++;
      const before100 = c.caller.lastSoundBefore(onset);
      if (before100 === undefined || before100 <= onset - SPEAKING_BEFORE_MS) {
        out.invalid.push(`agent not speaking at the onset (last sound ${before100 === undefined ? 'never' : `${Math.round(onset - before100)} ms before`})`);
        continue;
      }
      out.bargeInMs.push(c.caller.lastSoundBefore(onset + WINDOW_MS)! - onset);
      const decided = c.events.find((e) => e.type === 'barge-in' && e.at > onset);
      if (decided && decided.at < onset + WINDOW_MS) out.decisionMs.push(decided.at - onset);
      if (process.env['BENCH_DEBUG']) {
        const rel = (t: number): number => Math.round(t - onset);
        const pk = c.caller.heard.filter((h) => h.at > onset - 100 && h.at < onset + 1500).map((h) => `${rel(h.at)}${h.sound ? `:${Math.round(10 * Math.log10(h.pcm.reduce((a, x) => a + x * x, 0) / h.pcm.length / 32768 ** 2 + 1e-12))}` : ':-'}`);
        progress(`DEBUG ${mode} packets ${pk.join(' ')}`);
        progress(`DEBUG ${mode} events ${c.events.filter((e) => e.at > onset - 200 && e.at < onset + 2000).map((e) => `${rel(e.at)} ${e.type}`).join(', ')}`);
      }
    }
    await speaking;
  } finally {
    await c.close();
    const s = server.sessions;
    out.cancels = s.reduce((n, x) => n + x.cancels, 0);
    out.truncations = s.reduce((n, x) => n + x.truncations.length, 0);
    await server.stop();
  }
  return out;
}

// ─── 3. concurrency ───────────────────────────────────────────────────────────────────────────────

interface LoadResult {
  calls: number;
  windowS: number;
  turnsAnswered: number;
  turnsMissed: number;
  cpuPercent: number;
  cpuPercentPerCall: number;
  clockLatenessP50Ms: number;
  clockLatenessP99Ms: number;
  clockLatenessMaxMs: number;
  loadavg1: number;
}

async function load(k: number, windowMs: number, model: { baseURL: string; ca: string }): Promise<LoadResult> {
  const calls: BenchCall[] = [];
  let stop = false;
  let answered = 0;
  let missed = 0;
  const talk = async (c: BenchCall, w: number): Promise<void> => {
    await sleep(w * 53);
    await greet(c);
    while (!stop) {
      await c.caller.speak(CALLER_SPEECH);
      // Scan only what arrives from here on (firstSoundAfter() scans the whole call's packets, which
      // 40 calls polling would make the bench's own load).
      let seen = c.caller.heard.length;
      const answeredYet = (): boolean => {
        const heard = c.caller.heard;
        for (; seen < heard.length; seen++) if (heard[seen]!.sound) return true;
        return false;
      };
      try {
        await waitFor(() => stop || answeredYet(), 6000, 'the answer', 20);
        if (stop) break;
        answered++;
        await waitFor(() => stop || quiet(c, 300), 10_000, 'the end of the answer', 20);
      } catch {
        missed++;
      }
    }
  };
  try {
    for (let i = 0; i < k; i++) calls.push(await openCall(model, 'adaptive'));
    const talking = calls.map((c, i) => talk(c, i));
    // Ramp: every call greeted and into its turns.
    await sleep(k * 53 + 3000);
    const late: number[] = [];
    const unsubscribe = sharedMediaClock().subscribe((tick) => void late.push(tick.lateMs));
    const answeredBefore = answered;
    const missedBefore = missed;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await sleep(windowMs);
    const cpu = process.cpuUsage(cpu0);
    const wall = performance.now() - t0;
    unsubscribe();
    const turnsAnswered = answered - answeredBefore;
    const turnsMissed = missed - missedBefore;
    stop = true;
    await Promise.allSettled(talking);
    const cpuFraction = (cpu.user + cpu.system) / 1000 / wall;
    const s = sortedAscending(late);
    return {
      calls: k,
      windowS: round(wall / 1000),
      turnsAnswered,
      turnsMissed,
      cpuPercent: round(cpuFraction * 100),
      cpuPercentPerCall: Math.round((cpuFraction * 10000) / k) / 100,
      clockLatenessP50Ms: Math.round(percentile(s, 0.5) * 100) / 100,
      clockLatenessP99Ms: Math.round(percentile(s, 0.99) * 100) / 100,
      clockLatenessMaxMs: round(s.at(-1) ?? 0),
      loadavg1: round(loadavg()[0]!),
    };
  } finally {
    stop = true;
    await Promise.allSettled(calls.map((c) => c.close()));
  }
}

// ─── main ─────────────────────────────────────────────────────────────────────────────────────────

async function pool<T>(n: number, run: (i: number) => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: n }, async (_, i) => {
    await sleep(i * 137);
    return run(i);
  }));
}

async function overheadPhase(): Promise<Record<string, unknown>> {
  const o = quick ? { calls: 4, turns: 3 } : { calls: 4, turns: 12 };
  progress(`overhead: ${o.calls} calls × ${o.turns} turns`);
  const runs = await pool(o.calls, () => overheadCall(o.turns));
  const samples = runs.flatMap((r) => r.samples);
  const total = stats(samples.map((s) => s.totalMs));
  const inProcess = stats(samples.map((s) => s.inProcessMs));
  const pacer = stats(samples.map((s) => s.pacerMs));
  const toSocket = stats(samples.map((s) => s.toSocketMs).filter((x) => Number.isFinite(x)));
  progress(`overhead ms: ${samples.map((s) => s.totalMs.toFixed(1)).join(' ')}`);
  for (const r of runs) for (const why of r.skipped) progress(`overhead turn not counted: ${why}`);
  return {
    overheadTurns: total.n,
    overheadSkipped: runs.reduce((n, r) => n + r.skipped.length, 0),
    overheadP50Ms: total.p50,
    overheadP95Ms: total.p95,
    overheadMaxMs: total.max,
    overheadInProcessP50Ms: inProcess.p50,
    overheadInProcessP95Ms: inProcess.p95,
    overheadPacerP50Ms: pacer.p50,
    overheadPacerP95Ms: pacer.p95,
    overheadPlayToSocketP50Ms: toSocket.p50,
    overheadPlayToSocketP95Ms: toSocket.p95,
    overheadWithinGoal: total.n > 0 && total.p95 <= GOALS.overheadP95Ms,
  };
}

async function bargeInPhase(): Promise<Record<string, unknown>> {
  const b = quick ? { calls: 3, each: 2 } : { calls: 4, each: 10 };
  progress(`barge-in: ${b.calls} calls × ${b.each} interruptions per mode, both modes at once`);
  const modes = ['adaptive', 'immediate'] as const;
  await loadInterruption();
  const runs = await pool(modes.length * b.calls, (i) => bargeInCall(modes[i % 2]!, b.each, i * 11));
  const summary = (m: number) => {
    const mode = modes[m]!;
    const mine = runs.filter((_, i) => i % 2 === m);
    const ms = mine.flatMap((r) => r.bargeInMs);
    const s = stats(ms);
    const decision = stats(mine.flatMap((r) => r.decisionMs));
    progress(`barge-in ${mode} ms: ${ms.map((x) => Math.round(x)).join(' ')}`);
    for (const r of mine) for (const why of r.invalid) progress(`barge-in ${mode} not counted: ${why}`);
    return {
      interruptions: s.n,
      invalid: mine.reduce((n, r) => n + r.invalid.length, 0),
      bargeInP50Ms: s.p50,
      bargeInP95Ms: s.p95,
      bargeInMaxMs: s.max,
      decisionP50Ms: decision.p50,
      decisionP95Ms: decision.p95,
      serverCancels: mine.reduce((n, r) => n + r.cancels, 0),
      serverTruncations: mine.reduce((n, r) => n + r.truncations, 0),
      withinGoal: s.n > 0 && s.p95 <= GOALS.bargeInP95Ms,
    };
  };
 const bargeIn = { adaptive: summary(0), immediate: summary(1) };
  const longOverhead = stats(runs.flatMap((r) => r.overheadMs));
  progress(`overhead of 18 s answers ms: ${runs.flatMap((r) => r.overheadMs).map((x) => x.toFixed(1)).join(' ')}`);
  return {
    overheadLongAnswerTurns: longOverhead.n,
    overheadLongAnswerP50Ms: longOverhead.p50,
    overheadLongAnswerP95Ms: longOverhead.p95,
    overheadLongAnswerInProcessP50Ms: stats(runs.flatMap((r) => r.overheadInProcessMs)).p50,
    overheadLongAnswerInProcessP95Ms: stats(runs.flatMap((r) => r.overheadInProcessMs)).p95,
    bargeIn,
    bargeInP95Ms: bargeIn.immediate.bargeInP95Ms, bargeInAdaptiveP95Ms: bargeIn.adaptive.bargeInP95Ms };
}

async function loadPhase(): Promise<Record<string, unknown>> {
  const ks = (values.calls ?? (quick ? '5' : '10,20,40')).split(',').map(Number).filter((k) => k >= 1);
  const windowMs = quick ? 6000 : 15_000;
  const model = await modelInChild(LOAD_ANSWER_MS);
  const loads: LoadResult[] = [];
  try {
    for (const k of ks) {
      progress(`concurrency: ${k} calls, ${windowMs / 1000} s window`);
      const r = await load(k, windowMs, model);
      progress(`concurrency ${k}: ${JSON.stringify(r)}`);
      loads.push(r);
    }
  } finally {
    model.child.kill();
  }
  const perCore = (l: LoadResult): number => Math.round(l.calls / (l.cpuPercent / 100));
  // The largest K whose clock stayed within 5 ms p99; when none did (this host's timers alone are 4–6 ms
  // p99, bench:clock), the largest K that answered every turn, flagged as such.
  const withinClock = loads.filter((l) => l.clockLatenessP99Ms <= GOALS.clockLatenessP99Ms).at(-1);
  const best = withinClock ?? loads.filter((l) => l.turnsMissed === 0).at(-1);
  return { concurrency: loads, callsPerCore: best ? perCore(best) : null, callsPerCoreAt: best?.calls ?? null, callsPerCoreClockWithin5Ms: withinClock !== undefined };
}

async function main(): Promise<void> {
  rootLogger.level = process.env['LOG_LEVEL'] ?? 'warn';
  const started = performance.now();
  const loadBefore = loadavg().map(round);
  // Warm-up, not counted: module loading, JIT, the first VAD, TLS, the greeting's synthesis.
  await overheadCall(1);
  const overhead = phases.has('overhead') ? await overheadPhase() : {};
  const bargeIn = phases.has('bargein') ? await bargeInPhase() : {};
  const concurrency = phases.has('load') ? await loadPhase() : {};
  console.log(
    JSON.stringify({
      bench: 'realtime',
      quick,
      cores: cpus().length,
      goals: GOALS,
      definitions: {
        overhead: "server's send of a response's first audio delta → first agent packet with sound at the caller (same process)",
        inProcess: 'that send → the agent leg play() of the audio (TLS loopback, SDK, resampling, link queue)',
        pacer: 'play() → arrival at the caller',
        playToSocket: "play() → the packet handed to the agent's socket (the rest of pacer is dgram's deferred send, loopback and the caller's event-loop turn)",
        bargeIn: 'caller speech onset (first speech packet sent; caller-open-today.wav) → last agent packet with sound received before onset + 1000 ms',
        decision: "caller speech onset → the session's barge-in event",
        callsPerCore: 'K / CPU fraction of this process (callers included, model server not) at the largest K with clock lateness p99 ≤ 5 ms (else the largest K that answered every turn: callsPerCoreClockWithin5Ms false)',
      },
      ...overhead,
      ...bargeIn,
      ...concurrency,
      loadavg: { before: loadBefore, after: loadavg().map(round) },
      durationS: round((performance.now() - started) / 1000),
    }),
  );
}

async function serveModel(): Promise<void> {
  rootLogger.level = process.env['LOG_LEVEL'] ?? 'warn';
  const server = await startModel(Number(values['answer-ms'] ?? LOAD_ANSWER_MS));
  console.log(JSON.stringify({ baseURL: server.baseURL, ca: server.ca }));
  // Until the bench is done with it (its stdin closes, or it is killed).
  process.stdin.resume();
  process.stdin.once('end', () => void server.stop().then(() => process.exit(0)));
  process.once('SIGTERM', () => void server.stop().then(() => process.exit(0)));
}

(values['model-server'] ? serveModel() : main().then(() => process.exit(0))).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
