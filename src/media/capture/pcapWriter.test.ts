import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CaptureError } from '../../errors.js';
import { readUdpDatagrams } from './pcapReader.js';
import { encodePcap, PcapFileWriter, type PcapRecord } from './pcapWriter.js';
import { itWith } from '../../../tests/support/tools.js';

const dir = mkdtempSync(join(tmpdir(), 'cg-pcapwriter-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = 1_700_000_000_000_000;
function records(n: number): PcapRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    timeUs: T0 + i * 20_000 + (i % 3) * 7,
    src: { address: '10.0.0.1', port: 40000 },
    dst: { address: '192.0.2.44', port: 5004 + (i % 2) },
    payload: new Uint8Array(172).fill(i & 0xff),
  }));
}

/** One's-complement sum over 16-bit words: a header with a correct checksum sums to 0xffff. */
function onesSum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i + 1 < b.length; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (b.length % 2) s += b[b.length - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

describe('encodePcap', () => {
  it('writes a little-endian µs Ethernet libpcap header', () => {
    const file = encodePcap([]);
    expect(file.length).toBe(24);
    expect(file.readUInt32LE(0)).toBe(0xa1b2c3d4);
    expect([file.readUInt16LE(4), file.readUInt16LE(6)]).toEqual([2, 4]);
    expect(file.readUInt32LE(16)).toBe(262_144);
    expect(file.readUInt32LE(20)).toBe(1);
  });

  it('matches a hand-checked IPv4 header (the classic 192.168.0.1 → .199 example, checksum 0xb861)', () => {
    const file = encodePcap([
      { timeUs: T0, src: { address: '192.168.0.1', port: 1 }, dst: { address: '192.168.0.199', port: 2 }, payload: new Uint8Array(87) },
    ]);
    const ipHeader = file.subarray(24 + 16 + 14, 24 + 16 + 14 + 20);
    expect(ipHeader.toString('hex')).toBe('45000073000040004011b861c0a80001c0a800c7');
  });

  it('produces correct IPv4 and UDP checksums and the same bytes every time', () => {
    const file = encodePcap(records(5));
    expect(encodePcap(records(5)).equals(file)).toBe(true);
    let offset = 24;
    for (let i = 0; i < 5; i++) {
      const len = file.readUInt32LE(offset + 8);
      const frame = file.subarray(offset + 16, offset + 16 + len);
      const ipHdr = frame.subarray(14, 34);
      expect(onesSum(ipHdr)).toBe(0xffff);
      const udp = frame.subarray(34);
      const pseudo = Buffer.concat([ipHdr.subarray(12, 20), Buffer.from([0, 17, udp.length >> 8, udp.length & 0xff]), udp]);
      expect(udp.readUInt16BE(6)).not.toBe(0);
      expect(onesSum(pseudo)).toBe(0xffff);
      offset += 16 + len;
    }
    expect(offset).toBe(file.length);
  });

  it('reads back through the reader: same datagrams, order and timing', () => {
    const input = records(20);
    const { datagrams, stats } = readUdpDatagrams(encodePcap(input));
    expect(stats.datagrams).toBe(20);
    expect(datagrams.map((d) => ({ timeUs: d.timeUs, src: d.src, dst: d.dst, payload: [...d.payload] }))).toEqual(
      input.map((r) => ({ ...r, payload: [...r.payload] })),
    );
  });

  it('accepts IPv4-mapped IPv6 addresses and refuses other IPv6 and oversize payloads', () => {
    const mapped = encodePcap([{ ...records(1)[0]!, src: { address: '::ffff:127.0.0.1', port: 9 } }]);
    expect(readUdpDatagrams(mapped).datagrams[0]!.src.address).toBe('127.0.0.1');
    for (const bad of [
      { ...records(1)[0]!, dst: { address: '::1', port: 9 } },
      { ...records(1)[0]!, dst: { address: '1.2.3.256', port: 9 } },
      { ...records(1)[0]!, dst: { address: '1.2.3.4', port: 70000 } },
      { ...records(1)[0]!, payload: new Uint8Array(65_508) },
    ]) {
      expect(() => encodePcap([bad])).toThrow(CaptureError);
    }
  });

  itWith(['tshark'], 'is read by tshark with good checksums', () => {
    const path = join(dir, 'tshark.pcap');
    const input = records(10);
    const file = encodePcap(input);
    writeFileSync(path, file);
    const out = execFileSync(
      'tshark',
      ['-r', path, '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-T', 'fields', '-e', 'ip.checksum.status', '-e', 'udp.checksum.status', '-e', 'udp.dstport', '-e', 'frame.time_epoch'],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    )
      .toString()
      .trim()
      .split('\n');
    expect(out).toHaveLength(10);
    out.forEach((line, i) => {
      const [ipStatus, udpStatus, port, epoch] = line.split('\t');
      expect([ipStatus, udpStatus]).toEqual(['1', '1']); // Wireshark's checksum status: 0 bad, 1 good, 2 unverified
      expect(Number(port)).toBe(input[i]!.dst.port);
      expect(Math.round(Number(epoch) * 1e6)).toBe(input[i]!.timeUs);
    });
  });
});

describe('PcapFileWriter', () => {
  it('writes the same bytes as encodePcap and closes idempotently', async () => {
    const path = join(dir, 'stream.pcap');
    const w = new PcapFileWriter(path);
    const input = records(300);
    for (const r of input) expect(w.write(r)).toBe(true);
    const first = w.close();
    expect(w.close()).toBe(first);
    await first;
    await w.close();
    expect(readFileSync(path).equals(encodePcap(input))).toBe(true);
    expect(w.stats).toEqual({ records: 300, bytes: encodePcap(input).length, dropped: 0 });
    expect(w.write(input[0]!)).toBe(false);
    expect(w.stats.dropped).toBe(1);
  });

  it('drops and counts unencodable records without throwing', async () => {
    const path = join(dir, 'mixed.pcap');
    const w = new PcapFileWriter(path);
    expect(w.write({ ...records(1)[0]!, src: { address: 'fe80::1', port: 1 } })).toBe(false);
    expect(w.write(records(1)[0]!)).toBe(true);
    await w.close();
    expect(w.stats).toMatchObject({ records: 1, dropped: 1 });
    expect(readUdpDatagrams(readFileSync(path)).datagrams).toHaveLength(1);
  });

  it('bounds what waits in memory: past maxBufferedBytes records are dropped', async () => {
    const w = new PcapFileWriter(join(dir, 'bounded.pcap'), { maxBufferedBytes: 1000 });
    let written = 0;
    // Synchronously, before the file has even opened: everything queues in memory.
    for (const r of records(50)) if (w.write(r)) written++;
    await w.close();
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(10);
    expect(w.stats.dropped).toBe(50 - written);
  });

  it('reports an unwritable path once, and close rejects with CG_PCAP_WRITE_FAILED', async () => {
    const errors: CaptureError[] = [];
    const w = new PcapFileWriter(join(dir, 'no', 'such', 'dir', 'x.pcap'), { onError: (e) => errors.push(e) });
    w.write(records(1)[0]!);
    await expect(w.close()).rejects.toMatchObject({ code: 'CG_PCAP_WRITE_FAILED' });
    await expect(w.close()).rejects.toBeInstanceOf(CaptureError);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toContain('ENOENT');
    expect(w.write(records(1)[0]!)).toBe(false);
  });
});
