/**
 * npm run bench:turns [-- --quick] [-- --door sip|webrtc|both] [-- --trials 8] [-- --concurrency 2]
 *
 * Turn-taking as a caller experiences it (docs/turn-taking.md): real calls on loopback with the offline
 * providers (pocketsphinx, the scripted responder, flite), through the direct WebRTC door (a
 * node-datachannel page, Opus) and the SIP door (drachtio + rtpengine, a PCMU RTP caller). Callers speak
 * with espeak-ng voices and make noises synthesised here (bench/support/callerAudio.ts), never with the
 * agent's own TTS. Every figure is measured at the caller, from the audio it sends and receives:
 *
 * - backchannel / noise over the agent ("uh-huh", "okay", a cough, knocks, typing): a false barge-in
 *   is the agent going quiet (25 dB under its level before the sound) for more than 300 ms within 1.8 s.
 * - echo: the agent's own voice comes back 80–150 ms later, 15–25 dB down, for 4 s: any such stop is
 *   a false barge-in too.
 * - interrupt (and interruptEcho: the same with the echo running, the caller at the echo's level): the
 *   agent must fall silent within 1.5 s or the interruption counts as missed; duck = onset → the level
 *   stays ≥ 10 dB down from then on; silent = onset → no more sound.
 * - pause: a sentence with a 0.7–1.2 s pause mid-clause; premature = the agent starts talking before
 *   the second half.
 * - mumble: speech the recogniser cannot place; didNotCatch = its end → the agent's first sound
 *   (the record says it was the tenant's phrase).
 * - question: voice-to-voice = the question's last sound → the agent's first sound.
 * - noisyQuestion: the question over pink noise at 10 dB SNR; answered = the record shows the intent's
 *   reply to it.
 * - noiseOnly: 3 s of steady noise (pink, brown), no speech; a turn = the agent said anything.
 * Logs go to stderr; the last line of stdout is one JSON object.
 */
import './support/logsToStderr.js';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { offlineProviderRegistry } from '../src/agent/ProviderRegistry.js';
import { rootLogger } from '../src/log.js';
import { concatSamples, dbfs } from '../src/media/signal.js';
import { DRACHTIO_BIN, DRACHTIO_SKIP_REASON } from '../src/sip/testing/DrachtioProcess.js';
import { startSipHarness, type SipHarness } from '../src/sip/testing/SipHarness.js';
import type { CallRecord, CallRecordStore } from '../src/tenants/CallRecordStore.js';
import type { TenantInput } from '../src/tenants/schema.js';
import { findOnPath } from '../src/util/executable.js';
import { seededRandom } from '../src/util/random.js';
import { percentile, sortedAscending } from '../src/util/percentile.js';
import { pollUntil, until } from '../src/util/testing/wait.js';
import { startWebRtcHarness } from '../src/webrtc/testing/WebRtcHarness.js';
import { startSipPhone, type SipPhone } from './support/sipCaller.js';
import { atLevel, brownNoise, CALLER_VOICES, cough, knock, mix, pinkNoise, silence, speech, typing } from './support/callerAudio.js';

type DoorName = 'sip' | 'webrtc';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    door: { type: 'string' },
    trials: { type: 'string' },
    concurrency: { type: 'string' },
    /** Only these categories (comma-separated), for a closer look at one. */
    only: { type: 'string' },
  },
});
const quick = values.quick;
const doorArg = values.door ?? (quick ? 'webrtc' : 'both');
const doors: DoorName[] = doorArg === 'both' ? ['webrtc', 'sip'] : doorArg === 'sip' || doorArg === 'webrtc' ? [doorArg] : [];
/** Trials per category per door: quick (one door, one each) stays under a minute; full gives rates over 8. */
const trialsPerCategory = Number(values.trials ?? (quick ? 1 : 8));
/** 2 calls at once: pocketsphinx and flite share a 2-core machine with drachtio and rtpengine. */
const concurrency = Number(values.concurrency ?? 2);

