import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AudioLeg, type EncodedPrompt } from '../../src/media/AudioLeg.js';
import { MediaClock } from '../../src/media/MediaClock.js';
import { RtpEndpoint } from '../../src/media/RtpEndpoint.js';
import { percentile, sortedAscending } from '../../src/util/percentile.js';
import type { LoadReport, LoadRequest } from '../load-generator.js';

/**
 * Live calls for a bench that measures what something else does to them: this process carries `calls`
 * full-duplex Opus AudioLegs on one MediaClock, each speaking a cached prompt through its PacedSender,
 * while bench/load-generator.ts (a second process, as in bench:media) is their callers. Lateness is
 * bench:media's: a clock subscriber added after every leg runs last in each tick, so its lateness is that
 * of the tick's latest frame.
 */
export interface LiveCallsOptions {
  readonly calls: number;
  readonly seconds: number;
  /** What the legs play, over and over. */
  readonly prompt: EncodedPrompt;
  /** Set-up time not judged (the callers starting), as bench:media. */
  readonly settleMs?: number;
}

export interface LiveCallsResult {
  readonly p50LatenessMs: number;
  readonly p99LatenessMs: number;
  readonly maxLatenessMs: number;
  /** Ticks the clock skipped after a stall, times legs, plus gaps the callers saw and send errors. */
  readonly droppedFrames: number;
  readonly ticks: number;
}

const CAPTURE = fileURLToPath(new URL('../../tests/fixtures/caller-open-today.opus.pcap', import.meta.url));
const LOAD_GENERATOR = fileURLToPath(new URL('../load-generator.ts', import.meta.url));

/** Runs the calls for `seconds` with `during` started once the callers are up; resolves when both are done. */
export async function withLiveCalls<T>(options: LiveCallsOptions, during: () => Promise<T>): Promise<{ calls: LiveCallsResult; during: T }> {
  const settleMs = options.settleMs ?? 1000;
  const clock = new MediaClock();
  const legs: AudioLeg[] = [];
  for (let i = 0; i < options.calls; i++) {
    const endpoint = await RtpEndpoint.open({ portRange: { min: 36000, max: 39999 }, clockRate: 48000 });
    const leg = new AudioLeg(endpoint, { name: 'opus', payloadType: 111 }, clock);
    const speak = (): void => void leg.playEncoded(options.prompt);
    leg.on('drain', speak);
    speak();
    legs.push(leg);
  }
  const lateness: number[] = [];
  const unsubscribe = clock.subscribe((tick) => lateness.push(clock.now() - tick.dueAt));

  const child = fork(LOAD_GENERATOR, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const report = new Promise<LoadReport>((resolve, reject) => {
    child.once('message', (m) => resolve(m as LoadReport));
    child.once('exit', (code) => reject(new Error(`load generator exited with ${code}`)));
  });
  const request: LoadRequest = { type: 'start', capture: CAPTURE, ports: legs.map((l) => l.endpoint.localAddress.port), durationMs: options.seconds * 1000 };
  child.send(request);
  await new Promise((r) => setTimeout(r, settleMs));
  const [load, result] = await Promise.all([report, during()]);
  unsubscribe();

  const stats = legs.map((l) => l.stats());
  const skipped = clock.stats().skippedTicks;
  await Promise.all(legs.map((l) => l.close()));
  clock.stop();
  const sendErrors = stats.reduce((n, s) => n + s.sender.sendErrors + s.endpoint.sent.errors, 0);
  const seqGaps = load.legs.reduce((n, l) => n + l.seqGaps, 0);
  const steady = sortedAscending(lateness.slice(Math.round(settleMs / 20)));
  return {
    calls: {
      p50LatenessMs: round(percentile(steady, 0.5)),
      p99LatenessMs: round(percentile(steady, 0.99)),
      maxLatenessMs: round(steady.at(-1) ?? 0),
      droppedFrames: skipped * options.calls + sendErrors + seqGaps,
      ticks: steady.length,
    },
    during: result,
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
