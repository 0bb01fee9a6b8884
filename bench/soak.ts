/**
 * npm run bench:soak [-- --quick] [-- --sequential N] [-- --concurrent M] [-- --rooms R] [-- --log-level info|warn|…]
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
 * 3. rooms: R rooms one after another (bench/soak/soakRoom.ts), each through a RoomHub against the same
 *    Redis: a tenant whose providers are the same fakes, a room with one agent, `roomPeople` people
 *    joining with real AudioLegs fed by SoakCallers, hearing the greeting, speaking the capture at once
 *    (each gets their own transcript line, the agent answers), then leaving one by one through the hub
 *    so the room closes, and the room deleted as the API does. Heap and RSS after a forced GC every
 *    `roomSampleEvery` rooms from `roomWarmup` on, with a least-squares slope in bytes per room. Its
 *    leak checks: the hub holds no live room and no person's kick, no room key is left in Redis, every
 *    closed room's live object was collected (a WeakRef to each, read after the GC), no UDP socket,
 *    timer, child process or media-clock subscriber is left once the hub and its tenant cache are closed,
 *    and the heap slope stays under `roomHeapSlopeLimitBytes` when the samples span `roomSlopeMinSpan`
 *    rooms. Its event-loop delay is reported, not checked (the 20 ms target is the calls'; rooms'
 *    latency goals are bench:rooms').
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
import { createVad } from '../src/agent/vad/createVad.js';
import type { LiveRoom } from '../src/rooms/LiveRoom.js';
import { RoomHub } from '../src/rooms/RoomHub.js';
import { RoomStore } from '../src/tenants/RoomStore.js';
import { SecretBox } from '../src/tenants/secrets.js';
import { TenantCache } from '../src/tenants/TenantCache.js';
import { TenantStore } from '../src/tenants/TenantStore.js';
import { EventLoopProbe, RunQueueProbe, growth, memoryAfterGc, newChildren, resources, slopePerUnit, type EventLoopFigures, type MemorySample, type ResourceSnapshot } from './soak/measure.js';
import { runSoakCall, soakProviders, type SoakCallDeps, type SoakCallOptions, type SoakCallResult } from './soak/soakCall.js';
import { SOAK_PROVIDER, runSoakRoom, soakRoomRegistry, type SoakRoomOptions, type SoakRoomResult } from './soak/soakRoom.js';

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
  /** Rooms phase: rooms one after another, the rooms before the first memory sample, rooms between samples. */
  readonly rooms: number;
  readonly roomWarmup: number;
  readonly roomSampleEvery: number;
  /** A leak check: the heap's slope per room, checked when the samples span `roomSlopeMinSpan` rooms or more. */
  readonly roomHeapSlopeLimitBytes: number;
  readonly roomSlopeMinSpan: number;
  readonly room: SoakRoomOptions;
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
  /** 100 rooms of 3 (~3.3 s each): ~6 min beside the calls' ~38. */
  rooms: 100,
  roomWarmup: 10,
  roomSampleEvery: 10,
  /**
   * 20 kB per room: a room that stays reachable holds far more (three legs with their jitter buffers and
   * codecs, two VADs per person and the agent's, its session); noise over 90 rooms is a few kB per room.
   */
  roomHeapSlopeLimitBytes: 20_000,
  roomSlopeMinSpan: 50,
  room: {
    people: 3,
    /** 15 s: a room takes ~3 s; one this late is stuck. */
    roomTimeoutMs: 15_000,
    closeTimeoutMs: 5_000,
    callerText: 'thank you goodbye',
    reply: 'Bye!',
  },
} as const satisfies SoakOptions;

/**
 * --quick: under a minute. Each call takes ~2.25 s in real time (the capture is 1.7 s), so 20 sequential
 * calls (~40 s) is what fits beside the concurrent phase and 4 rooms (~2.5 s each, ~10 s) — 40 calls would
 * take ~90 s. Samples every 5 calls after 5, and after every room (too few for the slope's check).
 */
