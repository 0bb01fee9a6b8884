import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quietRoom, recordedMono } from './recording.js';

/**
 * baresip (Debian's `baresip`, 1.0) as a softphone for interop tests: a config directory written for
 * the run (loopback only), one account with digest credentials, `aufile` as the microphone (a quiet
 * room: baresip 1.0's aufile wants the first codec's own rate and channels), and the `sndfile` filter recording each call both ways to WAV files in that
 * directory (`dump-…-dec.wav` is what the phone heard). It is driven through its `ctrl_tcp` module:
 * netstring-framed JSON commands (`dial`, `hangup`, …) and the events it reports (`REGISTER_OK`,
 * `CALL_ESTABLISHED`, `CALL_CLOSED`, …).
 */
export interface BaresipOptions {
  /** The account's AOR user and digest credentials. */
  readonly username: string;
  readonly password: string;
  /** Where it registers (and sends calls): `127.0.0.1:<drachtio's SIP port>`. */
  readonly registrar: string;
  /** Codecs in order of preference, as baresip names them (`pcmu`, `opus/48000/2`). */
  readonly codecs: readonly string[];
  /** Seconds between registrations; 0: never registers. */
  readonly regintS: number;
  /** `auto`: answers incoming calls at once. */
  readonly answermode: 'manual' | 'auto';
  /** Its RTP ports (keep them off other tests' rtpengine ranges). */
  readonly rtpPorts: { readonly min: number; readonly max: number };
}

export interface BaresipEvent {
  readonly type: string;
  readonly class?: string;
  readonly param?: string;
  readonly peeruri?: string;
  readonly id?: string;
  readonly [key: string]: unknown;
}

/** Free TCP/UDP ports on loopback (probed together so none is handed out twice). */
async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer().listen(0, '127.0.0.1'));
  try {
    await Promise.all(servers.map((s) => once(s, 'listening')));
    return servers.map((s) => (s.address() as { port: number }).port);
  } finally {
    for (const s of servers) s.close();
  }
}

export class Baresip {
  readonly events: BaresipEvent[] = [];
  private readonly waiters = new Set<{ test: (e: BaresipEvent) => boolean; resolve: (e: BaresipEvent) => void }>();
  private buffer = Buffer.alloc(0);
  private tokens = 0;
  private readonly responses = new Map<string, (r: { ok: boolean; data: string }) => void>();
  /** baresip's own output, last 8 KiB (for a failure message). */
  log = '';

  private constructor(
    readonly dir: string,
    readonly sipPort: number,
    private readonly proc: ChildProcess,
    private readonly ctrl: Socket,
  ) {
    ctrl.on('data', (d: Buffer) => this.onData(d));
  }

