/**
 * Test support: builds captures byte by byte in any byte order, resolution and link type, written
 * apart from pcapWriter so the reader's tests do not just check the writer against itself.
 */

export interface Ipv4Spec {
  readonly src?: string;
  readonly dst?: string;
  readonly srcPort?: number;
  readonly dstPort?: number;
  readonly payload: Uint8Array;
  /** IP protocol; 17 (UDP) unless set. Other protocols get `payload` as their whole body. */
  readonly protocol?: number;
  /** IPv4 options, a multiple of 4 bytes (IHL grows by length / 4). */
  readonly options?: Uint8Array;
  /** The flags + fragment offset word (0x4000 = DF). */
  readonly fragmentWord?: number;
  /** Overrides the UDP length field (to make it lie). */
  readonly udpLength?: number;
}

export function ipv4Packet(spec: Ipv4Spec): Uint8Array {
  const options = spec.options ?? new Uint8Array(0);
  const headerLength = 20 + options.length;
  const udp = (spec.protocol ?? 17) === 17;
  const bodyLength = udp ? 8 + spec.payload.length : spec.payload.length;
  const out = new Uint8Array(headerLength + bodyLength);
  const v = new DataView(out.buffer);
  v.setUint8(0, 0x40 | (headerLength / 4));
  v.setUint16(2, out.length);
  v.setUint16(4, 0x1234);
  v.setUint16(6, spec.fragmentWord ?? 0x4000);
  v.setUint8(8, 64);
  v.setUint8(9, spec.protocol ?? 17);
  out.set(addr(spec.src ?? '10.0.0.1'), 12);
  out.set(addr(spec.dst ?? '10.0.0.2'), 16);
  out.set(options, 20);
  if (udp) {
    v.setUint16(headerLength, spec.srcPort ?? 4000);
    v.setUint16(headerLength + 2, spec.dstPort ?? 5000);
    v.setUint16(headerLength + 4, spec.udpLength ?? 8 + spec.payload.length);
    out.set(spec.payload, headerLength + 8);
  } else {
    out.set(spec.payload, headerLength);
  }
  return out;
}

function addr(text: string): number[] {
  return text.split('.').map(Number);
}

/** Ethernet II, optionally with VLAN tags (TPIDs 0x8100 / 0x88a8) before the given ethertype. */
export function ethernetFrame(body: Uint8Array, ethertype = 0x0800, vlanTpids: readonly number[] = []): Uint8Array {
  const out = new Uint8Array(14 + 4 * vlanTpids.length + body.length);
  const v = new DataView(out.buffer);
  out.set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 0);
  let o = 12;
  for (const tpid of vlanTpids) {
    v.setUint16(o, tpid);
    v.setUint16(o + 2, 42);
    o += 4;
  }
  v.setUint16(o, ethertype);
  out.set(body, o + 2);
  return out;
}

export function sllFrame(body: Uint8Array, protocol = 0x0800): Uint8Array {
  const out = new Uint8Array(16 + body.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, 0); // to us
  v.setUint16(2, 1); // ARPHRD_ETHER
  v.setUint16(4, 6);
  out.set([1, 2, 3, 4, 5, 6], 6);
  v.setUint16(14, protocol);
  out.set(body, 16);
  return out;
}

export function sll2Frame(body: Uint8Array, protocol = 0x0800): Uint8Array {
  const out = new Uint8Array(20 + body.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, protocol);
  v.setUint32(4, 3); // interface index
  v.setUint16(8, 1);
  v.setUint8(10, 4); // outgoing
  v.setUint8(11, 6);
  out.set([1, 2, 3, 4, 5, 6], 12);
  out.set(body, 20);
  return out;
}

/** BSD loopback header: address family in the given byte order. */
export function nullFrame(body: Uint8Array, family: number, littleEndian: boolean): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, family, littleEndian);
  out.set(body, 4);
  return out;
}

export interface RawRecord {
  /** Microseconds since the epoch. */
  readonly timeUs: number;
  /** For ns files: extra nanoseconds below the microsecond (0–999). */
  readonly extraNs?: number;
  readonly data: Uint8Array;
  readonly originalLength?: number;
  /** Overrides the captured-length field (to make it lie). */
  readonly capturedLength?: number;
}

export interface LibpcapSpec {
  readonly littleEndian: boolean;
  readonly nanoseconds: boolean;
  readonly linkType: number;
  readonly versionMajor?: number;
}

export function libpcapFile(spec: LibpcapSpec, records: readonly RawRecord[]): Buffer {
  const parts: Buffer[] = [];
  const h = Buffer.alloc(24);
  const le = spec.littleEndian;
  const magic = spec.nanoseconds ? 0xa1b23c4d : 0xa1b2c3d4;
  if (le) h.writeUInt32LE(magic, 0);
  else h.writeUInt32BE(magic, 0);
  const v = new DataView(h.buffer, h.byteOffset, 24);
  v.setUint16(4, spec.versionMajor ?? 2, le);
  v.setUint16(6, 4, le);
  v.setUint32(16, 65535, le);
  v.setUint32(20, spec.linkType, le);
  parts.push(h);
  for (const r of records) {
    const rh = Buffer.alloc(16);
    const rv = new DataView(rh.buffer, rh.byteOffset, 16);
    const seconds = Math.floor(r.timeUs / 1e6);
    const us = r.timeUs - seconds * 1e6;
    rv.setUint32(0, seconds, le);
    rv.setUint32(4, spec.nanoseconds ? us * 1000 + (r.extraNs ?? 0) : us, le);
    rv.setUint32(8, r.capturedLength ?? r.data.length, le);
    rv.setUint32(12, r.originalLength ?? r.data.length, le);
    parts.push(rh, Buffer.from(r.data));
  }
  return Buffer.concat(parts);
}

