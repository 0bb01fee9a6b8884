import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { CallgateError } from '../errors.js';

/**
 * The run command's Redis when none is configured: 127.0.0.1:6379 if something answers there, else a
 * `redis-server` of our own with its data under `<dataDir>/redis` (append-only file on, so tenants
 * survive a restart). A development convenience; production sets REDIS_URL.
 */
export interface LocalRedis {
  readonly url: string;
  /** Set when we started it: stopped with the gateway. */
  readonly process: ChildProcess | undefined;
  stop(): Promise<void>;
}

export function answers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export async function localRedis(dataDir: string, port = 6379): Promise<LocalRedis> {
  const url = `redis://127.0.0.1:${port}`;
  if (await answers('127.0.0.1', port)) return { url, process: undefined, stop: () => Promise.resolve() };
  const dir = join(dataDir, 'redis');
  await mkdir(dir, { recursive: true });
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', '60 1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.once('error', (err) => reject(new CallgateError('CG_REDIS_UNAVAILABLE', `redis-server could not start: ${err.message}`)));
    child.once('exit', (code) => reject(new CallgateError('CG_REDIS_UNAVAILABLE', `redis-server exited with ${code} at start`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('Ready to accept connections')) resolve();
    });
  });
  child.stderr!.resume();
  await ready;
  child.stdout!.resume();
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    // SIGTERM: redis-server flushes its append-only file before it exits.
    child.kill('SIGTERM');
    await exited;
  };
  return { url, process: child, stop };
}
