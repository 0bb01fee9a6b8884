import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findOnPath, isExecutable } from '../../util/executable.js';

/**
 * drachtio-server for tests and local runs. It is in no package registry, so it is never part of
 * this repository: tests look for its binary in this order — `DRACHTIO_BIN` (and only there when it is
 * set: a wrong path is reported, never silently replaced by another binary), `drachtio` on PATH, then
 * `../shared/bin/drachtio` beside the checkout (where this project's machines keep a build). Tests that
 * need it guard through tests/support/tools.ts (skip with one line, or fail under CI=true).
 */
const CHECKOUT = fileURLToPath(new URL('../../../', import.meta.url));

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

export function findDrachtio(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const explicit = env['DRACHTIO_BIN'];
  if (explicit) return isExecutable(explicit) ? explicit : undefined;
  return findOnPath('drachtio', env) ?? sharedDrachtioCandidates().find(isExecutable);
}

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
  const wsContact = wsPort === undefined ? '' : `<contact>sip:${address}:${wsPort};transport=ws</contact>`;
  const config = `<drachtio>
  <admin port="${adminPort}" secret="${secret}">127.0.0.1</admin>
  <sip>
    <contacts><contact>sip:${address}:${sipPort};transport=udp,tcp</contact>${wsContact}</contacts>
  </sip>
  <logging><console/><loglevel>warning</loglevel><sofia-loglevel>0</sofia-loglevel></logging>
</drachtio>
`;
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
