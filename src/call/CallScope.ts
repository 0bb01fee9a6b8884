import type { Logger } from 'pino';

/**
 * What one call owns, released in one place. Each resource a call acquires (a line lease, a socket, a
 * peer connection, a VAD, a timer) is pushed with its release; `close()` runs the releases once, in
 * reverse order, each failure logged with the call's logger (call id and tenant) and never stopping
 * the others. Timers and waits made through the scope are cleared at close and can never reject
 * unhandled: a call's failure stays inside that call. (An ICE-gathering timer that outlived its
 * refused offer once rejected unhandled and stopped the whole gateway.)
 */
export class CallScope {
  private readonly releases: { readonly name: string; readonly release: () => unknown }[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly abort = new AbortController();
  private closing: Promise<void> | undefined;

  constructor(private readonly log: Logger) {}

  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** Aborted when the scope closes: for work that should stop with the call. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** `release` runs at close (after everything deferred later). Deferred after close, it runs at once. */
  defer(name: string, release: () => unknown): void {
    if (this.closing) {
      void this.runRelease(name, release);
      return;
    }
    this.releases.push({ name, release });
  }

  /** A timer owned by the call: cleared at close; `fn` throwing is logged, not thrown. */
  timeout(ms: number, fn: () => void): { cancel(): void } {
    if (this.closing) return { cancel: () => undefined };
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      try {
        fn();
      } catch (err) {
        this.log.error({ err: errorText(err) }, 'call timer failed');
      }
    }, ms);
    this.timers.add(timer);
    return {
      cancel: () => {
        clearTimeout(timer);
        this.timers.delete(timer);
      },
    };
  }

  /**
   * Waits for `start` to resolve, or rejects with `onTimeout()` after `ms`. The deadline is a scope
   * timer, and the promise is marked handled: a wait that nobody awaits any more (its call failed on
   * another path) neither fires after close nor rejects unhandled. Closing the scope rejects it.
   */
  wait<T = void>(ms: number, onTimeout: () => Error, start: (resolve: (value: T) => void, reject: (err: unknown) => void) => void): Promise<T> {
    const promise = new Promise<T>((resolve, reject) => {
      if (this.closing) {
        reject(new Error('the call has ended'));
        return;
      }
      const deadline = this.timeout(ms, () => reject(onTimeout()));
      const onClose = (): void => reject(new Error('the call has ended'));
      this.abort.signal.addEventListener('abort', onClose, { once: true });
      const done = (): void => {
        deadline.cancel();
        this.abort.signal.removeEventListener('abort', onClose);
      };
      try {
        start(
          (value) => {
            done();
            resolve(value);
          },
          (err) => {
            done();
            reject(err);
          },
        );
      } catch (err) {
        done();
        reject(err);
      }
    });
    this.guard(promise);
    return promise;
  }

  /** Marks a promise the call started as handled: a rejection nobody awaits is logged at debug, not thrown at the process. */
  guard<T>(promise: Promise<T>): Promise<T> {
    promise.catch((err: unknown) => this.log.debug({ err: errorText(err) }, 'call promise rejected after its call moved on'));
    return promise;
  }

  /** Releases everything, once, newest first. Safe to call again (returns the same promise). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const timer of this.timers) clearTimeout(timer);
      this.timers.clear();
      this.abort.abort();
      for (const { name, release } of this.releases.splice(0).reverse()) await this.runRelease(name, release);
    })();
    return this.closing;
  }

  private async runRelease(name: string, release: () => unknown): Promise<void> {
    try {
      await release();
    } catch (err) {
      this.log.warn({ err: errorText(err), resource: name }, 'call resource release failed');
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
