import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createHistogram, monitorEventLoopDelay, performance, type IntervalHistogram, type RecordableHistogram } from 'node:perf_hooks';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

/** What the soak measures besides the calls themselves: event-loop delay, memory after GC, open resources. */

const round1 = (x: number): number => Math.round(x * 10) / 10;

export interface EventLoopFigures {
  /**
   * Delay beyond the probe's own interval, in ms: the histogram holds whole timer intervals (an idle
   * loop reads ~`resolutionMs`), so the interval is subtracted to get what the loop added.
   */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** The histogram's p99 as recorded (interval included), so the subtraction can be checked. */
  readonly rawP99: number;
  readonly resolutionMs: number;
  readonly samples: number;
  /** Histograms the phase was measured in (see EventLoopProbe). */
  readonly segments: number;
}

/**
 * monitorEventLoopDelay for one phase, in segments: `pause()` ends one and `resume()` starts the next,
 * around work that is the bench's and not callgate's (a forced GC for a memory sample). A paused
 * histogram cannot simply be re-enabled: its first interval after that would span the whole pause.
 * Segments cannot be merged either (an ELDHistogram is not a RecordableHistogram), so the phase's
 * p50/p99 are the highest of its segments': an upper bound (if no segment has more than 1 % of its
 * samples above x, neither has the whole), exact when there is one segment.
 */
export class EventLoopProbe {
  private current: IntervalHistogram | undefined;
  private readonly done: IntervalHistogram[] = [];

  constructor(readonly resolutionMs: number) {
    this.resume();
  }

  pause(): void {
    if (!this.current) return;
    this.current.disable();
    this.done.push(this.current);
    this.current = undefined;
  }

  resume(): void {
    if (this.current) return;
    this.current = monitorEventLoopDelay({ resolution: this.resolutionMs });
    this.current.enable();
  }

  /** The segments' maxima so far, in ms beyond the interval (to see where a spike was). */
  segmentMaxima(): number[] {
    return [...this.done, ...(this.current ? [this.current] : [])].map((h) => this.delay(h.max));
  }

  stop(): EventLoopFigures {
    this.pause();
    const hs = this.done.filter((h) => h.count > 0);
    const worst = (f: (h: IntervalHistogram) => number): number => Math.max(0, ...hs.map(f));
    return {
      p50: this.delay(worst((h) => h.percentile(50))),
      p99: this.delay(worst((h) => h.percentile(99))),
      max: this.delay(worst((h) => h.max)),
      rawP99: round1(worst((h) => h.percentile(99)) / 1e6),
      resolutionMs: this.resolutionMs,
      samples: hs.reduce((a, h) => a + h.count, 0),
      segments: hs.length,
    };
  }

  private delay(ns: number): number {
    return round1(Math.max(0, ns / 1e6 - this.resolutionMs));
  }
}

export interface RunQueueFigures {
  /** The main thread's time runnable but not running (other processes had the CPUs), over the phase. */
  readonly waitMs: number;
  readonly waitPercent: number;
  /** The main thread's time on a CPU, as a share of the phase's wall time. */
  readonly onCpuPercent: number;
  /**
   * Event-loop delay with the run-queue wait of the same 10 ms interval taken out: what the process
   * itself held the loop for. From a second timer beside monitorEventLoopDelay (same resolution).
   */
  readonly selfP99: number;
  readonly selfMax: number;
  /** Intervals where the process itself held the loop for `stallMs` or more. */
  readonly selfStalls: number;
}

/**
 * Tells apart "callgate blocked its loop" from "the machine did not run callgate": on a shared machine
 * a loaded CPU delays the loop by as much as any slow code does. Linux's schedstat for the main thread
 * (/proc/<pid>/task/<pid>/schedstat: ns on CPU, ns waiting in the run queue) is read every interval;
 * the wait in each interval is subtracted from that interval's delay. Absent /proc, figures are 0.
 */
export class RunQueueProbe {
  private readonly path = `/proc/${process.pid}/task/${process.pid}/schedstat`;
  private readonly self: RecordableHistogram = createHistogram();
  private readonly start: { wall: number; cpuNs: number; waitNs: number };
  private last: { wall: number; cpuNs: number; waitNs: number };
  private timer: NodeJS.Timeout | undefined;

