import { describe, expect, it } from 'vitest';
import { isRtcpPacket, parseRtp, serializeRtp } from './RtpPacket.js';

const header = { marker: true, payloadType: 111, sequenceNumber: 65535, timestamp: 0xfffffff0, ssrc: 0xdeadbeef };

describe('RTP parse/serialize', () => {
  it('round-trips the fixed header and payload', () => {
    const payload = Uint8Array.from([1, 2, 3, 4, 5]);
    const parsed = parseRtp(serializeRtp(header, payload));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.value).toMatchObject({ ...header, padding: false, csrcs: [], extension: undefined });
    expect([...parsed.value.payload]).toEqual([1, 2, 3, 4, 5]);
  });

  it('round-trips CSRCs, a header extension and padding', () => {
    const payload = new Uint8Array(7).fill(9);
    const extension = { profile: 0xbede, data: Uint8Array.from([0x10, 0xaa, 0, 0]) };
    const buf = serializeRtp(header, payload, { csrcs: [1, 2, 3], extension, padTo: 4 });
    expect(buf.length % 4).toBe(0);
    const parsed = parseRtp(buf);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.value.csrcs).toEqual([1, 2, 3]);
    expect(parsed.value.extension?.profile).toBe(0xbede);
    expect([...(parsed.value.extension?.data ?? [])]).toEqual([0x10, 0xaa, 0, 0]);
    expect(parsed.value.padding).toBe(true);
    expect(parsed.value.payload.length).toBe(7);
  });

  it.each([
    ['CG_RTP_TOO_SHORT', Buffer.from([0x80, 0, 0, 1])],
    ['CG_RTP_BAD_VERSION', Buffer.from([0x40, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9])],
    ['CG_RTP_BAD_CSRC', Buffer.from([0x8f, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9, 9, 9, 9])],
    ['CG_RTP_BAD_EXTENSION', Buffer.from([0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0, 9, 1])],
    ['CG_RTP_BAD_PADDING', Buffer.from([0xa0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9, 0])],
    ['CG_RTP_BAD_PADDING', Buffer.from([0xa0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9, 200])],
    ['CG_RTP_EMPTY_PAYLOAD', Buffer.from([0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1])],
    ['CG_RTP_TOO_LONG', Buffer.concat([Buffer.from([0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]), Buffer.alloc(2000)])],
  ])('refuses %s with a typed failure', (code, buf) => {
    const parsed = parseRtp(buf);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.code).toBe(code);
  });

  it('never throws on random bytes', () => {
    let seed = 12345;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    let ok = 0;
    for (let i = 0; i < 20000; i++) {
      const buf = Buffer.alloc(rand() % 64);
      for (let j = 0; j < buf.length; j++) buf[j] = rand();
      if (i % 2 === 0 && buf.length > 0) buf[0] = (buf[0]! & 0x3f) | 0x80;
      if (parseRtp(buf).ok) ok++;
    }
    // Some random buffers are valid RTP; the point is that none threw.
    expect(ok).toBeGreaterThan(0);
  });

  it('tells RTCP from RTP on a muxed port (RFC 5761)', () => {
    expect(isRtcpPacket(Buffer.from([0x81, 201, 0, 1, 0, 0, 0, 1]))).toBe(true);
    expect(isRtcpPacket(serializeRtp({ ...header, payloadType: 0, marker: true }, Uint8Array.of(1)))).toBe(false);
  });
});
