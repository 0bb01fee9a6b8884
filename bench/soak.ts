/**
 * npm run bench:soak [-- --quick] [-- --sequential N] [-- --concurrent M] [-- --log-level info|warn|…]
 *
 * Soak: does callgate stay healthy over many calls? Every call is the real agent path over loopback UDP
 * (bench/soak/soakCall.ts): a CallLimiter lease and a call record in a real Redis (127.0.0.1:6379, under
 * a key prefix of this run's own, deleted at the end), an AudioLeg, CallSession and AgentSession with
 * the fvad VAD and one PromptCache for all calls (the greeting is cached once, before the first call).
 * The caller replays tests/fixtures/caller-goodbye.pcmu.pcap ("Thank you, goodbye.") over UDP at its
 * captured pace; the agent greets, hears it, answers and hangs up (the scripted LLM ends the call).
 *
 * Providers are the fakes (src/providers/testing/FakeProviders.ts): scripted STT text at the end of speech, a scripted
 * reply, voice-like TTS audio. pocketsphinx and flite would put their own memory and CPU (child
 * processes, a worker pool) into the figures; this measures callgate's. The caller's replay runs in
 * this same process, so its cost (small: one socket, one timer per packet) is in the figures too.
 *
 * 1. sequential: N calls one after another. Heap and RSS after a forced GC every `sampleEvery` calls
 *    from `warmupCalls` on (JIT, caches and pools are warm by then), with a least-squares slope.
 * 2. concurrent: M calls started in a ramp (`rampBatch` every `rampIntervalMs`), all at once in flight.
 * Event-loop delay (monitorEventLoopDelay, 10 ms resolution) per phase, p50/p99/max in ms beyond the
 * probe's interval. On a shared machine the loop is also late whenever other processes hold the CPUs:
 * `runQueue` (Linux schedstat of the main thread) says how long it waited for a CPU, and `selfP99` is
 * the delay with that wait taken out — what callgate itself held the loop for. `ok` uses the p99 as
 * monitorEventLoopDelay measured it, wait included. At the end: a record per call with an outcome and a transcript, the tenant's
 * active-call count back to zero, and no UDP sockets, timers or child processes left over.
 *
 * Progress goes to stderr (and so do the call logs, at --log-level, default info as in production);
 * the last line on stdout is one JSON object. Exits 1 when a leak check fails or an event-loop p99
 * reaches `eventLoopP99LimitMs`.
 */
import './support/logsToStderr.js';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { resolveAgentConfig } from '../src/agent/AgentConfig.js';
import { PromptCache } from '../src/agent/PromptCache.js';
import { readCaptureFile } from '../src/media/capture/pcapReader.js';
import type { ReplayPacket } from '../src/media/capture/replay.js';
import { findRtpStreams } from '../src/media/capture/rtpStreams.js';
import { sharedMediaClock } from '../src/media/MediaClock.js';
import { loggerTo } from '../src/log.js';
import { CallLimiter } from '../src/tenants/CallLimiter.js';
import { CallRecordStore, type CallRecord } from '../src/tenants/CallRecordStore.js';
import { connectRedis, deletePrefix, keys } from '../src/tenants/redisClient.js';
import { EventLoopProbe, RunQueueProbe, growth, memoryAfterGc, newChildren, resources, type EventLoopFigures, type MemorySample, type ResourceSnapshot } from './soak/measure.js';
import { runSoakCall, soakProviders, type SoakCallDeps, type SoakCallOptions, type SoakCallResult } from './soak/soakCall.js';

export interface SoakOptions {
  readonly sequentialCalls: number;
  readonly concurrentCalls: number;
  /** Concurrent phase: calls started together, and the pause between groups. */
  readonly rampBatch: number;
  readonly rampIntervalMs: number;
  /** Sequential calls before the first memory sample. */
  readonly warmupCalls: number;
  /** Sequential calls between memory samples. */
  readonly sampleEvery: number;
  readonly eventLoopResolutionMs: number;
  /** `ok` needs each phase's event-loop p99 below this. */
  readonly eventLoopP99LimitMs: number;
  /** Timers (ref'd) allowed above the baseline at the end; see the leak checks. */
  readonly timerAllowance: number;
  /** How long open handles get to close after the last call before they count as leaked. */
  readonly settleMs: number;
  readonly call: SoakCallOptions;
}