const LONG = 'bench-turns-long';
const SHORT = 'bench-turns-short';
/** One long sentence with no full stop: flite pauses at sentence ends, which would read as stops. */
const LONG_GREETING =
  "Hi and thanks for calling Joe's Pizza where every pizza is baked fresh in our wood fired oven and every pasta dish comes with a free garlic bread and a cold lemonade for the whole table on any day of the week including holidays and weekends and we deliver to every street in town within forty minutes or your next pizza is on us so tell me what I can do for you today";
const SHORT_GREETING = 'Hi, what can I do for you?';
const HOURS = 'We open at eleven in the morning and close at ten at night.';
const BOOKING = 'Of course. For how many people, and at what time?';
const DID_NOT_CATCH = "Sorry, I didn't catch that. Could you say it again?";
const QUESTIONS = ['what time do you open today', 'when do you open', 'what are your opening hours'];
const BACKCHANNELS = ['uh huh', 'okay', 'yeah', 'mm hmm', 'right', 'sure', 'yes', 'I see'];
const INTERRUPTIONS = ['wait, what time do you open today', 'sorry, can I book a table for four', 'hold on, when do you open'];
/** [first half, second half]: each pause is mid-clause. */
const PAUSED: [string, string][] = [
  ['I would like to book a table for', 'four people at seven'],
  ['what time do you', 'open today'],
  ['can I make a reservation for', 'tomorrow night'],
  ['my number is five five five', 'one two three four'],
];
/** Speech the English recogniser cannot place: other languages, said as a caller who switched would. */
const MUMBLES: [string, string][] = [
  ['Entschuldigung, wo ist hier der Bahnhof', 'de'],
  ['perdona, no entiendo nada de esto', 'es'],
  ['excusez-moi, je cherche la boulangerie', 'fr'],
  ['scusi, dove si trova la stazione', 'it'],
];

function tenant(id: string, greeting: string): TenantInput {
  return {
    id,
    displayName: "Joe's Pizza",
    greeting,
    voice: 'slt',
    providers: { stt: 'pocketsphinx', llm: 'scripted', tts: 'flite' },
    maxConcurrentCalls: 50,
    didNotCatch: DID_NOT_CATCH,
    intents: [
      { name: 'hours', phrases: QUESTIONS, reply: HOURS },
      { name: 'booking', phrases: ['i would like to book a table', 'book a table', 'can i make a reservation'], reply: BOOKING },
    ],
  };
}

const CATEGORIES = ['backchannel', 'noise', 'echo', 'interrupt', 'interruptEcho', 'pause', 'mumble', 'question', 'noisyQuestion', 'noiseOnly'] as const;
type Category = (typeof CATEGORIES)[number];

/** Port ranges no test file or other benchmark uses. */
const RTPENGINE_PORTS = { portMin: 58000, portMax: 58999 } as const;
const SIP_AGENT_PORTS = { min: 59000, max: 59499 } as const;
const SIP_CALLER_PORTS = { min: 59500, max: 59999 } as const;
const WEBRTC_AGENT_PORTS = { min: 60000, max: 60499 } as const;
const SIP_NUMBERS: Record<string, string> = { [LONG]: '+15005550181', [SHORT]: '+15005550182' };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number): number => Math.round(x * 10) / 10;

/** A frame the caller received: arrival time and level. */
interface Heard {
  readonly at: number;
  readonly db: number;
}

interface TurnCall {
  heard(): Heard[];
  /** Sends `pcm` (16 kHz); resolves with its frames' send times once all have left. */
  speak(pcm: Int16Array): Promise<number[]>;
  echo(path: { delayMs: number; gainDb: number } | undefined): void;
  close(): Promise<void>;
  /** The call's record, once the call is over. */
  record(): Promise<CallRecord | undefined>;
  /** The agent's events as the page received them (WebRTC door only): for TURNS_DEBUG. */
  events(): string[];
}

interface Door {
  open(tenantId: string): Promise<TurnCall>;
  stop(): Promise<void>;
}

