import { EventEmitter } from 'node:events';
import { rm } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { CallgateError } from '../../errors.js';
import { PIPELINE_RATE } from '../../media/types.js';
import type { SttStream, SttStreamEvents } from '../types.js';
import { heardWords, interpretHypothesis, type PhraseGrammar } from './grammar.js';
import type { PocketsphinxOptions } from './options.js';
import { READ_BLOCK_BYTES, type PocketsphinxProcess } from './PocketsphinxProcess.js';
import type { TelephoneBand } from './TelephoneBand.js';

/** Silence pushed at `finalize()` beyond `-vad_postspeech`: the decoder's VAD decides a little late. */
const FINALIZE_MARGIN_MS = 200;
const SAMPLES_PER_MS = PIPELINE_RATE / 1000;

/** Lets the event loop turn: output the decoder wrote before going idle is then delivered. */
function nextLoopTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export interface PocketsphinxStreamParts {
  readonly proc: PocketsphinxProcess;
  /** The stream's scratch directory (FIFO, grammar, dictionary), removed on close. */
  readonly dir: string;
  readonly grammar: PhraseGrammar | undefined;
  readonly band: TelephoneBand | undefined;
  /** The decoder's `-vad_postspeech`, in ms: how much silence ends an utterance. */
  readonly postspeechMs: number;
  readonly options: PocketsphinxOptions;
  readonly log: Logger | undefined;
}

/**
 * One caller's audio going into one pocketsphinx process. Every line the decoder prints is a final
 * result (it has no interim ones); `finalize()` makes it end the current utterance, waits until it has
 * decoded everything pushed, and returns what it heard since the previous `finalize()`.
 */
export class PocketsphinxStream extends EventEmitter<SttStreamEvents> implements SttStream {
  private finals: string[] = [];
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Serialises `finalize()` calls: each one owns the results up to its own idle point. */
  private finalizing: Promise<unknown> = Promise.resolve();
  private readonly silence: Int16Array;
  private readonly proc: PocketsphinxProcess;
  private readonly dir: string;
  private readonly grammar: PhraseGrammar | undefined;
  private readonly band: TelephoneBand | undefined;
  private readonly options: PocketsphinxOptions;
  private readonly log: Logger | undefined;

  constructor(parts: PocketsphinxStreamParts) {
    super();
    const proc = parts.proc;
    this.proc = proc;
    this.dir = parts.dir;
    this.grammar = parts.grammar;
    this.band = parts.band;
    this.options = parts.options;
    this.log = parts.log;
    this.silence = new Int16Array((parts.postspeechMs + FINALIZE_MARGIN_MS) * SAMPLES_PER_MS);
    proc.on('line', (line) => this.onLine(line));
    proc.on('failed', (err) => {
      this.log?.warn({ code: err.code, details: err.details }, 'pocketsphinx failed');
      // An 'error' without listeners would throw and take the process down with one call's engine; the
      // failure also reaches the owner through finalize().
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
  }

  /** The decoder's process id (and process group id). */
  get pid(): number {
    return this.proc.pid;
  }

  push(frame: Int16Array): void {
    if (this.closed || this.proc.error) return;
    if (this.band) {
      this.write(this.band.process(frame));
    } else {
      // Copied: the socket keeps the bytes until the FIFO takes them, and callers reuse frame buffers.
      this.write(frame.slice());
    }
  }

  /**
   * Ends the turn at this call: the silence that makes the decoder end its utterance goes in now, so
   * audio pushed afterwards (the caller talking on) belongs to the next turn and does not delay this one.
   */
  finalize(): Promise<string> {
    const deadline = performance.now() + this.options.finalizeTimeoutMs;
    const end = this.closed || this.proc.error ? undefined : this.endUtterance();
    const run = this.finalizing.then(() => this.collect(end, deadline));
    this.finalizing = run.catch(() => undefined);
    return run;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      await this.proc.stop();
      await rm(this.dir, { recursive: true, force: true });
    })();
    return this.closing;
  }

  /**
   * Pushes enough silence for the decoder's VAD to end the utterance, then up to a whole read block (it
   * reads 2048 samples at a time and would sit on a partial one). Returns where that audio ends, in bytes.
   */
  private endUtterance(): number {
    this.push(this.silence);
    const partial = this.proc.bytesWritten % READ_BLOCK_BYTES;
    if (partial !== 0) this.write(new Int16Array((READ_BLOCK_BYTES - partial) / 2));
    return this.proc.bytesWritten;
  }

  /** Waits until the decoder has processed up to `end`, then takes the finals collected so far. */
  private async collect(end: number | undefined, deadline: number): Promise<string> {
    this.throwIfUnusable();
    if (end === undefined) throw new CallgateError('CG_STT_FAILED', 'the stream was unusable when finalize() was called');
    while (!this.proc.hasProcessed(end)) {
      this.throwIfUnusable();
      if (performance.now() >= deadline) {
        const timeoutMs = this.options.finalizeTimeoutMs;
        throw new CallgateError('CG_STT_TIMEOUT', `pocketsphinx did not catch up within ${timeoutMs} ms`, { details: { timeoutMs } });
      }
      await delay(this.options.pollIntervalMs);
    }
    // The lines were written before the decoder moved on; two turns of the loop deliver them (the pipe is
    // read, then its data emitted).
    await nextLoopTurn();
    await nextLoopTurn();
    this.throwIfUnusable();
    const text = this.finals.join(' ');
    this.finals = [];
    return text;
  }

  private write(pcm: Int16Array): void {
    this.proc.write(new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength));
  }

  private onLine(line: string): void {
    if (this.grammar) {
      const text = interpretHypothesis(line, this.grammar);
      const heard = heardWords(line);
      if (text !== '') this.finals.push(text);
      if (heard !== '' && heard !== text) this.emit('result', { text, final: true, heard });
      else if (text !== '') this.emit('result', { text, final: true });
      return;
    }
    const text = line.trim().replace(/\s+/g, ' ');
    if (text === '') return;
    this.finals.push(text);
    this.emit('result', { text, final: true });
  }

  private throwIfUnusable(): void {
    if (this.closed) throw new CallgateError('CG_STT_FAILED', 'the stream is closed');
    const failure = this.proc.error;
    if (failure) throw failure;
  }
}