  static async start(options: BaresipOptions): Promise<Baresip> {
    const dir = await mkdtemp(join(tmpdir(), 'callgate-baresip-'));
    const [sipPort, ctrlPort] = await freePorts(2);
    const microphone = join(dir, 'microphone.wav');
    await writeFile(microphone, quietRoom(/^opus/i.test(options.codecs[0] ?? '') ? { rate: 48000, channels: 2 } : { rate: 8000, channels: 1 }, 30));
    // Only what the test needs: no sound card (alsa's null device plays nothing), no UI, loopback only.
    const config = [
      'poll_method epoll',
      `sip_listen 127.0.0.1:${sipPort}`,
      'net_interface 127.0.0.1',
      `audio_source aufile,${microphone}`,
      'audio_player alsa,null',
      'audio_alert alsa,null',
      'module_path /usr/lib/baresip/modules',
      'module g711.so',
      'module opus.so',
      'module aufile.so',
      'module alsa.so',
      'module sndfile.so',
      'module_tmp account.so',
      'module_app menu.so',
      'module_app ctrl_tcp.so',
      `ctrl_tcp_listen 127.0.0.1:${ctrlPort}`,
      `snd_path ${dir}`,
      'opus_bitrate 28000',
      `rtp_ports ${options.rtpPorts.min}-${options.rtpPorts.max}`,
      '',
    ].join('\n');
    await writeFile(join(dir, 'config'), config);
    const params = [`auth_pass=${options.password}`, `regint=${options.regintS}`, `answermode=${options.answermode}`, `audio_codecs=${options.codecs.join(',')}`];
    await writeFile(join(dir, 'accounts'), `<sip:${options.username}@${options.registrar}>;${params.join(';')}\n`);
    await writeFile(join(dir, 'contacts'), '');
    const proc = spawn('baresip', ['-f', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const keep = (d: Buffer): void => void (log = (log + d.toString()).slice(-8192));
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`baresip exited (${proc.exitCode}): ${log}`);
      const socket = await new Promise<Socket | undefined>((resolve) => {
        const s = connect(ctrlPort!, '127.0.0.1');
        s.once('connect', () => resolve(s));
        s.once('error', () => resolve(undefined));
      });
      if (socket) {
        const b = new Baresip(dir, sipPort!, proc, socket);
        proc.stdout!.off('data', keep);
        proc.stderr!.off('data', keep);
        b.log = log;
        const more = (d: Buffer): void => void (b.log = (b.log + d.toString()).slice(-8192));
        proc.stdout!.on('data', more);
        proc.stderr!.on('data', more);
        return b;
      }
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`baresip did not open its control port: ${log}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Netstrings: `<length>:<json>,`. */
  private onData(d: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, d]);
    for (;;) {
      const colon = this.buffer.indexOf(0x3a);
      if (colon === -1) return;
      const length = Number(this.buffer.subarray(0, colon).toString());
      if (this.buffer.length < colon + 1 + length + 1) return;
      const body = this.buffer.subarray(colon + 1, colon + 1 + length).toString();
      this.buffer = this.buffer.subarray(colon + 1 + length + 1);
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(body) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (msg['event']) {
        const e = msg as unknown as BaresipEvent;
        this.events.push(e);
        for (const w of [...this.waiters]) {
          if (w.test(e)) {
            this.waiters.delete(w);
            w.resolve(e);
          }
        }
      } else if (msg['response'] && typeof msg['token'] === 'string') {
        this.responses.get(msg['token'])?.({ ok: msg['ok'] === true, data: String(msg['data'] ?? '') });
        this.responses.delete(msg['token']);
      }
    }
  }

  /** Runs a baresip command (as typed after `/` in its menu) and resolves with its answer. */
  command(command: string, params = ''): Promise<{ ok: boolean; data: string }> {
    const token = String(++this.tokens);
    const body = JSON.stringify({ command, params, token });
    this.ctrl.write(`${Buffer.byteLength(body)}:${body},`);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`baresip command ${command} got no answer`)), 5000);
      this.responses.set(token, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
  }

  /**
   * Resolves once baresip's own output (from its start) matches `re`. Registration happens as it
   * starts, before the control connection is up, so its outcome is read here ("200 OK () [1 binding]",
   * "403 Forbidden"), not from events.
   */
  async waitForLog(re: RegExp, timeoutMs = 10_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.log);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`baresip: ${re} not in its output within ${timeoutMs} ms:\n${this.log.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The first event (already seen since `since`, or still to come) that passes `test`. */
  waitFor(test: (e: BaresipEvent) => boolean, timeoutMs = 10_000, since = 0): Promise<BaresipEvent> {
    const seen = this.events.slice(since).find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = {
        test,
        resolve: (e: BaresipEvent) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`baresip: no matching event within ${timeoutMs} ms; events: ${this.events.map((e) => e.type).join(', ')}\n${this.log.slice(-3000)}`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /**
   * What the phone heard on each call so far (the sndfile filter's decoder dumps, oldest first), as
   * mono 16-bit samples with their rate: Opus is dumped at 48 kHz stereo, G.711 at 8 kHz mono.
   */
  async heard(): Promise<{ file: string; samples: Int16Array; sampleRate: number }[]> {
    const names = (await readdir(this.dir)).filter((f) => /^dump-.*-dec\.wav$/.test(f));
    const files = await Promise.all(names.map(async (f) => ({ f, bytes: await readFile(join(this.dir, f)) })));
    return files.map(({ f, bytes }) => ({ file: f, ...recordedMono(bytes) }));
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = once(this.proc, 'exit');
      // `quit` un-registers first (REGISTER with Expires: 0), as a phone switched off does.
      await this.command('quit').catch(() => undefined);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    }
    this.ctrl.destroy();
    await rm(this.dir, { recursive: true, force: true });
  }
}