/** The call's record: written as the call ends, so polled for up to 2 s; undefined if it never came. */
function recordOf(records: CallRecordStore, tenantId: string, callId: string): Promise<CallRecord | undefined> {
  return pollUntil(() => records.get(tenantId, callId).catch(() => undefined), (r) => r !== undefined, 2000, 100);
}

async function webrtcDoor(): Promise<Door> {
  const providers = offlineProviderRegistry();
  const h = await startWebRtcHarness({ providers, agentPorts: WEBRTC_AGENT_PORTS });
  for (const [id, greeting] of [[LONG, LONG_GREETING], [SHORT, SHORT_GREETING]] as const) {
    await h.tenants.create(tenant(id, greeting));
    await h.urls.create({ slug: id, tenantId: id });
  }
  return {
    async open(tenantId) {
      const { peer, callId } = await h.call(tenantId, { sendSilence: true, name: 'bench-turns' });
      peer.startSending();
      return {
        heard: () => peer.receivedFrames().map((f) => ({ at: f.at, db: f.bytes <= 10 ? -120 : dbfs(f.pcm) })),
        speak: (pcm) => peer.playTimed(pcm),
        echo: (path) => peer.echo(path),
        async close() {
          peer.close();
        },
        record: () => recordOf(h.records, tenantId, callId),
        events: () => peer.messages,
      };
    },
    async stop() {
      await h.stop();
      await providers.close();
    },
  };
}

async function sipDoor(): Promise<Door> {
  const providers = offlineProviderRegistry();
  const h: SipHarness = await startSipHarness({ providers, agentPorts: SIP_AGENT_PORTS, rtpengine: RTPENGINE_PORTS });
  let phone: SipPhone;
  try {
    await h.numbers.createTrunk({ name: 'loopback', sourceCidrs: ['127.0.0.1/32'] });
    for (const [id, greeting] of [[LONG, LONG_GREETING], [SHORT, SHORT_GREETING]] as const) {
      await h.tenants.create(tenant(id, greeting));
      await h.numbers.createNumber({ number: SIP_NUMBERS[id]!, tenantId: id });
    }
    phone = await startSipPhone();
  } catch (err) {
    await h.stop();
    await providers.close();
    throw err;
  }
  return {
    async open(tenantId) {
      const { caller, callId, hangup } = await phone.dial(h.target(SIP_NUMBERS[tenantId]!), SIP_CALLER_PORTS);
      return {
        heard: () => caller.heard.map((p) => ({ at: p.at, db: p.sound ? dbfs(p.pcm) : -120 })),
        speak: (pcm) => caller.speak(pcm),
        echo: (path) => caller.echo(path),
        close: hangup,
        record: () => recordOf(h.records, tenantId, callId),
        events: () => [],
      };
    },
    async stop() {
      await phone.stop();
      await h.stop();
      await providers.close();
    },
  };
}

// ─── Reading what the caller heard ───────────────────────────────────────────────────────────────

const SOUND_DB = -50;

/** The agent's level just before `t`: the median of its sounding frames in the 600 ms before. */
function levelBefore(heard: Heard[], t: number): number | undefined {
  const xs = sortedAscending(heard.filter((h) => h.at > t - 600 && h.at <= t && h.db > SOUND_DB).map((h) => h.db));
  return xs.length >= 5 ? percentile(xs, 0.5) : undefined;
}

/** The longest run (ms) in [from, to] during which nothing reached `quietDb`; gaps in arrivals count as quiet. */
function longestQuiet(heard: Heard[], from: number, to: number, quietDb: number): number {
  let last = from;
  let longest = 0;
  for (const h of heard) {
    if (h.at < from || h.at > to) continue;
    if (h.db >= quietDb) {
      longest = Math.max(longest, h.at - last - 20);
      last = h.at;
    }
  }
  return Math.max(longest, to - last - 20);
}

