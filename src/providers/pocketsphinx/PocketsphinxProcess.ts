import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { constants, openSync, readFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CallgateError } from '../../errors.js';

/**
 * One `pocketsphinx_continuous` decoding raw 16 kHz s16le mono from a FIFO, printing one line per
 * utterance it hears. This class owns the mechanics only: start, feed, "has it processed everything",
 * stop. What the lines mean is the stream's business.
 *
 * Why a FIFO: the CLI `fopen`s its `-infile`, and Node gives a child a socketpair, not a pipe, for
 * stdin, which `/dev/stdin` cannot be opened on. `sh -c 'cat | pocketsphinx_continuous -infile
 * /dev/stdin'` works too but leaves two more processes to account for. With a FIFO there is exactly one
 * process, and it cannot outlive us: Node holds the only writer, so when Node goes away (even by
 * SIGKILL) the decoder reads end-of-file and exits by itself.
 *
 * Why /proc: the CLI says nothing when it has consumed its input, and nothing at all for audio without
 * speech, so there is no output to wait for. But `/proc/<pid>/io` counts the bytes it has read
 * (`rchar`), and a decoder that has read up to a point and then sleeps (`S` in `/proc/<pid>/stat`) or
 * reads further has decoded everything before that point and written its lines. Linux only.
 */

export interface PocketsphinxProcessOptions {
  /** Executable name or path. */
  readonly binary: string;
  /** Decoder arguments, without `-infile` (this class adds its FIFO). */
  readonly args: readonly string[];
  /** Directory for the FIFO; the owner removes it. */
  readonly dir: string;
  /** How long loading the models may take before the start counts as failed. */
  readonly startTimeoutMs: number;
  /** Audio queued in Node but not yet read by the decoder beyond which it counts as stuck. */
  readonly maxBacklogBytes: number;
}

export interface PocketsphinxProcessEvents {
  /** One line of stdout: an utterance's hypothesis. */
  line: [line: string];
  /** The decoder died or became unusable; emitted once, never after `stop()`. */
  failed: [err: CallgateError];
}

/** The decoder prints this after loading its models, just before it opens its input. */
const READY_MARKER = 'COMPILED ON';
/** The end of stderr kept for error details: the decoder's last words are its reason. */
const STDERR_TAIL_CHARS = 600;
/** How long `stop()` waits for the exit of a killed decoder before giving up on it. */
const STOP_WAIT_MS = 2000;
/** Input is read in blocks of 2048 samples; a partial block waits for more audio. */
export const READ_BLOCK_BYTES = 4096;

const execFileAsync = promisify(execFile);

