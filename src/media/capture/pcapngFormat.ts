import { CaptureError } from '../../errors.js';
import type { CaptureFrame, CaptureReaderOptions, CaptureStats } from './captureTypes.js';
import { endTruncated } from './libpcapFormat.js';

/** Block types we read; every other block (name resolution, statistics, custom…) is stepped over. */
export const PcapngBlock = {
  SECTION_HEADER: 0x0a0d0d0a,
  INTERFACE_DESCRIPTION: 0x00000001,
  /** Obsolete Packet Block, still written by old tools. */
  PACKET: 0x00000002,
  SIMPLE_PACKET: 0x00000003,
  ENHANCED_PACKET: 0x00000006,
} as const;

export const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d;

const OPT_END = 0;
const OPT_IF_TSRESOL = 9;
const OPT_IF_TSOFFSET = 14;
/** Type, total length, byte-order magic, versions, section length, trailing length. */
const MIN_SHB_BYTES = 28;

interface Interface {
  readonly linkType: number;
  readonly snaplen: number;
  /** Converts a 64-bit timestamp in this interface's units to microseconds since the epoch. */
  readonly toUs: (high: number, low: number) => number;
}

export function isPcapng(buf: Uint8Array): boolean {
  return buf.length >= 4 && buf[0] === 0x0a && buf[1] === 0x0d && buf[2] === 0x0d && buf[3] === 0x0a;
}

/** Validates the first Section Header Block so a bad file fails at open, not on first read. */
export function checkPcapngStart(buf: Uint8Array): void {
  if (!isPcapng(buf)) throw new CaptureError('CG_PCAP_BAD_MAGIC');
  if (buf.length < MIN_SHB_BYTES) throw new CaptureError('CG_PCAP_TRUNCATED', `section header needs ${MIN_SHB_BYTES} bytes, file has ${buf.length}`);
  sectionByteOrder(new DataView(buf.buffer, buf.byteOffset, buf.byteLength), 0);
}

function sectionByteOrder(view: DataView, offset: number): boolean {
  const bom = view.getUint32(offset + 8, true);
  if (bom !== PCAPNG_BYTE_ORDER_MAGIC && bom !== 0x4d3c2b1a) {
    throw new CaptureError('CG_PCAP_BAD_MAGIC', `pcapng byte-order magic 0x${bom.toString(16)} at byte ${offset}`);
  }
  const le = bom === PCAPNG_BYTE_ORDER_MAGIC;
  const major = view.getUint16(offset + 12, le);
  if (major !== 1) throw new CaptureError('CG_PCAP_MALFORMED', `pcapng version ${major} at byte ${offset}`);
  return le;
}

/**
 * Yields the packets of every section. Block framing (a length at both ends) lets a packet block with
 * inconsistent fields be counted in `stats.badRecords` and skipped; a broken frame itself is fatal.
 */
export function* pcapngFrames(buf: Uint8Array, options: CaptureReaderOptions, stats: CaptureStats): Generator<CaptureFrame> {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let le = true;
  let interfaces: Interface[] = [];
  // Simple Packet Blocks carry no timestamp: they take the last one seen, which keeps order sane.
  let lastTimeUs = 0;
  let offset = 0;
  // Every pass advances by a validated block length of at least 12 bytes, so this ends.
  while (offset < buf.length) {
    if (buf.length - offset < 12) {
      endTruncated(options, stats, `block header at byte ${offset}`);
      return;
    }
    const type = view.getUint32(offset, le);
    if (type === PcapngBlock.SECTION_HEADER) {
      if (buf.length - offset < MIN_SHB_BYTES) {
        endTruncated(options, stats, `section header at byte ${offset}`);
        return;
      }
      le = sectionByteOrder(view, offset);
      interfaces = [];
    }
    const length = view.getUint32(offset + 4, le);
    if (length < 12 || length % 4 !== 0) throw new CaptureError('CG_PCAP_MALFORMED', `block at byte ${offset} has length ${length}`);
    if (length > buf.length - offset) {
      endTruncated(options, stats, `block at byte ${offset} needs ${length} bytes, ${buf.length - offset} left`);
      return;
    }
    if (view.getUint32(offset + length - 4, le) !== length) {
      throw new CaptureError('CG_PCAP_MALFORMED', `block at byte ${offset}: trailing length differs from leading length`);
    }
    const block = offset;
    const end = offset + length - 4;
    offset += length;

    if (type === PcapngBlock.INTERFACE_DESCRIPTION) {
      if (end - block < 16) throw new CaptureError('CG_PCAP_MALFORMED', `interface block at byte ${block} is too short`);
      interfaces.push(readInterface(view, block, end, le));
      continue;
    }
    let frame: CaptureFrame | undefined;
    if (type === PcapngBlock.ENHANCED_PACKET || type === PcapngBlock.PACKET) {
      frame = readPacketBlock(buf, view, block, end, le, type === PcapngBlock.PACKET, interfaces, options);
    } else if (type === PcapngBlock.SIMPLE_PACKET) {
      frame = readSimplePacket(buf, view, block, end, le, interfaces[0], lastTimeUs);
    } else {
      continue;
    }
    if (frame === undefined) {
      stats.badRecords++;
      continue;
    }
    lastTimeUs = frame.timeUs;
    yield frame;
  }
}

