import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net, { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CallgateError } from '../../errors.js';
import { MediaAnchor } from './MediaAnchor.js';

export interface RtpengineProcessOptions {
  /** The rtpengine binary (Debian `rtpengine-daemon`). */
  readonly binary: string;
  /** Address rtpengine listens for ng/CLI on, and relays our agent legs' media on (they run on this host). */
  readonly address: string;
  /**
   * Address rtpengine relays callers' media on, when not `address` (a carrier on another host cannot
   * reach loopback). Undefined: `address`.
   */
  readonly callerAddress: string | undefined;
  /** Address written into the SDP callers get (a public or NAT address); undefined: the one relayed on. */
  readonly advertisedAddress: string | undefined;
  /** Media ports rtpengine may use. */
  readonly portMin: number;
  readonly portMax: number;
  /** rtpengine log level (syslog numbers: 3 errors … 7 debug). */
  readonly logLevel: number;
  /** How long to wait for the first `pong`. */
  readonly startTimeoutMs: number;
  /** How long to wait for the process to exit after SIGTERM before SIGKILL. */
  readonly stopTimeoutMs: number;
  /** Gets each stderr line (rtpengine logs there); default: kept in memory, last lines in start errors. */
  readonly onLog: ((line: string) => void) | undefined;
}

export const defaultRtpengineProcessOptions = {
  binary: 'rtpengine',
  address: '127.0.0.1',
  /** Callers on loopback too: a fresh machine exposes nothing until the operator says so. */
  callerAddress: undefined,
  advertisedAddress: undefined,
  /** 30000–30999: clear of 20000–29999, which RtpEndpoint uses by default for our own legs. */
  portMin: 30000,
  portMax: 30999,
  /** 5 (notice): starts and errors, not a line per packet. */
  logLevel: 5,
  /** 5 s: it answers in ~100 ms here; the margin is for a loaded 2-core machine. */
  startTimeoutMs: 5000,
  /** 2 s: it exits in a few ms on SIGTERM; SIGKILL after that so no process is ever left behind. */
  stopTimeoutMs: 2000,
  onLog: undefined,
} as const satisfies RtpengineProcessOptions;

/** Port-grab races with other processes are possible (a free port is found, then bound by rtpengine). */
const START_ATTEMPTS = 3;
const LOG_LINES_KEPT = 40;

/**
 * A private rtpengine for tests and local runs: userspace only (table -1, no kernel module, no
 * iptables), on loopback, with free ng/CLI ports and a temporary config and recording folder.
 * `start()` resolves once ng answers `ping`; `stop()` ends the process and removes the folder.
 */
