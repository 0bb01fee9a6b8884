/**
 * Reads libpcap and pcapng captures from memory and finds the UDP/IPv4 datagrams in them.
 *
 * Written here rather than taken from npm: `pcap` 3.1.0 is a native addon (binding.gyp over libpcap,
 * `nan`) whose JS entry loads the compiled binding even to read a file offline, so it needs libpcap
 * headers and a compiler on every machine; `pcap-parser` 0.2.1 (engines node >=0.6, vows tests) knows
 * only the microsecond libpcap magic — no nanosecond files, no pcapng — and hands back raw frames with
 * no link-layer, IPv4 or UDP decoding. Both checked with `npm view` / `npm pack`. The formats are small
 * and documented (tcpdump.org pcap and linktypes pages, the pcapng draft), so owning a few hundred
 * lines that treat every length as hostile is cheaper than either.
 */
import { readFile } from 'node:fs/promises';
import { CaptureError } from '../../errors.js';
import {
  defaultCaptureReaderOptions,
  emptyCaptureStats,
  type CaptureFrame,
  type CaptureReaderOptions,
  type CaptureStats,
  type UdpDatagram,
} from './captureTypes.js';
import { decodeUdpFrame, isSupportedLinkType } from './frameDecoder.js';
import { isModifiedLibpcap, libpcapFrames, parseLibpcapHeader, type LibpcapHeader } from './libpcapFormat.js';
import { checkPcapngStart, isPcapng, pcapngFrames } from './pcapngFormat.js';

export type CaptureFormat = 'pcap' | 'pcapng';

/**
 * One capture held in memory. `open` checks the file header; `frames()` and `datagrams()` walk the
 * records lazily (each call starts over and resets `stats`).
 */
export class CaptureReader {
  readonly format: CaptureFormat;
  /** The libpcap file header; undefined for pcapng, whose link types are per interface. */
  readonly libpcapHeader: LibpcapHeader | undefined;
  readonly options: CaptureReaderOptions;
  stats: CaptureStats = emptyCaptureStats();
  private readonly buf: Uint8Array;

  private constructor(buf: Uint8Array, format: CaptureFormat, header: LibpcapHeader | undefined, options: CaptureReaderOptions) {
    this.buf = buf;
    this.format = format;
    this.libpcapHeader = header;
    this.options = options;
  }

  /** Throws CaptureError CG_PCAP_BAD_MAGIC, CG_PCAP_TRUNCATED or CG_PCAP_MALFORMED for an unusable header. */
  static open(buf: Uint8Array, options: Partial<CaptureReaderOptions> = {}): CaptureReader {
    const opts: CaptureReaderOptions = { ...defaultCaptureReaderOptions, ...options };
    if (isPcapng(buf)) {
      checkPcapngStart(buf);
      return new CaptureReader(buf, 'pcapng', undefined, opts);
    }
    if (isModifiedLibpcap(buf)) throw new CaptureError('CG_PCAP_BAD_MAGIC', 'modified (Kuznetzov) libpcap is not supported');
    return new CaptureReader(buf, 'pcap', parseLibpcapHeader(buf), opts);
  }

  /** Every link-layer frame. Throws CaptureError where the file itself stops being readable. */
  *frames(): Generator<CaptureFrame> {
    this.stats = emptyCaptureStats();
    const stats = this.stats;
    const source = this.libpcapHeader
      ? libpcapFrames(this.buf, this.libpcapHeader, this.options, stats)
      : pcapngFrames(this.buf, this.options, stats);
    for (const frame of source) {
      stats.frames++;
      yield frame;
    }
  }

  /**
   * Every UDP/IPv4 datagram, in file order. Frames holding anything else are counted in
   * `stats.skipped`. A libpcap file whose one link type we cannot decode throws
   * CG_PCAP_UNSUPPORTED_LINKTYPE up front rather than reporting an empty capture.
   */
  *datagrams(): Generator<UdpDatagram> {
    if (this.libpcapHeader && !isSupportedLinkType(this.libpcapHeader.linkType)) {
      throw new CaptureError('CG_PCAP_UNSUPPORTED_LINKTYPE', `link type ${this.libpcapHeader.linkType}`);
    }
    for (const frame of this.frames()) {
      const decoded = decodeUdpFrame(frame.linkType, frame.data);
      if (!decoded.ok) {
        this.stats.skipped[decoded.reason]++;
        continue;
      }
      this.stats.datagrams++;
      yield { timeUs: frame.timeUs, src: decoded.src, dst: decoded.dst, payload: decoded.payload };
    }
  }
}

/** Convenience: all datagrams of an in-memory capture, with the pass's stats. */
export function readUdpDatagrams(
  buf: Uint8Array,
  options: Partial<CaptureReaderOptions> = {},
): { format: CaptureFormat; datagrams: UdpDatagram[]; stats: CaptureStats } {
  const reader = CaptureReader.open(buf, options);
  const datagrams = [...reader.datagrams()];
  return { format: reader.format, datagrams, stats: reader.stats };
}

/** Reads a capture file whole (captures of calls are small); file-system errors pass through as they are. */
export async function readCaptureFile(path: string, options: Partial<CaptureReaderOptions> = {}): Promise<CaptureReader> {
  return CaptureReader.open(await readFile(path), options);
}
