import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interleavedToMono, quietRoom, recordedMono } from './recording.js';

/**
 * linphone's console client (Debian's `linphone-cli`: linphonec, liblinphone 5.1) as a second,
 * independent softphone for interop tests (baresip is the first: ./Baresip.ts). Each phone is a
 * directory written for the run and used as its HOME (linphonec keeps its zid cache, call history and
 * database there): a `linphonerc` with one account (digest credentials, the gateway as proxy and
 * registrar), SIP and RTP bound to loopback, only the chosen codecs enabled. Sound is files: the
 * microphone plays a quiet room (`play`), and each call's far end is recorded to a WAV file of its own
 * (`record`, set before the call).
 *
 * linphonec reads commands on stdin, one line at a time, and prints its answer and then the next
 * `linphonec> ` prompt. Its reader thread keeps only the last line read, so a second line sent before
 * the first is taken is lost: commands are sent one at a time, each after the previous one's prompt.
 * Events (an incoming call, a call connected or ended) are printed as they happen. What it does on
 * the wire (SIP messages, registration states) is in its debug log (`-d 6 -l <dir>/linphone.log`),
 * which `waitForLog` reads.
 */
export type LinphoneCodec = 'opus' | 'PCMU' | 'PCMA';

export interface LinphoneOptions {
  /** The account's address-of-record user and digest username. */
  readonly username: string;
  readonly password: string;
  /** Where it registers and sends calls: `127.0.0.1:<drachtio's SIP port>`. */
  readonly registrar: string;
  /** The codecs it offers and accepts, in order of preference; every other audio codec is disabled. */
  readonly codecs: readonly LinphoneCodec[];
  /** Seconds a registration is asked for; 0: never registers. */
  readonly expiresS: number;
  /** Answers incoming calls at once (linphonec `-a`). */
  readonly autoAnswer: boolean;
  /** Its RTP ports (keep them off other tests' rtpengine ranges). */
  readonly rtpPorts: { readonly min: number; readonly max: number };
}

/** liblinphone's audio codecs as its default linphonerc lists them (mime, clock rate, channels). */
const AUDIO_CODECS: readonly (readonly [string, number, number])[] = [
  ['opus', 48000, 2],
  ['speex', 16000, 1],
  ['speex', 8000, 1],
  ['PCMU', 8000, 1],
  ['PCMA', 8000, 1],
  ['GSM', 8000, 1],
  ['G722', 8000, 1],
  ['G729', 8000, 1],
  ['speex', 32000, 1],
  ['L16', 44100, 2],
  ['L16', 44100, 1],
];

/** The linphonerc for `options`, SIP on `sipPort` (UDP only). */
export function linphonerc(options: LinphoneOptions, sipPort: number): string {
  const proxy = `sip:${options.registrar}`;
  const wanted = options.codecs.map((c) => AUDIO_CODECS.find(([mime]) => mime === c)!);
  // Codecs missing from the file are added with their default enablement (opus, speex, G.729 on):
  // every known one is listed, the wanted ones first and enabled, the rest disabled.
  const codecs = [...wanted, ...AUDIO_CODECS.filter((c) => !wanted.includes(c))];
  const sections: Record<string, Record<string, string | number>> = {
    sip: {
      bind_address: '127.0.0.1',
      sip_port: sipPort,
      sip_tcp_port: 0,
      sip_tls_port: 0,
      use_ipv6: 0,
      default_proxy: 0,
      // Loopback is all the network there is: register at once, no UPnP.
      register_only_when_network_is_up: 0,
      register_only_when_upnp_is_ok: 0,
      media_encryption: 'none',
      inc_timeout: 30,
    },
    auth_info_0: { username: options.username, userid: options.username, passwd: options.password },
    proxy_0: {
      reg_proxy: proxy,
      reg_identity: `sip:${options.username}@${options.registrar}`,
      reg_expires: options.expiresS,
      reg_sendregister: options.expiresS > 0 ? 1 : 0,
      publish: 0,
      dial_escape_plus: 0,
    },
    rtp: { bind_address: '127.0.0.1', audio_rtp_port: `${options.rtpPorts.min}-${options.rtpPorts.max}` },
    video: { display: 0, capture: 0, automatically_initiate: 0, automatically_accept: 0 },
  };
  codecs.forEach(([mime, rate, channels], i) => {
    sections[`audio_codec_${i}`] = { mime, rate, channels, enabled: i < wanted.length ? 1 : 0 };
  });
  return Object.entries(sections)
    .map(([name, keys]) => [`[${name}]`, ...Object.entries(keys).map(([k, v]) => `${k}=${v}`), ''].join('\n'))
    .join('\n');
}

/** A free UDP port on loopback (linphone's SIP port: it must be known for the binding check). */
async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const { port } = socket.address();
  socket.close();
  return port;
}

