/**
 * npm run bench:rooms [-- --quick] [-- --rooms 10 --participants 6 --seconds 40] [-- --max] [-- --stt pocketsphinx|fake]
 *
 * Rooms (issue 22) under load, real media on loopback, nothing of the mixer mocked. This process is the
 * gateway: N LiveRooms (src/rooms/LiveRoom.ts) on the shared MediaClock, each with P − 1 people and one
 * AI participant. Each person is a real AudioLeg on a loopback UDP port (even-numbered people Opus as
 * from the web page, odd-numbered PCMU as from a phone), attached with addPerson + attachAudio; the agent
 * is a real AgentSession (fvad VAD, offline providers: pocketsphinx STT, scripted LLM, flite TTS) that
 * hears the people's mix and streams it to pocketsphinx whenever its VAD hears speech.
 *
 * The people are a second process (this file with `--role people`, forked with IPC, as bench:media's
 * load generator): one UDP socket per person, sending 20 ms packets on a drift-free schedule of its
 * own (phases spread across the frame), speaking the caller fixtures of tests/fixtures (flite speech)
 * with 1–5 s pauses between phrases, from a seeded random generator.
 *
 * Measured over the window after the warm-up:
 * - mixer time per 20 ms tick: every Mixer.tick() is timed (a wrapper around the real method), summed
 *   over the rooms for each clock tick (the share of the 20 ms the mixing takes) and per room. The tick
 *   includes what members do synchronously with their mix: a person's leg queues it (resampled for PCMU),
 *   an agent's VAD scores it and its STT stream takes it.
 * - frame lateness: now − due at the end of each tick, from a clock subscriber added after every leg and
 *   mixer (the latest frame of the tick, as bench:media measures it); and the clock's own lateness.
 * - CPU of this process (% of one core), of the whole host (pocketsphinx runs as child processes, the
 *   people in theirs), event-loop delay p99, mixer dropped frames and underruns.
 * - mouth-to-ear added by the mixer: one extra room with two PCMU people A and B (no agent) and, beside
 *   it, a leg that plays what it hears straight back (the same AudioLeg → play path, no mixer). A raw
 *   socket phone sends a 1 kHz burst into each, alternately, at a random phase of the media clock; the
 *   added figure is (A's onset → B hears it) − (onset → the echo is heard), and the same for the burst's
 *   end (steady-state frames, which wait for their sender's next tick).
 * - capacity (--max): levels of rooms from --rooms up in steps of --step while the mixer p99 and the
 *   frame lateness p99 meet their goals, or down by 2 until they do (15 s windows, no mouth-to-ear).
 * - --stt fake: the agents' STT streams go to FakeStt in this process instead of pocketsphinx processes
 *   (a cloud STT's stand-in: the gateway's own work without a local recogniser competing for the CPU).
 *
 * Goals (issue 22, 10 rooms × 6 on 2 cores): mixer time per tick p99 ≤ 4 ms, frame lateness p99 < 5 ms,
 * mouth-to-ear added ≤ 40 ms. The last line printed is one JSON object.
 */
import './support/logsToStderr.js';
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PromptCache } from '../src/agent/PromptCache.js';
import { offlineProviderRegistry } from '../src/agent/ProviderRegistry.js';
import { createVad } from '../src/agent/vad/createVad.js';
import { encodePrompt, openAudioLeg, type AudioLeg, type LegCodec } from '../src/media/AudioLeg.js';
import { createDecoder, createEncoder } from '../src/media/codecs/registry.js';
import { sharedMediaClock, type ClockTick } from '../src/media/MediaClock.js';
import { Mixer } from '../src/media/Mixer.js';
import { parseRtp, serializeRtp } from '../src/media/rtp/RtpPacket.js';
import { seqDiff } from '../src/media/rtp/sequence.js';
import { goertzelPower, tone } from '../src/media/signal.js';
import { readWavFile } from '../src/media/wav.js';
import { FakeStt } from '../src/providers/testing/FakeProviders.js';
import { AgentPort } from '../src/rooms/AgentPort.js';
import { LiveRoom, type LiveRoomDeps } from '../src/rooms/LiveRoom.js';
import { connectRedis, deletePrefix, testPrefix } from '../src/tenants/redisClient.js';
import { RoomStore, type Room, type RoomAgent } from '../src/tenants/RoomStore.js';
import { SecretBox } from '../src/tenants/secrets.js';
import { TenantCache } from '../src/tenants/TenantCache.js';
import { TenantStore } from '../src/tenants/TenantStore.js';
import { percentile, sortedAscending } from '../src/util/percentile.js';
import { seededRandom } from '../src/util/random.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rooms: { type: 'string' },
    participants: { type: 'string' },
    /** Length of the measured window (s). */
    seconds: { type: 'string' },
    warmup: { type: 'string' },
    /** Capacity: add rooms until a goal is missed. */
    max: { type: 'boolean', default: false },
    step: { type: 'string' },
    /**
     * pocketsphinx (default): each agent streams to its own offline recogniser process on this host.
     * fake: the agents' streams go to FakeStt in this process (a stand-in for a cloud STT: the stream is
     * fed the same way, but no recogniser competes for this host's CPU).
     */
    stt: { type: 'string' },
    /** Internal: `people` runs this file as the people's process. */
    role: { type: 'string' },
  },
});

