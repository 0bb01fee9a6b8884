/**
 * npm run bench:bargein [-- --quick] [-- --door sip|webrtc|both] [-- --trials 50] [-- --concurrency 2]
 *
 * Barge-in through the doors a caller really uses, on loopback, with fake providers (src/providers/testing/FakeProviders.ts)
 * so that only callgate's part and the door's are measured:
 * - sip: a drachtio-srf UAC on a drachtio-server of its own calls the SipGateway through our
 *   drachtio-server, media anchored in rtpengine (userspace); the caller's media is a raw RTP socket
 *   (src/media/testing/RtpCaller.ts) sending PCMU every 20 ms, comfort silence included, on a clock of its
 *   own: its packets reach the agent at any phase of the agent's 20 ms ticks, as a phone's do.
 * - webrtc: a node-datachannel page (src/webrtc/testing/BrowserPeer.ts) calls the direct WebRTC door;
 *   Opus over DTLS-SRTP, an open microphone sending a frame every 20 ms.
 * In each trial (one call) the agent speaks a long greeting; 300–900 ms into it the caller starts
 * talking (a voice-like buzz, 1125 ms). The figure is the barge-in reaction as the caller experiences it:
 * - onset: the send time of the caller's first speech packet (leaving the caller's socket or track);
 * - silent: the arrival time, at the caller, of the last agent packet with sound before onset + 1000 ms
 *   (the reply cannot start before the caller's 1125 ms of speech and 500 ms of endpointing are over).
 *   "With sound": PCMU, any byte other than μ-law's silence codes; Opus, a payload larger than the
 *   agent's encoded digital silence (7 bytes; the fake voice's quietest frames, its -80 dBFS floor
 *   between syllables, take 25 bytes or more). The agent's comfort silence is digital silence.
 * A trial counts only if the agent's voice reached the caller in the 100 ms before the onset (it was
 * speaking when interrupted). Goal: ≤ 150 ms p95 per door. One warm-up call per door is not counted.
 * Logs go to stderr; the last line of stdout is one JSON object.
 */
import './support/logsToStderr.js';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ProviderRegistry } from '../src/agent/ProviderRegistry.js';
import { rootLogger } from '../src/log.js';
import { FakeLlm, FakeStt, FakeTts, voiceLike } from '../src/providers/testing/FakeProviders.js';
import { DRACHTIO_BIN, DRACHTIO_SKIP_REASON } from '../src/sip/testing/DrachtioProcess.js';
import { until } from '../src/util/testing/wait.js';
import { startSipHarness, type SipHarness } from '../src/sip/testing/SipHarness.js';
import { percentile, sortedAscending } from '../src/util/percentile.js';
import { findOnPath } from '../src/util/executable.js';
import type { BrowserPeer } from '../src/webrtc/testing/BrowserPeer.js';
import { startWebRtcHarness, type WebRtcHarness } from '../src/webrtc/testing/WebRtcHarness.js';
import { startSipPhone, type SipPhone } from './support/sipCaller.js';

type DoorName = 'sip' | 'webrtc';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    door: { type: 'string', default: 'both' },
    trials: { type: 'string' },
    concurrency: { type: 'string' },
  },
});
const quick = values.quick;
const doors: DoorName[] = values.door === 'both' ? ['sip', 'webrtc'] : values.door === 'sip' || values.door === 'webrtc' ? [values.door] : [];
/** Interruptions per door: quick keeps both doors under a minute; full gives a p95 over 50. */
const trialsPerDoor = Number(values.trials ?? (quick ? 12 : 50));
/** Calls in flight at once: 2 keeps a 2-core machine (with drachtio and rtpengine on it) far from saturation. */
const concurrency = Number(values.concurrency ?? 2);

const GOAL_P95_MS = 150;
/** Sound after onset + this is not counted: the reply cannot start that early (see the header). */
const WINDOW_MS = 1000;
/** The agent must have been heard this close before the onset for a trial to count. */
const SPEAKING_BEFORE_MS = 100;
/** An Opus payload above this carries sound; the agent's encoded digital silence is 7 bytes. */
const OPUS_SILENCE_MAX_BYTES = 10;

const TENANT = 'bench-bargein';
const NUMBER = '+15005550190';
const SLUG = 'bench-bargein';
const LONG_GREETING =
  'Thank you for calling the benchmark line. This greeting is long on purpose, so that the caller has plenty of time to interrupt it at any moment they like.';
