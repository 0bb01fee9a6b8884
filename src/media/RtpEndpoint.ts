import type dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { CallgateError, type ErrorCode } from '../errors.js';
import { captureNowUs, type PacketTap, type UdpAddress } from './capture/PacketTap.js';
import { JitterBuffer, type JitterBufferOptions, type JitterBufferStats, type JitterOutput } from './JitterBuffer.js';
import { portAllocatorFor, type PortAllocator, type PortRange } from './PortAllocator.js';
import { ReceiveStats, type ReceiveStatsSnapshot } from './rtp/ReceiveStats.js';
import { parseRtcp, type RtcpPacket } from './rtp/RtcpPacket.js';
import { isRtcpPacket, MAX_RTP_PACKET_SIZE, parseRtp, type RtpPacket } from './rtp/RtpPacket.js';

export interface RtpEndpointOptions {
  /** Local address the leg's socket binds to. Default 127.0.0.1 (rtpengine runs beside us). */
  readonly bindAddress: string;
  /** Even ports of this range are used, one per leg. Default 20000–29999 (rtpengine keeps its own range). */
  readonly portRange: PortRange;
  /** Where to send, from the remote SDP; may be set later with `setRemote`. */
  readonly remote: UdpAddress | undefined;
  /**
   * Symmetric RTP (RFC 4961): follow the source of the first valid packet instead of the SDP address,
   * which is what a caller behind NAT needs. Packets from any other source are dropped and counted.
   * Default true.
   */
  readonly latching: boolean;
  /** RTP clock rate of the negotiated audio codec, for the jitter figure. Default 8000. */
  readonly clockRate: number;
  /** Payload types negotiated for the leg; others are dropped and counted. Undefined accepts any. */
  readonly payloadTypes: ReadonlySet<number> | undefined;
  readonly maxPacketSize: number;
  readonly jitterBuffer: Partial<JitterBufferOptions>;
  /** Sees every datagram in both directions (call recording to pcap). */
  readonly tap: PacketTap | undefined;
}

export const defaultRtpEndpointOptions = {
  bindAddress: '127.0.0.1',
  portRange: { min: 20000, max: 29999 },
  remote: undefined,
  latching: true,
  clockRate: 8000,
  payloadTypes: undefined,
  maxPacketSize: MAX_RTP_PACKET_SIZE,
  jitterBuffer: {},
  tap: undefined,
} as const satisfies RtpEndpointOptions;

export interface RtpEndpointStats {
  readonly localPort: number;
  readonly remote: UdpAddress | undefined;
  readonly received: ReceiveStatsSnapshot;
  /** Reordering, duplicates, late packets and concealed gaps, as the jitter buffer saw them. */
  readonly jitterBuffer: JitterBufferStats;
  readonly sent: { readonly packets: number; readonly bytes: number; readonly errors: number };
  readonly rtcpReceived: number;
  /** Datagrams refused before they reached the call, by error code. */
  readonly dropped: Readonly<Partial<Record<ErrorCode, number>>>;
  readonly droppedTotal: number;
}

export interface RtpEndpointEvents {
  /** A valid RTP packet from the peer, in sequence order (after the jitter buffer). */
  packet: [packet: RtpPacket];
  /** Packets that will never arrive: conceal `count` frames (see JitterOutput). */
  lost: [count: number, next: RtpPacket | undefined];
  rtcp: [packets: RtcpPacket[]];
  /** Symmetric RTP latched onto this source. */
  latched: [source: UdpAddress];
  closed: [];
}

/**
 * One UDP socket for one call leg: validates every datagram, enforces the peer's address, keeps RFC 3550
 * statistics and hands packets on in order. Nothing a peer sends can make it throw.
 */
