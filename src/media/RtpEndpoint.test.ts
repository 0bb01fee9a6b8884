import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { CallgateError } from '../errors.js';
import { serializeRtp, type RtpPacket } from './rtp/RtpPacket.js';
import { RtpEndpoint } from './RtpEndpoint.js';
import { until } from '../util/testing/wait.js';

const open: RtpEndpoint[] = [];
const sockets: dgram.Socket[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((e) => e.close()));
  await Promise.all(sockets.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

async function endpoint(opts: Parameters<typeof RtpEndpoint.open>[0] = {}): Promise<RtpEndpoint> {
  const ep = await RtpEndpoint.open({ portRange: { min: 31000, max: 31999 }, ...opts });
  open.push(ep);
  return ep;
}

async function peer(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  sockets.push(s);
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

function rtp(seq: number, payloadType = 0): Buffer {
  return serializeRtp({ marker: false, payloadType, sequenceNumber: seq, timestamp: seq * 160, ssrc: 42 }, new Uint8Array(160).fill(0xff));
}

async function sendAll(from: dgram.Socket, to: RtpEndpoint, datagrams: Uint8Array[]): Promise<void> {
  for (const d of datagrams) {
    await new Promise<void>((r) => from.send(d, to.localAddress.port, '127.0.0.1', () => r()));
  }
}

describe('RtpEndpoint over loopback UDP', () => {
  it('binds an even port from the range and receives packets in order', async () => {
    const ep = await endpoint();
    expect(ep.localAddress.port % 2).toBe(0);
    expect(ep.localAddress.port).toBeGreaterThanOrEqual(31000);
    const got: number[] = [];
    ep.on('packet', (p) => got.push(p.sequenceNumber));
    const s = await peer();
    await sendAll(s, ep, [rtp(1), rtp(2), rtp(4), rtp(3), rtp(5)]);
    await until(() => got.length === 5);
    expect(got).toEqual([1, 2, 3, 4, 5]);
    const stats = ep.stats();
    expect(stats.received).toMatchObject({ packets: 5, expected: 5, lost: 0 });
    expect(stats.jitterBuffer.reordered).toBe(1);
  });

  it('latches to the first valid source and drops and counts other sources', async () => {
    const ep = await endpoint({ remote: { address: '127.0.0.1', port: 9 } });
    const latched: number[] = [];
    ep.on('latched', (a) => latched.push(a.port));
    const a = await peer();
    const b = await peer();
    const got: number[] = [];
    ep.on('packet', (p) => got.push(p.sequenceNumber));
    await sendAll(a, ep, [rtp(1)]);
    await until(() => got.length === 1);
    await sendAll(b, ep, [rtp(2), rtp(3)]);
    await sendAll(a, ep, [rtp(2)]);
    await until(() => got.length === 2);
    expect(latched).toEqual([a.address().port]);
    expect(ep.remoteAddress?.port).toBe(a.address().port);
    await until(() => ep.stats().droppedTotal === 2);
    expect(ep.stats().dropped.CG_RTP_UNEXPECTED_SOURCE).toBe(2);
  });

  it('without latching accepts only the SDP remote', async () => {
    const a = await peer();
    const b = await peer();
    const ep = await endpoint({ latching: false, remote: { address: '127.0.0.1', port: a.address().port } });
    const got: number[] = [];
    ep.on('packet', (p) => got.push(p.sequenceNumber));
    await sendAll(b, ep, [rtp(1)]);
    await sendAll(a, ep, [rtp(2)]);
    await until(() => got.length === 1);
    expect(got).toEqual([2]);
    expect(ep.stats().dropped.CG_RTP_UNEXPECTED_SOURCE).toBe(1);
  });

  it('sends to the remote and drops payload types that were not negotiated', async () => {
    const s = await peer();
    const ep = await endpoint({ remote: { address: '127.0.0.1', port: s.address().port }, payloadTypes: new Set([0, 101]) });
    const received: Buffer[] = [];
    s.on('message', (m) => received.push(m));
    expect(ep.send(rtp(7))).toBe(true);
    await until(() => received.length === 1);
    expect(received[0]?.readUInt16BE(2)).toBe(7);
    await sendAll(s, ep, [rtp(1, 8), rtp(2, 0)]);
    await until(() => ep.stats().received.packets === 1);
    expect(ep.stats().dropped.CG_RTP_UNKNOWN_PAYLOAD_TYPE).toBe(1);
    expect(ep.stats().sent.packets).toBe(1);
  });

  it('survives 10 000 hostile datagrams, counts every one, and keeps working', async () => {
    const ep = await endpoint();
    const got: RtpPacket[] = [];
    ep.on('packet', (p) => got.push(p));
    const s = await peer();
    await sendAll(s, ep, [rtp(1)]); // latch first, so hostile bytes come from the real peer
    await until(() => got.length === 1);

    let seed = 7;
    const rand = (n: number): number => ((seed = (seed * 1664525 + 1013904223) >>> 0) % n);
    const hostile: Buffer[] = [];
    for (let i = 0; i < 10_000; i++) {
      const kind = i % 5;
      let buf: Buffer;
      if (kind === 0) {
        buf = Buffer.alloc(12 + rand(40));
        for (let j = 0; j < buf.length; j++) buf[j] = rand(256);
        buf[0] = 0x40; // version 1: never valid
      } else if (kind === 1) {
        buf = rtp(2 + i).subarray(0, rand(12)); // truncated header
      } else if (kind === 2) {
        buf = Buffer.alloc(1600 + rand(5000), 0x80); // oversized
      } else if (kind === 3) {
        buf = Buffer.from(rtp(2 + i).subarray(0, 20));
        buf[0] = 0x80 | 15; // 15 CSRCs claimed, 8 bytes present
      } else {
        buf = Buffer.from(rtp(2 + i).subarray(0, 14));
        buf[0] = 0x90; // extension header running past the end
        buf[12] = 0xbe;
      }
      hostile.push(buf);
    }
    // In chunks, waiting for each to be counted: a flood faster than the receive buffer would be dropped
    // by the kernel, and this test is about what the endpoint does with what it gets.
    for (let i = 0; i < hostile.length; i += 50) {
      await sendAll(s, ep, hostile.slice(i, i + 50));
      await until(() => ep.stats().droppedTotal === Math.min(i + 50, hostile.length), 5000).catch((e) => {
        throw new Error(`${e} at chunk ${i}: ${JSON.stringify(ep.stats())}`);
      });
    }
    const { dropped } = ep.stats();
    expect(dropped.CG_RTP_BAD_VERSION).toBe(2000);
    expect(dropped.CG_RTP_TOO_SHORT).toBe(2000);
    expect(dropped.CG_RTP_TOO_LONG).toBe(2000);
    expect(dropped.CG_RTP_BAD_CSRC).toBe(2000);
    expect(dropped.CG_RTP_BAD_EXTENSION).toBe(2000);
    await sendAll(s, ep, [rtp(2), rtp(3)]);
    await until(() => got.length === 3);
    expect(got.map((p) => p.sequenceNumber)).toEqual([1, 2, 3]);
  });

  it('close() is idempotent, releases the port and leaves no sockets or timers', async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap' || r === 'Timeout').length;
    const ep = await RtpEndpoint.open({ portRange: { min: 32000, max: 32001 } });
    const s = await peer();
    await sendAll(s, ep, [rtp(1), rtp(3)]); // leaves a gap held, so the jitter timer runs
    await until(() => ep.stats().received.packets === 2);
    const port = ep.localAddress.port;
    await Promise.all([ep.close(), ep.close()]);
    await ep.close();
    expect(ep.send(rtp(9))).toBe(false);
    await new Promise<void>((r) => s.close(() => r()));
    sockets.splice(sockets.indexOf(s), 1);
    await new Promise((r) => setImmediate(r));
    const after = process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap' || r === 'Timeout').length;
    expect(after).toBe(before);
    // the one-port range is free again
    const again = await RtpEndpoint.open({ portRange: { min: 32000, max: 32001 } });
    expect(again.localAddress.port).toBe(port);
    await again.close();
  });

  it('gives a typed error when the port range is exhausted', async () => {
    const first = await RtpEndpoint.open({ portRange: { min: 32100, max: 32101 } });
    await expect(RtpEndpoint.open({ portRange: { min: 32100, max: 32101 } })).rejects.toMatchObject({
      code: 'CG_PORT_RANGE_EXHAUSTED',
    });
    await first.close();
    await expect(RtpEndpoint.open({ portRange: { min: 10, max: 5 } })).rejects.toBeInstanceOf(CallgateError);
  });

  it('skips ports another process holds', async () => {
    const squatter = dgram.createSocket('udp4');
    sockets.push(squatter);
    await new Promise<void>((r) => squatter.bind(32200, '127.0.0.1', () => r()));
    const ep = await endpoint({ portRange: { min: 32200, max: 32203 } });
    expect(ep.localAddress.port).toBe(32202);
  });
});
