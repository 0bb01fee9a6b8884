import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';

/**
 * Runs sipp (Debian `sip-tester`) against a SIP target and reads back what it counted: the tests drive
 * the SIP door with its scenarios (tests/sip/scenarios), and the SIP benchmark reuses it for load.
 * Every run gets its own directory for sipp's output files, free UDP ports for SIP, media and sipp's
 * control socket, a hard kill after the timeout, and leaves no process behind.
 */
export interface SippOptions {
  /** Path of the scenario XML (`-sf`). */
  readonly scenario: string;
  /** `host:port` of the SIP server. */
  readonly target: string;
  /** Request-URI user (`-s`, `[service]` in scenarios): the number dialled. */
  readonly service?: string;
  /** Address sipp sends from and puts in its SDP (`-i`, `-mi`). */
  readonly localAddress: string;
  /** SIP port (`-p`); a free one by default. */
  readonly localPort?: number;
  /**
   * Media port (`-mp`, `[media_port]` in scenarios); a free one by default. sipp also binds the port
   * two above it (for video), so both must be free.
   */
  readonly mediaPort?: number;
  /** Calls to make before exiting (`-m`). */
  readonly calls: number;
  /** New calls per second (`-r`); sipp's own default (10) when absent. */
  readonly rate?: number;
  /** Calls in progress at once at most (`-l`). */
  readonly callLimit?: number;
  /** sipp fails the run after this long (`-timeout`, `-timeout_error`); it is killed a little later if it hangs. */
  readonly timeoutMs: number;
  /** Scenario keywords (`-key name value`, `[name]` in scenarios). */
  readonly vars?: Readonly<Record<string, string>>;
  /** Call-ID format (`-cid_str`; `%u` call number, `%p` pid, `%s` address): lets a test find its call records. */
  readonly callId?: string;
  /**
   * Files the scenario reads by relative path (a pcap for `play_pcap_audio`, which sipp loads when it
   * parses the scenario, so the path cannot be a keyword): linked into the run's directory under these
   * names. The run's directory is sipp's working directory unless `cwd` is given (then use no links).
   */
  readonly links?: Readonly<Record<string, string>>;
  /** Working directory of sipp; its output files go to the run's own directory either way. */
  readonly cwd?: string;
  /** Record every `rtd="true"` response time (`-trace_rtt`). */
  readonly traceRtt?: boolean;
  /** Anything else for sipp's command line. */
  readonly extraArgs?: readonly string[];
  readonly binary: string;
  /** Between SIGTERM and SIGKILL when sipp outlives its timeout. */
  readonly killGraceMs: number;
}

export const defaultSippOptions = {
  localAddress: '127.0.0.1',
  binary: 'sipp',
  /** 1 s: sipp exits on SIGTERM at once; this only matters for one that is stuck. */
  killGraceMs: 1000,
} as const satisfies Partial<SippOptions>;

export type SippInput = Omit<SippOptions, keyof typeof defaultSippOptions> & Partial<Pick<SippOptions, keyof typeof defaultSippOptions>>;

export interface SippResult {
  /** sipp's exit code: 0 every call succeeded, 1 some failed, 99 none processed, 254/255 fatal; null when killed. */
  readonly exitCode: number | null;
  /** Killed by us after `timeoutMs` (plus a grace period) because it did not exit by itself. */
  readonly killed: boolean;
  /** Calls that reached the end of the scenario, and calls that did not (from sipp's final statistics). */
  readonly successful: number;
  readonly failed: number;
  /** sipp's final statistics line, by column name (`SuccessfulCall(C)`, `FailedCall(C)`, …); empty if sipp wrote none. */
  readonly stats: Readonly<Record<string, string>>;
  /** Contents of sipp's error log (unexpected messages, timeouts, …); '' when there were none. */
  readonly errors: string;
  /** Response times of `rtd="true"` responses, in ms (sipp's resolution), when `traceRtt` was set. */
  readonly responseTimesMs: readonly number[];
  /** The last few KB of stderr and stdout (sipp's screen), for a failure message. */
  readonly stderr: string;
  readonly stdout: string;
  readonly localPort: number;
  readonly mediaPort: number;
  readonly durationMs: number;
}

/** Ports handed out by this process and not yet released: a port closed by the probe is free for anyone again. */
const handedOut = new Set<number>();

/**
 * A UDP port free on `address` now (and, with `alsoFree`, the ports at those offsets too) that this
 * process has not handed out before: concurrent runs never get the same one. Ports `runSipp` picks
 * itself are handed back when it ends; ones a caller asks for here stay taken.
 */
export async function freeUdpPort(address = '127.0.0.1', alsoFree: readonly number[] = []): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const probe = dgram.createSocket('udp4');
    probe.bind(0, address);
    await once(probe, 'listening');
    const port = probe.address().port;
    const extra: dgram.Socket[] = [];
    let ok = !handedOut.has(port) && alsoFree.every((d) => port + d <= 65535 && !handedOut.has(port + d));
    for (const d of alsoFree) {
      if (!ok) break;
      const s = dgram.createSocket('udp4');
      ok = await new Promise<boolean>((res) => {
        s.once('error', () => res(false));
        s.bind(port + d, address, () => res(true));
      });
      extra.push(s);
    }
    for (const s of [probe, ...extra]) s.close();
    if (ok) {
      handedOut.add(port);
      for (const d of alsoFree) handedOut.add(port + d);
      return port;
    }
  }
  throw new Error(`no free UDP port on ${address}`);
}