/** The first time after `from` from which every frame until `to` stays under `db` (undefined: never). */
function stayedUnder(heard: Heard[], from: number, to: number, db: number): number | undefined {
  const window = heard.filter((h) => h.at >= from && h.at <= to);
  let since: number | undefined = from;
  for (const h of window) {
    if (h.db >= db) since = undefined;
    else since ??= h.at;
  }
  // Sound up to the end of the window means it never settled.
  return since;
}

function firstSoundAfter(heard: Heard[], t: number): number | undefined {
  return heard.find((h) => h.at > t && h.db > SOUND_DB)?.at;
}

async function greetingStarted(call: TurnCall): Promise<number> {
  await until(() => call.heard().some((h) => h.db > SOUND_DB), 8000, 'the greeting');
  return firstSoundAfter(call.heard(), 0)!;
}

/** Waits for the agent to finish talking: `quietMs` without sound. */
async function agentDone(call: TurnCall, quietMs = 700, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const last = call.heard().filter((h) => h.db > SOUND_DB).at(-1)?.at ?? 0;
    if (performance.now() - last > quietMs) return;
    if (performance.now() > deadline) throw new Error('the agent did not stop talking');
    await sleep(50);
  }
}

/** The first frame of `sent` that carries sound in `pcm` (the onset), by send time. */
function onsetOf(pcm: Int16Array, sent: number[]): number {
  for (let i = 0; i < sent.length; i++) if (dbfs(pcm, { start: i * 320, end: (i + 1) * 320 }) > -45) return sent[i]!;
  return sent[0]!;
}

/** The last frame of `sent` that carries sound in `pcm`, by send time (+20 ms: its end). */
function endOf(pcm: Int16Array, sent: number[]): number {
  for (let i = sent.length - 1; i >= 0; i--) if (dbfs(pcm, { start: i * 320, end: (i + 1) * 320 }) > -45) return sent[i]! + 20;
  return sent.at(-1)! + 20;
}

// ─── Trials ──────────────────────────────────────────────────────────────────────────────────────

interface Outcome {
  falseBargeIn?: boolean;
  missed?: boolean;
  duckMs?: number;
  silentMs?: number;
  premature?: boolean;
  didNotCatchMs?: number;
  v2vMs?: number;
  answered?: boolean;
  noiseTurn?: boolean;
  note?: string;
}

const QUIET_BELOW_REF_DB = 25;
/**
 * The callers' speech level (RMS): a headset microphone after the browser's gain control, a few dB under
 * the agent's flite voice (median −16 dBFS, peaks −7). The echo guard asks an interruption to reach
 * within 14 dB of the agent's loudest recent frame; `interruptEcho` tests a caller 20 dB down.
 */
const CALLER_DB = -18;
const STOP_MS = 300;

async function overAgent(call: TurnCall, pcm: Int16Array, rnd: () => number): Promise<Outcome> {
  const start = await greetingStarted(call);
  await sleep(Math.max(0, start + 1200 + rnd() * 1500 - performance.now()));
  const sent = await call.speak(pcm);
  const onset = onsetOf(pcm, sent);
  await sleep(Math.max(0, onset + 1800 - performance.now()));
  const heard = call.heard();
  const ref = levelBefore(heard, onset);
  if (ref === undefined) return { note: 'the agent was not talking at the onset' };
  if (process.env['TURNS_DEBUG']) {
    const trace = heard.filter((h) => h.at > onset - 100 && h.at < onset + 1200).map((h) => `${Math.round(h.at - onset)}:${Math.round(h.db)}`);
    process.stderr.write(`over-agent ref ${Math.round(ref)} sound ${Math.round((pcm.length / 16000) * 1000)} ms heard ${trace.join(' ')}\n`);
  }
  return { falseBargeIn: longestQuiet(heard, onset, onset + 1800, ref - QUIET_BELOW_REF_DB) > STOP_MS };
}