export const defaultSoakOptions = {
  /** The figures: 1000 one after another, 100 at once. */
  sequentialCalls: 1000,
  concurrentCalls: 100,
  /** 10 calls per 100 ms: 100 calls in flight within a second, without 100 setups in one tick. */
  rampBatch: 10,
  rampIntervalMs: 100,
  warmupCalls: 50,
  sampleEvery: 100,
  /** 10 ms: Node's default; finer makes the probe itself a measurable load. */
  eventLoopResolutionMs: 10,
  /** 20 ms (the target): one frame interval of the media clock. */
  eventLoopP99LimitMs: 20,
  /** 0: the media clock's timer and the call leases' renewals are unref'd and are checked through their owners. */
  timerAllowance: 0,
  /** 500 ms: closes are awaited, so this only covers libuv finishing a handle's close. */
  settleMs: 500,
  call: {
    /** The tenant's limit equals the concurrent phase, so a lease leaked earlier gets a call refused. */
    callLimit: 100,
    /** 15 s: a call takes ~2.3 s; one this late is stuck. */
    callTimeoutMs: 15_000,
    callerText: 'thank you goodbye',
    reply: 'Bye!',
  },
} as const satisfies SoakOptions;

/**
 * --quick: under a minute. Each call takes ~2.25 s in real time (the capture is 1.7 s), so 20 sequential
 * calls (~45 s) is what fits beside the concurrent phase — 40 would take ~90 s. Samples every 5 calls after 5.
 */
export const quickSoakOptions = {
  sequentialCalls: 20,
  concurrentCalls: 30,
  warmupCalls: 5,
  sampleEvery: 5,
} as const satisfies Partial<SoakOptions>;

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    sequential: { type: 'string' },
    concurrent: { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
  },
});
const quick = args.quick;
const base: SoakOptions = { ...defaultSoakOptions, ...(quick ? quickSoakOptions : {}) };
const concurrentCalls = args.concurrent === undefined ? base.concurrentCalls : Number(args.concurrent);
const opts: SoakOptions = {
  ...base,
  sequentialCalls: args.sequential === undefined ? base.sequentialCalls : Number(args.sequential),
  concurrentCalls,
  call: { ...base.call, callLimit: Math.max(1, concurrentCalls) },
};
for (const [name, v] of [['--sequential', opts.sequentialCalls], ['--concurrent', opts.concurrentCalls]] as const) {
  if (!Number.isInteger(v) || v < 0 || v > 100_000) throw new Error(`${name} must be an integer 0–100000, got ${v}`);
}

const progress = (msg: string): void => void process.stderr.write(`[soak] ${msg}\n`);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const round1 = (x: number): number => Math.round(x * 10) / 10;
const loadAvg = (): number[] => os.loadavg().map(round1);

async function loadCapture(name: string): Promise<ReplayPacket[]> {
  const path = fileURLToPath(new URL(`../tests/fixtures/${name}`, import.meta.url));
  const { streams } = findRtpStreams((await readCaptureFile(path)).datagrams());
  const stream = streams[0];
  if (streams.length !== 1 || !stream) throw new Error(`${name}: expected one RTP stream, found ${streams.length}`);
  // Copied out of the capture buffer: every call replays these same packets.
  return stream.packets.map((p) => ({ timeUs: p.timeUs, bytes: Uint8Array.from(p.bytes) }));
}

const CAPTURE = 'caller-goodbye.pcmu.pcap';
const tenantId = 'soak';
const prefix = `callgate-bench-soak:${process.pid}:${randomBytes(4).toString('hex')}:`;
const logger = loggerTo(pino.destination({ fd: 2 }), args['log-level']);
const loadAtStart = loadAvg();