export class PocketsphinxProcess extends EventEmitter<PocketsphinxProcessEvents> {
  /** Bytes handed to the FIFO so far. */
  private written = 0;
  /** `rchar` once the models were loaded: every byte read after it came from the FIFO. */
  private baseline = 0;
  private stderrTail = '';
  private stdoutPartial = '';
  private stopping = false;
  private failure: CallgateError | undefined;
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    private readonly pidValue: number,
    private readonly input: Socket,
    private readonly options: PocketsphinxProcessOptions,
  ) {
    super();
    // From the start: an 'error' without a listener would throw out of the event loop.
    input.on('error', (err) => {
      if (!this.stopping) this.fail(new CallgateError('CG_STT_FAILED', 'cannot write audio to pocketsphinx', { cause: err }));
    });
    child.on('error', (err) => {
      if (!this.stopping) this.fail(new CallgateError('CG_STT_FAILED', 'pocketsphinx process error', { cause: err }));
    });
    this.exited =
      child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** Process id, which is also its process group id. */
  get pid(): number {
    return this.pidValue;
  }

  /** The first failure, if any; the process is unusable once set. */
  get error(): CallgateError | undefined {
    return this.failure;
  }

  /**
   * Spawns the decoder and resolves once its models are loaded. Rejects with CG_STT_UNAVAILABLE when the
   * binary is missing, exits during start-up (bad model path, bad grammar …), takes longer than
   * `startTimeoutMs`, or its /proc accounting cannot be read.
   */
  static async start(options: PocketsphinxProcessOptions): Promise<PocketsphinxProcess> {
    const fifo = join(options.dir, 'audio.fifo');
    try {
      await execFileAsync('mkfifo', ['-m', '600', fifo]);
    } catch (err) {
      throw new CallgateError('CG_STT_UNAVAILABLE', 'cannot create the pocketsphinx input FIFO', { cause: err });
    }
    // Read-write and non-blocking: opening does not wait for a reader, and writes never block the event
    // loop. Holding a read end as well means a dead decoder cannot turn our writes into EPIPE/SIGPIPE.
    let input: Socket;
    try {
      input = new Socket({ fd: openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK), readable: false, writable: true });
    } catch (err) {
      throw new CallgateError('CG_STT_UNAVAILABLE', 'cannot open the pocketsphinx input FIFO', { cause: err });
    }

    const child = spawn(options.binary, [...options.args, '-infile', fifo], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // Own process group: `stop()` signals the group, so nothing the decoder might start survives it.
      detached: true,
    });
    const spawned = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid as number));
      child.once('error', (err) => reject(err));
    }).catch((err: unknown) => {
      input.destroy();
      throw new CallgateError('CG_STT_UNAVAILABLE', `cannot run ${options.binary}`, { cause: err, details: { binary: options.binary } });
    });

    const proc = new PocketsphinxProcess(child, spawned, input, options);
    try {
      await proc.waitReady();
      try {
        proc.baseline = proc.readCounters().rchar;
      } catch (err) {
        throw new CallgateError('CG_STT_UNAVAILABLE', `cannot read /proc/${spawned}/io (the provider needs Linux procfs)`, { cause: err });
      }
    } catch (err) {
      await proc.stop();
      throw err;
    }
    proc.watch();
    return proc;
  }

  /** Queues audio for the decoder (s16le bytes). Never blocks; fails the process if it falls behind. */
  write(bytes: Uint8Array): void {
    if (this.failure || this.stopping || bytes.length === 0) return;
    this.input.write(bytes);
    this.written += bytes.length;
    if (this.input.writableLength > this.options.maxBacklogBytes) {
      const backlogBytes = this.input.writableLength;
      this.fail(new CallgateError('CG_STT_FAILED', 'pocketsphinx is not keeping up with the audio', { details: { backlogBytes } }));
    }
  }

  /** Bytes written so far; the decoder only acts on whole `READ_BLOCK_BYTES` blocks. */
  get bytesWritten(): number {
    return this.written;
  }

  /**
   * True when the decoder has decoded the first `bytes` bytes written (a multiple of READ_BLOCK_BYTES)
   * and printed every line they end: it has read them and then either asked for more (read past them)
   * or sleeps waiting for more — it only reads again once the previous block is processed. Printed lines
   * may still be in the pipe: let the event loop turn before relying on having received them.
   */
  hasProcessed(bytes: number): boolean {
    if (this.failure || this.stopping) return false;
    let counters: { rchar: number; state: string };
    try {
      counters = this.readCounters();
    } catch {
      // Gone between exit and our reading: the exit handler reports it.
      return false;
    }
    const read = counters.rchar - this.baseline;
    return read > bytes || (read === bytes && counters.state === 'S');
  }

  /** Kills the process group and waits for the exit. Idempotent; never rejects. */
  async stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.input.destroy();
      if (this.child.exitCode === null && this.child.signalCode === null) {
        try {
          process.kill(-this.pidValue, 'SIGKILL');
        } catch {
          // Already gone (ESRCH): nothing to kill.
        }
      }
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_WAIT_MS)))]);
    clearTimeout(timer);
  }

  private readCounters(): { rchar: number; state: string } {
    // procfs files are generated in memory: a synchronous read cannot stall on a disk.
    const io = readFileSync(`/proc/${this.pidValue}/io`, 'latin1');
    const rchar = /^rchar:\s*(\d+)/m.exec(io);
    const stat = readFileSync(`/proc/${this.pidValue}/stat`, 'latin1');
    // The command name may contain spaces and parentheses; the state follows the last ')'.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (!rchar?.[1] || state === '') throw new Error(`unreadable /proc/${this.pidValue} accounting`);
    return { rchar: Number(rchar[1]), state };
  }

  private waitReady(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        const detail = `pocketsphinx did not load its models within ${this.options.startTimeoutMs} ms`;
        reject(new CallgateError('CG_STT_UNAVAILABLE', detail, { details: { stderr: this.stderrTail } }));
      }, this.options.startTimeoutMs);
      const onData = (chunk: Buffer): void => {
        this.appendStderr(chunk);
        if (this.stderrTail.includes(READY_MARKER)) {
          cleanup();
          resolve();
        }
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
        cleanup();
        const details = { code, signal, stderr: this.stderrTail };
        reject(new CallgateError('CG_STT_UNAVAILABLE', 'pocketsphinx exited while starting', { details }));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        this.child.stderr?.off('data', onData);
        this.child.off('exit', onExit);
      };
      this.child.stderr?.on('data', onData);
      this.child.once('exit', onExit);
    });
  }

  private watch(): void {
    this.child.stderr?.on('data', (chunk: Buffer) => this.appendStderr(chunk));
    this.child.stdout?.setEncoding('utf8');
    this.child.stdout?.on('data', (chunk: string) => {
      const lines = (this.stdoutPartial + chunk).split('\n');
      this.stdoutPartial = lines.pop() ?? '';
      for (const line of lines) this.emit('line', line);
    });
    this.child.once('exit', (code, signal) => {
      if (this.stopping) return;
      this.fail(new CallgateError('CG_STT_FAILED', 'pocketsphinx exited', { details: { code, signal, stderr: this.stderrTail } }));
    });
  }

  private appendStderr(chunk: Buffer): void {
    this.stderrTail = (this.stderrTail + chunk.toString('latin1')).slice(-STDERR_TAIL_CHARS);
  }

  private fail(err: CallgateError): void {
    if (this.failure || this.stopping) return;
    this.failure = err;
    this.emit('failed', err);
  }
}