async function interrupt(call: TurnCall, pcm: Int16Array, rnd: () => number, withEcho: boolean): Promise<Outcome> {
  const start = await greetingStarted(call);
  await sleep(Math.max(0, start + 1200 + rnd() * 1500 - performance.now()));
  const ref = levelBefore(call.heard(), performance.now());
  if (ref === undefined) return { note: 'the agent was not talking at the onset' };
  // With the echo on, the caller talks as loud as the agent's echo reaches their microphone.
  const voice = withEcho ? atLevel(pcm, ref - 20) : pcm;
  const sent = await call.speak(voice);
  const onset = onsetOf(voice, sent);
  await sleep(Math.max(0, onset + 1600 - performance.now()));
  const heard = call.heard();
  if (process.env['TURNS_DEBUG']) {
    const trace = heard.filter((h) => h.at > onset - 100 && h.at < onset + 1200).map((h) => `${Math.round(h.at - onset)}:${Math.round(h.db)}`);
    process.stderr.write(`interrupt ref ${Math.round(ref)} heard ${trace.join(' ')}\n`);
  }
  const silentAt = stayedUnder(heard, onset, onset + 1500, SOUND_DB);
  const duckAt = stayedUnder(heard, onset, onset + 1500, ref - 10);
  if (silentAt === undefined) return { missed: true };
  return { missed: false, silentMs: silentAt - onset, duckMs: (duckAt ?? silentAt) - onset };
}

async function afterGreeting(call: TurnCall): Promise<void> {
  await greetingStarted(call);
  await agentDone(call);
}

async function trial(door: Door, category: Category, seed: number): Promise<Outcome> {
  const rnd = seededRandom(seed * 7919 + CATEGORIES.indexOf(category));
  const voice = CALLER_VOICES[seed % CALLER_VOICES.length]!;
  const wpm = 150 + Math.round(rnd() * 30);
  const pick = <T>(xs: readonly T[]): T => xs[seed % xs.length]!;
  const long = ['backchannel', 'noise', 'echo', 'interrupt', 'interruptEcho'].includes(category);
  const call = await door.open(long ? LONG : SHORT);
  try {
    switch (category) {
      case 'backchannel':
        return await overAgent(call, atLevel(await speech(pick(BACKCHANNELS), voice, wpm), CALLER_DB), rnd);
      case 'noise': {
        const make = [cough, knock, typing][seed % 3]!;
        return await overAgent(call, make(seed), rnd);
      }
      case 'echo': {
        const start = await greetingStarted(call);
        call.echo({ delayMs: 80 + rnd() * 70, gainDb: -15 - rnd() * 10 });
        await sleep(Math.max(0, start + 5000 - performance.now()));
        const heard = call.heard();
        const ref = levelBefore(heard, start + 600);
        if (ref === undefined) return { note: 'no greeting level' };
        return { falseBargeIn: longestQuiet(heard, start + 600, start + 5000, ref - QUIET_BELOW_REF_DB) > STOP_MS };
      }
      case 'interrupt':
        return await interrupt(call, atLevel(await speech(pick(INTERRUPTIONS), voice, wpm), CALLER_DB), rnd, false);
      case 'interruptEcho': {
        await greetingStarted(call);
        call.echo({ delayMs: 80 + rnd() * 70, gainDb: -20 });
        return await interrupt(call, await speech(pick(INTERRUPTIONS), voice, wpm), rnd, true);
      }
      case 'pause': {
        await afterGreeting(call);
        const [a, b] = pick(PAUSED);
        const first = atLevel(await speech(a, voice, wpm), CALLER_DB);
        const second = atLevel(await speech(b, voice, wpm), CALLER_DB);
        const gapMs = 700 + rnd() * 500;
        const pcm = concatSamples([first, silence(gapMs), second]);
        const sent = await call.speak(pcm);
        const secondOnset = sent[Math.floor(first.length / 320 + gapMs / 20)]!;
        await sleep(400);
        const reply = firstSoundAfter(call.heard(), sent[0]!);
        return { premature: reply !== undefined && reply < secondOnset };
      }
      case 'mumble': {
        await afterGreeting(call);
        const [words, language] = pick(MUMBLES);
        const pcm = atLevel(await speech(words, language, wpm), CALLER_DB);
        const sent = await call.speak(pcm);
        const end = endOf(pcm, sent);
        await sleep(Math.max(0, end + 3000 - performance.now()));
        const reply = firstSoundAfter(call.heard(), end);
        await agentDone(call, 500);
        await call.close();
        const record = await call.record();
        const said = record?.transcript.filter((t) => t.role === 'agent').map((t) => t.text) ?? [];
        if (process.env['TURNS_DEBUG']) process.stderr.write(`mumble record: ${JSON.stringify(record)}\n`);
        if (reply === undefined) return { didNotCatchMs: Infinity, note: 'no reply' };
        return { didNotCatchMs: reply - end, ...(said.includes(DID_NOT_CATCH) ? {} : { note: `replied: ${said.at(-1) ?? '?'}` }) };
      }
      case 'question': {
        await afterGreeting(call);
        const pcm = atLevel(await speech(pick(QUESTIONS), voice, wpm), CALLER_DB);
        const sent = await call.speak(pcm);
        const end = endOf(pcm, sent);
        await sleep(Math.max(0, end + 2500 - performance.now()));
        const reply = firstSoundAfter(call.heard(), end);
        return reply === undefined ? { note: 'no reply within 2.5 s' } : { v2vMs: reply - end };
      }
      case 'noisyQuestion': {
        await afterGreeting(call);
        const question = atLevel(await speech(pick(QUESTIONS), voice, wpm), CALLER_DB);
        const lead = 1000;
        const noise = pinkNoise(lead + question.length / 16 + 3000, CALLER_DB - 10, seed);
        const pcm = mix(noise, concatSamples([silence(lead), question]));
        const sent = await call.speak(pcm);
        const end = sent[Math.floor((lead + question.length / 16) / 20)]!;
        const reply = firstSoundAfter(call.heard(), end);
        await agentDone(call, 500);
        await call.close();
        const record = await call.record();
        const answered = record?.transcript.some((t) => t.role === 'agent' && t.text === HOURS) === true;
        return { answered, ...(reply !== undefined ? { v2vMs: reply - end } : {}) };
      }
      case 'noiseOnly': {
        await afterGreeting(call);
        const noise = seed % 2 === 0 ? pinkNoise(3000, -30, seed) : brownNoise(3000, -28, seed);
        const sent = await call.speak(noise);
        await sleep(1500);
        return { noiseTurn: firstSoundAfter(call.heard(), sent[0]!) !== undefined };
      }
      default:
        throw new Error(`unknown category ${String(category)}`);
    }
  } finally {
    await call.close();
    if (process.env['TURNS_DEBUG']) process.stderr.write(`${category} #${seed} events:\n  ${call.events().join('\n  ')}\n`);
  }
}