const redis = await connectRedis({ prefix });
const limiter = new CallLimiter(redis, { prefix });
const records = new CallRecordStore(redis, { prefix, retentionDays: 1 });
const config = resolveAgentConfig({
  tenantId,
  greeting: 'Hi!',
  // 200 ms, the shortest allowed: short calls, so many fit in the run.
  turn: { endpointingMs: 200 },
});
const prompts = new PromptCache();
const deps: SoakCallDeps = { tenantId, config, prompts, limiter, records, capture: await loadCapture(CAPTURE), logger, options: opts.call };

const made: SoakCallResult[] = [];
let exitCode = 1;
try {
  // Cached once before the first call (as bench/agent.ts and tests/agent do): every call then takes the
  // cached path. The tenant's other fixed phrases are warmed by its first call, as in production.
  await prompts.get({ tenantId, text: config.greeting, voice: config.voice, codec: 'PCMU' }, soakProviders(opts.call).tts);
  const baseline = resources();
  progress(`baseline ${JSON.stringify(baseline)}; load average ${loadAtStart.join(' ')} on ${os.cpus().length} CPUs`);

  // ─── Phase 1: sequential ───────────────────────────────────────────────────────────────────────
  const seqSamples: MemorySample[] = [];
  const seqStart = performance.now();
  const seqCpu = process.cpuUsage();
  const seqLoop = new EventLoopProbe(opts.eventLoopResolutionMs);
  const seqRunQueue = new RunQueueProbe(opts.eventLoopResolutionMs, opts.eventLoopP99LimitMs, (st) =>
    progress(`stall: loop held ${round1(st.selfMs)} ms beyond the run-queue wait (${round1(st.waitMs)} ms), ${round1(st.onCpuMs)} ms on CPU, during call ${made.length + 1}`),
  );
  for (let i = 1; i <= opts.sequentialCalls; i++) {
    made.push(await runSoakCall(deps, `soak-seq-${i}`));
    if (i === opts.warmupCalls || (i > opts.warmupCalls && i % opts.sampleEvery === 0) || (i === opts.sequentialCalls && i > opts.warmupCalls)) {
      // The forced GC is the bench's, not callgate's: kept out of the event-loop figures.
      seqLoop.pause();
      seqRunQueue.pause();
      const s = await memoryAfterGc(i);
      seqRunQueue.resume();
      seqLoop.resume();
      if (seqSamples.at(-1)?.calls !== i) seqSamples.push(s);
      const loopMax = seqLoop.segmentMaxima().at(-2) ?? 0;
      progress(`sequential ${i}/${opts.sequentialCalls}: heap ${s.heapMb} MB, rss ${s.rssMb} MB, loop max ${loopMax} ms since last sample, ${Math.round((performance.now() - seqStart) / 1000)} s`);
    }
  }
  const seqLoopFigures = seqLoop.stop();
  const seqRunQueueFigures = seqRunQueue.stop();
  const seqDurationMs = performance.now() - seqStart;
  const seqCpuPct = cpuPercent(seqCpu, seqDurationMs);
  const seqResults = made.slice();
  const seqRecords = await recordCount();

  // ─── Phase 2: concurrent ───────────────────────────────────────────────────────────────────────
  const before = await memoryAfterGc(made.length);
  const conStart = performance.now();
  const conCpu = process.cpuUsage();
  let peak = 0;
  let live = 0;
  const conLoop = new EventLoopProbe(opts.eventLoopResolutionMs);
  const conRunQueue = new RunQueueProbe(opts.eventLoopResolutionMs, opts.eventLoopP99LimitMs, (st) =>
    progress(`stall: loop held ${round1(st.selfMs)} ms beyond the run-queue wait (${round1(st.waitMs)} ms), ${round1(st.onCpuMs)} ms on CPU, ${live} calls in flight`),
  );
  const inFlight: Promise<SoakCallResult>[] = [];
  for (let i = 1; i <= opts.concurrentCalls; i++) {
    live++;
    peak = Math.max(peak, live);
    inFlight.push(
      runSoakCall(deps, `soak-con-${i}`).finally(() => {
        live--;
      }),
    );
    if (i % opts.rampBatch === 0 && i < opts.concurrentCalls) await sleep(opts.rampIntervalMs);
  }
  const conResults = await Promise.all(inFlight);
  const conLoopFigures = conLoop.stop();
  const conRunQueueFigures = conRunQueue.stop();
  const conDurationMs = performance.now() - conStart;
  const conCpuPct = cpuPercent(conCpu, conDurationMs);
  made.push(...conResults);
  const after = await memoryAfterGc(made.length);
  progress(`concurrent ${conResults.length} calls (peak ${peak} in flight) in ${Math.round(conDurationMs)} ms`);

  // ─── Leak checks ───────────────────────────────────────────────────────────────────────────────
  const storeStats = await records.close();
  const check = await checkRecords(made);
  const activeCalls = await limiter.active(tenantId);
  const end = await settledResources(baseline);
  const clock = sharedMediaClock();
  const leaks = {
    activeCalls,
    udpSockets: end.udpSockets - baseline.udpSockets,
    timers: Math.max(0, end.timers - baseline.timers - opts.timerAllowance),
    childProcesses: Math.max(newChildren(baseline, end).length, end.childProcessHandles - baseline.childProcessHandles),
    mediaClockSubscribers: clock.subscriberCount,
    mediaClockRunning: clock.running,
    baseline: { udpSockets: baseline.udpSockets, timers: baseline.timers, children: baseline.children.map((c) => c.comm) },
    end: { udpSockets: end.udpSockets, timers: end.timers, children: end.children.map((c) => c.comm), timerAllowance: opts.timerAllowance },
  };
  const outcomes = countBy(made, (r) => r.outcome);
  const failures = made.filter((r) => r.outcome !== 'agent-goodbye');
  for (const f of failures.slice(0, 5)) progress(`unexpected end: ${f.callId} ${f.outcome} ${f.error ?? ''}`);
  const silentCalls = made.filter((r) => r.agentSpeechPackets === 0).length;

  const checks = {
    recordsMatchCalls: check.records === made.length && check.missing === 0,
    everyRecordHasOutcomeAndTranscript: check.withoutTranscript === 0 && check.withoutOutcome === 0,
    noCallRecordDropped: storeStats.dropped === 0,
    activeCallsZero: activeCalls === 0,
    noUdpSocketsLeft: leaks.udpSockets <= 0,
    noTimersLeft: leaks.timers === 0 && leaks.mediaClockSubscribers === 0 && !leaks.mediaClockRunning,
    noChildProcesses: leaks.childProcesses === 0,
    everyCallEndedByAgentGoodbye: failures.length === 0,
    agentSpokeInEveryCall: silentCalls === 0,
    sequentialEventLoopP99: seqLoopFigures.p99 < opts.eventLoopP99LimitMs,
    concurrentEventLoopP99: conLoopFigures.p99 < opts.eventLoopP99LimitMs,
  };
  const ok = Object.values(checks).every(Boolean);
  exitCode = ok ? 0 : 1;

  console.log(
    JSON.stringify({
      bench: 'soak',
      quick,
      providers: 'fake',
      vad: 'fvad',
      capture: CAPTURE,
      sequential: {
        calls: seqResults.length,
        records: seqRecords,
        durationMs: Math.round(seqDurationMs),
        callMs: callStats(seqResults),
        cpuPercentOfOneCore: seqCpuPct,
        eventLoop: seqLoopFigures satisfies EventLoopFigures,
        runQueue: seqRunQueueFigures,
        memorySamples: seqSamples.length,
        firstSampleAtCall: seqSamples[0]?.calls,
        heapMb: growth(seqSamples, (s) => s.heapMb),
        rssMb: growth(seqSamples, (s) => s.rssMb),
        // Every sample, so a plateau (RSS settling after a few hundred calls) is told from a trend.
        memory: seqSamples.map((s) => [s.calls, s.heapMb, s.rssMb]),
      },
      concurrent: {
        calls: conResults.length,
        peakInFlight: peak,
        records: check.records - seqRecords,
        durationMs: Math.round(conDurationMs),
        callMs: callStats(conResults),
        cpuPercentOfOneCore: conCpuPct,
        eventLoop: conLoopFigures,
        runQueue: conRunQueueFigures,
        heapMb: { before: before.heapMb, after: after.heapMb, growth: round1(after.heapMb - before.heapMb) },
        rssMb: { before: before.rssMb, after: after.rssMb, growth: round1(after.rssMb - before.rssMb) },
      },
      outcomes,
      records: { ...check, store: storeStats },
      leaks,
      checks,
      loadAverage: { start: loadAtStart, end: loadAvg(), cpus: os.cpus().length },
      ok,
    }),
  );
} finally {
  await records.close();
  const deleted = await deletePrefix(redis, prefix);
  progress(`deleted ${deleted} Redis keys under ${prefix}`);
  await redis.close();
}
process.exit(exitCode);