function readInterface(view: DataView, block: number, end: number, le: boolean): Interface {
  const linkType = view.getUint16(block + 8, le);
  const snaplen = view.getUint32(block + 12, le);
  let resolution = 6;
  let binary = false;
  let offsetSeconds = 0n;
  // Options: code, length, value padded to 4 bytes. Each step moves at least 4 bytes, so this ends.
  for (let o = block + 16; o + 4 <= end; ) {
    const code = view.getUint16(o, le);
    const len = view.getUint16(o + 2, le);
    if (code === OPT_END || o + 4 + len > end) break;
    if (code === OPT_IF_TSRESOL && len >= 1) {
      const v = view.getUint8(o + 4);
      binary = (v & 0x80) !== 0;
      resolution = v & 0x7f;
    } else if (code === OPT_IF_TSOFFSET && len >= 8) {
      offsetSeconds = view.getBigInt64(o + 4, le);
    }
    o += 4 + ((len + 3) & ~3);
  }
  return { linkType, snaplen, toUs: timestampConverter(resolution, binary, offsetSeconds * 1_000_000n) };
}

/** 64-bit timestamps exceed 2^53 in nanoseconds, so the conversion is done in BigInt. */
function timestampConverter(resolution: number, binary: boolean, offsetUs: bigint): (high: number, low: number) => number {
  if (!binary && resolution === 6 && offsetUs === 0n) return (high, low) => high * 0x1_0000_0000 + low;
  return (high, low) => {
    const ticks = (BigInt(high) << 32n) | BigInt(low);
    let us: bigint;
    if (binary) us = (ticks * 1_000_000n) >> BigInt(resolution);
    else if (resolution <= 6) us = ticks * 10n ** BigInt(6 - resolution);
    else us = ticks / 10n ** BigInt(resolution - 6);
    return Number(us + offsetUs);
  };
}

function readPacketBlock(
  buf: Uint8Array,
  view: DataView,
  block: number,
  end: number,
  le: boolean,
  obsolete: boolean,
  interfaces: readonly Interface[],
  options: CaptureReaderOptions,
): CaptureFrame | undefined {
  const data = block + 28;
  if (end < data) return undefined;
  const interfaceId = obsolete ? view.getUint16(block + 8, le) : view.getUint32(block + 8, le);
  const iface = interfaces[interfaceId];
  const capturedLength = view.getUint32(block + 20, le);
  if (!iface || capturedLength > options.maxRecordBytes || capturedLength > end - data) return undefined;
  return {
    timeUs: iface.toUs(view.getUint32(block + 12, le), view.getUint32(block + 16, le)),
    linkType: iface.linkType,
    data: buf.subarray(data, data + capturedLength),
    originalLength: view.getUint32(block + 24, le),
  };
}

function readSimplePacket(
  buf: Uint8Array,
  view: DataView,
  block: number,
  end: number,
  le: boolean,
  iface: Interface | undefined,
  timeUs: number,
): CaptureFrame | undefined {
  const data = block + 12;
  if (!iface || end < data) return undefined;
  const originalLength = view.getUint32(block + 8, le);
  // The block holds min(original length, snaplen) bytes plus padding; it has no length of its own.
  let capturedLength = Math.min(originalLength, end - data);
  if (iface.snaplen > 0) capturedLength = Math.min(capturedLength, iface.snaplen);
  return { timeUs, linkType: iface.linkType, data: buf.subarray(data, data + capturedLength), originalLength };
}