const FIXTURES = fileURLToPath(new URL('../tests/fixtures/', import.meta.url));
/** Not caller-goodbye.wav: a goodbye ends the agent's call, and it would leave its room. */
const PHRASES = ['caller-open-today.wav', 'caller-book-table.wav'];
const OPUS: LegCodec = { name: 'opus', payloadType: 111 };
const PCMU: LegCodec = { name: 'PCMU', payloadType: 0 };
/** Apart from the tests' ranges (45000–45999, 53500–55999) and bench:media's (36000–39999). */
const LEG_PORTS = { min: 46000, max: 47999 } as const;
const GOALS = { mixerTickMsP99: 4, frameLatenessP99Ms: 5, mouthToEarAddedMs: 40 } as const;

const round = (x: number, places = 2): number => Math.round(x * 10 ** places) / 10 ** places;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const pct = (xs: readonly number[], q: number): number => (xs.length === 0 ? 0 : percentile(sortedAscending(xs), q));

// ─── The people's process ──────────────────────────────────────────────────────────────────────────

interface PeopleRequest {
  readonly type: 'start';
  readonly people: readonly { readonly port: number; readonly codec: 'opus' | 'PCMU'; readonly seed: number }[];
}
interface PeopleReport {
  readonly type: 'report';
  readonly sent: number;
  readonly received: number;
  readonly seqGaps: number;
  readonly sendLatenessP99Ms: number;
  readonly cpuPercentOfOneCore: number;
}

async function runPeople(): Promise<void> {
  const phrases = await Promise.all(PHRASES.map(async (f) => (await readWavFile(FIXTURES + f)).samples));
  const encoded = {
    opus: { phrases: phrases.map((p) => encodePrompt(p, 'opus').payloads), silence: encodePrompt(new Int16Array(320), 'opus').payloads[0]!, tsStep: 960, pt: 111 },
    PCMU: { phrases: phrases.map((p) => encodePrompt(p, 'PCMU').payloads), silence: encodePrompt(new Int16Array(320), 'PCMU').payloads[0]!, tsStep: 160, pt: 0 },
  };
  const req = await new Promise<PeopleRequest>((resolve) => process.once('message', (m) => resolve(m as PeopleRequest)));
  let stopping = false;
  process.on('message', (m: { type: string }) => {
    if (m.type === 'stop') stopping = true;
  });
  interface Person {
    socket: dgram.Socket;
    port: number;
    codec: (typeof encoded)['opus'];
    offsetMs: number;
    ssrc: number;
    rnd: () => number;
    phrase: readonly Uint8Array[] | undefined;
    frame: number;
    pauseFrames: number;
    n: number;
    lastSeq: number | undefined;
  }
  const counts = { sent: 0, received: 0, seqGaps: 0 };
  const people: Person[] = [];
  for (const [i, p] of req.people.entries()) {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    const rnd = seededRandom(p.seed);
    const person: Person = {
      socket,
      port: p.port,
      codec: encoded[p.codec],
      offsetMs: (i * 20) / req.people.length,
      ssrc: 0x20000 + i,
      rnd,
      phrase: undefined,
      frame: 0,
      // Everyone starts at a different moment (0–3 s), then speaks phrases with 1–5 s pauses.
      pauseFrames: Math.floor(rnd() * 150),
      n: 0,
      lastSeq: undefined,
    };
    socket.on('message', (msg) => {
      if (msg.length < 12) return;
      const seq = msg.readUInt16BE(2);
      counts.received++;
      if (person.lastSeq !== undefined) {
        const d = seqDiff(seq, person.lastSeq);
        if (d > 1) counts.seqGaps += d - 1;
      }
      person.lastSeq = seq;
    });
    socket.on('error', () => undefined);
    people.push(person);
  }
  const cpuStart = process.cpuUsage();
  const start = performance.now() + 20;
  const lateness: number[] = [];
  // One scheduler for everyone: person i's n-th packet is due at start + offset_i + 20n (drift-free).
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      if (stopping) return resolve();
      const now = performance.now();
      for (const p of people) {
        // Bounded: after a stall, at most 50 owed packets (1 s) per person per pass.
        for (let k = 0; k < 50; k++) {
          const due = start + p.offsetMs + p.n * 20;
          if (due > now) break;
          let payload: Uint8Array;
          let marker = false;
          if (p.phrase) {
            payload = p.phrase[p.frame]!;
            marker = p.frame === 0;
            if (++p.frame >= p.phrase.length) {
              p.phrase = undefined;
              p.pauseFrames = 50 + Math.floor(p.rnd() * 200);
            }
          } else {
            payload = p.codec.silence;
            if (--p.pauseFrames <= 0) {
              p.phrase = p.codec.phrases[Math.floor(p.rnd() * p.codec.phrases.length)]!;
              p.frame = 0;
            }
          }
          const packet = serializeRtp({ marker, payloadType: p.codec.pt, sequenceNumber: p.n & 0xffff, timestamp: (p.n * p.codec.tsStep) >>> 0, ssrc: p.ssrc }, payload);
          p.socket.send(packet, p.port, '127.0.0.1');
          counts.sent++;
          if (p.n % 10 === 0) lateness.push(now - due);
          p.n++;
        }
      }
      setTimeout(tick, 1);
    };
    setTimeout(tick, 20);
  });
  const wall = performance.now() - start;
  const cpu = process.cpuUsage(cpuStart);
  for (const p of people) p.socket.close();
  const report: PeopleReport = {
    type: 'report',
    ...counts,
    sendLatenessP99Ms: round(pct(lateness, 0.99)),
    cpuPercentOfOneCore: round(((cpu.user + cpu.system) / 1000 / wall) * 100, 1),
  };
  process.send?.(report, () => process.exit(0));
}

