import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drachtioConfigXml, findDrachtio } from '../drachtioServer.js';

/**
 * drachtio-server for tests and benchmarks, on free loopback ports (a gateway's own, for `npm start`,
 * is src/sip/drachtioServer.ts). The binary is found as the gateway finds it (`findDrachtio`:
 * DRACHTIO_BIN, `drachtio` on PATH, `../shared/bin/drachtio`); it is never part of this repository.
 * Tests that need it guard through tests/support/tools.ts (skip with one line, or fail under CI=true).
 */
export { findDrachtio };

export const DRACHTIO_BIN = findDrachtio();
export const DRACHTIO_SKIP_REASON = process.env['DRACHTIO_BIN']
  ? `drachtio-server not found at DRACHTIO_BIN=${process.env['DRACHTIO_BIN']} (not an executable file): SIP tests skipped`
  : 'drachtio-server not found (set DRACHTIO_BIN, put `drachtio` on PATH, or keep a build at ../shared/bin/drachtio; it is built outside this repository): SIP tests skipped';

/**
 * `count` distinct free ports: the probe servers are held open together, so the kernel cannot hand the
 * same port out twice (probing one at a time once gave drachtio its admin port as its SIP port too, and
 * it failed to start: "Error calling nta_agent_create").
 */
async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer().listen(0, '127.0.0.1'));
  try {
    await Promise.all(servers.map((server) => once(server, 'listening')));
    return servers.map((server) => (server.address() as { port: number }).port);
  } finally {
    for (const server of servers) server.close();
  }
}

export interface StartDrachtioOptions {
  /** Fixed ports and secret (to restart a drachtio where the last one was); free ones otherwise. */
  readonly adminPort?: number;
  readonly sipPort?: number;
  readonly secret?: string;
  /** Loopback address SIP is served (and sent) from; 127.0.0.1 unless a test needs a second source. */
  readonly address?: string;
  /** Also serve SIP over WebSocket (web phones), on this port or a free one. */
  readonly ws?: boolean | number;
}

export interface RunningDrachtio {
  readonly adminPort: number;
  readonly sipPort: number;
  /** SIP-over-WS port when asked for. */
  readonly wsPort: number | undefined;
  readonly secret: string;
  readonly proc: ChildProcess;
  stop(): Promise<void>;
}

/** Starts drachtio-server on loopback with a config written for this run; resolves once its admin port accepts. */
export async function startDrachtio(options: StartDrachtioOptions = {}, binary: string = DRACHTIO_BIN ?? 'drachtio'): Promise<RunningDrachtio> {
  const dir = await mkdtemp(join(tmpdir(), 'callgate-drachtio-'));
  const [freeAdmin, freeSip, freeWs] = await freePorts(3);
  const adminPort = options.adminPort ?? freeAdmin!;
  const sipPort = options.sipPort ?? freeSip!;
  const wsPort = typeof options.ws === 'number' ? options.ws : options.ws ? freeWs! : undefined;
  const secret = options.secret ?? `test-${Math.random().toString(36).slice(2)}`;
  const address = options.address ?? '127.0.0.1';
  const config = drachtioConfigXml({ adminAddress: '127.0.0.1', adminPort, secret, sipAddress: address, sipPort, wsPort });
  const file = join(dir, 'drachtio.conf.xml');
  await writeFile(file, config);
  const proc = spawn(binary, ['-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`drachtio exited (${proc.exitCode}): ${stderr}`);
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(adminPort, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`drachtio did not open its admin port: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    adminPort,
    sipPort,
    wsPort,
    secret,
    proc,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = once(proc, 'exit');
        proc.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