// ─── Helpers ─────────────────────────────────────────────────────────────────────────────────────

function cpuPercent(since: NodeJS.CpuUsage, wallMs: number): number {
  const used = process.cpuUsage(since);
  return round1(((used.user + used.system) / 1000 / wallMs) * 100);
}

function callStats(results: readonly SoakCallResult[]): { p50: number; max: number } {
  const d = results.map((r) => r.durationMs).sort((a, b) => a - b);
  return { p50: Math.round(d[Math.floor(d.length / 2)] ?? 0), max: Math.round(d.at(-1) ?? 0) };
}

function countBy<T>(xs: readonly T[], key: (x: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
}

async function recordCount(): Promise<number> {
  return (await redis.sendCommand(['XLEN', keys(prefix).callRecords(tenantId)])) as number;
}

/**
 * Reads every record of the tenant back (pages of 500, newest first) and matches them to the calls
 * made: one each, with an outcome and a transcript holding both the caller's words and the agent's.
 */
async function checkRecords(calls: readonly SoakCallResult[]) {
  const byId = new Map<string, CallRecord>();
  const total = await recordCount();
  let before: string | undefined;
  // Bounded: one page more than the stream's length needs.
  for (let page = 0; page <= Math.ceil(total / 500); page++) {
    const got = await records.list(tenantId, { limit: 500, ...(before ? { before } : {}) });
    for (const r of got.records) byId.set(r.callId, r);
    if (!got.next) break;
    before = got.next;
  }
  let missing = 0;
  let withoutOutcome = 0;
  let withoutTranscript = 0;
  for (const c of calls) {
    const r = byId.get(c.callId);
    if (!r) missing++;
    else {
      if (!r.outcome) withoutOutcome++;
      const roles = new Set(r.transcript.map((t) => t.role));
      if (!roles.has('caller') || !roles.has('agent')) withoutTranscript++;
    }
  }
  const bargeIns = [...byId.values()].filter((r) => (r.bargeIns?.length ?? 0) > 0).length;
  return { records: total, distinctCallIds: byId.size, missing, withoutOutcome, withoutTranscript, withBargeIn: bargeIns };
}

/** Open resources once they have had `settleMs` to close, polled so a clean run does not wait it out. */
async function settledResources(baseline: ResourceSnapshot): Promise<ResourceSnapshot> {
  const deadline = performance.now() + opts.settleMs;
  for (;;) {
    const now = resources();
    const clean =
      now.udpSockets <= baseline.udpSockets &&
      now.timers <= baseline.timers + opts.timerAllowance &&
      now.childProcessHandles <= baseline.childProcessHandles &&
      newChildren(baseline, now).length === 0;
    if (clean || performance.now() >= deadline) return now;
    await sleep(20);
  }
}