// ─── A phone for the mouth-to-ear bursts ──────────────────────────────────────────────────────────

const TONE_HZ = 1000;
const SILENCE_PCMU = new Uint8Array(160).fill(0xff);
const TONE_AMPLITUDE = 8000;
/** A frame counts as carrying the tone above a tenth of its full power (−10 dB). */
const TONE_POWER_MIN = (TONE_AMPLITUDE * TONE_AMPLITUDE) / 2 / 10;
const BURST_MS = 200;

/**
 * One raw UDP socket: PCMU every 20 ms on a timer of its own (not the media clock, so its packets land
 * at any phase of the gateway's ticks, as a phone's do), silence between bursts, and every packet it
 * receives logged with its arrival time and its 1 kHz power.
 */
class BurstPhone {
  readonly heard: { at: number; power: number }[] = [];
  private readonly encoder = createEncoder('PCMU');
  private readonly decoder = createDecoder('PCMU');
  private readonly script: Uint8Array[] = [];
  private sentAt: number[] = [];
  private n = 0;
  private due = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private target: { address: string; port: number } | undefined;

  private constructor(
    private readonly socket: dgram.Socket,
    readonly port: number,
    private readonly ssrc: number,
  ) {
    socket.on('message', (msg) => {
      const at = performance.now();
      const p = parseRtp(msg);
      if (!p.ok || p.value.payloadType !== 0) return;
      const pcm = this.decoder.decode(p.value.payload);
      // Bounded: a few minutes of packets at most (the bench's window).
      if (this.heard.length < 50 * 600) this.heard.push({ at, power: pcm.ok ? goertzelPower(pcm.value, 8000, TONE_HZ) : 0 });
    });
    socket.on('error', () => undefined);
  }

  static async open(ssrc: number): Promise<BurstPhone> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    return new BurstPhone(socket, (socket.address() as { port: number }).port, ssrc);
  }

  start(target: { address: string; port: number }): void {
    this.target = target;
    this.due = performance.now();
    this.schedule();
  }

  /**
   * Shifts the phone's phase by `shiftMs` (a phone's clock is its own), then sends a burst of tone.
   * Resolves with the send times of its first and last frames.
   */
  async burst(shiftMs: number): Promise<{ onset: number; end: number }> {
    this.due += shiftMs;
    const frames = tone(TONE_HZ, BURST_MS, { sampleRate: 8000, amplitude: TONE_AMPLITUDE });
    this.sentAt = [];
    for (let off = 0; off < frames.length; off += 160) this.script.push(this.encoder.encode(frames.subarray(off, off + 160)));
    const count = this.script.length;
    for (let waited = 0; this.sentAt.length < count && waited < 2000 && !this.closed; waited += 5) await sleep(5);
    return { onset: this.sentAt[0] ?? Number.NaN, end: this.sentAt.at(-1) ?? Number.NaN };
  }

  /** Arrival of the first and last packets with the tone between `from` and `to`. */
  toneHeard(from: number, to: number): { first: number; last: number } | undefined {
    const hits = this.heard.filter((h) => h.at > from && h.at < to && h.power >= TONE_POWER_MIN);
    return hits.length === 0 ? undefined : { first: hits[0]!.at, last: hits.at(-1)!.at };
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.encoder.close();
    this.decoder.close();
    this.socket.close();
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => this.send(), Math.max(0, this.due - performance.now()));
  }

  private send(): void {
    if (this.closed || !this.target) return;
    const payload = this.script.shift();
    const packet = serializeRtp({ marker: false, payloadType: 0, sequenceNumber: this.n & 0xffff, timestamp: (this.n * 160) >>> 0, ssrc: this.ssrc }, payload ?? SILENCE_PCMU);
    const at = performance.now();
    this.socket.send(packet, this.target.port, this.target.address);
    if (payload) this.sentAt.push(at);
    this.n++;
    this.due += 20;
    // A stalled loop: start again from now rather than sending a burst of owed packets.
    if (this.due < performance.now() - 100) this.due = performance.now();
    this.schedule();
  }
}