const PROMPT = 'linphonec> ';
/** Where linphonec --pipe listens for linphonecsh (one path per user, whoever started it). */
const PIPE_SOCKET = `/tmp/linphonec-${process.getuid?.() ?? 0}`;
/** The phones of this process still running. */
const live = new Set<Linphone>();
/** The longest a phone lives (a test takes seconds). */
const LIFETIME_S = 300;

export class Linphone {
  /** Everything linphonec printed (its console, not the debug log), from the start. */
  output = '';
  private queue: Promise<unknown> = Promise.resolve();
  private recordings = 0;

  private constructor(
    readonly dir: string,
    readonly sipPort: number,
    private readonly proc: ChildProcess,
  ) {
    const keep = (d: Buffer): void => void (this.output += d.toString());
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    process.once('exit', this.killOnExit);
    live.add(this);
  }

  /** The debug log: every SIP message sent and received, the registration and call states. */
  get logFile(): string {
    return join(this.dir, 'linphone.log');
  }

  static async start(options: LinphoneOptions): Promise<Linphone> {
    const dir = await mkdtemp(join(tmpdir(), 'callgate-linphone-'));
    // Where liblinphone keeps its database: without this folder linphonec 5.1 opens no SIP port at all
    // (belle-sip: "No listening point matching"), so it neither registers nor calls.
    await mkdir(join(dir, '.local', 'share', 'linphone'), { recursive: true });
    const sipPort = await freeUdpPort();
    await writeFile(join(dir, 'linphonerc'), linphonerc(options, sipPort));
    await writeFile(join(dir, 'microphone.wav'), quietRoom({ rate: 8000, channels: 1 }, 30));
    // --pipe: linphonec gives up a refused authentication instead of prompting for a password on stdin
    // (the prompt would take the next command as the password). It also listens on /tmp/linphonec-<uid>
    // for linphonecsh, which this driver does not use.
    const args = ['--pipe', '-c', join(dir, 'linphonerc'), '-d', '6', '-l', join(dir, 'linphone.log')];
    if (options.autoAnswer) args.push('-a');
    // Its own process group, under a time limit: linphonec outlives a test process that dies without
    // stopping it (nothing reads its stdin's end of file), and stop() kills the whole group.
    const proc = spawn('timeout', ['--foreground', '-s', 'KILL', String(LIFETIME_S), 'linphonec', ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, HOME: dir },
      cwd: dir,
      detached: true,
    });
    const phone = new Linphone(dir, sipPort, proc);
    try {
      await phone.waitForOutput(PROMPT, 10_000);
      // Files instead of a sound card: a quiet room as the microphone, each call's far end to its own file.
      await phone.command('soundcard use files');
      await phone.command(`play ${join(dir, 'microphone.wav')}`);
    } catch (err) {
      await phone.stop();
      throw err;
    }
    return phone;
  }

  /**
   * Runs a console command (as typed at linphonec's prompt) once the ones before it have run, and
   * resolves with what it printed before its next prompt.
   */
  command(line: string, timeoutMs = 5000): Promise<string> {
    const run = this.queue.then(async () => {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) throw new Error(`linphonec has exited; cannot run ${line}`);
      const since = this.output.length;
      this.proc.stdin!.write(`${line}\n`);
      // Its answer ends with the next prompt, printed when it is ready for the next line.
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const end = this.output.indexOf(PROMPT, since);
        if (end !== -1) return this.output.slice(since, end);
        if (this.proc.exitCode !== null || this.proc.signalCode !== null) throw new Error(`linphonec exited during ${line}:\n${this.output.slice(-2000)}`);
        if (Date.now() > deadline) throw new Error(`linphonec: no answer to ${line} within ${timeoutMs} ms:\n${this.output.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Resolves once linphonec's console output (from `since`) matches `re`. */
  async waitForOutput(re: RegExp | string, timeoutMs = 10_000, since = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rest = this.output.slice(since);
      const m = typeof re === 'string' ? (rest.includes(re) ? re : undefined) : re.exec(rest)?.[0];
      if (m !== undefined) return m;
      if (this.proc.exitCode !== null) throw new Error(`linphonec exited (${this.proc.exitCode}) before ${re}:\n${this.output.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`linphonec: ${re} not in its output within ${timeoutMs} ms:\n${this.output.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Resolves once its debug log matches `re` (a SIP response, a state change). */
  async waitForLog(re: RegExp, timeoutMs = 10_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const log = await readFile(this.logFile, 'latin1').catch(() => '');
      const m = re.exec(log);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`linphonec: ${re} not in its log within ${timeoutMs} ms:\n${log.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Its registration as linphonec reports it (`status register`): registered, or not (yet / refused). */
  async registered(): Promise<boolean> {
    return /^registered,/m.test(await this.command('status register'));
  }

  /** The proxy's registration state (`states proxies`): LinphoneRegistrationOk, …Progress, …Failed, …Cleared. */
  async registrationState(): Promise<string> {
    return /LinphoneRegistration\w+/.exec(await this.command('states proxies'))?.[0] ?? 'none';
  }

  /** Waits for the registration to succeed; throws with its state and the log's last lines otherwise. */
  async waitRegistered(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.registered())) {
      if (Date.now() > deadline) {
        const log = await readFile(this.logFile, 'latin1').catch(() => '');
        throw new Error(`linphonec did not register within ${timeoutMs} ms (${await this.registrationState()}):\n${log.slice(-3000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * Names a new file (call-1.wav, call-2.wav, …) for the far end of the next call: linphonec records
   * every call to the file last named, so each call placed or expected gets its own.
   */
  async expectCall(): Promise<string> {
    const file = join(this.dir, `call-${++this.recordings}.wav`);
    await this.command(`record ${file}`);
    return file;
  }

  /** Calls `uri`; resolves once linphonec has placed the call, with its console id and the file its audio is recorded to. */
  async dial(uri: string): Promise<{ id: number; recording: string }> {
    const recording = await this.expectCall();
    const answer = await this.command(`call ${uri}`);
    const id = /assigned id (\d+)/.exec(answer);
    if (!id) throw new Error(`linphonec did not place the call to ${uri}: ${answer}`);
    return { id: Number(id[1]), recording };
  }

  /** Hangs up its current call and waits for linphonec to report it ended. */
  async hangup(timeoutMs = 5000): Promise<void> {
    const since = this.output.length;
    await this.command('terminate');
    await this.waitForOutput(/Call \d+ with .* ended/, timeoutMs, since);
  }

  /** The SIP Call-IDs of the INVITEs it sent or received, oldest first (from its debug log). */
  async inviteCallIds(): Promise<string[]> {
    const log = await readFile(this.logFile, 'latin1').catch(() => '');
    const ids: string[] = [];
    for (const m of log.matchAll(/^INVITE \S+ SIP\/2\.0\r?\n(?:[^\r\n]+\r?\n)*?Call-ID: *(\S+)/gm)) if (!ids.includes(m[1]!)) ids.push(m[1]!);
    return ids;
  }

  /**
   * What the phone heard in `file` so far, as 16-bit mono samples with their rate (the codec's clock
   * rate: 48 kHz for Opus, 8 kHz for G.711); undefined before any audio. mediastreamer's recorder
   * (MSFileRec) leaves the 44 bytes of the WAV header zero until the file is closed at the end of the
   * call: while the call is up the format is the one its log says it configured the recorder with.
   */
  async heard(file: string): Promise<{ samples: Int16Array; sampleRate: number } | undefined> {
    const bytes = await readFile(file).catch(() => undefined);
    if (!bytes || bytes.length <= 44) return undefined;
    if (bytes.toString('latin1', 0, 4) === 'RIFF') return recordedMono(bytes);
    const log = await readFile(this.logFile, 'latin1').catch(() => '');
    const opened = log.lastIndexOf(`MSFileRec: recording into ${file}`);
    if (opened === -1) return undefined;
    const format = /-->MSFileRec:\S+ from rate \[\d+\] to rate \[(\d+)\] and from channel \[\d+\] to channel \[(\d+)\]/.exec(log.slice(opened));
    if (!format) return undefined;
    return interleavedToMono(bytes.subarray(44), Number(format[2]), Number(format[1]));
  }

  /** Un-registers (REGISTER with Expires: 0), as a phone switched off does, and waits for the answer. */
  async unregister(timeoutMs = 5000): Promise<void> {
    await this.command('unregister');
    await this.waitForLog(/to \[LinphoneRegistrationCleared\]/, timeoutMs);
  }

  /**
   * Ends the phone at once (calls, registration and all: un-register first with `unregister`).
   * linphonec's own `quit` hangs in --pipe mode after hanging up (it waits for its linphonecsh
   * listener), so the process group is killed.
   */
  async stop(): Promise<void> {
    process.off('exit', this.killOnExit);
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = once(this.proc, 'exit');
      this.killOnExit();
      await exited;
    }
    live.delete(this);
    // Its linphonecsh socket outlives a killed linphonec; the last phone of this process removes it
    // (each linphonec --pipe replaces the one before it, so it is no one else's while ours run).
    if (live.size === 0) await rm(PIPE_SOCKET, { force: true });
    await rm(this.dir, { recursive: true, force: true });
  }

  private readonly killOnExit = (): void => {
    try {
      process.kill(-this.proc.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
}
