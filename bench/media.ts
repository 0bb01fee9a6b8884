/**
 * npm run bench:media [-- --quick] [-- --levels 100,200,300] [-- --seconds 20] [-- --live-share 0.25]
 *
 * 1. Codec throughput (frames/s, median of 5 runs) on real speech: Opus encode at callgate's settings and at
 *    libopus defaults, Opus decode at 16 and 48 kHz, G.711 both ways.
 * 2. Legs per process: this process is the gateway, carrying N full-duplex AudioLegs on one MediaClock; a
 *    second process (bench/load-generator.ts) is N callers replaying the Opus fixture over loopback and
 *    checking what comes back. Every leg decodes its caller to 16 kHz frames (summed into an energy meter,
 *    standing in for VAD) and sends 50 packets/s. Headline (`legsPerProcess`): the agent's audio is the
 *    cached greeting prompt (and precomputed silence), as the target scenario. Then the same with
 *    a quarter of the legs live-encoding PCM (an agent speaking fresh TTS), to show what encoding costs
 *    (`legsPerProcessQuarterLive`). A level passes when the p99 lateness of the latest frame of each tick
 *    is < 5 ms and no outbound frame was dropped.
 * The last line printed is one JSON object.
 */
import './support/logsToStderr.js';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { AudioLeg, encodePrompt, type EncodedPrompt } from '../src/media/AudioLeg.js';
import type { AudioDecoder, AudioEncoder } from '../src/media/codecs/AudioCodec.js';
import { defaultOpusEncoderOptions, libopusDefaultEncoderOptions } from '../src/media/codecs/opus.js';
import { createDecoder, createEncoder } from '../src/media/codecs/registry.js';
import { MediaClock } from '../src/media/MediaClock.js';
import { resample } from '../src/media/Resampler.js';
import { RtpEndpoint } from '../src/media/RtpEndpoint.js';
import { readWavFile } from '../src/media/wav.js';
import { percentile, sortedAscending } from '../src/util/percentile.js';
import type { LoadReport, LoadRequest } from './load-generator.js';

const FIXTURES = fileURLToPath(new URL('../tests/fixtures/', import.meta.url));
const LATENESS_LIMIT_MS = 5;

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    levels: { type: 'string' },
    seconds: { type: 'string' },
    'live-share': { type: 'string' },
    complexity: { type: 'string' },
    /** Skip the codec throughput part (for profiling the legs part alone). */
    'legs-only': { type: 'boolean', default: false },
  },
});
const quick = values.quick;
const levels = (values.levels ?? (quick ? '200,250' : '200,250,300,350')).split(',').map(Number);
const runSeconds = Number(values.seconds ?? (quick ? 8 : 20));
const liveShare = Number(values['live-share'] ?? 0);
/** The second scenario: a quarter of the legs encode live speech. */
const QUARTER_LIVE = 0.25;
const quarterLiveLevels = quick ? [150] : [100, 150, 200];
/** Overrides the Opus encoder complexity (to compare settings); default: callgate's default. */
const opusEncoder = values.complexity === undefined ? {} : { complexity: Number(values.complexity) };

function median(xs: readonly number[]): number {
  return percentile(sortedAscending(xs), 0.5);
}

function frames(pcm: Int16Array, size: number): Int16Array[] {
  const out: Int16Array[] = [];
  for (let o = 0; o + size <= pcm.length; o += size) out.push(pcm.slice(o, o + size));
  return out;
}

/** Frames per second of `work` over repeated passes of `inputs`, median of 5 runs of ~`runMs` each. */
function throughput<T>(inputs: readonly T[], work: (x: T) => void, runMs: number): number {
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    let n = 0;
    const start = performance.now();
    while (performance.now() - start < runMs) {
      for (const x of inputs) work(x);
      n += inputs.length;
    }
    runs.push(n / ((performance.now() - start) / 1000));
  }
  return Math.round(median(runs));
}

