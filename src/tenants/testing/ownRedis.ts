import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';

/**
 * A Redis server of a test's own, on a free loopback port, for what must not touch the shared one
 * (SCRIPT FLUSH, an outage). Pass the port of a stopped one to start it again at the same address.
 * With `dataDir`, it keeps an append-only file there (fsync on every write), as a production Redis
 * does: killed and started again on the same folder, it comes back with its data.
 */
export async function startRedis(port?: number, options: { dataDir?: string } = {}): Promise<{ url: string; port: number; proc: ChildProcess; stop: () => Promise<void> }> {
  let chosen = port;
  if (chosen === undefined) {
    const probe = createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    chosen = (probe.address() as { port: number }).port;
    probe.close();
  }
  const persistence = options.dataDir ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', options.dataDir] : ['--appendonly', 'no'];
  const proc = spawn('redis-server', ['--port', String(chosen), '--bind', '127.0.0.1', '--save', '', ...persistence], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  await new Promise<void>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`)));
    proc.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('Ready to accept connections')) resolve();
    });
  });
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGKILL');
    await exited;
  };
  return { url: `redis://127.0.0.1:${chosen}`, port: chosen, proc, stop };
}