function release(ports: readonly number[]): void {
  for (const p of ports) handedOut.delete(p);
}

/** Runs one sipp to completion (or its timeout) and resolves with what it reported; rejects only if it cannot start. */
export async function runSipp(input: SippInput): Promise<SippResult> {
  const o: SippOptions = { ...defaultSippOptions, ...input };
  if (o.cwd !== undefined && o.links !== undefined) throw new Error('runSipp: links are made in the run directory; give either cwd or links');
  const dir = await mkdtemp(join(tmpdir(), 'callgate-sipp-'));
  const reserved: number[] = [];
  const started = performance.now();
  try {
    for (const [name, target] of Object.entries(o.links ?? {})) await symlink(resolve(target), join(dir, name));
    const localPort = o.localPort ?? (await freeUdpPort(o.localAddress));
    const mediaPort = o.mediaPort ?? (await freeUdpPort(o.localAddress, [2]));
    const controlPort = await freeUdpPort(o.localAddress);
    reserved.push(controlPort);
    if (o.localPort === undefined) reserved.push(localPort);
    if (o.mediaPort === undefined) reserved.push(mediaPort, mediaPort + 2);
    const errorFile = join(dir, 'errors.log');
    const statFile = join(dir, 'stats.csv');
    const timeoutS = Math.max(1, Math.ceil(o.timeoutMs / 1000));
    const args = [
      '-sf', resolve(o.scenario),
      o.target,
      '-i', o.localAddress,
      '-mi', o.localAddress,
      '-p', String(localPort),
      '-mp', String(mediaPort),
      '-cp', String(controlPort),
      '-m', String(o.calls),
      ...(o.rate !== undefined ? ['-r', String(o.rate)] : []),
      ...(o.callLimit !== undefined ? ['-l', String(o.callLimit)] : []),
      ...(o.service !== undefined ? ['-s', o.service] : []),
      ...(o.callId !== undefined ? ['-cid_str', o.callId] : []),
      '-timeout', `${timeoutS}s`,
      '-timeout_error',
      '-nostdin',
      '-trace_err', '-error_file', errorFile,
      // The final statistics line is what successful/failed are read from; -fd only sets how often it
      // is also written during the run.
      '-trace_stat', '-stf', statFile, '-fd', '1',
      ...(o.traceRtt ? ['-trace_rtt', '-rtt_freq', '1'] : []),
      ...Object.entries(o.vars ?? {}).flatMap(([k, v]) => ['-key', k, v]),
      ...(o.extraArgs ?? []),
    ];
    const cwd = o.cwd ?? dir;
    const proc = spawn(o.binary, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-4000)));
    proc.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const exited = new Promise<number | null>((res, rej) => {
      proc.once('error', rej);
      proc.once('close', (code) => res(code));
    });
    // sipp's own -timeout ends it normally; this is for a sipp that hangs anyway.
    let killed = false;
    const killTimer = setTimeout(() => {
      killed = true;
      proc.kill('SIGTERM');
      setTimeout(() => proc.exitCode === null && proc.signalCode === null && proc.kill('SIGKILL'), o.killGraceMs).unref();
    }, timeoutS * 1000 + 2000);
    let exitCode: number | null;
    try {
      exitCode = await exited;
    } finally {
      clearTimeout(killTimer);
    }
    const stats = parseLastCsvLine(await readFile(statFile, 'utf8').catch(() => ''));
    const count = (name: string): number => Number(stats[name] ?? 0) || 0;
    const errors = await readFile(errorFile, 'utf8').catch(() => '');
    const responseTimesMs = o.traceRtt ? await readRtt(cwd, o.scenario, proc.pid) : [];
    return {
      exitCode,
      killed,
      successful: count('SuccessfulCall(C)'),
      failed: count('FailedCall(C)'),
      stats,
      errors,
      responseTimesMs,
      stderr,
      stdout,
      localPort,
      mediaPort,
      durationMs: performance.now() - started,
    };
  } finally {
    release(reserved);
    await rm(dir, { recursive: true, force: true });
  }
}

/** sipp's statistics file: a `;`-separated header, then one line per dump; the last is the final count. */
function parseLastCsvLine(text: string): Record<string, string> {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = lines[0]?.split(';');
  const last = lines.length > 1 ? lines.at(-1)!.split(';') : undefined;
  if (!header || !last) return {};
  return Object.fromEntries(header.map((name, i) => [name, last[i] ?? '']));
}

/** `-trace_rtt` has no file-name option: sipp writes `<scenario>_<pid>_rtt.csv` (Date_ms;response_time_ms;rtd_no) in its working directory. */
async function readRtt(cwd: string, scenario: string, pid: number | undefined): Promise<number[]> {
  const prefix = `${basename(scenario).replace(/\.xml$/, '')}_${pid}_`;
  const files = (await readdir(cwd).catch(() => [] as string[])).filter((f) => f.startsWith(prefix) && f.endsWith('_rtt.csv'));
  const times: number[] = [];
  for (const f of files) {
    const text = await readFile(join(cwd, f), 'utf8');
    for (const line of text.split('\n').slice(1)) {
      const ms = Number(line.split(';')[1]);
      if (line.trim() !== '' && Number.isFinite(ms)) times.push(ms);
    }
    await rm(join(cwd, f), { force: true });
  }
  return times;
}
