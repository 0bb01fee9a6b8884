import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { CaptureError } from '../../errors.js';
import { percentile } from '../../util/percentile.js';
import type { UdpAddress } from './PacketTap.js';

/** One datagram to send, stamped with its capture time. */
export interface ReplayPacket {
  /** Microseconds; only differences matter. */
  readonly timeUs: number;
  readonly bytes: Uint8Array;
}

export interface ReplayProgress {
  readonly sent: number;
  readonly total: number;
  readonly bytes: number;
  readonly elapsedMs: number;
  /** Capture time covered so far: the offset of the last packet sent from the first. */
  readonly mediaTimeMs: number;
}

export interface ReplaySummary {
  readonly packets: number;
  readonly bytes: number;
  /** Wall time from the first send to the last. */
  readonly durationMs: number;
  /** How long after its due time each packet left: 0 for every packet at speed 'max' (nothing is due). */
  readonly latenessMs: { readonly p50: number; readonly p99: number; readonly max: number };
  /** Sends the OS refused (the packets are counted in `packets` as attempted). */
  readonly sendErrors: number;
  /** True when the signal stopped the replay before the last packet. */
  readonly aborted: boolean;
}

export interface ReplayOptions {
  /** IP literal or host name (looked up once, before the first packet). */
  readonly target: UdpAddress;
  /** 1 = the captured pace, 2 = twice as fast, 'max' = as fast as the socket takes them. */
  readonly speed: number | 'max';
  readonly signal: AbortSignal | undefined;
  /** Called at most once per `progressIntervalMs` while packets remain. */
  readonly onProgress: ((progress: ReplayProgress) => void) | undefined;
  readonly progressIntervalMs: number;
  /** Send from this socket (left open). Without one, a socket is made and closed for the replay. */
  readonly socket: Socket | undefined;
  /**
   * Datagrams sent before waiting for their send callbacks: bounds what is queued in libuv at 'max'
   * and when a late timer finds many packets due at once.
   */
  readonly batchSize: number;
  /** Monotonic clock in ms (tests substitute a fake). */
  readonly now: () => number;
  /** Waits `ms`, or less if the signal aborts (tests substitute a fake). */
  readonly sleep: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
}

export const defaultReplayOptions = {
  /** The captured pace. */
  speed: 1,
  signal: undefined,
  onProgress: undefined,
  /** Once a second, as a person watching the CLI wants it. */
  progressIntervalMs: 1000,
  socket: undefined,
  /** 64 datagrams of G.711 is ~11 KB: well inside the default socket send buffer. */
  batchSize: 64,
  now: () => performance.now(),
  sleep: abortableSleep,
} as const satisfies Omit<ReplayOptions, 'target'>;

/**
 * Sends `packets` to `target` keeping their captured spacing divided by `speed`. Every due time is
 * computed from the start on the monotonic clock (t0 + (t_i − t_first) / speed), never from the
 * previous send, so a late timer delays one pass but the error never accumulates; everything already
 * due when the timer fires goes out in that pass.
 */
