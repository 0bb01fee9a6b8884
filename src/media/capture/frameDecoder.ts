import type { UdpAddress } from './PacketTap.js';

/** Link-layer header types (tcpdump.org LINKTYPE_* values, as stored in capture files). */
export const LinkType = {
  /** BSD loopback: 4-byte address family in the capturing host's byte order (macOS `lo0`). */
  NULL: 0,
  ETHERNET: 1,
  /** Raw IP, version read from the first nibble. */
  RAW: 101,
  /** OpenBSD loopback: like NULL but the family is big-endian. */
  LOOP: 108,
  /** Linux "cooked" capture v1 (`tcpdump -i any` before libpcap 1.10). */
  LINUX_SLL: 113,
  IPV4: 228,
  /** Linux "cooked" capture v2 (`tcpdump -i any` since libpcap 1.10). */
  LINUX_SLL2: 276,
} as const;

const SUPPORTED = new Set<number>(Object.values(LinkType));

export function isSupportedLinkType(linkType: number): boolean {
  return SUPPORTED.has(linkType);
}

/** Why a frame yielded no UDP datagram; each reason has its own counter in the reader's stats. */
export type SkipReason = 'unsupportedLinkType' | 'notIpv4' | 'notUdp' | 'fragment' | 'malformed' | 'snapped';

export interface DecodedUdp {
  readonly ok: true;
  readonly src: UdpAddress;
  readonly dst: UdpAddress;
  /** A view into the frame (no copy). */
  readonly payload: Uint8Array;
}

export type DecodedFrame = DecodedUdp | { readonly ok: false; readonly reason: SkipReason };

const ETHERTYPE_IPV4 = 0x0800;
/** 802.1Q, 802.1ad (QinQ) and the pre-standard 0x9100 QinQ tag. */
const VLAN_ETHERTYPES = new Set([0x8100, 0x88a8, 0x9100]);
/** More stacked tags than this is not a real network; stop rather than walk a hostile frame. */
const MAX_VLAN_TAGS = 4;
const IPPROTO_UDP = 17;
const AF_INET = 2;

function skip(reason: SkipReason): DecodedFrame {
  return { ok: false, reason };
}

function u16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

/**
 * Finds the UDP datagram inside one captured frame. Called once per frame, so bad input returns a
 * reason instead of throwing, and the payload is a view rather than a copy.
 */
export function decodeUdpFrame(linkType: number, frame: Uint8Array): DecodedFrame {
  switch (linkType) {
    case LinkType.ETHERNET:
      return decodeEthernet(frame);
    case LinkType.LINUX_SLL:
      // Protocol type is the last field of the 16-byte header.
      return frame.length < 16 ? skip('malformed') : decodeByEthertype(frame, 16, u16(frame, 14));
    case LinkType.LINUX_SLL2:
      // Protocol type leads the 20-byte header.
      return frame.length < 20 ? skip('malformed') : decodeByEthertype(frame, 20, u16(frame, 0));
    case LinkType.RAW:
      if (frame.length < 1) return skip('malformed');
      return frame[0]! >> 4 === 4 ? decodeIpv4(frame, 0) : skip('notIpv4');
    case LinkType.IPV4:
      return decodeIpv4(frame, 0);
    case LinkType.NULL: {
      if (frame.length < 4) return skip('malformed');
      // Host byte order of whoever captured it, and AF_INET is 2 on every BSD and macOS.
      const le = frame[0]! | (frame[1]! << 8) | (frame[2]! << 16) | (frame[3]! << 24);
      const be = (frame[0]! << 24) | (frame[1]! << 16) | (frame[2]! << 8) | frame[3]!;
      return le === AF_INET || be === AF_INET ? decodeIpv4(frame, 4) : skip('notIpv4');
    }
    case LinkType.LOOP: {
      if (frame.length < 4) return skip('malformed');
      const be = (frame[0]! << 24) | (frame[1]! << 16) | (frame[2]! << 8) | frame[3]!;
      return be === AF_INET ? decodeIpv4(frame, 4) : skip('notIpv4');
    }
    default:
      return skip('unsupportedLinkType');
  }
}

function decodeEthernet(frame: Uint8Array): DecodedFrame {
  if (frame.length < 14) return skip('malformed');
  let offset = 12;
  let ethertype = u16(frame, offset);
  for (let tags = 0; VLAN_ETHERTYPES.has(ethertype); tags++) {
    if (tags === MAX_VLAN_TAGS || frame.length < offset + 6) return skip('malformed');
    offset += 4;
    ethertype = u16(frame, offset);
  }
  return decodeByEthertype(frame, offset + 2, ethertype);
}

function decodeByEthertype(frame: Uint8Array, offset: number, ethertype: number): DecodedFrame {
  return ethertype === ETHERTYPE_IPV4 ? decodeIpv4(frame, offset) : skip('notIpv4');
}

function decodeIpv4(frame: Uint8Array, ip: number): DecodedFrame {
  const available = frame.length - ip;
  if (available < 1 || frame[ip]! >> 4 !== 4) return skip('malformed');
  // A header cut short can only be a small snaplen: the frame was real, we just did not keep it.
  if (available < 20) return skip('snapped');
  const headerLength = (frame[ip]! & 0x0f) * 4;
  const totalLength = u16(frame, ip + 2);
  if (headerLength < 20 || totalLength < headerLength) return skip('malformed');
  const fragment = u16(frame, ip + 6);
  // More-fragments set, or a non-zero offset: a piece of a datagram we would have to reassemble.
  if ((fragment & 0x2000) !== 0 || (fragment & 0x1fff) !== 0) return skip('fragment');
  if (frame[ip + 9] !== IPPROTO_UDP) return skip('notUdp');
  // Bytes past totalLength are link padding (short Ethernet frames) or an FCS, never payload.
  if (available < totalLength) return skip('snapped');
  const udp = ip + headerLength;
  if (totalLength - headerLength < 8) return skip('malformed');
  const udpLength = u16(frame, udp + 4);
  if (udpLength < 8 || udpLength > totalLength - headerLength) return skip('malformed');
  return {
    ok: true,
    src: { address: ipv4String(frame, ip + 12), port: u16(frame, udp) },
    dst: { address: ipv4String(frame, ip + 16), port: u16(frame, udp + 2) },
    payload: frame.subarray(udp + 8, udp + udpLength),
  };
}

function ipv4String(b: Uint8Array, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}
