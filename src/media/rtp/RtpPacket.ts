import { fail, type Parsed } from '../../errors.js';

/** RTP (RFC 3550 §5.1) fixed header fields that a sender chooses per packet. */
export interface RtpHeader {
  readonly marker: boolean;
  readonly payloadType: number;
  readonly sequenceNumber: number;
  readonly timestamp: number;
  readonly ssrc: number;
}

export interface RtpHeaderExtension {
  /** "defined by profile" 16 bits (0xBEDE for RFC 8285 one-byte headers). */
  readonly profile: number;
  readonly data: Uint8Array;
}

export interface RtpPacket extends RtpHeader {
  /** Whether the sender padded the payload; `payload` never includes the padding. */
  readonly padding: boolean;
  readonly csrcs: readonly number[];
  readonly extension: RtpHeaderExtension | undefined;
  /** A view into the datagram (no copy): valid as long as the datagram's buffer is. */
  readonly payload: Uint8Array;
}

export const RTP_HEADER_SIZE = 12;

/**
 * Largest datagram we accept as media. 20 ms of Opus at its maximum rate is 1275 bytes and G.711 at 60 ms
 * ptime 480 bytes, so anything past a typical MTU is not audio we sent for and is refused before parsing.
 */
export const MAX_RTP_PACKET_SIZE = 1500;

const EMPTY_CSRCS: readonly number[] = Object.freeze([]);

/**
 * Parses and strictly validates one RTP datagram. Never throws: hostile bytes come back as a failure
 * with a stable CG_RTP_* code so the endpoint can count and drop them.
 */
export function parseRtp(buf: Uint8Array, maxLength: number = MAX_RTP_PACKET_SIZE): Parsed<RtpPacket> {
  const len = buf.length;
  if (len < RTP_HEADER_SIZE) return fail('CG_RTP_TOO_SHORT', `${len} bytes`);
  if (len > maxLength) return fail('CG_RTP_TOO_LONG', `${len} bytes > ${maxLength}`);

  const b0 = buf[0]!;
  const b1 = buf[1]!;
  if (b0 >> 6 !== 2) return fail('CG_RTP_BAD_VERSION', `version ${b0 >> 6}`);

  const hasPadding = (b0 & 0x20) !== 0;
  const hasExtension = (b0 & 0x10) !== 0;
  const csrcCount = b0 & 0x0f;

  let offset = RTP_HEADER_SIZE + csrcCount * 4;
  if (offset > len) return fail('CG_RTP_BAD_CSRC', `${csrcCount} CSRCs need ${offset} bytes, have ${len}`);

  const view = new DataView(buf.buffer, buf.byteOffset, len);
  let csrcs = EMPTY_CSRCS;
  if (csrcCount > 0) {
    const list: number[] = [];
    for (let i = 0; i < csrcCount; i++) list.push(view.getUint32(RTP_HEADER_SIZE + i * 4));
    csrcs = list;
  }

  let extension: RtpHeaderExtension | undefined;
  if (hasExtension) {
    if (offset + 4 > len) return fail('CG_RTP_BAD_EXTENSION', 'extension header truncated');
    const profile = view.getUint16(offset);
    const words = view.getUint16(offset + 2);
    const end = offset + 4 + words * 4;
    if (end > len) return fail('CG_RTP_BAD_EXTENSION', `extension of ${words} words runs past the packet`);
    extension = { profile, data: buf.subarray(offset + 4, end) };
    offset = end;
  }

  let payloadEnd = len;
  if (hasPadding) {
    const padCount = buf[len - 1]!;
    // The count includes itself, so zero is impossible; it may not eat into the header.
    if (padCount === 0 || offset + padCount > len) return fail('CG_RTP_BAD_PADDING', `padding count ${padCount}`);
    payloadEnd = len - padCount;
  }
  if (payloadEnd <= offset) return fail('CG_RTP_EMPTY_PAYLOAD');

  return {
    ok: true,
    value: {
      marker: (b1 & 0x80) !== 0,
      payloadType: b1 & 0x7f,
      sequenceNumber: view.getUint16(2),
      timestamp: view.getUint32(4),
      ssrc: view.getUint32(8),
      padding: hasPadding,
      csrcs,
      extension,
      payload: buf.subarray(offset, payloadEnd),
    },
  };
}

export interface RtpSerializeOptions {
  readonly csrcs?: readonly number[];
  readonly extension?: RtpHeaderExtension;
  /** Pad the packet to a multiple of this many bytes (SRTP-style block padding); 0 = none. */
  readonly padTo?: number;
}

/** Builds one RTP datagram. Allocates from Node's buffer pool: cheap enough for 10k packets/s. */
export function serializeRtp(header: RtpHeader, payload: Uint8Array, options: RtpSerializeOptions = {}): Buffer {
  const csrcs = options.csrcs ?? EMPTY_CSRCS;
  if (csrcs.length > 15) throw new RangeError('at most 15 CSRCs fit in an RTP header');
  const ext = options.extension;
  if (ext && ext.data.length % 4 !== 0) throw new RangeError('RTP header extension data must be a multiple of 4 bytes');

  const headerLen = RTP_HEADER_SIZE + csrcs.length * 4 + (ext ? 4 + ext.data.length : 0);
  const unpadded = headerLen + payload.length;
  const padTo = options.padTo ?? 0;
  const padCount = padTo > 1 && unpadded % padTo !== 0 ? padTo - (unpadded % padTo) : 0;
  const out = Buffer.allocUnsafe(unpadded + padCount);

  out[0] = 0x80 | (padCount > 0 ? 0x20 : 0) | (ext ? 0x10 : 0) | csrcs.length;
  out[1] = (header.marker ? 0x80 : 0) | (header.payloadType & 0x7f);
  out.writeUInt16BE(header.sequenceNumber & 0xffff, 2);
  out.writeUInt32BE(header.timestamp >>> 0, 4);
  out.writeUInt32BE(header.ssrc >>> 0, 8);
  let offset = RTP_HEADER_SIZE;
  for (const csrc of csrcs) {
    out.writeUInt32BE(csrc >>> 0, offset);
    offset += 4;
  }
  if (ext) {
    out.writeUInt16BE(ext.profile & 0xffff, offset);
    out.writeUInt16BE(ext.data.length / 4, offset + 2);
    out.set(ext.data, offset + 4);
    offset += 4 + ext.data.length;
  }
  out.set(payload, offset);
  if (padCount > 0) {
    out.fill(0, unpadded, unpadded + padCount - 1);
    out[unpadded + padCount - 1] = padCount;
  }
  return out;
}

/**
 * RFC 5761 §4: with rtcp-mux, RTCP packet types 192–223 occupy the second byte where RTP would carry
 * marker+PT 64–95, which is why those RTP payload types are never negotiated.
 */
export function isRtcpPacket(buf: Uint8Array): boolean {
  if (buf.length < 8) return false;
  const b1 = buf[1]!;
  return buf[0]! >> 6 === 2 && b1 >= 192 && b1 <= 223;
}
