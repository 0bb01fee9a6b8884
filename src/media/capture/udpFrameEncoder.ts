import { fail, type Parsed } from '../../errors.js';
import type { UdpAddress } from './PacketTap.js';

export const ETHERNET_HEADER_BYTES = 14;
export const IPV4_HEADER_BYTES = 20;
export const UDP_HEADER_BYTES = 8;
/** 65535 − IPv4 header − UDP header: the largest payload one unfragmented IPv4 datagram holds. */
export const MAX_UDP_PAYLOAD = 65_507;

/**
 * Locally administered unicast MACs: the frames are synthesised, and these can never collide with a
 * real vendor's address in a capture someone merges ours into.
 */
const SRC_MAC = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01] as const;
const DST_MAC = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02] as const;
const DEFAULT_TTL = 64;
const IPPROTO_UDP = 17;

/** Dotted quad (or IPv4-mapped IPv6, as dual-stack sockets report peers) to four bytes; else undefined. */
export function parseIpv4(address: string): [number, number, number, number] | undefined {
  const text = address.startsWith('::ffff:') ? address.slice(7) : address;
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out as [number, number, number, number];
}

/**
 * Writes Ethernet + IPv4 + UDP headers and the payload into `out` at `offset`. The IPv4 header
 * checksum is required for readers to accept the packet; the UDP checksum is optional over IPv4 but
 * filled in so Wireshark's validation, when someone turns it on, shows our frames as clean.
 */
export function writeEthernetIpv4Udp(
  out: Uint8Array,
  offset: number,
  src: readonly number[],
  srcPort: number,
  dst: readonly number[],
  dstPort: number,
  payload: Uint8Array,
  ipId: number,
): void {
  out.set(DST_MAC, offset);
  out.set(SRC_MAC, offset + 6);
  out[offset + 12] = 0x08;
  out[offset + 13] = 0x00;
  writeIpv4Udp(out, offset + ETHERNET_HEADER_BYTES, src, srcPort, dst, dstPort, payload, ipId);
}

/** The IPv4 packet alone (for raw-IP link types and tests that wrap it in other link headers). */
export function writeIpv4Udp(
  out: Uint8Array,
  ip: number,
  src: readonly number[],
  srcPort: number,
  dst: readonly number[],
  dstPort: number,
  payload: Uint8Array,
  ipId: number,
): void {
  const udpLength = UDP_HEADER_BYTES + payload.length;
  const totalLength = IPV4_HEADER_BYTES + udpLength;
  out[ip] = 0x45;
  out[ip + 1] = 0;
  put16(out, ip + 2, totalLength);
  put16(out, ip + 4, ipId & 0xffff);
  // Don't Fragment, offset 0: what Linux sets on UDP when path MTU discovery is on.
  put16(out, ip + 6, 0x4000);
  out[ip + 8] = DEFAULT_TTL;
  out[ip + 9] = IPPROTO_UDP;
  put16(out, ip + 10, 0);
  out.set(src, ip + 12);
  out.set(dst, ip + 16);
  put16(out, ip + 10, ~sum16(out, ip, ip + IPV4_HEADER_BYTES, 0) & 0xffff);

  const udp = ip + IPV4_HEADER_BYTES;
  put16(out, udp, srcPort);
  put16(out, udp + 2, dstPort);
  put16(out, udp + 4, udpLength);
  put16(out, udp + 6, 0);
  out.set(payload, udp + UDP_HEADER_BYTES);
  // Pseudo-header: addresses, protocol, UDP length.
  let pseudo = sum16(out, ip + 12, ip + 20, 0) + IPPROTO_UDP + udpLength;
  pseudo = sum16(out, udp, udp + udpLength, pseudo);
  const checksum = ~fold(pseudo) & 0xffff;
  // A computed zero is sent as all ones: zero on the wire means "no checksum" (RFC 768).
  put16(out, udp + 6, checksum === 0 ? 0xffff : checksum);
}

/** Checks addresses, ports and size; returns the four-byte addresses ready for `write*`. */
export function checkUdpEncodable(
  src: UdpAddress,
  dst: UdpAddress,
  payloadLength: number,
): Parsed<{ src: [number, number, number, number]; dst: [number, number, number, number] }> {
  const s = parseIpv4(src.address);
  const d = parseIpv4(dst.address);
  if (!s || !d) return fail('CG_PCAP_UNENCODABLE', 'not an IPv4 address');
  if (!isPort(src.port) || !isPort(dst.port)) return fail('CG_PCAP_UNENCODABLE', 'port out of range');
  if (payloadLength > MAX_UDP_PAYLOAD) return fail('CG_PCAP_UNENCODABLE', `${payloadLength} bytes`);
  return { ok: true, value: { src: s, dst: d } };
}

function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= 0xffff;
}

function put16(out: Uint8Array, o: number, v: number): void {
  out[o] = (v >>> 8) & 0xff;
  out[o + 1] = v & 0xff;
}

/** One's-complement sum of big-endian 16-bit words over [start, end), odd last byte padded with zero. */
function sum16(b: Uint8Array, start: number, end: number, initial: number): number {
  let sum = initial;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (i < end) sum += b[i]! << 8;
  return fold(sum);
}

function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}