export class RtpengineProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private dir: string | undefined;
  private readonly logTail: string[] = [];
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly options: RtpengineProcessOptions,
    /** UDP port of the ng control protocol. */
    public ngPort = 0,
    /** TCP port of the CLI (`rtpengine-ctl`-style commands such as `list numsessions`). */
    public cliPort = 0,
  ) {}

  /** Starts rtpengine and waits for it to answer. Throws CG_RTPENGINE_UNAVAILABLE when it cannot. */
  static async start(options: Partial<RtpengineProcessOptions> = {}): Promise<RtpengineProcess> {
    const opts: RtpengineProcessOptions = { ...defaultRtpengineProcessOptions, ...options };
    if (!(opts.portMin > 0 && opts.portMax > opts.portMin && opts.portMax <= 65535)) {
      throw new CallgateError('CG_CONFIG_INVALID', `rtpengine port range ${opts.portMin}-${opts.portMax}`);
    }
    for (const [name, ip] of [['address', opts.address], ['callerAddress', opts.callerAddress], ['advertisedAddress', opts.advertisedAddress]] as const) {
      if (ip !== undefined && isIP(ip) === 0) throw new CallgateError('CG_CONFIG_INVALID', `rtpengine ${name} "${ip}" is not an IP address`);
    }
    const proc = new RtpengineProcess(opts);
    let lastError: unknown;
    for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
      try {
        await proc.launch();
        return proc;
      } catch (err) {
        lastError = err;
        await proc.stop();
        proc.stopping = undefined;
      }
    }
    throw lastError;
  }

  /**
   * The interface names a MediaAnchor on this rtpengine passes as ng `direction` (caller side first),
   * or undefined when it has its single interface.
   */
  get anchorInterfaces(): { readonly caller: string; readonly agent: string } | undefined {
    return rtpengineInterfaces(this.options).anchor;
  }

  /** The process id while it runs (tests use it to prove nothing is left). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Last lines rtpengine logged, for error messages. */
  get recentLog(): readonly string[] {
    return this.logTail;
  }

  /** Ends rtpengine (SIGTERM, then SIGKILL) and removes its temporary folder. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const child = this.child;
      if (child && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), this.options.stopTimeoutMs);
        await this.exited;
        clearTimeout(timer);
      }
      this.child = undefined;
      if (this.dir) await rm(this.dir, { recursive: true, force: true });
      this.dir = undefined;
    })();
    return this.stopping;
  }

  private async launch(): Promise<void> {
    const o = this.options;
    this.ngPort = await freeUdpPort(o.address);
    this.cliPort = await freeTcpPort(o.address);
    this.dir = await mkdtemp(join(tmpdir(), 'callgate-rtpengine-'));
    const recordings = join(this.dir, 'recordings');
    const config = join(this.dir, 'rtpengine.conf');
    await writeFile(
      config,
      [
        '[rtpengine]',
        'table = -1',
        `interface = ${rtpengineInterfaces(o).line}`,
        `listen-ng = ${o.address}:${this.ngPort}`,
        `listen-cli = ${o.address}:${this.cliPort}`,
        `port-min = ${o.portMin}`,
        `port-max = ${o.portMax}`,
        // A deleted call otherwise lingers 30 s, and the session count would not return to 0.
        'delete-delay = 0',
        'foreground = true',
        'log-stderr = true',
        `log-level = ${o.logLevel}`,
        // The default /var/spool/rtpengine may not exist, and rtpengine refuses to start without it.
        `recording-dir = ${recordings}`,
        '',
      ].join('\n'),
    );
    await mkdir(recordings);

    const child = spawn(o.binary, [`--config-file=${config}`, '--config-section=rtpengine'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('close', () => resolve()));
    let spawnError: Error | undefined;
    child.once('error', (err) => {
      spawnError = err;
    });
    let partial = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        this.logTail.push(line);
        if (this.logTail.length > LOG_LINES_KEPT) this.logTail.shift();
        o.onLog?.(line);
      }
    });

    const anchor = await MediaAnchor.open({ host: o.address, port: this.ngPort, timeoutMs: 200 });
    try {
      const deadline = Date.now() + o.startTimeoutMs;
      for (;;) {
        if (spawnError || !this.running) {
          throw new CallgateError('CG_RTPENGINE_UNAVAILABLE', `rtpengine exited at start: ${spawnError?.message ?? this.logTail.slice(-5).join(' | ')}`, {
            cause: spawnError,
          });
        }
        try {
          await anchor.ping();
          return;
        } catch (err) {
          if (Date.now() > deadline) {
            throw new CallgateError('CG_RTPENGINE_UNAVAILABLE', `no pong within ${o.startTimeoutMs} ms`, { cause: err });
          }
        }
      }
    } finally {
      anchor.close();
    }
  }
}

const ANCHOR_INTERFACES = { caller: 'caller', agent: 'agent' } as const;

/**
 * rtpengine's `interface` setting. One interface while callers are on `address` and nothing else is
 * advertised (as before, and as rtpengine/local.conf). Otherwise two, as rtpengine/docker.conf: our
 * agent legs keep `address` (they must never be sent to the advertised address, which may not even
 * route back to this host), callers get `callerAddress!advertisedAddress`.
 */
export function rtpengineInterfaces(o: Pick<RtpengineProcessOptions, 'address' | 'callerAddress' | 'advertisedAddress'>): {
  line: string;
  anchor: { readonly caller: string; readonly agent: string } | undefined;
} {
  const caller = o.callerAddress ?? o.address;
  const advertised = o.advertisedAddress ?? caller;
  if (caller === o.address && advertised === caller) return { line: o.address, anchor: undefined };
  const callerSide = advertised === caller ? caller : `${caller}!${advertised}`;
  return { line: `${ANCHOR_INTERFACES.agent}/${o.address};${ANCHOR_INTERFACES.caller}/${callerSide}`, anchor: ANCHOR_INTERFACES };
}

// Node has no "reserve a port" call: bind port 0, read the port, let it go. rtpengine binds it next.
function freeUdpPort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(0, address, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function freeTcpPort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, address, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