const REPLY = 'We open at eleven in the morning, and we close at ten at night.';
/** Caller speech: voice-like from its first sample (a syllable peak), so its first packet is speech. */
const CALLER_SPEECH = voiceLike(1125, -22);

/** Port ranges no test file uses (two rtpengines on one range take each other's packets). */
const RTPENGINE_PORTS = { portMin: 55000, portMax: 55999 } as const;
const SIP_AGENT_PORTS = { min: 56000, max: 56499 } as const;
const SIP_CALLER_PORTS = { min: 56500, max: 56999 } as const;
const WEBRTC_AGENT_PORTS = { min: 57500, max: 57999 } as const;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number): number => Math.round(x * 10) / 10;

function stats(xs: readonly number[]): { p50: number; p95: number; max: number; n: number } {
  const s = sortedAscending(xs);
  return { p50: round(percentile(s, 0.5)), p95: round(percentile(s, 0.95)), max: round(s.at(-1) ?? 0), n: s.length };
}

/** One call as the benchmark drives it, whatever the door. */
interface BenchCall {
  /** Arrival times of the agent's packets with sound, in order. */
  soundTimes(): number[];
  /** Sends `pcm` (16 kHz); resolves with its frames' send times once all have left. */
  speak(pcm: Int16Array): Promise<number[]>;
  close(): Promise<void>;
}

interface Door {
  open(): Promise<BenchCall>;
  stop(): Promise<void>;
}

function providers(): ProviderRegistry {
  return new ProviderRegistry({
    stt: { fake: () => new FakeStt({ transcripts: Array(4).fill('what time do you open') }) },
    llm: { fake: () => new FakeLlm({ reply: () => REPLY }) },
    // 70 ms a character: the greeting lasts ~10 s, longer than any trial.
    tts: { fake: () => new FakeTts({ msPerChar: 70 }) },
  });
}

const tenant = {
  id: TENANT,
  displayName: 'Bench',
  greeting: LONG_GREETING,
  providers: { stt: 'fake', llm: 'fake', tts: 'fake' },
  maxConcurrentCalls: 50,
  // The doors' reaction to the 60 ms confirmation: adaptive barge-in (duck, hold, judge) is bench:turns'.
  turn: { bargeIn: 'immediate' },
} as const;

async function sipDoor(registry: ProviderRegistry): Promise<Door> {
  const h: SipHarness = await startSipHarness({ providers: registry, agentPorts: SIP_AGENT_PORTS, rtpengine: RTPENGINE_PORTS });
  let phone: SipPhone;
  try {
    await h.tenants.create(tenant);
    await h.numbers.createTrunk({ name: 'loopback', sourceCidrs: ['127.0.0.1/32'] });
    await h.numbers.createNumber({ number: NUMBER, tenantId: TENANT });
    phone = await startSipPhone();
  } catch (err) {
    await h.stop();
    throw err;
  }
  return {
    async open() {
      const { caller, hangup } = await phone.dial(h.target(NUMBER), SIP_CALLER_PORTS);
      return {
        soundTimes: () => caller.heard.flatMap((p) => (p.sound ? [p.at] : [])),
        speak: (pcm) => caller.speak(pcm),
        close: hangup,
      };
    },
    async stop() {
      await phone.stop();
      await h.stop();
    },
  };
}

async function webrtcDoor(registry: ProviderRegistry): Promise<Door> {
  const h: WebRtcHarness = await startWebRtcHarness({ providers: registry, agentPorts: WEBRTC_AGENT_PORTS });
  try {
    await h.tenants.create(tenant);
    await h.urls.create({ slug: SLUG, tenantId: TENANT });
  } catch (err) {
    await h.stop();
    throw err;
  }
  return {
    async open() {
      const { peer } = await h.call(SLUG, { sendSilence: true, name: 'bench-page' });
      peer.startSending();
      return {
        soundTimes: () => soundFrames(peer),
        speak: (pcm) => peer.playTimed(pcm),
        async close() {
          peer.close();
        },
      };
    },
    stop: () => h.stop(),
  };
}

const soundFrames = (peer: BrowserPeer): number[] => peer.receivedFrames().flatMap((f) => (f.bytes > OPUS_SILENCE_MAX_BYTES ? [f.at] : []));

type Trial = { ok: true; bargeInMs: number } | { ok: false; why: string };

