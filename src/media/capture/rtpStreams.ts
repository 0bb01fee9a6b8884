import { isRtcpPacket, parseRtp } from '../rtp/RtpPacket.js';
import { seqDiff } from '../rtp/sequence.js';
import type { UdpDatagram } from './captureTypes.js';
import type { UdpAddress } from './PacketTap.js';

/** One datagram of a stream, as it was captured. */
export interface RtpStreamPacket {
  /** Microseconds since the Unix epoch. */
  readonly timeUs: number;
  /** The whole RTP datagram (a view into the capture buffer). */
  readonly bytes: Uint8Array;
}

/** An RTP stream: one SSRC on one 5-tuple (the same SSRC moved to a new port is a second stream). */
export interface RtpStream {
  readonly ssrc: number;
  readonly src: UdpAddress;
  readonly dst: UdpAddress;
  /** Distinct payload types, ascending (e.g. [0, 101] for PCMU with telephone-events). */
  readonly payloadTypes: readonly number[];
  readonly packetCount: number;
  readonly firstTimeUs: number;
  readonly lastTimeUs: number;
  readonly durationMs: number;
  /** Forward jumps in sequence number of more than one (each a burst of loss, as captured). */
  readonly seqGaps: number;
  /**
   * Expected packets (first to highest sequence number) minus packets seen, floored at 0 — RFC 3550's
   * cumulative loss, so a late packet fills its gap and duplicates can hide loss.
   */
  readonly lostPackets: number;
  /** Packets at or behind the highest sequence number already seen: reordered or duplicated. */
  readonly outOfOrder: number;
  /** In capture order. */
  readonly packets: readonly RtpStreamPacket[];
}

export interface RtpStreamScan {
  /** In order of each stream's first packet. */
  readonly streams: readonly RtpStream[];
  /** UDP payloads that were RTCP (muxed or on their own port). */
  readonly rtcpPackets: number;
  /** UDP payloads that were neither RTP nor RTCP (SIP, STUN, DTLS, DNS…). */
  readonly notRtpPackets: number;
}

export interface RtpStreamOptions {
  /**
   * Largest datagram taken as RTP. Captures hold whatever crossed the wire (video, jumbo frames), so
   * the default is the largest UDP payload rather than the endpoint's audio-sized limit: 65507.
   */
  readonly maxPacketBytes: number;
}

export const defaultRtpStreamOptions = {
  maxPacketBytes: 65_507,
} as const satisfies RtpStreamOptions;

interface Builder {
  ssrc: number;
  src: UdpAddress;
  dst: UdpAddress;
  payloadTypes: Set<number>;
  packets: RtpStreamPacket[];
  firstSeq: number;
  /** Highest sequence number seen, extended past 16-bit wraps. */
  maxExtendedSeq: number;
  seqGaps: number;
  outOfOrder: number;
}

/** Groups a capture's datagrams into RTP streams; RTCP and non-RTP payloads are counted and skipped. */
export function findRtpStreams(datagrams: Iterable<UdpDatagram>, options: Partial<RtpStreamOptions> = {}): RtpStreamScan {
  const { maxPacketBytes } = { ...defaultRtpStreamOptions, ...options };
  const builders = new Map<string, Builder>();
  let rtcpPackets = 0;
  let notRtpPackets = 0;
  for (const d of datagrams) {
    // RTCP first: its packet types 200–204 would otherwise parse as RTP with payload type 72–76.
    if (isRtcpPacket(d.payload)) {
      rtcpPackets++;
      continue;
    }
    const parsed = parseRtp(d.payload, maxPacketBytes);
    if (!parsed.ok) {
      notRtpPackets++;
      continue;
    }
    const rtp = parsed.value;
    const key = `${rtp.ssrc}|${d.src.address}|${d.src.port}|${d.dst.address}|${d.dst.port}`;
    let b = builders.get(key);
    if (!b) {
      b = {
        ssrc: rtp.ssrc,
        src: d.src,
        dst: d.dst,
        payloadTypes: new Set(),
        packets: [],
        firstSeq: rtp.sequenceNumber,
        maxExtendedSeq: rtp.sequenceNumber,
        seqGaps: 0,
        outOfOrder: 0,
      };
      builders.set(key, b);
    } else {
      const ahead = seqDiff(rtp.sequenceNumber, b.maxExtendedSeq & 0xffff);
      if (ahead > 0) {
        if (ahead > 1) b.seqGaps++;
        b.maxExtendedSeq += ahead;
      } else {
        b.outOfOrder++;
      }
    }
    b.payloadTypes.add(rtp.payloadType);
    b.packets.push({ timeUs: d.timeUs, bytes: d.payload });
  }
  const streams = [...builders.values()].map(finish);
  return { streams, rtcpPackets, notRtpPackets };
}

function finish(b: Builder): RtpStream {
  const first = b.packets[0]!;
  const last = b.packets[b.packets.length - 1]!;
  const expected = b.maxExtendedSeq - b.firstSeq + 1;
  return {
    ssrc: b.ssrc,
    src: b.src,
    dst: b.dst,
    payloadTypes: [...b.payloadTypes].sort((x, y) => x - y),
    packetCount: b.packets.length,
    firstTimeUs: first.timeUs,
    lastTimeUs: last.timeUs,
    durationMs: (last.timeUs - first.timeUs) / 1000,
    seqGaps: b.seqGaps,
    lostPackets: Math.max(0, expected - b.packets.length),
    outOfOrder: b.outOfOrder,
    packets: b.packets,
  };
}

/** `0x1234abcd`: how SSRCs are usually written (Wireshark shows them this way). */
export function formatSsrc(ssrc: number): string {
  return `0x${(ssrc >>> 0).toString(16).padStart(8, '0')}`;
}