async function codecThroughput(speech16k: Int16Array): Promise<Record<string, number>> {
  const runMs = quick ? 250 : 1000;
  const speech48k = resample(speech16k, 16000, 48000);
  const speech8k = resample(speech16k, 16000, 8000);
  const measureEncode = (enc: AudioEncoder, pcm: Int16Array): number =>
    throughput(frames(pcm, enc.frameSamples), (f) => enc.encode(f), runMs);
  const measureDecode = (enc: AudioEncoder, dec: AudioDecoder, pcm: Int16Array): number => {
    const packets = frames(pcm, enc.frameSamples).map((f) => Uint8Array.from(enc.encode(f)));
    return throughput(packets, (p) => dec.decode(p), runMs);
  };
  const opus = createEncoder('opus', opusEncoder);
  const opusDefaults = createEncoder('opus', libopusDefaultEncoderOptions);
  const dec16 = createDecoder('opus', { sampleRate: 16000 });
  const dec48 = createDecoder('opus', { sampleRate: 48000 });
  const pcmu = createEncoder('PCMU');
  const pcma = createEncoder('PCMA');
  const result = {
    opusEncodeFps: measureEncode(opus, speech16k),
    opusEncodeFpsLibopusDefaults: measureEncode(opusDefaults, speech48k),
    opusDecodeFps: measureDecode(opus, dec16, speech16k),
    opusDecodeFps48k: measureDecode(opus, dec48, speech16k),
    pcmuEncodeFps: measureEncode(pcmu, speech8k),
    pcmuDecodeFps: measureDecode(pcmu, createDecoder('PCMU'), speech8k),
    pcmaEncodeFps: measureEncode(pcma, speech8k),
    pcmaDecodeFps: measureDecode(pcma, createDecoder('PCMA'), speech8k),
  };
  for (const c of [opus, opusDefaults, dec16, dec48, pcmu, pcma]) c.close();
  return result;
}

interface LevelResult {
  legs: number;
  liveShare: number;
  pass: boolean;
  p99LatenessMs: number;
  maxLatenessMs: number;
  clockLatenessP99Ms: number;
  droppedFrames: number;
  seqGapsSeenByCallers: number;
  packetsOut: number;
  packetsIn: number;
  framesDecoded: number;
  concealedFrames: number;
  eventLoopDelayP99Ms: number;
  gatewayCpuPercent: number;
  callerSendLatenessP99Ms: number;
  rssMb: number;
}