/** One pcapng block: type, body (padded here to 4 bytes), lengths at both ends. */
export function pcapngBlock(type: number, body: Uint8Array, littleEndian: boolean): Buffer {
  const padded = (body.length + 3) & ~3;
  const out = Buffer.alloc(12 + padded);
  const v = new DataView(out.buffer, out.byteOffset, out.length);
  v.setUint32(0, type, littleEndian);
  v.setUint32(4, out.length, littleEndian);
  out.set(body, 8);
  v.setUint32(out.length - 4, out.length, littleEndian);
  return out;
}

export function shb(littleEndian: boolean): Buffer {
  const body = new Uint8Array(16);
  const v = new DataView(body.buffer);
  v.setUint32(0, 0x1a2b3c4d, littleEndian);
  v.setUint16(4, 1, littleEndian);
  v.setUint16(6, 0, littleEndian);
  v.setBigInt64(8, -1n, littleEndian);
  return pcapngBlock(0x0a0d0d0a, body, littleEndian);
}

export interface IdbSpec {
  readonly linkType: number;
  readonly snaplen?: number;
  /** if_tsresol byte (6 = µs, 9 = ns, 0x80|n = 2^-n). */
  readonly tsresol?: number;
  /** if_tsoffset in seconds. */
  readonly tsoffset?: bigint;
}

export function idb(spec: IdbSpec, littleEndian: boolean): Buffer {
  // Fixed part, if_name, if_tsresol, if_tsoffset, opt_endofopt.
  const body = Buffer.alloc(8 + 8 + 8 + 12 + 4);
  const v = new DataView(body.buffer, body.byteOffset, body.length);
  v.setUint16(0, spec.linkType, littleEndian);
  v.setUint32(4, spec.snaplen ?? 0, littleEndian);
  let o = 8;
  // An if_name option first, to prove options are walked rather than read at fixed places.
  v.setUint16(o, 2, littleEndian);
  v.setUint16(o + 2, 3, littleEndian);
  body.write('lo0', o + 4);
  o += 8;
  if (spec.tsresol !== undefined) {
    v.setUint16(o, 9, littleEndian);
    v.setUint16(o + 2, 1, littleEndian);
    v.setUint8(o + 4, spec.tsresol);
    o += 8;
  }
  if (spec.tsoffset !== undefined) {
    v.setUint16(o, 14, littleEndian);
    v.setUint16(o + 2, 8, littleEndian);
    v.setBigInt64(o + 4, spec.tsoffset, littleEndian);
    o += 12;
  }
  // opt_endofopt: code 0, length 0.
  o += 4;
  return pcapngBlock(1, body.subarray(0, o), littleEndian);
}

/** Enhanced Packet Block with a raw 64-bit timestamp in the interface's units. */
export function epb(interfaceId: number, ticks: bigint, data: Uint8Array, littleEndian: boolean, capturedLength?: number): Buffer {
  const body = Buffer.alloc(20 + ((data.length + 3) & ~3));
  const v = new DataView(body.buffer, body.byteOffset, body.length);
  v.setUint32(0, interfaceId, littleEndian);
  v.setUint32(4, Number(ticks >> 32n), littleEndian);
  v.setUint32(8, Number(ticks & 0xffffffffn), littleEndian);
  v.setUint32(12, capturedLength ?? data.length, littleEndian);
  v.setUint32(16, data.length, littleEndian);
  body.set(data, 20);
  return pcapngBlock(6, body, littleEndian);
}

/** Obsolete Packet Block (type 2): 16-bit interface id and a drops count. */
export function obsoletePb(interfaceId: number, ticks: bigint, data: Uint8Array, littleEndian: boolean): Buffer {
  const body = Buffer.alloc(20 + ((data.length + 3) & ~3));
  const v = new DataView(body.buffer, body.byteOffset, body.length);
  v.setUint16(0, interfaceId, littleEndian);
  v.setUint16(2, 0, littleEndian);
  v.setUint32(4, Number(ticks >> 32n), littleEndian);
  v.setUint32(8, Number(ticks & 0xffffffffn), littleEndian);
  v.setUint32(12, data.length, littleEndian);
  v.setUint32(16, data.length, littleEndian);
  body.set(data, 20);
  return pcapngBlock(2, body, littleEndian);
}

export function spb(data: Uint8Array, littleEndian: boolean): Buffer {
  const body = Buffer.alloc(4 + ((data.length + 3) & ~3));
  new DataView(body.buffer, body.byteOffset, body.length).setUint32(0, data.length, littleEndian);
  body.set(data, 4);
  return pcapngBlock(3, body, littleEndian);
}