// ─── Running and reporting ───────────────────────────────────────────────────────────────────────

async function runDoor(name: DoorName): Promise<Record<Category, Outcome[]>> {
  const door = name === 'sip' ? await sipDoor() : await webrtcDoor();
  const results = Object.fromEntries(CATEGORIES.map((c) => [c, [] as Outcome[]])) as Record<Category, Outcome[]>;
  try {
    // One call first, not counted: the greetings' synthesis and caching, the first decoder.
    await trial(door, 'question', 0).catch(() => undefined);
    const chosen = values.only ? CATEGORIES.filter((c) => values.only!.split(',').includes(c)) : CATEGORIES;
    const jobs = chosen.flatMap((c) => Array.from({ length: trialsPerCategory }, (_, i) => ({ c, i: i + 1 })));
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async (_, w) => {
        await sleep(w * 137);
        while (next < jobs.length) {
          const job = jobs[next++]!;
          const outcome = await trial(door, job.c, job.i).catch((err: unknown) => ({ note: `failed: ${String(err)}` }));
          results[job.c].push(outcome);
          process.stderr.write(`${name} ${job.c} #${job.i}: ${JSON.stringify(outcome)}\n`);
        }
      }),
    );
  } finally {
    await door.stop();
  }
  return results;
}

function rate(xs: (boolean | undefined)[]): number | null {
  const known = xs.filter((x): x is boolean => x !== undefined);
  return known.length === 0 ? null : round((known.filter(Boolean).length / known.length) * 100) / 100;
}