export class RtpEndpoint extends EventEmitter<RtpEndpointEvents> {
  readonly localAddress: UdpAddress;
  private remote: UdpAddress | undefined;
  private latched = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly receiveStats: ReceiveStats;
  private readonly jitter: JitterBuffer<RtpPacket>;
  private jitterTimer: NodeJS.Timeout | undefined;
  private readonly dropped: Partial<Record<ErrorCode, number>> = {};
  private droppedTotal = 0;
  private rtcpReceived = 0;
  private readonly sent = { packets: 0, bytes: 0, errors: 0 };

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly allocator: PortAllocator,
    private readonly options: RtpEndpointOptions,
  ) {
    super();
    const addr = socket.address();
    this.localAddress = { address: addr.address, port: addr.port };
    this.remote = options.remote;
    this.receiveStats = new ReceiveStats(options.clockRate);
    this.jitter = new JitterBuffer<RtpPacket>((out) => this.release(out), options.jitterBuffer);
    socket.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo));
    // A UDP socket reports ICMP port-unreachable from earlier sends as errors; they must not end the call.
    socket.on('error', () => {
      this.sent.errors++;
    });
  }

  /** Binds a socket from the port range. Throws CG_PORT_RANGE_EXHAUSTED when the range is full. */
  static async open(options: Partial<RtpEndpointOptions> = {}): Promise<RtpEndpoint> {
    const opts: RtpEndpointOptions = { ...defaultRtpEndpointOptions, ...options };
    if (opts.remote) validateAddress(opts.remote);
    const allocator = portAllocatorFor(opts.portRange);
    const { socket } = await allocator.bind(opts.bindAddress);
    return new RtpEndpoint(socket, allocator, opts);
  }

  get remoteAddress(): UdpAddress | undefined {
    return this.remote;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** New remote from a re-INVITE's SDP; latching starts over so the new path can be followed. */
  setRemote(remote: UdpAddress): void {
    validateAddress(remote);
    this.remote = remote;
    this.latched = false;
  }

  /** Sends one datagram to the peer. Returns false (and sends nothing) when closed or no remote is known. */
  send(datagram: Uint8Array): boolean {
    const remote = this.remote;
    if (this.closed || !remote) return false;
    this.socket.send(datagram, remote.port, remote.address, (err) => {
      if (err) this.sent.errors++;
    });
    this.sent.packets++;
    this.sent.bytes += datagram.length;
    this.options.tap?.onPacket('out', this.localAddress, remote, datagram, captureNowUs());
    return true;
  }

  stats(): RtpEndpointStats {
    return {
      localPort: this.localAddress.port,
      remote: this.remote,
      received: this.receiveStats.snapshot(),
      jitterBuffer: this.jitter.stats(),
      sent: { ...this.sent },
      rtcpReceived: this.rtcpReceived,
      dropped: { ...this.dropped },
      droppedTotal: this.droppedTotal,
    };
  }

  /** Closes the socket, releases the port and closes the tap. Idempotent; resolves when all is released. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    if (this.jitterTimer) clearTimeout(this.jitterTimer);
    this.jitterTimer = undefined;
    this.closing = new Promise<void>((resolve) => {
      this.socket.close(() => resolve());
    }).then(async () => {
      this.allocator.release(this.localAddress.port);
      await this.options.tap?.close();
      this.emit('closed');
      this.removeAllListeners();
    });
    return this.closing;
  }

  private onDatagram(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.closed) return;
    const nowMs = performance.now();
    if (!this.acceptSource(rinfo)) return this.drop('CG_RTP_UNEXPECTED_SOURCE');
    // Captures record what the peer really sent, hostile bytes included: that is what makes them useful.
    this.options.tap?.onPacket('in', { address: rinfo.address, port: rinfo.port }, this.localAddress, msg, captureNowUs());

    if (isRtcpPacket(msg)) {
      const rtcp = parseRtcp(msg);
      if (!rtcp.ok) return this.drop(rtcp.code);
      this.rtcpReceived++;
      this.latchTo(rinfo);
      this.emit('rtcp', rtcp.value);
      return;
    }
    const parsed = parseRtp(msg, this.options.maxPacketSize);
    if (!parsed.ok) return this.drop(parsed.code);
    const packet = parsed.value;
    if (this.options.payloadTypes && !this.options.payloadTypes.has(packet.payloadType)) {
      return this.drop('CG_RTP_UNKNOWN_PAYLOAD_TYPE');
    }
    this.latchTo(rinfo);
    this.receiveStats.record(packet.ssrc, packet.sequenceNumber, packet.timestamp, nowMs, msg.length);
    this.jitter.push(packet.sequenceNumber, packet, nowMs);
    this.armJitterTimer();
  }

  /**
   * Before latching, a valid packet from anywhere may claim the leg (symmetric RTP); after it, or with
   * latching off, only the known remote is accepted.
   */
  private acceptSource(rinfo: dgram.RemoteInfo): boolean {
    const remote = this.remote;
    if (remote && remote.port === rinfo.port && remote.address === rinfo.address) return true;
    return this.options.latching && !this.latched;
  }

  private latchTo(rinfo: dgram.RemoteInfo): void {
    if (!this.options.latching || this.latched) return;
    this.latched = true;
    const remote = this.remote;
    if (remote && remote.address === rinfo.address && remote.port === rinfo.port) return;
    this.remote = { address: rinfo.address, port: rinfo.port };
    this.emit('latched', this.remote);
  }

  private drop(code: ErrorCode): void {
    this.dropped[code] = (this.dropped[code] ?? 0) + 1;
    this.droppedTotal++;
  }

  private release(out: JitterOutput<RtpPacket>): void {
    if (out.kind === 'packet') this.emit('packet', out.packet);
    else this.emit('lost', out.count, out.next);
  }

  /** A held gap must be given up even if the peer goes quiet, so one timer runs while packets are held. */
  private armJitterTimer(): void {
    if (this.jitter.size === 0 || this.jitterTimer || this.closed) return;
    this.jitterTimer = setTimeout(() => {
      this.jitterTimer = undefined;
      if (this.closed) return;
      this.jitter.poll(performance.now());
      this.armJitterTimer();
    }, this.jitter.windowMs + 1);
  }
}

function validateAddress(remote: UdpAddress): void {
  if (isIP(remote.address) === 0 || !Number.isInteger(remote.port) || remote.port < 1 || remote.port > 65535) {
    throw new CallgateError('CG_CONFIG_INVALID', `remote ${remote.address}:${remote.port} is not an IP address and port`);
  }
}
