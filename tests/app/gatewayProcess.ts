import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BrowserPeer } from '../../src/webrtc/testing/BrowserPeer.js';
import { pollUntil, within } from '../../src/util/testing/wait.js';

/**
 * `npm start`'s program (src/cli/start.ts) as a real process for the tests under tests/app: started
 * with an environment, found ready by its banner, and killed with its whole process tree (it may run
 * rtpengine and redis-server) so a failed test leaves nothing running.
 */
const ROOT = new URL('../../', import.meta.url).pathname;

export interface GatewayProcess {
  readonly proc: ChildProcess;
  /** http://localhost:<port> */
  readonly base: string;
  readonly output: () => string;
  readonly dataDir: string;
}

export class GatewayProcesses {
  private readonly running: GatewayProcess[] = [];
  private readonly dirs: string[] = [];

  constructor(private readonly env: Record<string, string>) {}

  /**
   * `args`: what follows `npm start --` (`--no-demo`). `viaNpm`: through `npm start` itself (its
   * prestart hook and npm's own output included), as a newcomer runs it.
   */
  async start(env: Record<string, string> = {}, args: readonly string[] = [], viaNpm = false): Promise<GatewayProcess> {
    const dataDir = await mkdtemp(join(tmpdir(), 'callgate-start-'));
    this.dirs.push(dataDir);
    // As `npm start` runs it: one node process with tsx's loader (not tsx's CLI, whose signal relay
    // SIGKILLs a child that is busy for 30 ms when SIGTERM comes, so the gateway would not drain).
    const [command, argv] = viaNpm ? ['npm', ['start', '--', ...args]] : [process.execPath, ['--import', 'tsx', 'src/cli/start.ts', ...args]];
    const proc = spawn(command, argv, {
      cwd: ROOT,
      env: { ...process.env, VITEST: '', LOG_LEVEL: 'info', HTTP_HOST: '127.0.0.1', HTTP_PORT: '0', CALLGATE_DATA_DIR: dataDir, ...this.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    // Tracked before its banner: one that never prints it (a slow install in npm's prestart, a crash
    // loop) is still killed by stopAll, not left running after the test.
    const r = { proc, base: '', output: () => out, dataDir };
    this.running.push(r);
    const base = await pollUntil(() => /callgate is running at (http:\/\/localhost:\d+)/.exec(out)?.[1], (v) => v !== undefined || proc.exitCode !== null, 30_000);
    if (!base) {
      this.kill(r);
      throw new Error(`no start banner; output:\n${out}`);
    }
    r.base = base;
    return r;
  }

  /** SIGKILL to the program and everything it started: what an OOM killer or a power cut does. */
  kill(gw: GatewayProcess): void {
    if (gw.proc.exitCode !== null || gw.proc.pid === undefined) return;
    for (const [pid] of descendants(gw.proc.pid).reverse()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    gw.proc.kill('SIGKILL');
  }

  async stopAll(): Promise<void> {
    for (const r of this.running) this.kill(r);
    for (const d of this.dirs) await rm(d, { recursive: true, force: true });
  }
}

export async function exitOf(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
  const [code] = (await once(proc, 'exit')) as [number | null];
  return code;
}

/** Every process below `pid`, depth first, as [pid, command name]. */
export function descendants(pid: number): [number, string][] {
  const rows = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,comm='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .map(([p, pp, comm]) => ({ pid: Number(p), ppid: Number(pp), comm: comm ?? '' }));
  const out: [number, string][] = [];
  const walk = (parent: number): void => {
    for (const r of rows.filter((x) => x.ppid === parent)) {
      out.push([r.pid, r.comm]);
      walk(r.pid);
    }
  };
  walk(pid);
  return out;
}

/** A browser call as the web phone makes it: a token for the call URL, then the offer. Resolves once connected. */
export async function webCall(base: string, slug = 'demo', name = 'web-call'): Promise<{ peer: BrowserPeer; callId: string }> {
  const origin = base;
  const tokenReply = await fetch(`${base}/v1/call-urls/${slug}/token`, { method: 'POST', headers: { origin } });
  if (tokenReply.status !== 201) throw new Error(`token: ${tokenReply.status} ${await tokenReply.text()}`);
  const { token } = (await tokenReply.json()) as { token: string };
  const peer = new BrowserPeer({ name, dataChannel: true, sampleRate: 16000 });
  try {
    const offer = await fetch(`${base}/v1/webrtc/offer`, { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: JSON.stringify({ token, sdp: await peer.createOffer() }) });
    if (offer.status !== 201) throw new Error(`offer: ${offer.status} ${await offer.text()}`);
    const answer = (await offer.json()) as { sdp: string; callId: string };
    await peer.setAnswer(answer.sdp);
    await within(peer.connected, 10_000, 'DTLS-SRTP to the gateway');
    return { peer, callId: answer.callId };
  } catch (err) {
    peer.close();
    throw err;
  }
}