function p(xs: (number | undefined)[], q: number): number | null {
  const known = sortedAscending(xs.filter((x): x is number => x !== undefined && Number.isFinite(x)));
  return known.length === 0 ? null : Math.round(percentile(known, q));
}

function summary(all: Record<Category, Outcome[]>) {
  const over = [...all.backchannel, ...all.noise, ...all.echo];
  return {
    falseBargeInRate: rate(over.map((o) => o.falseBargeIn)),
    backchannelFalseRate: rate(all.backchannel.map((o) => o.falseBargeIn)),
    noiseFalseRate: rate(all.noise.map((o) => o.falseBargeIn)),
    echoFalseRate: rate(all.echo.map((o) => o.falseBargeIn)),
    missedBargeInRate: rate(all.interrupt.map((o) => o.missed)),
    duckP95Ms: p(all.interrupt.map((o) => o.duckMs), 0.95),
    silentP50Ms: p(all.interrupt.map((o) => o.silentMs), 0.5),
    silentP95Ms: p(all.interrupt.map((o) => o.silentMs), 0.95),
    // The caller as soft as the agent's echo (20 dB under it), with the echo running: apart, because
    // only an echo canceller can hear them (docs/turn-taking.md, "Not yet").
    missedWithEchoRate: rate(all.interruptEcho.map((o) => o.missed)),
    silentWithEchoP50Ms: p(all.interruptEcho.map((o) => o.silentMs), 0.5),
    prematureEndpointRate: rate(all.pause.map((o) => o.premature)),
    didNotCatchP95Ms: p(all.mumble.map((o) => (o.didNotCatchMs === undefined ? undefined : o.didNotCatchMs)), 0.95),
    didNotCatchPhraseRate: rate(all.mumble.map((o) => (o.didNotCatchMs === undefined ? undefined : o.note === undefined))),
    v2vP50Ms: p(all.question.map((o) => o.v2vMs), 0.5),
    v2vP95Ms: p(all.question.map((o) => o.v2vMs), 0.95),
    noisyQuestionAnsweredRate: rate(all.noisyQuestion.map((o) => o.answered)),
    noiseTurnRate: rate(all.noiseOnly.map((o) => o.noiseTurn)),
    notCounted: CATEGORIES.reduce((n, c) => n + all[c].filter((o) => o.note !== undefined && Object.keys(o).length === 1).length, 0),
  };
}

function missing(): string | undefined {
  if (doors.length === 0) return `--door must be sip, webrtc or both (got ${doorArg})`;
  if (!(trialsPerCategory >= 1) || !(concurrency >= 1)) return '--trials and --concurrency must be at least 1';
  for (const tool of ['espeak-ng', 'sox', 'pocketsphinx_continuous', 'flite']) {
    if (!findOnPath(tool)) return `${tool} not found (Debian packages espeak-ng, sox, pocketsphinx, flite): cannot make or hear the callers`;
  }
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
    console.log(JSON.stringify({ bench: 'turns', error: cannot }));
    return 1;
  }
  rootLogger.level = process.env['LOG_LEVEL'] ?? 'warn';
  const started = performance.now();
  const loadBefore = loadavg().map(round);
  const perDoor: Partial<Record<DoorName, ReturnType<typeof summary>>> = {};
  const all = Object.fromEntries(CATEGORIES.map((c) => [c, [] as Outcome[]])) as Record<Category, Outcome[]>;
  for (const name of doors) {
    const results = await runDoor(name);
    perDoor[name] = summary(results);
    process.stderr.write(`${name}: ${JSON.stringify(perDoor[name])}\n`);
    for (const c of CATEGORIES) all[c].push(...results[c]);
  }
  console.log(
    JSON.stringify({
      bench: 'turns',
      quick,
      doors,
      trialsPerCategory,
      concurrency,
      ...summary(all),
      perDoor,
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
