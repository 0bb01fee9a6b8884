import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, isIP } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CallgateError } from '../errors.js';
import { findOnPath, isExecutable } from '../util/executable.js';

/**
 * drachtio-server as a child of the gateway (`CALLGATE_SIP=1`, `npm start -- --sip`), and where its
 * binary is found. drachtio-server is in no package registry and is never part of this repository: it
 * comes from the docker compose stack's image or a build from its public source. The binary is looked
 * for in this order — `DRACHTIO_BIN` (and only there when it is set: a wrong path is reported, never
 * silently replaced by another binary), `drachtio` on PATH, then `../shared/bin/drachtio` beside the
 * checkout (where this project's machines keep a build). The SIP tests use the same lookup.
 */
const CHECKOUT = fileURLToPath(new URL('../../', import.meta.url));

/** What to tell someone whose drachtio-server is missing: where to get one. */
export const DRACHTIO_WHERE_TO_GET_IT =
  'run the docker compose stack (docker/README.md), or build drachtio-server from https://github.com/drachtio/drachtio-server and set DRACHTIO_BIN or put `drachtio` on PATH';

/**
 * `../shared/bin/drachtio` beside this checkout, then beside the checkout it was cloned from when that
 * is a local directory: CI runs a fresh clone of the working checkout somewhere else (/tmp/…), where
 * `../shared` is not the project's.
 */
