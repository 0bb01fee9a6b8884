import { parseRtcp, type RtcpPacket } from '../../src/media/rtp/RtcpPacket.js';
import { check, describeBytes, type FuzzTarget } from '../engine.js';
import { concat, mutateBytes, randomBytes, seedOrMutant, type Rng } from '../mutate.js';

/**
 * parseRtcp (src/media/rtp/RtcpPacket.ts) on compound RTCP datagrams. Documented never to throw; an
 * accepted datagram's packets must tile it and carry values in their fields' ranges.
 */
export const rtcpTarget: FuzzTarget<Uint8Array> = {
  name: 'rtcp',
  about: 'parseRtcp on mutated compound RTCP (SR, RR, BYE, SDES, APP, feedback, padding); accepted packets tile the datagram',
  async open() {
    const seeds = rtcpSeeds();
    return {
      generate: (rng: Rng) =>
        seedOrMutant(
          rng,
          seeds,
          (seed) => mutateBytes(rng, seed, { others: seeds, maxLength: 4096 }),
          () => {
            // Noise that at least starts like RTCP, or the parser only ever sees version errors.
            const b = randomBytes(rng, 4 * rng.length(400));
            if (b.length > 0 && rng.bool(0.7)) b[0] = 0x80 | (b[0]! & 0x3f);
            return b;
          },
        ),
      run(buf: Uint8Array) {
        const parsed = parseRtcp(buf);
        if (!parsed.ok) {
          check(parsed.code === 'CG_RTCP_MALFORMED', `failure code ${parsed.code}`);
          return 'rejected';
        }
        check(parsed.value.length >= 1, 'an accepted datagram with no packets');
        let bytes = 0;
        for (const p of parsed.value) bytes += checkPacket(p, buf.length);
        check(bytes <= buf.length, `packets claim ${bytes} bytes of a ${buf.length}-byte datagram`);
        return 'accepted';
      },
      isTyped: () => false,
      describe: (buf: Uint8Array) => describeBytes(buf),
    };
  },
};

/** Checks one packet's fields; returns the bytes it at least occupies. */
function checkPacket(p: RtcpPacket, total: number): number {
  const u32 = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
  if (p.type === 'other') {
    check(p.packetType >= 192 && p.packetType <= 223 && p.length >= 4 && p.length <= total, `other packet ${p.packetType} of ${p.length} bytes`);
    return p.length;
  }
  if (p.type === 'BYE') {
    check(p.ssrcs.length <= 31 && p.ssrcs.every(u32), 'BYE SSRC list');
    return 4 + p.ssrcs.length * 4;
  }
  check(u32(p.ssrc), 'SSRC');
  for (const r of p.reports) {
    check(r.fractionLost >= 0 && r.fractionLost <= 255, `fraction lost ${r.fractionLost}`);
    check(r.cumulativeLost >= -0x800000 && r.cumulativeLost < 0x800000, `cumulative lost ${r.cumulativeLost}`);
    check(u32(r.ssrc) && u32(r.highestSequence) && u32(r.jitter) && u32(r.lastSr) && u32(r.delaySinceLastSr), 'report block field outside 32 bits');
  }
  return (p.type === 'SR' ? 28 : 8) + p.reports.length * 24;
}

/** One RTCP packet: header (count, type, length in words - 1) and a body padded to 4 bytes. */
function packet(type: number, count: number, body: Uint8Array, pad = 0): Uint8Array {
  const padded = (body.length + 3) & ~3;
  const out = new Uint8Array(4 + padded + pad);
  const v = new DataView(out.buffer);
  v.setUint8(0, 0x80 | (pad > 0 ? 0x20 : 0) | count);
  v.setUint8(1, type);
  v.setUint16(2, out.length / 4 - 1);
  out.set(body, 4);
  if (pad > 0) out[out.length - 1] = pad;
  return out;
}

function words(...values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const v = new DataView(out.buffer);
  values.forEach((x, i) => v.setUint32(i * 4, x >>> 0));
  return out;
}

function reportBlock(i: number): number[] {
  // SSRC, fraction lost + cumulative lost (one negative), highest seq, jitter, LSR, DLSR.
  return [0xdecaf000 + i, ((i * 25) << 24) | (i % 2 ? 0xfffffe : 5), 0x0001fff0 + i, 40 * i, 0x12345678, 0x10000];
}

function rtcpSeeds(): Uint8Array[] {
  const sr = (blocks: number): Uint8Array =>
    packet(200, blocks, words(0x11111111, 0xe8f1a2b3, 0x80000000, 160000, 1000, 160000, ...Array.from({ length: blocks }, (_, i) => reportBlock(i)).flat()));
  const rr = (blocks: number): Uint8Array => packet(201, blocks, words(0x22222222, ...Array.from({ length: blocks }, (_, i) => reportBlock(i)).flat()));
  const sdes = packet(202, 1, concat(words(0x11111111), Uint8Array.of(1, 11, ...new TextEncoder().encode('callgate@fz'), 0, 0, 0, 0)));
  const bye = (n: number): Uint8Array => packet(203, n, words(...Array.from({ length: n }, (_, i) => 0x33333333 + i)));
  const app = packet(204, 0, concat(words(0x11111111), new TextEncoder().encode('FUZZ'), words(1, 2)));
  const nack = packet(205, 1, words(0x11111111, 0x22222222, 0x00100003));
  const pli = packet(206, 1, words(0x11111111, 0x22222222));
  const xr = packet(207, 0, words(0x11111111, 0x04000002, 0x12345678, 0x9abcdef0));
  return [
    sr(0),
    sr(1),
    sr(3),
    rr(0),
    rr(2),
    bye(1),
    bye(3),
    concat(sr(1), sdes),
    concat(rr(1), sdes, bye(1)),
    concat(rr(0), nack, pli),
    concat(sr(2), sdes, app, xr),
    concat(rr(1), packet(203, 1, words(0x44444444), 8)),
    concat(sdes, packet(201, 0, words(0x55555555), 4)),
  ];
}