// ─── The gateway: rooms under load ─────────────────────────────────────────────────────────────────

/** Every Mixer.tick() timed: the real method runs inside; only performance.now() is added around it. */
const mixerTiming = { sum: 0, measuring: false, perRoom: [] as number[], queueDepths: new Array<number>(5).fill(0) };
const realTick = Mixer.prototype.tick;
Mixer.prototype.tick = function timedTick(this: Mixer): void {
  if (mixerTiming.measuring) {
    // Diagnostic (a private field, read only): frames waiting in each person's queue as the tick starts,
    // the delay a member's audio carries into the mix beyond the wait for this tick.
    const members = (this as unknown as { members: readonly { init: { pull?: unknown }; queue: readonly unknown[] }[] }).members;
    for (const m of members) if (!m.init.pull) mixerTiming.queueDepths[Math.min(4, m.queue.length)]!++;
  }
  const t0 = performance.now();
  try {
    realTick.call(this);
  } finally {
    const d = performance.now() - t0;
    mixerTiming.sum += d;
    if (mixerTiming.measuring && mixerTiming.perRoom.length < 500_000) mixerTiming.perRoom.push(d);
  }
};

/** The part of each tick spent in agents' hear() (their VAD and STT stream, run synchronously with the mix). */
const agentHearTiming = { sum: 0 };
const realHear = AgentPort.prototype.hear;
AgentPort.prototype.hear = function timedHear(this: AgentPort, frame: Int16Array | undefined): void {
  const t0 = performance.now();
  try {
    realHear.call(this, frame);
  } finally {
    agentHearTiming.sum += performance.now() - t0;
  }
};

