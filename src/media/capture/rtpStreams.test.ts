import { describe, expect, it } from 'vitest';
import { serializeRtp } from '../rtp/RtpPacket.js';
import type { UdpDatagram } from './captureTypes.js';
import { findRtpStreams, formatSsrc } from './rtpStreams.js';

const A = { address: '10.0.0.1', port: 4000 };
const B = { address: '10.0.0.2', port: 5000 };
const B2 = { address: '10.0.0.2', port: 5002 };

function rtp(ssrc: number, seq: number, pt = 0): Uint8Array {
  return serializeRtp({ marker: false, payloadType: pt, sequenceNumber: seq, timestamp: seq * 160, ssrc }, new Uint8Array(160).fill(seq & 0xff));
}

function dg(timeUs: number, payload: Uint8Array, src = A, dst = B): UdpDatagram {
  return { timeUs, src, dst, payload };
}

const rtcpSr = new Uint8Array([0x80, 200, 0, 6, 1, 2, 3, 4, ...new Array<number>(20).fill(0)]);
const stunBinding = new Uint8Array([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, ...new Array<number>(12).fill(7)]);

describe('findRtpStreams', () => {
  it('groups by SSRC and 5-tuple, skipping RTCP and non-RTP', () => {
    const input = [
      dg(1_000, rtp(0x1111, 10)),
      dg(2_000, rtcpSr),
      dg(3_000, rtp(0x2222, 500, 8), B, A),
      dg(21_000, rtp(0x1111, 11)),
      dg(22_000, stunBinding),
      dg(23_000, rtp(0x2222, 501, 8), B, A),
      dg(41_000, rtp(0x1111, 12, 101)),
      // The same SSRC moved to another port (a re-INVITE): a stream of its own.
      dg(61_000, rtp(0x1111, 13), A, B2),
    ];
    const scan = findRtpStreams(input);
    expect(scan.rtcpPackets).toBe(1);
    expect(scan.notRtpPackets).toBe(1);
    expect(scan.streams.map((s) => [formatSsrc(s.ssrc), s.dst.port, s.packetCount])).toEqual([
      ['0x00001111', 5000, 3],
      ['0x00002222', 4000, 2],
      ['0x00001111', 5002, 1],
    ]);
    const first = scan.streams[0]!;
    expect(first).toMatchObject({ src: A, dst: B, payloadTypes: [0, 101], firstTimeUs: 1_000, lastTimeUs: 41_000, durationMs: 40, seqGaps: 0, lostPackets: 0 });
    // The packets are the whole datagrams, untouched.
    expect(first.packets.map((p) => p.timeUs)).toEqual([1_000, 21_000, 41_000]);
    expect(first.packets[1]!.bytes).toBe(input[3]!.payload);
  });

  it('counts gaps and loss across the sequence wrap, and reordering', () => {
    const seqs = [65533, 65534, 0, 1, 4, 3, 5, 5, 9];
    const scan = findRtpStreams(seqs.map((s, i) => dg(i * 20_000, rtp(7, s))));
    const s = scan.streams[0]!;
    expect(s.packetCount).toBe(9);
    // 65534 → 0 skips 65535; 1 → 4 skips 2 (3 arrives late); 5 → 9 skips 6, 7, 8.
    expect(s.seqGaps).toBe(3);
    // Expected 65533…9 = 13 packets, 9 arrived (one a duplicate): RFC 3550 counts 4 lost.
    expect(s.lostPackets).toBe(4);
    expect(s.outOfOrder).toBe(2);
  });

  it('takes RTP larger than the endpoint would accept, up to the UDP maximum', () => {
    const big = serializeRtp({ marker: false, payloadType: 96, sequenceNumber: 1, timestamp: 0, ssrc: 9 }, new Uint8Array(4000));
    expect(findRtpStreams([dg(0, big)]).streams).toHaveLength(1);
    expect(findRtpStreams([dg(0, big)], { maxPacketBytes: 1500 }).notRtpPackets).toBe(1);
  });

  it('returns nothing for an empty capture', () => {
    expect(findRtpStreams([])).toEqual({ streams: [], rtcpPackets: 0, notRtpPackets: 0 });
  });
});