async function trial(door: Door, seed: number): Promise<Trial> {
  const call = await door.open();
  try {
    await until(() => call.soundTimes().length > 0, 5000, 'the greeting');
    // Interrupt at a different point of the greeting each time (300–900 ms in).
    await sleep(300 + ((seed * 7919) % 600));
    const sent = await call.speak(CALLER_SPEECH);
    const onset = sent[0]!;
    await until(() => performance.now() > onset + WINDOW_MS, WINDOW_MS + 1000, 'the window');
    const sound = call.soundTimes();
    const before = sound.filter((t) => t <= onset).at(-1);
    if (before === undefined || before <= onset - SPEAKING_BEFORE_MS) {
      return { ok: false, why: `agent not speaking at the onset (its last sound arrived ${before === undefined ? 'never' : `${Math.round(onset - before)} ms before`})` };
    }
    const last = sound.filter((t) => t < onset + WINDOW_MS).at(-1)!;
    return { ok: true, bargeInMs: last - onset };
  } finally {
    await call.close();
  }
}

async function runTrials(door: Door, n: number): Promise<Trial[]> {
  const out: Trial[] = [];
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, n) }, async (_, w) => {
    // Staggered, so concurrent calls do not interrupt on the same tick.
    await sleep(w * 137);
    while (next < n) {
      const i = next++;
      out.push(await trial(door, i));
    }
  });
  await Promise.all(workers);
  return out;
}

interface DoorResult {
  trials: number;
  invalid: number;
  bargeInP50Ms: number;
  bargeInP95Ms: number;
  bargeInMaxMs: number;
  withinGoal: boolean;
  durationS: number;
}

async function measure(name: DoorName): Promise<DoorResult> {
  const registry = providers();
  const started = performance.now();
  const door = name === 'sip' ? await sipDoor(registry) : await webrtcDoor(registry);
  try {
    // One call first, not counted: the greeting's synthesis and caching, JIT, the first VAD.
    await trial(door, 0);
    const trials = await runTrials(door, trialsPerDoor);
    const good = trials.flatMap((t) => (t.ok ? [t.bargeInMs] : []));
    const s = stats(good);
    process.stderr.write(`${name}: barge-in ms ${good.map((x) => Math.round(x)).join(' ')}\n`);
    for (const t of trials) if (!t.ok) process.stderr.write(`${name}: trial not counted: ${t.why}\n`);
    return {
      trials: s.n,
      invalid: trials.length - good.length,
      bargeInP50Ms: s.p50,
      bargeInP95Ms: s.p95,
      bargeInMaxMs: s.max,
      withinGoal: s.n > 0 && s.p95 <= GOAL_P95_MS,
      durationS: round((performance.now() - started) / 1000),
    };
  } finally {
    await door.stop();
    await registry.close();
  }
}

function missing(): string | undefined {
  if (doors.length === 0) return `--door must be sip, webrtc or both (got ${values.door})`;
  if (!(trialsPerDoor >= 1) || !(concurrency >= 1)) return '--trials and --concurrency must be at least 1';
  if (doors.includes('sip')) {
    if (!DRACHTIO_BIN) return DRACHTIO_SKIP_REASON.replace('SIP tests skipped', 'cannot run the SIP door');
    if (!findOnPath('rtpengine')) return 'rtpengine not found (Debian rtpengine-daemon): cannot run the SIP door';
  }
  return undefined;
}

async function main(): Promise<number> {
  const cannot = missing();
  if (cannot) {
    console.error(cannot);
    console.log(JSON.stringify({ bench: 'bargein', error: cannot }));
    return 1;
  }
  // Per-call info lines would drown the figures; warnings and errors still show (on stderr).
  rootLogger.level = process.env['LOG_LEVEL'] ?? 'warn';
  const started = performance.now();
  const loadBefore = loadavg().map(round);
  const results: Partial<Record<DoorName, DoorResult>> = {};
  for (const name of doors) {
    results[name] = await measure(name);
    process.stderr.write(`${name}: ${JSON.stringify(results[name])}\n`);
  }
  console.log(
    JSON.stringify({
      bench: 'bargein',
      quick,
      concurrency,
      trialsPerDoor,
      goalP95Ms: GOAL_P95_MS,
      definition: 'caller speech onset (first speech packet sent) → last agent packet with sound received at the caller',
      ...results,
      withinGoal: doors.every((d) => results[d]?.withinGoal === true),
      loadavg: { before: loadBefore, after: loadavg().map(round) },
      durationS: round((performance.now() - started) / 1000),
    }),
  );
  return 0;
}

main()
  .then((code) => process.exit(code))
  .catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
