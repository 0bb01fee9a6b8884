import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findOnPath } from '../../src/util/executable.js';

/**
 * Debian's coturn (`turnserver`) on 127.0.0.1 for tests, as docs/web-phone.md tells operators to run
 * it: TURN REST credentials (`use-auth-secret` with a `static-auth-secret` made for this run), no TLS,
 * no CLI, a private relay port range, and `allow-loopback-peers`, without which coturn refuses to relay
 * to 127.0.0.1 (every peer of these tests). Its configuration goes in a file of its own (mode 600), so
 * the secret is not on a command line `ps` shows. Tests guard with tests/support/tools.ts ('coturn').
 */
export const TURNSERVER = findOnPath('turnserver');

export interface Coturn {
  readonly port: number;
  /** `turn:127.0.0.1:<port>`, for TURN_URLS. */
  readonly url: string;
  /** The static-auth-secret, for TURN_SECRET. */
  readonly secret: string;
  readonly realm: string;
  /** What coturn has logged so far. */
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** A port free for both UDP and TCP on 127.0.0.1 (coturn listens on both). */
async function freeUdpTcpPort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const udp = createSocket('udp4');
    udp.bind(0, '127.0.0.1');
    await once(udp, 'listening');
    const { port } = udp.address();
    const tcp = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => resolve(true));
    });
    tcp.close();
    udp.close();
    if (ok) return port;
  }
  throw new Error('no port free for both UDP and TCP on 127.0.0.1');
}

/** One STUN Binding request; resolves when coturn answers it. */
async function stunAnswers(port: number, timeoutMs: number): Promise<boolean> {
  const socket = createSocket('udp4');
  try {
    const request = Buffer.alloc(20);
    request.writeUInt16BE(0x0001, 0);
    request.writeUInt32BE(0x2112a442, 4);
    randomBytes(12).copy(request, 8);
    const answered = new Promise<boolean>((resolve) => {
      socket.on('message', (msg) => resolve(msg.length >= 20 && msg.readUInt16BE(0) === 0x0101 && msg.subarray(8, 20).equals(request.subarray(8, 20))));
      setTimeout(() => resolve(false), timeoutMs).unref();
    });
    socket.send(request, port, '127.0.0.1');
    return await answered;
  } finally {
    socket.close();
  }
}

export async function startCoturn(opts: { realm?: string; startTimeoutMs?: number } = {}): Promise<Coturn> {
  if (!TURNSERVER) throw new Error('turnserver not found on PATH (Debian package coturn)');
  const dir = await mkdtemp(join(tmpdir(), 'callgate-coturn-'));
  const port = await freeUdpTcpPort();
  const secret = randomBytes(24).toString('base64url');
  const realm = opts.realm ?? 'callgate.test';
  // 200 relay ports somewhere in 45000–48999: clear of the tests' RTP ranges (20000–30999, 44000–44999).
  const minPort = 45_000 + 200 * randomInt(0, 20);
  const logFile = join(dir, 'turn.log');
  const config = join(dir, 'turnserver.conf');
  await writeFile(
    config,
    [
      `listening-ip=127.0.0.1`,
      `relay-ip=127.0.0.1`,
      `listening-port=${port}`,
      `min-port=${minPort}`,
      `max-port=${minPort + 199}`,
      'use-auth-secret',
      `static-auth-secret=${secret}`,
      `realm=${realm}`,
      'fingerprint',
      'allow-loopback-peers',
      'no-tls',
      'no-dtls',
      'no-cli',
      'no-software-attribute',
      `log-file=${logFile}`,
      'simple-log',
      'verbose',
      `pidfile=${join(dir, 'turnserver.pid')}`,
      `userdb=${join(dir, 'turndb')}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const child: ChildProcess = spawn(TURNSERVER, ['-c', config, '--no-stdout-log'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  let exited = false;
  child.once('exit', () => (exited = true));
  const log = (): Promise<string> => readFile(logFile, 'utf8').catch(() => '');
  const stop = async (): Promise<void> => {
    if (!exited && child.exitCode === null) {
      const gone = once(child, 'exit');
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await gone;
      clearTimeout(killer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (opts.startTimeoutMs ?? 10_000);
  while (!(await stunAnswers(port, 200))) {
    if (exited || Date.now() > deadline) {
      const why = `${stderr}\n${(await log()).slice(-2000)}`.trim();
      await stop();
      throw new Error(`turnserver did not answer STUN on 127.0.0.1:${port}${exited ? ' (it exited)' : ''}: ${why}`);
    }
  }
  return { port, url: `turn:127.0.0.1:${port}`, secret, realm, log, stop };
}
