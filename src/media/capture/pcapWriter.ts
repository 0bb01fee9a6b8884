import { createWriteStream, type WriteStream } from 'node:fs';
import { CaptureError, type Parsed } from '../../errors.js';
import { LinkType } from './frameDecoder.js';
import { LIBPCAP_HEADER_BYTES, LIBPCAP_RECORD_HEADER_BYTES, LibpcapMagic } from './libpcapFormat.js';
import type { UdpAddress } from './PacketTap.js';
import { checkUdpEncodable, ETHERNET_HEADER_BYTES, IPV4_HEADER_BYTES, UDP_HEADER_BYTES, writeEthernetIpv4Udp } from './udpFrameEncoder.js';

/** One UDP datagram to store. */
export interface PcapRecord {
  /** Microseconds since the Unix epoch. */
  readonly timeUs: number;
  readonly src: UdpAddress;
  readonly dst: UdpAddress;
  readonly payload: Uint8Array;
}

/** libpcap's own MAXIMUM_SNAPLEN: larger than any frame we write, and what tcpdump writes today. */
export const PCAP_SNAPLEN = 262_144;
const FRAME_OVERHEAD = ETHERNET_HEADER_BYTES + IPV4_HEADER_BYTES + UDP_HEADER_BYTES;

/**
 * The 24-byte libpcap header: little-endian, microsecond timestamps, LINKTYPE_ETHERNET, version 2.4 —
 * the most widely read variant (Wireshark, tshark, tcpdump, sipp's pcap playback).
 */
export function encodePcapFileHeader(): Buffer {
  const out = Buffer.alloc(LIBPCAP_HEADER_BYTES);
  out.writeUInt32LE(LibpcapMagic.MICROSECONDS, 0);
  out.writeUInt16LE(2, 4);
  out.writeUInt16LE(4, 6);
  // thiszone and sigfigs stay 0, as every modern writer leaves them.
  out.writeUInt32LE(PCAP_SNAPLEN, 16);
  out.writeUInt32LE(LinkType.ETHERNET, 20);
  return out;
}

/** One record (header + Ethernet/IPv4/UDP frame). Per packet, so bad input is a failure, not a throw. */
export function encodePcapRecord(record: PcapRecord, ipId: number): Parsed<Buffer> {
  const checked = checkUdpEncodable(record.src, record.dst, record.payload.length);
  if (!checked.ok) return checked;
  const frameLength = FRAME_OVERHEAD + record.payload.length;
  const out = Buffer.allocUnsafe(LIBPCAP_RECORD_HEADER_BYTES + frameLength);
  const timeUs = Math.max(0, Math.floor(record.timeUs));
  const seconds = Math.floor(timeUs / 1_000_000);
  out.writeUInt32LE(seconds >>> 0, 0);
  out.writeUInt32LE(timeUs - seconds * 1_000_000, 4);
  out.writeUInt32LE(frameLength, 8);
  out.writeUInt32LE(frameLength, 12);
  const { src, dst } = checked.value;
  writeEthernetIpv4Udp(out, LIBPCAP_RECORD_HEADER_BYTES, src, record.src.port, dst, record.dst.port, record.payload, ipId);
  return { ok: true, value: out };
}

/**
 * A whole capture in memory, byte-for-byte the same for the same records (IP ids count from 0):
 * for fixtures and tests. Throws CaptureError CG_PCAP_UNENCODABLE for a record it cannot write.
 */
export function encodePcap(records: Iterable<PcapRecord>): Buffer {
  const parts: Buffer[] = [encodePcapFileHeader()];
  let ipId = 0;
  for (const record of records) {
    const encoded = encodePcapRecord(record, ipId++);
    if (!encoded.ok) throw new CaptureError(encoded.code, encoded.detail);
    parts.push(encoded.value);
  }
  return Buffer.concat(parts);
}

export interface PcapFileWriterOptions {
  /**
   * Bytes allowed to wait in memory for the disk. Past it records are dropped and counted instead of
   * growing without bound behind a stalled disk. Default 8 MiB (minutes of a G.711 call both ways).
   */
  readonly maxBufferedBytes: number;
  /** Called once, with CG_PCAP_WRITE_FAILED, when the file cannot be opened or written. */
  readonly onError: ((err: CaptureError) => void) | undefined;
}

export const defaultPcapFileWriterOptions = {
  maxBufferedBytes: 8 * 1024 * 1024,
  onError: undefined,
} as const satisfies PcapFileWriterOptions;

export interface PcapWriterStats {
  records: number;
  /** Bytes handed to the file, header included. */
  bytes: number;
  /** Records not written: unencodable, over the buffer limit, or after an error or close. */
  dropped: number;
}

/**
 * Appends records to a libpcap file through one buffered WriteStream: `write` never blocks the event
 * loop and never opens the file again; the stream coalesces queued records into vectored writes.
 */
export class PcapFileWriter {
  readonly path: string;
  readonly stats: PcapWriterStats = { records: 0, bytes: 0, dropped: 0 };
  /** Set when the file could not be opened or written; later records are dropped. */
  error: CaptureError | undefined;
  private readonly stream: WriteStream;
  private readonly options: PcapFileWriterOptions;
  private ipId = 0;
  private closing: Promise<void> | undefined;

  constructor(path: string, options: Partial<PcapFileWriterOptions> = {}) {
    this.path = path;
    this.options = { ...defaultPcapFileWriterOptions, ...options };
    this.stream = createWriteStream(path, { flags: 'w', highWaterMark: 64 * 1024 });
    this.stream.on('error', (cause: NodeJS.ErrnoException) => {
      if (this.error) return;
      this.error = new CaptureError('CG_PCAP_WRITE_FAILED', cause.code ?? cause.message, { cause, details: { path } });
      this.options.onError?.(this.error);
    });
    const header = encodePcapFileHeader();
    this.stream.write(header);
    this.stats.bytes += header.length;
  }

  /** Returns false when the record was dropped (see `stats.dropped`). Never throws. */
  write(record: PcapRecord): boolean {
    if (this.closing || this.error || this.stream.writableLength > this.options.maxBufferedBytes) {
      this.stats.dropped++;
      return false;
    }
    const encoded = encodePcapRecord(record, this.ipId);
    if (!encoded.ok) {
      this.stats.dropped++;
      return false;
    }
    this.ipId = (this.ipId + 1) & 0xffff;
    // The return value only says the stream is above its high-water mark; the limit above bounds it.
    this.stream.write(encoded.value);
    this.stats.records++;
    this.stats.bytes += encoded.value.length;
    return true;
  }

  /**
   * Flushes and closes the file. Idempotent: every call returns the same promise, which resolves once
   * the descriptor is closed and rejects with CG_PCAP_WRITE_FAILED if anything failed to reach it.
   */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve, reject) => {
      const done = (): void => (this.error ? reject(this.error) : resolve());
      if (this.stream.closed) {
        done();
        return;
      }
      this.stream.once('close', done);
      if (!this.stream.destroyed) this.stream.end();
    });
    return this.closing;
  }
}