export async function replayStream(
  packets: readonly ReplayPacket[],
  options: Partial<ReplayOptions> & Pick<ReplayOptions, 'target'>,
): Promise<ReplaySummary> {
  const opts: ReplayOptions = { ...defaultReplayOptions, ...options };
  const speed = opts.speed;
  if (speed !== 'max' && !(Number.isFinite(speed) && speed > 0)) {
    throw new RangeError(`replay speed must be a positive number or 'max', got ${String(speed)}`);
  }
  const target = await resolveTarget(opts.target);
  const socket = opts.socket ?? (await openSocket(target));
  try {
    return await run(packets, socket, target, speed, opts);
  } finally {
    if (!opts.socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

async function run(
  packets: readonly ReplayPacket[],
  socket: Socket,
  target: UdpAddress,
  speed: number | 'max',
  opts: ReplayOptions,
): Promise<ReplaySummary> {
  const { now, signal } = opts;
  const total = packets.length;
  const lateness = new Float64Array(total);
  const firstUs = packets[0]?.timeUs ?? 0;
  const usPerMs = speed === 'max' ? 0 : 1000 * speed;
  const dueAt = (i: number, start: number): number => (speed === 'max' ? start : start + (packets[i]!.timeUs - firstUs) / usPerMs);

  let sent = 0;
  let bytes = 0;
  let sendErrors = 0;
  const start = now();
  let lastSendAt = start;
  let lastProgressAt = start;
  const send = (data: Uint8Array): Promise<void> =>
    new Promise((resolve) =>
      socket.send(data, target.port, target.address, (err) => {
        if (err) sendErrors++;
        resolve();
      }),
    );

  // Each pass sends at least one packet or sleeps until one is due, so this ends after `total` sends.
  while (sent < total && !signal?.aborted) {
    const pending: Promise<void>[] = [];
    for (let t = now(); sent < total && pending.length < opts.batchSize; t = now()) {
      const due = dueAt(sent, start);
      if (due > t) break;
      const packet = packets[sent]!;
      lateness[sent] = speed === 'max' ? 0 : t - due;
      pending.push(send(packet.bytes));
      bytes += packet.bytes.length;
      lastSendAt = t;
      sent++;
    }
    if (pending.length > 0) await Promise.all(pending);
    // Send callbacks resolve on the microtask queue, so a full batch never reaches the event loop by
    // itself: yield so timers, signals and sockets (a receiver in this same process) get their turn.
    if (pending.length === opts.batchSize) await new Promise((resolve) => setImmediate(resolve));
    const t = now();
    if (opts.onProgress && sent < total && t - lastProgressAt >= opts.progressIntervalMs) {
      lastProgressAt = t;
      opts.onProgress({ sent, total, bytes, elapsedMs: t - start, mediaTimeMs: (packets[sent - 1]!.timeUs - firstUs) / 1000 });
    }
    if (sent < total) {
      const wait = dueAt(sent, start) - now();
      if (wait > 0) await opts.sleep(wait, signal);
    }
  }

  const sorted = lateness.subarray(0, sent).sort();
  return {
    packets: sent,
    bytes,
    durationMs: lastSendAt - start,
    latenessMs: { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted[sent - 1] ?? 0 },
    sendErrors,
    aborted: sent < total,
  };
}

/** Node's setTimeout has millisecond granularity; rounding up means a timer is never knowingly early. */
export function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.ceil(ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

async function resolveTarget(target: UdpAddress): Promise<UdpAddress> {
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 0xffff) {
    throw new CaptureError('CG_REPLAY_BAD_TARGET', `port ${target.port}`);
  }
  if (isIP(target.address) !== 0) return target;
  // One lookup up front: dgram would otherwise resolve the name again for every datagram.
  try {
    const { address } = await lookup(target.address);
    return { address, port: target.port };
  } catch (cause) {
    throw new CaptureError('CG_REPLAY_BAD_TARGET', `cannot resolve ${target.address}`, { cause });
  }
}

/**
 * Binds to loopback when the target is loopback, so a local replay never listens on other interfaces.
 * Send failures arrive in send callbacks; the lasting 'error' listener only keeps a stray socket error
 * from crashing the process.
 */
async function openSocket(target: UdpAddress): Promise<Socket> {
  const v6 = isIP(target.address) === 6;
  const socket = createSocket(v6 ? 'udp6' : 'udp4');
  const loopback = v6 ? target.address === '::1' : target.address.startsWith('127.');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', (err) => {
      socket.close();
      reject(err);
    });
    socket.bind({ port: 0, ...(loopback ? { address: v6 ? '::1' : '127.0.0.1' } : {}) }, () => {
      socket.removeAllListeners('error');
      socket.on('error', () => undefined);
      resolve();
    });
  });
  return socket;
}
