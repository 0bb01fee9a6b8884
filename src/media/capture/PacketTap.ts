/** A UDP address as captures, taps and replays see it. */
export interface UdpAddress {
  readonly address: string;
  readonly port: number;
}

/** Which way a datagram went, seen from callgate's side of the leg. */
export type TapDirection = 'in' | 'out';

/**
 * A per-leg observer the RtpEndpoint calls for every datagram it receives or sends. Called on the
 * packet path: implementations must not block, must not throw, and must copy `bytes` if they keep them
 * past the call (the endpoint may reuse the buffer).
 */
export interface PacketTap {
  /**
   * @param timeUs microseconds since the Unix epoch (captures store wall-clock time); `captureNowUs()`
   *   gives a monotonic-backed value for it.
   */
  onPacket(direction: TapDirection, src: UdpAddress, dst: UdpAddress, bytes: Uint8Array, timeUs: number): void;
  /** Flushes and releases what the tap holds. Idempotent; never rejects. */
  close(): Promise<void>;
}

/**
 * Wall-clock microseconds derived from the monotonic clock, so timestamps in one capture never step
 * backwards when NTP adjusts the system clock mid-call.
 */
export function captureNowUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}
