import { CaptureError } from '../../errors.js';
import type { CaptureFrame, CaptureReaderOptions, CaptureStats } from './captureTypes.js';

/** Magic numbers as read big-endian from the first four bytes (the writer's byte order decides). */
export const LibpcapMagic = {
  MICROSECONDS: 0xa1b2c3d4,
  NANOSECONDS: 0xa1b23c4d,
} as const;

/** Kuznetzov's "modified" libpcap: 24-byte record headers; old and rare, named so the error can say so. */
const MODIFIED_MAGIC = 0xa1b2cd34;

export const LIBPCAP_HEADER_BYTES = 24;
export const LIBPCAP_RECORD_HEADER_BYTES = 16;

export interface LibpcapHeader {
  readonly littleEndian: boolean;
  readonly nanoseconds: boolean;
  readonly versionMajor: number;
  readonly versionMinor: number;
  readonly snaplen: number;
  /** Low 16 bits of the header's link-type field; the upper bits carry FCS information we ignore. */
  readonly linkType: number;
}

/** Returns undefined when the first bytes are not a libpcap magic in either byte order. */
export function libpcapByteOrder(buf: Uint8Array): { littleEndian: boolean; nanoseconds: boolean } | undefined {
  if (buf.length < 4) return undefined;
  const be = ((buf[0]! << 24) | (buf[1]! << 16) | (buf[2]! << 8) | buf[3]!) >>> 0;
  const le = ((buf[3]! << 24) | (buf[2]! << 16) | (buf[1]! << 8) | buf[0]!) >>> 0;
  if (be === LibpcapMagic.MICROSECONDS) return { littleEndian: false, nanoseconds: false };
  if (be === LibpcapMagic.NANOSECONDS) return { littleEndian: false, nanoseconds: true };
  if (le === LibpcapMagic.MICROSECONDS) return { littleEndian: true, nanoseconds: false };
  if (le === LibpcapMagic.NANOSECONDS) return { littleEndian: true, nanoseconds: true };
  return undefined;
}

export function isModifiedLibpcap(buf: Uint8Array): boolean {
  if (buf.length < 4) return false;
  const be = ((buf[0]! << 24) | (buf[1]! << 16) | (buf[2]! << 8) | buf[3]!) >>> 0;
  const le = ((buf[3]! << 24) | (buf[2]! << 16) | (buf[1]! << 8) | buf[0]!) >>> 0;
  return be === MODIFIED_MAGIC || le === MODIFIED_MAGIC;
}

/** Throws CaptureError: CG_PCAP_BAD_MAGIC, CG_PCAP_TRUNCATED (shorter than the header), CG_PCAP_MALFORMED. */
export function parseLibpcapHeader(buf: Uint8Array): LibpcapHeader {
  const order = libpcapByteOrder(buf);
  if (!order) throw new CaptureError('CG_PCAP_BAD_MAGIC');
  if (buf.length < LIBPCAP_HEADER_BYTES) {
    throw new CaptureError('CG_PCAP_TRUNCATED', `file header needs ${LIBPCAP_HEADER_BYTES} bytes, file has ${buf.length}`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const le = order.littleEndian;
  const versionMajor = view.getUint16(4, le);
  const versionMinor = view.getUint16(6, le);
  // libpcap itself reads only major version 2; anything else is not a file we understand.
  if (versionMajor !== 2) throw new CaptureError('CG_PCAP_MALFORMED', `libpcap version ${versionMajor}.${versionMinor}`);
  return {
    ...order,
    versionMajor,
    versionMinor,
    snaplen: view.getUint32(16, le),
    linkType: view.getUint32(20, le) & 0xffff,
  };
}

/**
 * Yields the records after the file header. A record length beyond `maxRecordBytes` throws
 * CG_PCAP_MALFORMED: libpcap has no framing to resynchronise on, so nothing after it can be trusted.
 */
export function* libpcapFrames(
  buf: Uint8Array,
  header: LibpcapHeader,
  options: CaptureReaderOptions,
  stats: CaptureStats,
): Generator<CaptureFrame> {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const le = header.littleEndian;
  const fractionPerUs = header.nanoseconds ? 1000 : 1;
  let offset = LIBPCAP_HEADER_BYTES;
  // Every pass consumes at least the 16-byte record header, so this ends.
  while (offset < buf.length) {
    if (buf.length - offset < LIBPCAP_RECORD_HEADER_BYTES) {
      endTruncated(options, stats, `record header at byte ${offset}`);
      return;
    }
    const seconds = view.getUint32(offset, le);
    const fraction = view.getUint32(offset + 4, le);
    const capturedLength = view.getUint32(offset + 8, le);
    const originalLength = view.getUint32(offset + 12, le);
    if (capturedLength > options.maxRecordBytes) {
      throw new CaptureError('CG_PCAP_MALFORMED', `record at byte ${offset} claims ${capturedLength} bytes (limit ${options.maxRecordBytes})`);
    }
    const start = offset + LIBPCAP_RECORD_HEADER_BYTES;
    if (buf.length - start < capturedLength) {
      endTruncated(options, stats, `record at byte ${offset} needs ${capturedLength} bytes, ${buf.length - start} left`);
      return;
    }
    offset = start + capturedLength;
    yield {
      timeUs: seconds * 1_000_000 + Math.floor(fraction / fractionPerUs),
      linkType: header.linkType,
      data: buf.subarray(start, offset),
      originalLength,
    };
  }
}

export function endTruncated(options: CaptureReaderOptions, stats: CaptureStats, detail: string): void {
  if (!options.tolerateTruncation) throw new CaptureError('CG_PCAP_TRUNCATED', detail);
  stats.truncated = true;
}