function hostCpuTicks(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

interface Shared {
  readonly deps: LiveRoomDeps;
  readonly store: RoomStore;
  readonly tenant: Awaited<ReturnType<TenantCache['get']>>;
  readonly tenantId: string;
}

interface MouthToEar {
  readonly bursts: number;
  /** Onset: the burst's first frame (a talkspurt's first packet, which the leg's sender sends at once). */
  readonly onsetAddedMs: readonly number[];
  /** End: the burst's last frame (steady-state frames, paced by the listener's sender). Listener leg opened before the room's mixer started. */
  readonly endAddedMsLegFirst: readonly number[];
  /** The same, for a listener whose leg was opened after the mixer started (its sender ticks after the mixer). */
  readonly endAddedMsMixerFirst: readonly number[];
  readonly onsetAddedMsMixerFirst: readonly number[];
  readonly baselineOnsetMs: readonly number[];
  readonly baselineEndMs: readonly number[];
  readonly roomOnsetMs: readonly number[];
}

interface LevelResult {
  readonly rooms: number;
  readonly participantsPerRoom: number;
  readonly pass: boolean;
  readonly windowSeconds: number;
  readonly mixerTickMsP50: number;
  readonly mixerTickMsP99: number;
  readonly mixerTickMsMax: number;
  /** The mixer's time per tick minus the agents' hear(): the mixing and the people's legs queueing their mix. */
  readonly mixerTickWithoutAgentsMsP99: number;
  /** How many ticks found a person's queue holding 0, 1, 2, 3, 4+ frames (each waiting frame is 20 ms of delay). */
  readonly personQueueFramesAtTick: readonly number[];
  /** Of the mixer's time per tick (all rooms), the part inside the agents' hear(). */
  readonly agentHearMsP50: number;
  readonly agentHearMsP99: number;
  readonly mixerTickPerRoomMsP50: number;
  readonly mixerTickPerRoomMsP99: number;
  readonly mixerTickPerRoomMsMax: number;
  readonly mixerStatsWorstRoomP99Ms: number;
  readonly frameLatenessP99Ms: number;
  readonly frameLatenessMaxMs: number;
  readonly clockLatenessP50Ms: number;
  readonly clockLatenessP99Ms: number;
  readonly skippedTicks: number;
  readonly eventLoopDelayP99Ms: number;
  readonly cpuPercentOfOneCore: number;
  readonly hostCpuPercentOfOneCore: number;
  readonly peopleProcess: Omit<PeopleReport, 'type'>;
  readonly droppedFrames: number;
  readonly underruns: number;
  /** Frames the people's legs sent late (PacedSender's lateFrameMs), over the whole run. */
  readonly senderLateFrames: number;
  readonly transcriptsOfPeople: number;
  readonly agentReplies: number;
  readonly agentsAtEnd: number;
  readonly rssMb: number;
  readonly mouthToEar: MouthToEar | undefined;
}

async function runLevel(shared: Shared, roomCount: number, participants: number, warmupS: number, windowS: number, measureMouthToEar: boolean): Promise<LevelResult> {
  const clock = sharedMediaClock();
  const { deps, store, tenant } = shared;
  const clockLate: number[] = [];
  const tickSums: number[] = [];
  const hearSums: number[] = [];
  const frameLate: number[] = [];
  // First subscriber (before any mixer or leg): closes the previous tick's sum, and reads the clock's lateness.
  const unFirst = clock.subscribe((t: ClockTick) => {
    if (mixerTiming.measuring) {
      tickSums.push(mixerTiming.sum);
      hearSums.push(agentHearTiming.sum);
      clockLate.push(t.lateMs);
    }
    mixerTiming.sum = 0;
    agentHearTiming.sum = 0;
  });
  const rooms: LiveRoom[] = [];
  const roomRecords: Room[] = [];
  const legs: AudioLeg[] = [];
  const people: PeopleRequest['people'][number][] = [];
  let transcripts = 0;
  let replies = 0;
  const setupStarted = performance.now();
  for (let r = 0; r < roomCount; r++) {
    const room = await store.create(shared.tenantId, { name: `Bench ${r}`, maxParticipants: Math.max(8, participants) });
    roomRecords.push(room);
    const agent: RoomAgent = await store.addAgent(room, { description: 'Max, a note taker for the meeting.', greeting: 'Hi, I am Max.' });
    const live = new LiveRoom(room, tenant, deps);
    live.on('event', (e) => {
      if (e.type === 'transcript' && e.kind === 'person') transcripts++;
      else if (e.type === 'transcript' && e.kind === 'agent') replies++;
    });
    rooms.push(live);
    // As RoomHub opens a room: its agents first (the mixer starts with them), then people join.
    await live.addAgent(agent);
    for (let i = 0; i < participants - 1; i++) {
      const codec = i % 2 === 0 ? OPUS : PCMU;
      const leg = await openAudioLeg({ callId: `bench-room-${r}`, legId: `p${i}`, codec, clock, env: {}, endpoint: { portRange: LEG_PORTS } });
      legs.push(leg);
      const participantId = `p${r}-${i}`;
      live.addPerson({ participantId, name: `Person ${i}`, door: codec === OPUS ? 'web' : 'sip' });
      live.attachAudio(participantId, leg);
      people.push({ port: leg.endpoint.localAddress.port, codec: codec.name === 'opus' ? 'opus' : 'PCMU', seed: 1000 * r + i + 1 });
    }
  }

  // The mouth-to-ear room: A speaks; B's leg was opened before the mixer started, C's after. Beside it, an echo leg.
  let m2e: { a: BurstPhone; b: BurstPhone; c: BurstPhone; echo: BurstPhone; room: LiveRoom; legs: AudioLeg[] } | undefined;
  if (measureMouthToEar) {
    const [a, b, c, echo] = await Promise.all([BurstPhone.open(0xa1), BurstPhone.open(0xb1), BurstPhone.open(0xc1), BurstPhone.open(0xe1)]);
    const open = (legId: string, remote: BurstPhone): Promise<AudioLeg> =>
      openAudioLeg({ callId: 'bench-m2e', legId, codec: PCMU, clock, env: {}, endpoint: { portRange: LEG_PORTS, remote: { address: '127.0.0.1', port: remote.port } } });
    const legA = await open('a', a);
    const legB = await open('b', b);
    const room = await store.create(shared.tenantId, { name: 'Mouth to ear', maxParticipants: 8 });
    roomRecords.push(room);
    const live = new LiveRoom(room, tenant, deps);
    live.addPerson({ participantId: 'A', name: 'A', door: 'sip' });
    live.addPerson({ participantId: 'B', name: 'B', door: 'sip' });
    const legC = await open('c', c);
    live.addPerson({ participantId: 'C', name: 'C', door: 'sip' });
    live.attachAudio('A', legA);
    live.attachAudio('B', legB);
    live.attachAudio('C', legC);
    const legEcho = await open('echo', echo);
    // The same leg path without a mixer: what it hears with sound is played straight back (the mixer,
    // too, gives a member nothing for a silent tick).
    legEcho.on('audio', (f) => {
      if (f.some((s) => s !== 0)) legEcho.play(f.slice());
    });
    for (const [phone, leg] of [[a, legA], [b, legB], [c, legC], [echo, legEcho]] as const) phone.start(leg.endpoint.localAddress);
    rooms.push(live);
    m2e = { a, b, c, echo, room: live, legs: [legA, legB, legC, legEcho] };
  }
  process.stderr.write(`rooms ${roomCount} × ${participants}: set up in ${Math.round(performance.now() - setupStarted)} ms\n`);

  // Last subscriber: the lateness of the tick's latest frame, after every mixer and sender has run.
  const unLast = clock.subscribe((t: ClockTick) => {
    if (mixerTiming.measuring && frameLate.length < 100_000) frameLate.push(clock.now() - t.dueAt);
  });

  const child = fork(fileURLToPath(import.meta.url), ['--role', 'people'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const report = new Promise<PeopleReport>((resolve, reject) => {
    child.once('message', (m) => resolve(m as PeopleReport));
    child.once('exit', (code) => reject(new Error(`people process exited with ${code}`)));
  });
  child.send({ type: 'start', people } satisfies PeopleRequest);
  await sleep(warmupS * 1000);

  // The window.
  const mixerBefore = rooms.map((r) => r.mixerStats());
  const skippedBefore = clock.stats().skippedTicks;
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const cpuStart = process.cpuUsage();
  const hostStart = hostCpuTicks();
  const wallStart = performance.now();
  transcripts = 0;
  replies = 0;
  mixerTiming.perRoom = [];
  mixerTiming.queueDepths.fill(0);
  mixerTiming.measuring = true;
  const mouth: { -readonly [K in Exclude<keyof MouthToEar, 'bursts'>]: number[] } & { bursts: number } = {
    bursts: 0,
    onsetAddedMs: [],
    endAddedMsLegFirst: [],
    endAddedMsMixerFirst: [],
    onsetAddedMsMixerFirst: [],
    baselineOnsetMs: [],
    baselineEndMs: [],
    roomOnsetMs: [],
  };
  const windowEnd = wallStart + windowS * 1000;
  if (m2e) {
    const rnd = seededRandom(7);
    // Bounded: one pair of bursts per ~1.9 s, until the window ends.
    for (let k = 0; k < 1000 && performance.now() + 2000 < windowEnd; k++) {
      const viaRoom = await m2e.a.burst(rnd() * 20);
      await sleep(BURST_MS + 500);
      const viaEcho = await m2e.echo.burst(rnd() * 20);
      await sleep(BURST_MS + 500);
      const b = m2e.b.toneHeard(viaRoom.onset - 1, viaRoom.end + 600);
      const c = m2e.c.toneHeard(viaRoom.onset - 1, viaRoom.end + 600);
      const e = m2e.echo.toneHeard(viaEcho.onset - 1, viaEcho.end + 600);
      if (!b || !c || !e) {
        process.stderr.write(`burst ${k}: tone not heard (room B ${Boolean(b)}, room C ${Boolean(c)}, echo ${Boolean(e)})\n`);
        continue;
      }
      mouth.bursts++;
      const baseOnset = e.first - viaEcho.onset;
      const baseEnd = e.last - viaEcho.end;
      mouth.baselineOnsetMs.push(baseOnset);
      mouth.baselineEndMs.push(baseEnd);
      mouth.roomOnsetMs.push(b.first - viaRoom.onset);
      mouth.onsetAddedMs.push(b.first - viaRoom.onset - baseOnset);
      mouth.onsetAddedMsMixerFirst.push(c.first - viaRoom.onset - baseOnset);
      mouth.endAddedMsLegFirst.push(b.last - viaRoom.end - baseEnd);
      mouth.endAddedMsMixerFirst.push(c.last - viaRoom.end - baseEnd);
    }
  }
  await sleep(Math.max(0, windowEnd - performance.now()));
  mixerTiming.measuring = false;
  const wallMs = performance.now() - wallStart;
  const cpu = process.cpuUsage(cpuStart);
  const hostEnd = hostCpuTicks();
  loopDelay.disable();
  const mixerAfter = rooms.map((r) => r.mixerStats());
  const skippedTicks = clock.stats().skippedTicks - skippedBefore;
  const perRoom = mixerTiming.perRoom;
  mixerTiming.perRoom = [];
  const agentsAtEnd = rooms.reduce((n, r) => n + r.view().filter((p) => p.kind === 'agent').length, 0);
  const senderLate = legs.reduce((n, l) => n + l.stats().sender.lateFramesSent, 0);

  // Tear down: the people stop, then every room, leg and phone closes.
  child.send({ type: 'stop' });
  const people_ = await report;
  unLast();
  await Promise.all(rooms.map((r) => r.close('bench over')));
  if (m2e) {
    for (const p of [m2e.a, m2e.b, m2e.c, m2e.echo]) p.close();
    legs.push(...m2e.legs);
  }
  await Promise.all(legs.map((l) => l.close()));
  unFirst();
  for (const room of roomRecords) await store.delete(room.roomId, shared.tenantId).catch(() => undefined);

  const dropped = mixerAfter.reduce((n, s, i) => n + s.droppedFrames - mixerBefore[i]!.droppedFrames, 0);
  const underruns = mixerAfter.reduce((n, s, i) => n + s.underruns - mixerBefore[i]!.underruns, 0);
  const mixerP99 = pct(tickSums, 0.99);
  const frameP99 = pct(frameLate, 0.99);
  const { type: _type, ...peopleProcess } = people_;
  return {
    rooms: roomCount,
    participantsPerRoom: participants,
    pass: mixerP99 <= GOALS.mixerTickMsP99 && frameP99 < GOALS.frameLatenessP99Ms,
    windowSeconds: round(wallMs / 1000, 1),
    mixerTickMsP50: round(pct(tickSums, 0.5), 3),
    mixerTickMsP99: round(mixerP99, 3),
    mixerTickMsMax: round(Math.max(0, ...tickSums), 3),
    mixerTickWithoutAgentsMsP99: round(pct(tickSums.map((t, i) => t - (hearSums[i] ?? 0)), 0.99), 3),
    personQueueFramesAtTick: [...mixerTiming.queueDepths],
    agentHearMsP50: round(pct(hearSums, 0.5), 3),
    agentHearMsP99: round(pct(hearSums, 0.99), 3),
    mixerTickPerRoomMsP50: round(pct(perRoom, 0.5), 3),
    mixerTickPerRoomMsP99: round(pct(perRoom, 0.99), 3),
    mixerTickPerRoomMsMax: round(perRoom.reduce((a, b) => Math.max(a, b), 0), 3),
    mixerStatsWorstRoomP99Ms: round(Math.max(0, ...mixerAfter.map((s) => s.tickMsP99)), 3),
    frameLatenessP99Ms: round(frameP99),
    frameLatenessMaxMs: round(Math.max(0, ...frameLate)),
    clockLatenessP50Ms: round(pct(clockLate, 0.5)),
    clockLatenessP99Ms: round(pct(clockLate, 0.99)),
    skippedTicks,
    eventLoopDelayP99Ms: round(loopDelay.percentile(99) / 1e6),
    cpuPercentOfOneCore: round(((cpu.user + cpu.system) / 1000 / wallMs) * 100, 1),
    hostCpuPercentOfOneCore: round(((hostEnd.busy - hostStart.busy) / Math.max(1, hostEnd.total - hostStart.total)) * cpus().length * 100, 1),
    peopleProcess,
    droppedFrames: dropped,
    underruns,
    senderLateFrames: senderLate,
    transcriptsOfPeople: transcripts,
    agentReplies: replies,
    agentsAtEnd,
    rssMb: Math.round(process.memoryUsage().rss / 1e6),
    mouthToEar: m2e ? mouth : undefined,
  };
}

async function main(): Promise<void> {
  const quick = values.quick;
  const roomCount = Number(values.rooms ?? (quick ? 3 : 10));
  const participants = Number(values.participants ?? (quick ? 4 : 6));
  const windowS = Number(values.seconds ?? (quick ? 10 : 40));
  const warmupS = Number(values.warmup ?? (quick ? 4 : 10));
  const step = Number(values.step ?? 4);
  if (!(roomCount >= 1 && roomCount <= 60 && participants >= 2 && participants <= 32 && windowS > 0 && warmupS >= 0 && step >= 1)) {
    throw new Error('--rooms 1..60, --participants 2..32, --seconds > 0, --warmup ≥ 0, --step ≥ 1');
  }
  const load = loadavg().map((v) => round(v, 1));

  const prefix = testPrefix();
  const redis = await connectRedis({ prefix });
  const tenants = new TenantStore(redis, new SecretBox(randomBytes(32)), { prefix });
  const tenantId = 'bench-rooms';
  await tenants.create({ id: tenantId, displayName: 'Bench Rooms' });
  const cache = new TenantCache(tenants, redis, { prefix });
  const sttEngine = values.stt === 'fake' ? 'fake' : 'pocketsphinx';
  const providers = offlineProviderRegistry();
  // The tenant's chain ends in 'pocketsphinx'; --stt fake puts FakeStt under that name (one per call).
  if (sttEngine === 'fake') providers.register('stt', 'pocketsphinx', () => new FakeStt({ transcripts: Array<string>(1000).fill('what time do you open'), finalDelayMs: 150 }));
  const { rootLogger } = await import('../src/log.js');
  const shared: Shared = {
    deps: { clock: sharedMediaClock(), prompts: new PromptCache(), providers, createVad: () => createVad(), logger: rootLogger },
    store: new RoomStore(redis, { prefix, maxRoomsPerTenant: 1000 }),
    tenant: await cache.get(tenantId),
    tenantId,
  };
  const levels: LevelResult[] = [];
  try {
    const main_ = await runLevel(shared, roomCount, participants, warmupS, windowS, true);
    process.stderr.write(`level ${JSON.stringify({ ...main_, mouthToEar: undefined })}\n`);
    levels.push(main_);
    if (values.max) {
      // Up by --step while the goals hold, or down by 2 until they do. Bounded: at most 8 more levels, 1–60 rooms.
      const up = main_.pass;
      for (let rooms = up ? roomCount + step : roomCount - 2, k = 0; rooms >= 1 && rooms <= 60 && k < 8; rooms += up ? step : -2, k++) {
        const r = await runLevel(shared, rooms, participants, 5, 15, false);
        process.stderr.write(`level ${JSON.stringify(r)}\n`);
        levels.push(r);
        if (r.pass !== up) break;
      }
    }
  } finally {
    await providers.close().catch(() => undefined);
    await cache.close().catch(() => undefined);
    await deletePrefix(redis, prefix).catch(() => undefined);
    await redis.quit().catch(() => undefined);
    Mixer.prototype.tick = realTick;
  }

  const r = levels[0]!;
  const m = r.mouthToEar!;
  const legFirstEnd = pct(m.endAddedMsLegFirst, 0.5);
  const mixerFirstEnd = pct(m.endAddedMsMixerFirst, 0.5);
  // The headline: the worse of onset and steady state, for the listener whose leg started before the mixer (the worse order).
  const headline = legFirstEnd > pct(m.onsetAddedMs, 0.5) ? m.endAddedMsLegFirst : m.onsetAddedMs;
  const m2eP50 = pct(headline, 0.5);
  const m2eP95 = pct(headline, 0.95);
  const best = levels.filter((l) => l.pass).reduce<LevelResult | undefined>((b, l) => (!b || l.rooms > b.rooms ? l : b), undefined);
  const result = {
    bench: 'rooms',
    quick,
    stt: sttEngine,
    date: new Date().toISOString().slice(0, 10),
    rooms: r.rooms,
    participantsPerRoom: r.participantsPerRoom,
    composition: `${r.participantsPerRoom - 1} people (Opus on even, PCMU on odd: ${Math.ceil((r.participantsPerRoom - 1) / 2)} Opus + ${Math.floor((r.participantsPerRoom - 1) / 2)} PCMU) + 1 AI agent (fvad, pocketsphinx STT, scripted LLM, flite TTS) per room, plus one mouth-to-ear room of 3 PCMU people and an echo leg`,
    windowSeconds: r.windowSeconds,
    mixerTickMsP50: r.mixerTickMsP50,
    mixerTickMsP99: r.mixerTickMsP99,
    mixerTickMsMax: r.mixerTickMsMax,
    mixerTickWithoutAgentsMsP99: r.mixerTickWithoutAgentsMsP99,
    personQueueFramesAtTick: r.personQueueFramesAtTick,
    agentHearMsP50: r.agentHearMsP50,
    agentHearMsP99: r.agentHearMsP99,
    mixerTickPerRoomMsP50: r.mixerTickPerRoomMsP50,
    mixerTickPerRoomMsP99: r.mixerTickPerRoomMsP99,
    frameLatenessP99Ms: r.frameLatenessP99Ms,
    clockLatenessP99Ms: r.clockLatenessP99Ms,
    eventLoopDelayP99Ms: r.eventLoopDelayP99Ms,
    cpuPercentOfOneCore: r.cpuPercentOfOneCore,
    hostCpuPercentOfOneCore: r.hostCpuPercentOfOneCore,
    droppedFrames: r.droppedFrames,
    underruns: r.underruns,
    mouthToEarBursts: m.bursts,
    mouthToEarAddedMsP50: round(m2eP50),
    mouthToEarAddedMsP95: round(m2eP95),
    mouthToEar: {
      onsetAddedMsP50: round(pct(m.onsetAddedMs, 0.5)),
      onsetAddedMsP95: round(pct(m.onsetAddedMs, 0.95)),
      onsetAddedMsMixerFirstP50: round(pct(m.onsetAddedMsMixerFirst, 0.5)),
      steadyAddedMsLegFirstP50: round(legFirstEnd),
      steadyAddedMsLegFirstP95: round(pct(m.endAddedMsLegFirst, 0.95)),
      steadyAddedMsMixerFirstP50: round(mixerFirstEnd),
      steadyAddedMsMixerFirstP95: round(pct(m.endAddedMsMixerFirst, 0.95)),
      baselineOnsetMsP50: round(pct(m.baselineOnsetMs, 0.5)),
      baselineSteadyMsP50: round(pct(m.baselineEndMs, 0.5)),
      roomOnsetMsP50: round(pct(m.roomOnsetMs, 0.5)),
    },
    goals: {
      mixerTickMsP99: { goal: GOALS.mixerTickMsP99, met: r.mixerTickMsP99 <= GOALS.mixerTickMsP99 },
      frameLatenessP99Ms: { goal: GOALS.frameLatenessP99Ms, met: r.frameLatenessP99Ms < GOALS.frameLatenessP99Ms },
      mouthToEarAddedMs: { goal: GOALS.mouthToEarAddedMs, met: m.bursts > 0 && m2eP95 <= GOALS.mouthToEarAddedMs },
    },
    capacity: values.max ? { roomsHeld: best?.rooms ?? 0, participantsPerRoom: participants, levels: levels.map((l) => ({ rooms: l.rooms, pass: l.pass, mixerTickMsP99: l.mixerTickMsP99, frameLatenessP99Ms: l.frameLatenessP99Ms, cpuPercentOfOneCore: l.cpuPercentOfOneCore, hostCpuPercentOfOneCore: l.hostCpuPercentOfOneCore })) } : null,
    level: { ...r, mouthToEar: undefined },
    loadavg: { before: load, after: loadavg().map((v) => round(v, 1)) },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}

if (values.role === 'people') {
  runPeople().catch((err: unknown) => {
    process.stderr.write(`people process failed: ${String(err)}\n`);
    process.exit(1);
  });
} else {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
