import type { UdpAddress } from './PacketTap.js';

/** One link-layer frame as stored in a capture file. */
export interface CaptureFrame {
  /** Microseconds since the Unix epoch (sub-microsecond parts of ns captures are truncated). */
  readonly timeUs: number;
  readonly linkType: number;
  /** The captured bytes: a view into the file buffer, not a copy. */
  readonly data: Uint8Array;
  /** Length on the wire; larger than `data.length` when the capture's snaplen cut the frame. */
  readonly originalLength: number;
}

/** A UDP datagram found in a capture. */
export interface UdpDatagram {
  /** Microseconds since the Unix epoch. */
  readonly timeUs: number;
  readonly src: UdpAddress;
  readonly dst: UdpAddress;
  /** A view into the file buffer, not a copy. */
  readonly payload: Uint8Array;
}

export interface CaptureReaderOptions {
  /**
   * Largest frame a record may claim, in bytes. A longer length means a corrupt or hostile header
   * (we stop there rather than trust it). Default 262144, libpcap's own MAXIMUM_SNAPLEN.
   */
  readonly maxRecordBytes: number;
  /**
   * What to do when the file ends in the middle of a record (a capture cut off by a crash or a full
   * disk): false throws CaptureError CG_PCAP_TRUNCATED after the complete records have been
   * yielded; true stops there and sets `stats.truncated`. Default false.
   */
  readonly tolerateTruncation: boolean;
}

export const defaultCaptureReaderOptions = {
  maxRecordBytes: 262_144,
  tolerateTruncation: false,
} as const satisfies CaptureReaderOptions;

/** Counters for one pass over a capture: what was read, and why records or frames were skipped. */
export interface CaptureStats {
  /** Link-layer frames read. */
  frames: number;
  /** UDP/IPv4 datagrams yielded. */
  datagrams: number;
  /** pcapng packet blocks whose fields contradict their block (unknown interface, length past the end). */
  badRecords: number;
  /** The file ended mid-record and `tolerateTruncation` was on. */
  truncated: boolean;
  /** Frames that held no usable datagram, by reason. */
  skipped: {
    unsupportedLinkType: number;
    notIpv4: number;
    notUdp: number;
    fragment: number;
    malformed: number;
    snapped: number;
  };
}

export function emptyCaptureStats(): CaptureStats {
  return {
    frames: 0,
    datagrams: 0,
    badRecords: 0,
    truncated: false,
    skipped: { unsupportedLinkType: 0, notIpv4: 0, notUdp: 0, fragment: 0, malformed: 0, snapped: 0 },
  };
}
