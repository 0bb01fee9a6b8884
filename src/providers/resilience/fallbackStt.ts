import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { CallgateError } from '../../errors.js';
import { PIPELINE_RATE } from '../../media/types.js';
import type { SttProvider, SttStream, SttStreamEvents, SttStreamOptions } from '../types.js';
import { attempts, recordFailure, recordFallback, type ChainContext, type ChainLink } from './chain.js';

export interface FallbackSttOptions {
  /** Caller audio kept since the last final result, to replay into the next provider if this one fails. */
  readonly replayMaxMs: number;
}

export const defaultFallbackSttOptions = {
  /** 30 s: longer turns than this are rare on a phone line; the tail is what matters. */
  replayMaxMs: 30_000,
} as const satisfies FallbackSttOptions;

/**
 * An STT chain. The stream opens on the first provider that connects. If it fails mid-call (the
 * socket drops, a turn's final result times out), the next provider is opened and the audio of the
 * turn in progress is replayed into it, so the caller's words are still recognised and nobody is
 * asked to repeat themselves when it can be avoided.
 */
export class FallbackStt implements SttProvider {
  readonly name: string;

  constructor(
    private readonly links: readonly ChainLink<SttProvider>[],
    private readonly ctx: ChainContext,
    private readonly opts: FallbackSttOptions = defaultFallbackSttOptions,
  ) {
    if (links.length === 0) throw new CallgateError('CG_PROVIDER_UNKNOWN', 'an STT chain needs at least one provider');
    this.name = links.map((l) => l.name).join('>');
  }

  async open(options: SttStreamOptions): Promise<SttStream> {
    const stream = new FallbackSttStream(this.links, this.ctx, options, this.opts);
    await stream.start();
    return stream;
  }
}

class FallbackSttStream extends EventEmitter<SttStreamEvents> implements SttStream {
  private current: { link: ChainLink<SttProvider>; stream: SttStream } | undefined;
  /** Links not yet tried for this call, in order. */
  private remaining: ChainLink<SttProvider>[];
  private switching: Promise<void> | undefined;
  private replay: Int16Array[] = [];
  private replaySamples = 0;
  private readonly replayMax: number;
  private closed = false;

  /** As the stream in use says (a fallback to another engine may change it). */
  get interimResults(): boolean {
    return this.current?.stream.interimResults === true;
  }

  constructor(
    links: readonly ChainLink<SttProvider>[],
    private readonly ctx: ChainContext,
    private readonly options: SttStreamOptions,
    opts: FallbackSttOptions,
  ) {
    super();
    this.remaining = [...links];
    this.replayMax = Math.round((opts.replayMaxMs / 1000) * PIPELINE_RATE);
  }

  /** Opens the first provider that will; throws the last failure when none would. */
  async start(failed?: ChainLink<SttProvider>): Promise<void> {
    let lastErr: unknown = new CallgateError('CG_STT_UNAVAILABLE', 'no STT provider left to try');
    const candidates = this.remaining;
    for (const link of attempts('stt', candidates, this.ctx)) {
      this.remaining = candidates.slice(candidates.indexOf(link) + 1);
      if (failed) recordFallback('stt', failed, link, this.ctx);
      try {
        const stream = await link.provider.open(this.options);
        if (this.closed) {
          link.breaker.release(); // the call ended while it connected: no verdict on the provider
          return void (await stream.close());
        }
        link.breaker.success();
        this.attach(link, stream);
        for (const frame of this.replay) stream.push(frame);
        return;
      } catch (err) {
        recordFailure('stt', link, err, this.ctx);
        lastErr = err;
        failed = link;
      }
    }
    this.remaining = [];
    throw lastErr;
  }

  private attach(link: ChainLink<SttProvider>, stream: SttStream): void {
    this.current = { link, stream };
    stream.on('result', (r) => {
      if (this.current?.stream === stream) this.emit('result', r);
    });
    stream.on('error', (err) => {
      if (this.current?.stream !== stream || this.closed) return;
      recordFailure('stt', link, err, this.ctx);
      this.failOver(err);
    });
  }

  /** Drops the failed stream and opens the next provider (in the background; finalize waits for it). */
  private failOver(err: unknown): Promise<void> {
    const old = this.current;
    this.current = undefined;
    void old?.stream.close().catch(() => undefined);
    this.switching ??= this.start(old?.link)
      .catch((lastErr: unknown) => {
        if (!this.closed) this.emit('error', toSttError(lastErr ?? err));
      })
      .finally(() => (this.switching = undefined));
    return this.switching;
  }

  push(frame: Int16Array): void {
    if (this.closed) return;
    this.replay.push(frame);
    this.replaySamples += frame.length;
    while (this.replaySamples > this.replayMax && this.replay.length > 1) this.replaySamples -= this.replay.shift()!.length;
    this.current?.stream.push(frame);
  }

  async finalize(): Promise<string> {
    for (;;) {
      if (this.switching) await this.switching;
      const current = this.current;
      if (this.closed) return '';
      if (!current) throw new CallgateError('CG_STT_FAILED', 'every STT provider in the chain failed');
      const started = performance.now();
      try {
        const text = await current.stream.finalize();
        this.replay = [];
        this.replaySamples = 0;
        current.link.breaker.success();
        this.ctx.metrics?.observeFirstResult('stt', current.link.name, performance.now() - started);
        return text;
      } catch (err) {
        if (this.closed) return '';
        if (this.current !== current) continue; // already failed over on its 'error'
        recordFailure('stt', current.link, err, this.ctx);
        if (this.remaining.length === 0) throw err;
        // The next provider gets this turn's audio replayed, and finalizes it.
        await this.failOver(err);
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.replay = [];
    const current = this.current;
    this.current = undefined;
    await current?.stream.close();
  }
}

function toSttError(err: unknown): CallgateError {
  return err instanceof CallgateError ? err : new CallgateError('CG_STT_FAILED', err instanceof Error ? err.message : String(err), { cause: err });
}
