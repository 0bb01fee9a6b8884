import { describe, expect, it } from 'vitest';
import { parseRtcp } from './RtcpPacket.js';

function rr(ssrc: number, blocks: number[][]): Buffer {
  const buf = Buffer.alloc(8 + blocks.length * 24);
  buf[0] = 0x80 | blocks.length;
  buf[1] = 201;
  buf.writeUInt16BE(buf.length / 4 - 1, 2);
  buf.writeUInt32BE(ssrc, 4);
  blocks.forEach((b, i) => b.forEach((v, j) => buf.writeUInt32BE(v >>> 0, 8 + i * 24 + j * 4)));
  return buf;
}

describe('RTCP', () => {
  it('parses a compound RR + BYE with a report block', () => {
    const bye = Buffer.from([0x81, 203, 0, 1, 0, 0, 0, 7]);
    const lost = (13 << 24) | 0xfffffe; // fraction 13, cumulative −2
    const parsed = parseRtcp(Buffer.concat([rr(7, [[99, lost, 1000, 160, 5, 6]]), bye]));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.value[0]).toEqual({
      type: 'RR',
      ssrc: 7,
      reports: [{ ssrc: 99, fractionLost: 13, cumulativeLost: -2, highestSequence: 1000, jitter: 160, lastSr: 5, delaySinceLastSr: 6 }],
    });
    expect(parsed.value[1]).toEqual({ type: 'BYE', ssrcs: [7] });
  });

  it.each([
    ['length past the datagram', Buffer.from([0x80, 201, 0, 9, 0, 0, 0, 1])],
    ['report blocks that do not fit', Buffer.from([0x81, 201, 0, 1, 0, 0, 0, 1])],
    ['wrong version', Buffer.from([0x40, 201, 0, 1, 0, 0, 0, 1])],
    ['not RTCP', Buffer.from([0x80, 100, 0, 1, 0, 0, 0, 1])],
    ['odd length', Buffer.from([0x80, 201, 0, 1, 0, 0, 0])],
  ])('refuses %s', (_name, buf) => {
    const parsed = parseRtcp(buf);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.code).toBe('CG_RTCP_MALFORMED');
  });
});
