import type { RtpEndpoint } from './RtpEndpoint.js';

/**
 * Notices a caller whose media stopped without a hang-up: a phone that lost power or network, a NAT
 * binding that expired, a page closed without a goodbye, a trunk whose BYE was lost. Without it the
 * agent would talk to nobody, and the call would hold its line and its rtpengine session, until the
 * tenant's maximum duration.
 *
 * It watches the leg's incoming packets (after our own validation, so junk does not keep a dead call
 * alive) and fires once when none came for `timeoutMs`. A call on hold sends nothing by design:
 * `pause()` it, and `resume()` restarts the clock.
 */
export interface MediaWatchdogOptions {
  /** Silence on the wire (not in the audio: comfort noise and silence frames count) before `onTimeout`. */
  readonly timeoutMs: number;
  /** How often the clock is checked; the timeout fires up to this much late. */
  readonly checkEveryMs: number;
}

export const defaultMediaWatchdogOptions = {
  /**
   * 20 s: phones keep sending RTP (silence included) for the whole call, so a gap this long is a dead
   * caller, while a network hiccup or a long jitter-buffer underrun (a few seconds) is not mistaken
   * for one. rtpengine's own default is 60 s; ours must be shorter so we hang up (BYE, record) first.
   */
  timeoutMs: 20_000,
  checkEveryMs: 1000,
} as const satisfies MediaWatchdogOptions;

export class MediaWatchdog {
  private lastPacketAt: number;
  private paused = false;
  private fired = false;
  private readonly timer: NodeJS.Timeout;
  private readonly onPacket = (): void => {
    this.lastPacketAt = performance.now();
  };

  constructor(
    private readonly endpoint: Pick<RtpEndpoint, 'on' | 'off'>,
    onTimeout: (silentForMs: number) => void,
    options: Partial<MediaWatchdogOptions> = {},
  ) {
    const o: MediaWatchdogOptions = { ...defaultMediaWatchdogOptions, ...options };
    this.lastPacketAt = performance.now();
    endpoint.on('packet', this.onPacket);
    this.timer = setInterval(() => {
      const silentFor = performance.now() - this.lastPacketAt;
      if (this.paused || this.fired || silentFor <= o.timeoutMs) return;
      this.fired = true;
      this.close();
      onTimeout(silentFor);
    }, o.checkEveryMs);
    // A watchdog alone must not keep a process alive.
    this.timer.unref();
  }

  /** Media is not expected (hold): stop counting. */
  pause(): void {
    this.paused = true;
  }

  /** Media is expected again: the silence is counted from now. */
  resume(): void {
    this.paused = false;
    this.lastPacketAt = performance.now();
  }

  /** Idempotent. */
  close(): void {
    clearInterval(this.timer);
    this.endpoint.off('packet', this.onPacket);
  }
}