  private stalls = 0;

  /**
   * `onStall` hears of each interval in which the process itself held the loop for `stallMs` or more
   * (to find out what did, from the progress log). Its on-CPU time tells work on the main thread from
   * time blocked in the kernel (neither running nor waiting for a CPU).
   */
  constructor(
    readonly resolutionMs: number,
    private readonly stallMs: number,
    private readonly onStall: (stall: { selfMs: number; waitMs: number; onCpuMs: number }) => void = () => undefined,
  ) {
    this.start = this.last = this.read();
    // Unref'd: the probe must not be what keeps the process alive (and stop() clears it).
    this.timer = setInterval(() => this.sample(), resolutionMs).unref();
  }

  /** As EventLoopProbe.pause(): the intervals in between are not sampled. */
  pause(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  resume(): void {
    if (this.timer) return;
    this.last = this.read();
    this.timer = setInterval(() => this.sample(), this.resolutionMs).unref();
  }

  stop(): RunQueueFigures {
    this.pause();
    const end = this.read();
    const wallMs = Math.max(1, end.wall - this.start.wall);
    const waitMs = (end.waitNs - this.start.waitNs) / 1e6;
    const count = this.self.count;
    return {
      waitMs: Math.round(waitMs),
      waitPercent: round1((waitMs / wallMs) * 100),
      onCpuPercent: round1(((end.cpuNs - this.start.cpuNs) / 1e6 / wallMs) * 100),
      // The histogram holds µs (it takes integers ≥ 1).
      selfP99: count > 0 ? round1((this.self.percentile(99) - 1) / 1000) : 0,
      selfMax: count > 0 ? round1((this.self.max - 1) / 1000) : 0,
      selfStalls: this.stalls,
    };
  }

  private sample(): void {
    const now = this.read();
    const excessMs = now.wall - this.last.wall - this.resolutionMs;
    const waitMs = (now.waitNs - this.last.waitNs) / 1e6;
    const onCpuMs = (now.cpuNs - this.last.cpuNs) / 1e6;
    const selfMs = Math.max(0, excessMs - waitMs);
    this.self.record(1 + Math.round(selfMs * 1000));
    this.last = now;
    if (selfMs >= this.stallMs) {
      this.stalls++;
      this.onStall({ selfMs, waitMs, onCpuMs });
    }
  }

  private read(): { wall: number; cpuNs: number; waitNs: number } {
    const wall = performance.now();
    try {
      const [cpu, wait] = readFileSync(this.path, 'utf8').split(' ');
      return { wall, cpuNs: Number(cpu), waitNs: Number(wait) };
    } catch {
      return { wall, cpuNs: 0, waitNs: 0 };
    }
  }
}

// No `--expose-gc` on the command line (npm run passes none): the flag is set at run time and `gc` is
// taken from a fresh context, where V8 installs it once the flag is on.
v8.setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

export interface MemorySample {
  /** Calls finished when the sample was taken. */
  readonly calls: number;
  readonly heapMb: number;
  readonly rssMb: number;
  /** The same, unrounded (for slopes per unit smaller than 0.1 MB). */
  readonly heapBytes: number;
  readonly rssBytes: number;
}

/** Heap and RSS after a full GC (twice, with a turn of the loop between, so finalizers have run). */
export async function memoryAfterGc(calls: number): Promise<MemorySample> {
  gc();
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  const m = process.memoryUsage();
  return { calls, heapMb: round1(m.heapUsed / 2 ** 20), rssMb: round1(m.rss / 2 ** 20), heapBytes: m.heapUsed, rssBytes: m.rss };
}

export interface GrowthFigures {
  readonly first: number;
  readonly last: number;
  readonly growth: number;
  /** (last − first) per 100 calls. */
  readonly perHundred: number;
  /** Least-squares slope over every sample, MB per 100 calls: one noisy end sample moves it little. */
  readonly slopePerHundred: number;
}

export function growth(samples: readonly MemorySample[], pick: (s: MemorySample) => number): GrowthFigures {
  const first = samples[0];
  const last = samples.at(-1);
  if (!first || !last) return { first: 0, last: 0, growth: 0, perHundred: 0, slopePerHundred: 0 };
  const span = last.calls - first.calls;
  const n = samples.length;
  const mx = samples.reduce((a, s) => a + s.calls, 0) / n;
  const my = samples.reduce((a, s) => a + pick(s), 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const s of samples) {
    sxy += (s.calls - mx) * (pick(s) - my);
    sxx += (s.calls - mx) ** 2;
  }
  const round2 = (x: number): number => Math.round(x * 100) / 100;
  return {
    first: pick(first),
    last: pick(last),
    growth: round1(pick(last) - pick(first)),
    perHundred: span > 0 ? round2(((pick(last) - pick(first)) * 100) / span) : 0,
    slopePerHundred: sxx > 0 ? round2((sxy / sxx) * 100) : 0,
  };
}

/** Least-squares slope of `pick` per unit of `calls` (whatever the samples count: calls, rooms); 0 under two samples. */
export function slopePerUnit(samples: readonly MemorySample[], pick: (s: MemorySample) => number): number {
  const n = samples.length;
  if (n < 2) return 0;
  const mx = samples.reduce((a, s) => a + s.calls, 0) / n;
  const my = samples.reduce((a, s) => a + pick(s), 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const s of samples) {
    sxy += (s.calls - mx) * (pick(s) - my);
    sxx += (s.calls - mx) ** 2;
  }
  return sxx > 0 ? sxy / sxx : 0;
}

export interface ResourceSnapshot {
  /** Ref'd UDP sockets ('UDPWrap'): RTP endpoints and caller sockets. */
  readonly udpSockets: number;
  /**
   * Ref'd timers only: `getActiveResourcesInfo` lists what keeps the loop alive, and unref'd timers
   * (the media clock, call leases) do not — those are checked through their owners instead.
   */
  readonly timers: number;
  /** Ref'd child processes ('ProcessWrap'); unref'd ones are still in `children`. */
  readonly childProcessHandles: number;
  /** This process's children, from /proc (ps when /proc lacks them). */
  readonly children: readonly ChildInfo[];
}

export interface ChildInfo {
  readonly pid: number;
  readonly comm: string;
}

/**
 * The names `process.getActiveResourcesInfo()` gives these handles on Node 20 (the class names of
 * their wraps, not async_hooks' 'UDPWRAP' / 'PROCESSWRAP' types): a name that never matches would
 * count zero for ever and hide every leak. tests/bench/soakResources.test.ts opens one of each.
 */
const UDP_SOCKET = 'UDPWrap';
const CHILD_PROCESS = 'ProcessWrap';

export function resources(): ResourceSnapshot {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  return {
    udpSockets: counts.get(UDP_SOCKET) ?? 0,
    timers: counts.get('Timeout') ?? 0,
    childProcessHandles: counts.get(CHILD_PROCESS) ?? 0,
    children: childProcesses(),
  };
}

/**
 * Children of this process. /proc/<pid>/task/<tid>/children needs no subprocess (running `ps` would
 * itself be a child while it runs); ps is the fallback on kernels without it.
 */
function childProcesses(): ChildInfo[] {
  try {
    const pids: number[] = [];
    for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
      const list = readFileSync(`/proc/${process.pid}/task/${tid}/children`, 'utf8');
      pids.push(...list.split(/\s+/).filter(Boolean).map(Number));
    }
    return pids.map((pid) => {
      try {
        return { pid, comm: readFileSync(`/proc/${pid}/comm`, 'utf8').trim() };
      } catch {
        return { pid, comm: '?' }; // exited between the two reads
      }
    });
  } catch {
    try {
      return execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(process.pid)], { encoding: 'utf8' })
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter(([pid, comm]) => pid && comm && comm !== 'ps')
        .map(([pid, comm]) => ({ pid: Number(pid), comm: comm! }));
    } catch {
      return []; // ps exits 1 when there are none
    }
  }
}

/** Children in `now` that were not in `baseline` (tsx's esbuild service is there before any call). */
export function newChildren(baseline: ResourceSnapshot, now: ResourceSnapshot): ChildInfo[] {
  const before = new Set(baseline.children.map((c) => c.pid));
  return now.children.filter((c) => !before.has(c.pid));
}