async function runLevel(legCount: number, share: number, prompt: EncodedPrompt, livePcm: Int16Array): Promise<LevelResult> {
  const clock = new MediaClock();
  const legs: AudioLeg[] = [];
  let energy = 0;
  const liveLegs = Math.round(legCount * share);
  for (let i = 0; i < legCount; i++) {
    const endpoint = await RtpEndpoint.open({ portRange: { min: 36000, max: 39999 }, clockRate: 48000 });
    const leg = new AudioLeg(endpoint, { name: 'opus', payloadType: 111 }, clock, { opusEncoder });
    leg.on('audio', (frame) => {
      for (let k = 0; k < frame.length; k += 4) energy += frame[k]! * frame[k]!;
    });
    const live = i < liveLegs;
    const speak = (): void => {
      if (live) leg.play(livePcm);
      else leg.playEncoded(prompt);
    };
    leg.on('drain', speak);
    speak();
    legs.push(leg);
  }
  // Subscribed after every leg, so it runs last in each tick: its lateness is that of the tick's latest frame.
  const lateness: number[] = [];
  const unsubscribe = clock.subscribe((tick) => lateness.push(clock.now() - tick.dueAt));
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const cpuStart = process.cpuUsage();
  const wallStart = performance.now();

  const child = fork(fileURLToPath(new URL('./load-generator.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const report = await new Promise<LoadReport>((resolve, reject) => {
    child.once('message', (m) => resolve(m as LoadReport));
    child.once('exit', (code) => reject(new Error(`load generator exited with ${code}`)));
    const req: LoadRequest = {
      type: 'start',
      capture: FIXTURES + 'caller-open-today.opus.pcap',
      ports: legs.map((l) => l.endpoint.localAddress.port),
      durationMs: runSeconds * 1000,
    };
    child.send(req);
  });
  const cpu = process.cpuUsage(cpuStart);
  const wallMs = performance.now() - wallStart;
  loopDelay.disable();
  unsubscribe();

  const stats = legs.map((l) => l.stats());
  const clockStats = clock.stats();
  await Promise.all(legs.map((l) => l.close()));
  clock.stop();

  const seqGaps = report.legs.reduce((n, l) => n + l.seqGaps, 0);
  const sendErrors = stats.reduce((n, s) => n + s.sender.sendErrors + s.endpoint.sent.errors, 0);
  // Every tick the clock skipped is a frame each leg never sent; gaps the callers saw count too.
  const droppedFrames = clockStats.skippedTicks * legCount + sendErrors + seqGaps;
  // The first second is set-up (the load generator starting); judge the steady state.
  const steady = lateness.slice(50);
  const p99 = percentile(sortedAscending(steady), 0.99);
  void energy;
  return {
    legs: legCount,
    liveShare: share,
    pass: p99 < LATENESS_LIMIT_MS && droppedFrames === 0,
    p99LatenessMs: round(p99),
    maxLatenessMs: round(Math.max(0, ...steady)),
    clockLatenessP99Ms: round(clockStats.latenessP99Ms),
    droppedFrames,
    seqGapsSeenByCallers: seqGaps,
    packetsOut: stats.reduce((n, s) => n + s.sender.packetsSent, 0),
    packetsIn: stats.reduce((n, s) => n + s.endpoint.received.packets, 0),
    framesDecoded: stats.reduce((n, s) => n + s.framesIn, 0),
    concealedFrames: stats.reduce((n, s) => n + s.concealedFrames, 0),
    eventLoopDelayP99Ms: round(loopDelay.percentile(99) / 1e6),
    gatewayCpuPercent: Math.round(((cpu.user + cpu.system) / 1000 / wallMs) * 100),
    callerSendLatenessP99Ms: round(report.sendLatenessP99Ms),
    rssMb: Math.round(process.memoryUsage().rss / 1e6),
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

async function main(): Promise<void> {
  const greeting = (await readWavFile(FIXTURES + 'ava-greeting.wav')).samples;
  const codecs = values['legs-only'] ? {} : await codecThroughput(greeting);
  process.stderr.write(`codecs: ${JSON.stringify(codecs)}\n`);

  const prompt = encodePrompt(greeting, 'opus');
  // Live legs speak one TTS-sized chunk (1 s) at a time, encoded frame by frame as it is sent.
  const livePcm = greeting.subarray(0, 16000);
  const run = async (legCounts: readonly number[], share: number): Promise<LevelResult[]> => {
    const out: LevelResult[] = [];
    for (const legs of legCounts) {
      const r = await runLevel(legs, share, prompt, livePcm);
      process.stderr.write(`legs ${legs} (live ${share}): ${JSON.stringify(r)}\n`);
      out.push(r);
    }
    return out;
  };
  const best = (rs: readonly LevelResult[]): LevelResult | undefined =>
    rs.filter((r) => r.pass).reduce<LevelResult | undefined>((b, r) => (!b || r.legs > b.legs ? r : b), undefined);
  const results = await run(levels, liveShare);
  const quarterLive = values.levels === undefined ? await run(quarterLiveLevels, QUARTER_LIVE) : [];
  const headline = best(results);
  const reported = headline ?? results[0]!;
  console.log(
    JSON.stringify({
      bench: 'media',
      quick,
      runSeconds,
      liveShare,
      encoder: { ...defaultOpusEncoderOptions, ...opusEncoder },
      legsPerProcess: headline?.legs ?? 0,
      p99LatenessMs: reported.p99LatenessMs,
      droppedFrames: reported.droppedFrames,
      legsPerProcessQuarterLive: quarterLive.length > 0 ? (best(quarterLive)?.legs ?? 0) : null,
      ...codecs,
      levels: [...results, ...quarterLive],
    }),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
