/**
 * npm run bench:clock [-- --quick]
 *
 * The media clock's pacing in real time (src/media/MediaClock.ts): one subscriber, nothing else in the
 * process, for 30 s (--quick: 10 s). Reports the send-interval error (|interval − 20 ms|) of on-time
 * ticks, the clock's own lateness p99, catch-up ticks and CPU. Goal: interval error p99 < 2 ms on a quiet
 * machine. This was a timed unit test; as such it failed whenever the host's timers were noisy, which
 * says nothing about the code, so it is measured here (docs/benchmarks.md, "Pacing").
 */
import './support/logsToStderr.js';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { MediaClock } from '../src/media/MediaClock.js';
import { percentile, sortedAscending } from '../src/util/percentile.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const seconds = values.quick ? 10 : 30;

const clock = new MediaClock();
const sendTimes: number[] = [];
const cpuBefore = process.cpuUsage();
const load = loadavg().map((v) => Math.round(v * 10) / 10);
const un = clock.subscribe((t) => {
  // On-time ticks only: a catch-up burst (the machine stalled the whole process) is a different measure.
  sendTimes.push(t.behind === 0 ? performance.now() : Number.NaN);
});
await new Promise((r) => setTimeout(r, seconds * 1000));
un();
const cpu = process.cpuUsage(cpuBefore);
const errors: number[] = [];
for (let k = 1; k < sendTimes.length; k++) {
  const e = Math.abs(sendTimes[k]! - sendTimes[k - 1]! - 20);
  if (!Number.isNaN(e)) errors.push(e);
}
const sorted = sortedAscending(errors);
const round = (v: number): number => Math.round(v * 1000) / 1000;
const stats = clock.stats();
console.log(
  JSON.stringify({
    bench: 'clock',
    quick: values.quick,
    seconds,
    ticks: sendTimes.length,
    intervalErrorP50Ms: round(percentile(sorted, 0.5)),
    intervalErrorP99Ms: round(percentile(sorted, 0.99)),
    intervalErrorMaxMs: round(sorted.at(-1) ?? 0),
    latenessP99Ms: round(stats.latenessP99Ms),
    catchUpTicks: stats.catchUpTicks,
    cpuPercentOfCore: Math.round(((cpu.user + cpu.system) / 1000 / (seconds * 1000)) * 10000) / 100,
    loadavg: { before: load, after: loadavg().map((v) => Math.round(v * 10) / 10) },
  }),
);