function sharedDrachtioCandidates(): string[] {
  const candidates = [join(CHECKOUT, '..', 'shared', 'bin', 'drachtio')];
  try {
    const origin = execFileSync('git', ['-C', CHECKOUT, 'config', '--get', 'remote.origin.url'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const local = origin.startsWith('file://') ? fileURLToPath(origin) : origin;
    if (isAbsolute(local) && existsSync(local)) candidates.push(join(local, '..', 'shared', 'bin', 'drachtio'));
  } catch {
    // Not a git checkout, or no origin: only the path beside this checkout.
  }
  return candidates;
}

/** The drachtio-server binary to run, or undefined when there is none (see the order above). */
export function findDrachtio(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const explicit = env['DRACHTIO_BIN'];
  if (explicit) return isExecutable(explicit) ? explicit : undefined;
  return findOnPath('drachtio', env) ?? sharedDrachtioCandidates().find(isExecutable);
}

/** One line saying that drachtio-server is missing, where it was looked for, and where to get it. */
export function drachtioMissingLine(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env['DRACHTIO_BIN'];
  return explicit
    ? `drachtio-server not found at DRACHTIO_BIN=${explicit} (not an executable file): fix DRACHTIO_BIN, or unset it to look on PATH and at ../shared/bin/drachtio`
    : `drachtio-server not found (looked at DRACHTIO_BIN, for \`drachtio\` on PATH and at ../shared/bin/drachtio): ${DRACHTIO_WHERE_TO_GET_IT}`;
}

export interface DrachtioConfigInput {
  /** Where applications (our SIP door) connect: always loopback here. */
  readonly adminAddress: string;
  readonly adminPort: number;
  readonly secret: string;
  /** The address SIP is served on (and sent from). */
  readonly sipAddress: string;
  readonly sipPort: number;
  /** SIP over WebSocket on this port too (web phones' SIP mode); tests use it. */
  readonly wsPort?: number | undefined;
  /** drachtio's own log threshold (notice, error, warning, info, debug). */
  readonly logLevel?: string;
}

/**
 * drachtio-server's configuration file, as the gateway writes it (docs/sip.md shows and explains it):
 * the admin port on loopback with its secret, one SIP contact for UDP and TCP, and logging to the
 * console (which the gateway reads).
 */
export function drachtioConfigXml(c: DrachtioConfigInput): string {
  const host = isIP(c.sipAddress) === 6 ? `[${c.sipAddress}]` : c.sipAddress;
  const ws = c.wsPort === undefined ? '' : `\n      <contact>sip:${host}:${c.wsPort};transport=ws</contact>`;
  return `<drachtio>
  <admin port="${c.adminPort}" secret="${c.secret}">${c.adminAddress}</admin>
  <sip>
    <contacts>
      <contact>sip:${host}:${c.sipPort};transport=udp,tcp</contact>${ws}
    </contacts>
  </sip>
  <logging>
    <console/>
    <loglevel>${c.logLevel ?? 'warning'}</loglevel>
    <sofia-loglevel>0</sofia-loglevel>
  </logging>
</drachtio>
`;
}

export interface DrachtioServerOptions {
  readonly binary: string;
  /** Address SIP is served on: one callers reach. */
  readonly sipAddress: string;
  readonly sipPort: number;
  /** How long to wait for its admin port and its SIP port. */
  readonly startTimeoutMs: number;
  /** How long to wait for it to exit after SIGTERM before SIGKILL. */
  readonly stopTimeoutMs: number;
  /** Gets each line drachtio logs (its console log, warnings and up). */
  readonly onLog: ((line: string) => void) | undefined;
}

export const defaultDrachtioServerOptions = {
  /** Loopback: a fresh machine's SIP door is not exposed until the operator names an address (SIP_ADDRESS). */
  sipAddress: '127.0.0.1',
  /** 5060, SIP's well-known port: what a softphone dials when the address has no port. */
  sipPort: 5060,
  /** 10 s: it opens both ports in ~20 ms here; the margin is for a loaded machine. */
  startTimeoutMs: 10_000,
  /** 2 s: it exits at once on SIGTERM; SIGKILL after that so it is never left behind. */
  stopTimeoutMs: 2000,
  onLog: undefined,
} as const satisfies Omit<DrachtioServerOptions, 'binary'>;

const LOG_LINES_KEPT = 20;

/**
 * A drachtio-server of the gateway's own: a config written for this run into a private temporary
 * folder (mode 700, the file 600: it holds the admin secret), the admin port on a free loopback port
 * with a random secret that is never logged, SIP on `sipAddress:sipPort` over UDP and TCP. `start()`
 * resolves once both ports answer; `stop()` ends it (SIGTERM, then SIGKILL) and removes the folder.
 * A drachtio that exits on its own is reported to `onExit` with its last log lines.
 */
export class DrachtioServer {
  private readonly logTail: string[] = [];
  private stopping: Promise<void> | undefined;
  private exitListeners: ((exit: DrachtioExit) => void)[] = [];
  private readonly killOnExit = (): void => {
    // The gateway is exiting without stop() (process.exit after a failure): drachtio must not outlive it.
    if (this.running) this.child.kill('SIGKILL');
  };

  private constructor(
    readonly options: DrachtioServerOptions,
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly adminPort: number,
    /** The admin secret (generated here; never logged). */
    readonly secret: string,
  ) {
    process.once('exit', this.killOnExit);
    child.once('exit', (code, signal) => {
      process.off('exit', this.killOnExit);
      if (this.stopping) return;
      const exit = { code, signal, log: [...this.logTail] };
      for (const fn of this.exitListeners) fn(exit);
    });
  }

  /** Starts drachtio-server; throws CG_DRACHTIO_UNAVAILABLE (with its last log lines) when it cannot. */
  static async start(options: Partial<DrachtioServerOptions> & { readonly binary: string }): Promise<DrachtioServer> {
    const o: DrachtioServerOptions = { ...defaultDrachtioServerOptions, ...options };
    if (isIP(o.sipAddress) === 0) throw new CallgateError('CG_CONFIG_INVALID', `SIP address "${o.sipAddress}" is not an IP address`);
    // drachtio reports a taken SIP port only in its log (and exits 0): said plainly here instead.
    await assertSipPortFree(o.sipAddress, o.sipPort);
    const adminPort = await freeTcpPort();
    const secret = randomBytes(24).toString('base64url');
    const dir = await mkdtemp(join(tmpdir(), 'callgate-drachtio-'));
    await chmod(dir, 0o700);
    const file = join(dir, 'drachtio.conf.xml');
    await writeFile(file, drachtioConfigXml({ adminAddress: '127.0.0.1', adminPort, secret, sipAddress: o.sipAddress, sipPort: o.sipPort }), { mode: 0o600 });
    const child = spawn(o.binary, ['-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const server = new DrachtioServer(o, child, dir, adminPort, secret);
    let spawnError: Error | undefined;
    child.once('error', (err) => (spawnError = err));
    server.readLog(child);
    try {
      const deadline = Date.now() + o.startTimeoutMs;
      const tcpHost = o.sipAddress;
      for (;;) {
        if (spawnError || !server.running) {
          throw new CallgateError('CG_DRACHTIO_UNAVAILABLE', `drachtio-server exited at start: ${spawnError?.message ?? server.logTail.slice(-3).join(' | ')}`, { cause: spawnError });
        }
        if ((await accepts('127.0.0.1', adminPort)) && (await accepts(tcpHost, o.sipPort))) break;
        if (Date.now() > deadline) throw new CallgateError('CG_DRACHTIO_UNAVAILABLE', `drachtio-server did not open its ports within ${o.startTimeoutMs} ms: ${server.logTail.slice(-3).join(' | ')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      // Its admin port opens before its SIP stack starts; a stack that fails makes it exit just after.
      await new Promise((r) => setTimeout(r, 50));
      if (!server.running) throw new CallgateError('CG_DRACHTIO_UNAVAILABLE', `drachtio-server exited at start: ${server.logTail.slice(-3).join(' | ')}`);
      return server;
    } catch (err) {
      await server.stop();
      throw err;
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get sipAddress(): string {
    return this.options.sipAddress;
  }

  get sipPort(): number {
    return this.options.sipPort;
  }

  /** Last lines drachtio logged. */
  get recentLog(): readonly string[] {
    return this.logTail;
  }

  /** Called if drachtio exits when it was not asked to. */
  onExit(fn: (exit: DrachtioExit) => void): void {
    this.exitListeners.push(fn);
  }

  /** Ends drachtio (SIGTERM, then SIGKILL) and removes its folder. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      process.off('exit', this.killOnExit);
      const child = this.child;
      if (this.running) {
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), this.options.stopTimeoutMs);
        await exited;
        clearTimeout(timer);
      }
      await rm(this.dir, { recursive: true, force: true });
    })();
    return this.stopping;
  }

  private readLog(child: ChildProcess): void {
    let partial = '';
    const onData = (chunk: Buffer): void => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const raw of lines) {
        // drachtio prefixes each line with its own timestamp; ours has one already.
        const line = raw.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ /, '').trim();
        if (!line) continue;
        this.logTail.push(line);
        if (this.logTail.length > LOG_LINES_KEPT) this.logTail.shift();
        this.options.onLog?.(line);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
  }
}

export interface DrachtioExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Its last log lines. */
  readonly log: readonly string[];
}

async function accepts(host: string, port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = connect(port, host);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

async function freeTcpPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** Binds the SIP port for UDP and TCP a moment, so a taken one is named before drachtio is started. */
async function assertSipPortFree(address: string, port: number): Promise<void> {
  const taken = (proto: string, err: unknown): CallgateError =>
    new CallgateError('CG_DRACHTIO_UNAVAILABLE', `SIP port ${address}:${port}/${proto} is in use (another SIP server or drachtio?): choose another with SIP_PORT, or stop what holds it (${err instanceof Error ? err.message : String(err)})`);
  const udp = createSocket(isIP(address) === 6 ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ address, port, exclusive: true }, () => resolve());
    });
  } catch (err) {
    throw taken('udp', err);
  } finally {
    try {
      udp.close();
    } catch {
      // never bound
    }
  }
  const tcp = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen({ host: address, port, exclusive: true }, () => resolve());
    });
  } catch (err) {
    throw taken('tcp', err);
  } finally {
    await new Promise((r) => tcp.close(r));
  }
}