export const quickSoakOptions = {
  sequentialCalls: 20,
  concurrentCalls: 30,
  warmupCalls: 5,
  sampleEvery: 5,
  rooms: 4,
  roomWarmup: 1,
  roomSampleEvery: 1,
} as const satisfies Partial<SoakOptions>;

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    sequential: { type: 'string' },
    concurrent: { type: 'string' },
    rooms: { type: 'string' },
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
  rooms: args.rooms === undefined ? base.rooms : Number(args.rooms),
  call: { ...base.call, callLimit: Math.max(1, concurrentCalls) },
};
for (const [name, v] of [['--sequential', opts.sequentialCalls], ['--concurrent', opts.concurrentCalls], ['--rooms', opts.rooms]] as const) {
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

  // ─── Phase 3: rooms ────────────────────────────────────────────────────────────────────────────
  const rooms = await roomsPhase(baseline);

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
    ...rooms.checks,
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
      rooms: rooms.figures,
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

// ─── Rooms ───────────────────────────────────────────────────────────────────────────────────────

/**
 * Phase 3. Its own tenant (its providers are the soak's fakes by name), tenant cache, RoomStore and
 * RoomHub, all under the run's prefix; closed before the end check, which compares with the run's
 * baseline, so whatever the rooms opened must be gone.
 */
async function roomsPhase(baseline: ResourceSnapshot) {
  const roomTenant = 'soak-rooms';
  const tenants = new TenantStore(redis, new SecretBox(randomBytes(32)), { prefix });
  await tenants.create({ id: roomTenant, displayName: 'Soak Rooms', providers: { stt: SOAK_PROVIDER, llm: SOAK_PROVIDER, tts: SOAK_PROVIDER } });
  const cache = new TenantCache(tenants, redis, { prefix });
  const store = new RoomStore(redis, { prefix });
  const registry = soakRoomRegistry(opts.room, logger);
  const hub = new RoomHub(
    { store, tenants: cache, clock: sharedMediaClock(), prompts, providers: registry, createVad: () => createVad({ engine: 'fvad' }), logger },
    { gatewayId: 'soak-gateway', url: () => 'http://127.0.0.1:0' },
  );
  const results: SoakRoomResult[] = [];
  const samples: MemorySample[] = [];
  /** Each room's live object once it opened: all must be collected after they closed. */
  const rooms: WeakRef<LiveRoom>[] = [];
  const start = performance.now();
  const cpu = process.cpuUsage();
  const loop = new EventLoopProbe(opts.eventLoopResolutionMs);
  const runQueue = new RunQueueProbe(opts.eventLoopResolutionMs, opts.eventLoopP99LimitMs, (st) =>
    progress(`stall: loop held ${round1(st.selfMs)} ms beyond the run-queue wait (${round1(st.waitMs)} ms), ${round1(st.onCpuMs)} ms on CPU, during room ${results.length + 1}`),
  );
  let hubState = { liveRooms: 0, kicks: 0 };
  let redisLeft = { roomKeys: 0, tenantRooms: 0 };
  let notCollected = 0;
  try {
    const roomDeps = { hub, store, tenantId: roomTenant, capture: deps.capture, logger, options: opts.room };
    for (let i = 1; i <= opts.rooms; i++) {
      const r = await runSoakRoom(roomDeps, i, (live) => rooms.push(new WeakRef(live)));
      results.push(r);
      if (!r.ok) progress(`room ${i} not clean: ${JSON.stringify(r)}`);
      if (i === opts.roomWarmup || (i > opts.roomWarmup && i % opts.roomSampleEvery === 0) || (i === opts.rooms && i > opts.roomWarmup)) {
        loop.pause();
        runQueue.pause();
        const s = await memoryAfterGc(i);
        runQueue.resume();
        loop.resume();
        if (samples.at(-1)?.calls !== i) samples.push(s);
        progress(`rooms ${i}/${opts.rooms}: heap ${s.heapMb} MB, rss ${s.rssMb} MB, ${Math.round((performance.now() - start) / 1000)} s`);
      }
    }
  } finally {
    // The hub as a gateway's shutdown finds it, read before closing it (closeAll would hide what is left).
    hubState = { liveRooms: hub.liveRooms, kicks: hub['kicks'].size };
    await hub.closeAll('soak-end');
    await cache.close();
    await registry.close();
  }
  const loopFigures = loop.stop();
  const runQueueFigures = runQueue.stop();
  const durationMs = performance.now() - start;
  const cpuPct = cpuPercent(cpu, durationMs);
  for await (const batch of redis.scanIterator({ MATCH: `${prefix}room:*`, COUNT: 500 })) redisLeft.roomKeys += (Array.isArray(batch) ? batch : [batch]).length;
  redisLeft = { ...redisLeft, tenantRooms: await redis.sCard(keys(prefix).tenantRooms(roomTenant)) };
  await memoryAfterGc(results.length);
  notCollected = rooms.filter((w) => w.deref() !== undefined).length;
  const end = await settledResources(baseline);
  const clock = sharedMediaClock();
  const leaks = {
    liveRooms: hubState.liveRooms,
    kicks: hubState.kicks,
    roomsNotCollected: notCollected,
    redisRoomKeys: redisLeft.roomKeys,
    redisTenantRooms: redisLeft.tenantRooms,
    udpSockets: end.udpSockets - baseline.udpSockets,
    timers: Math.max(0, end.timers - baseline.timers - opts.timerAllowance),
    childProcesses: Math.max(newChildren(baseline, end).length, end.childProcessHandles - baseline.childProcessHandles),
    mediaClockSubscribers: clock.subscriberCount,
    mediaClockRunning: clock.running,
  };
  const span = (samples.at(-1)?.calls ?? 0) - (samples[0]?.calls ?? 0);
  const heapSlope = slopePerUnit(samples, (s) => s.heapBytes);
  const rssSlope = slopePerUnit(samples, (s) => s.rssBytes);
  const notClean = results.filter((r) => !r.ok);
  const sum = <K extends keyof SoakRoomResult['left']>(k: K): number => results.reduce((a, r) => a + Number(r.left[k]), 0);
  const durations = results.map((r) => r.durationMs).sort((a, b) => a - b);
  const greetings = results.flatMap((r) => (r.greetingMs === undefined ? [] : [r.greetingMs])).sort((a, b) => a - b);
  const closes = results.flatMap((r) => (r.closeMs === undefined ? [] : [r.closeMs])).sort((a, b) => a - b);
  const p50 = (xs: number[]): number => Math.round(xs[Math.floor(xs.length / 2)] ?? 0);
  const max = (xs: number[]): number => Math.round(xs.at(-1) ?? 0);
  progress(`rooms: ${results.length} in ${Math.round(durationMs)} ms, ${notClean.length} not clean, heap slope ${Math.round(heapSlope)} B/room, leaks ${JSON.stringify(leaks)}`);
  const figures = {
    count: results.length,
    peoplePerRoom: opts.room.people,
    durationMs: Math.round(durationMs),
    roomMs: { p50: p50(durations), max: max(durations) },
    greetingMs: { p50: p50(greetings), max: max(greetings) },
    closeMs: { p50: p50(closes), max: max(closes) },
    notClean: notClean.length,
    firstNotClean: notClean.slice(0, 3),
    cpuPercentOfOneCore: cpuPct,
    eventLoop: loopFigures,
    runQueue: runQueueFigures,
    memorySamples: samples.length,
    firstSampleAtRoom: samples[0]?.calls,
    heapSlopeBytesPerRoom: Math.round(heapSlope),
    rssSlopeBytesPerRoom: Math.round(rssSlope),
    heapMb: growth(samples, (s) => s.heapMb),
    rssMb: growth(samples, (s) => s.rssMb),
    memory: samples.map((s) => [s.calls, s.heapMb, s.rssMb]),
    // Per room, after it closed: people the live room still counted, mixer members, owner leases and people in Redis.
    leftAfterClose: { participants: sum('participants'), mixerMembers: sum('mixerMembers'), owners: sum('owner'), people: sum('people') },
    leaks,
    slopeChecked: span >= opts.roomSlopeMinSpan,
  };
  const checks = {
    roomsEveryOneClean: notClean.length === 0 && results.length === opts.rooms,
    roomsHubEmpty: leaks.liveRooms === 0 && leaks.kicks === 0,
    roomsCollected: leaks.roomsNotCollected === 0,
    roomsNoRedisKeysLeft: leaks.redisRoomKeys === 0 && leaks.redisTenantRooms === 0,
    roomsNoUdpSocketsLeft: leaks.udpSockets <= 0,
    roomsNoTimersLeft: leaks.timers === 0 && leaks.mediaClockSubscribers === 0 && !leaks.mediaClockRunning,
    roomsNoChildProcesses: leaks.childProcesses === 0,
    roomsHeapSlope: !figures.slopeChecked || heapSlope < opts.roomHeapSlopeLimitBytes,
  };
  return { figures, checks };
}

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
