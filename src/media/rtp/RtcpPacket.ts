import { fail, type Parsed } from '../../errors.js';

/** One reception report block (RFC 3550 §6.4.1), as carried by SR and RR packets. */
export interface RtcpReportBlock {
  readonly ssrc: number;
  /** Fraction lost since the previous report, 0..255 (fixed point /256). */
  readonly fractionLost: number;
  /** Signed 24-bit cumulative count (duplicates can make it negative). */
  readonly cumulativeLost: number;
  readonly highestSequence: number;
  /** Interarrival jitter in RTP timestamp units. */
  readonly jitter: number;
  readonly lastSr: number;
  readonly delaySinceLastSr: number;
}

export type RtcpPacket =
  | {
      readonly type: 'SR';
      readonly ssrc: number;
      readonly ntpSeconds: number;
      readonly ntpFraction: number;
      readonly rtpTimestamp: number;
      readonly packetCount: number;
      readonly octetCount: number;
      readonly reports: readonly RtcpReportBlock[];
    }
  | { readonly type: 'RR'; readonly ssrc: number; readonly reports: readonly RtcpReportBlock[] }
  | { readonly type: 'BYE'; readonly ssrcs: readonly number[] }
  /** SDES, APP, feedback (RTPFB/PSFB) and XR are validated for framing but not decoded: we don't act on them. */
  | { readonly type: 'other'; readonly packetType: number; readonly count: number; readonly length: number };

const RTCP_SR = 200;
const RTCP_RR = 201;
const RTCP_BYE = 203;

/** Largest compound RTCP datagram we look at; anything longer is not a report we asked for. */
export const MAX_RTCP_PACKET_SIZE = 1500;

/**
 * Validates a (possibly compound) RTCP datagram per RFC 3550 A.2: every packet version 2, lengths that tile
 * the datagram exactly, padding only on the last packet. The "first packet must be SR/RR" rule is not
 * enforced because reduced-size RTCP (RFC 5506, common with WebRTC peers) drops it. Never throws.
 */
export function parseRtcp(buf: Uint8Array): Parsed<RtcpPacket[]> {
  const len = buf.length;
  if (len < 4) return fail('CG_RTCP_MALFORMED', `${len} bytes`);
  if (len > MAX_RTCP_PACKET_SIZE) return fail('CG_RTCP_MALFORMED', `${len} bytes is too long`);
  if (len % 4 !== 0) return fail('CG_RTCP_MALFORMED', 'length is not a multiple of 4');
  const view = new DataView(buf.buffer, buf.byteOffset, len);
  const packets: RtcpPacket[] = [];
  let offset = 0;
  while (offset < len) {
    if (offset + 4 > len) return fail('CG_RTCP_MALFORMED', 'truncated header');
    const b0 = buf[offset]!;
    if (b0 >> 6 !== 2) return fail('CG_RTCP_MALFORMED', `version ${b0 >> 6}`);
    const count = b0 & 0x1f;
    const packetType = buf[offset + 1]!;
    const bytes = (view.getUint16(offset + 2) + 1) * 4;
    const end = offset + bytes;
    if (end > len) return fail('CG_RTCP_MALFORMED', `packet type ${packetType} runs past the datagram`);
    let bodyEnd = end;
    if (b0 & 0x20) {
      if (end !== len) return fail('CG_RTCP_MALFORMED', 'padding on a packet that is not the last');
      const pad = buf[end - 1]!;
      if (pad === 0 || pad > bytes - 4) return fail('CG_RTCP_MALFORMED', `padding count ${pad}`);
      bodyEnd = end - pad;
    }
    const body = bodyEnd - offset;

    if (packetType === RTCP_SR || packetType === RTCP_RR) {
      const fixed = packetType === RTCP_SR ? 28 : 8;
      if (body < fixed + count * 24) return fail('CG_RTCP_MALFORMED', `${count} report blocks do not fit`);
      const reports = readReportBlocks(view, offset + fixed, count);
      const ssrc = view.getUint32(offset + 4);
      packets.push(
        packetType === RTCP_SR
          ? {
              type: 'SR',
              ssrc,
              ntpSeconds: view.getUint32(offset + 8),
              ntpFraction: view.getUint32(offset + 12),
              rtpTimestamp: view.getUint32(offset + 16),
              packetCount: view.getUint32(offset + 20),
              octetCount: view.getUint32(offset + 24),
              reports,
            }
          : { type: 'RR', ssrc, reports },
      );
    } else if (packetType === RTCP_BYE) {
      if (body < 4 + count * 4) return fail('CG_RTCP_MALFORMED', `BYE with ${count} SSRCs does not fit`);
      const ssrcs: number[] = [];
      for (let i = 0; i < count; i++) ssrcs.push(view.getUint32(offset + 4 + i * 4));
      packets.push({ type: 'BYE', ssrcs });
    } else if (packetType >= 192 && packetType <= 223) {
      packets.push({ type: 'other', packetType, count, length: bytes });
    } else {
      return fail('CG_RTCP_MALFORMED', `packet type ${packetType} is not RTCP`);
    }
    offset = end;
  }
  return { ok: true, value: packets };
}

function readReportBlocks(view: DataView, start: number, count: number): RtcpReportBlock[] {
  const blocks: RtcpReportBlock[] = [];
  for (let i = 0; i < count; i++) {
    const o = start + i * 24;
    const lostWord = view.getUint32(o + 4);
    const cumulative = lostWord & 0xffffff;
    blocks.push({
      ssrc: view.getUint32(o),
      fractionLost: lostWord >>> 24,
      cumulativeLost: cumulative & 0x800000 ? cumulative - 0x1000000 : cumulative,
      highestSequence: view.getUint32(o + 8),
      jitter: view.getUint32(o + 12),
      lastSr: view.getUint32(o + 16),
      delaySinceLastSr: view.getUint32(o + 20),
    });
  }
  return blocks;
}
