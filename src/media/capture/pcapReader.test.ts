import { describe, expect, it } from 'vitest';
import { CaptureError } from '../../errors.js';
import {
  epb,
  ethernetFrame,
  idb,
  ipv4Packet,
  libpcapFile,
  nullFrame,
  obsoletePb,
  pcapngBlock,
  shb,
  sll2Frame,
  sllFrame,
  spb,
} from '../testing/fixtureBuilders.js';
import { LinkType } from './frameDecoder.js';
import { CaptureReader, readUdpDatagrams } from './pcapReader.js';

const T0 = 1_700_000_000_123_456; // µs
const payload = (n: number, fill = n): Uint8Array => new Uint8Array(n).fill(fill & 0xff);
const ip = (p: Uint8Array = payload(20)): Uint8Array =>
  ipv4Packet({ src: '192.0.2.1', dst: '198.51.100.7', srcPort: 40000, dstPort: 5004, payload: p });

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CaptureError);
    return (err as CaptureError).code;
  }
  return undefined;
}

describe('libpcap link types', () => {
  const body = ip(payload(33, 7));
  const cases: [string, number, Uint8Array][] = [
    ['Ethernet', LinkType.ETHERNET, ethernetFrame(body)],
    ['Ethernet + 802.1Q', LinkType.ETHERNET, ethernetFrame(body, 0x0800, [0x8100])],
    ['Ethernet + QinQ', LinkType.ETHERNET, ethernetFrame(body, 0x0800, [0x88a8, 0x8100])],
    ['Linux SLL', LinkType.LINUX_SLL, sllFrame(body)],
    ['Linux SLL2', LinkType.LINUX_SLL2, sll2Frame(body)],
    ['raw IP', LinkType.RAW, body],
    ['IPv4', LinkType.IPV4, body],
    ['BSD null, little-endian family', LinkType.NULL, nullFrame(body, 2, true)],
    ['BSD null, big-endian family', LinkType.NULL, nullFrame(body, 2, false)],
    ['OpenBSD loop', LinkType.LOOP, nullFrame(body, 2, false)],
  ];
  for (const [name, linkType, frame] of cases) {
    it(`decodes UDP/IPv4 from ${name}`, () => {
      // Ethernet padding after the IP packet must not leak into the payload.
      const padded = linkType === LinkType.ETHERNET ? Buffer.concat([frame, Buffer.alloc(6, 0xee)]) : frame;
      const file = libpcapFile({ littleEndian: true, nanoseconds: false, linkType }, [{ timeUs: T0, data: padded }]);
      const { datagrams, stats } = readUdpDatagrams(file);
      expect(datagrams).toHaveLength(1);
      const d = datagrams[0]!;
      expect(d.timeUs).toBe(T0);
      expect(d.src).toEqual({ address: '192.0.2.1', port: 40000 });
      expect(d.dst).toEqual({ address: '198.51.100.7', port: 5004 });
      expect([...d.payload]).toEqual([...payload(33, 7)]);
      expect(stats).toMatchObject({ frames: 1, datagrams: 1 });
    });
  }

  it('skips IPv6 and ARP as notIpv4 on each link type', () => {
    const v6 = new Uint8Array(40).fill(0);
    v6[0] = 0x60;
    const frames: [number, Uint8Array][] = [
      [LinkType.ETHERNET, ethernetFrame(v6, 0x86dd)],
      [LinkType.ETHERNET, ethernetFrame(new Uint8Array(28), 0x0806)],
      [LinkType.LINUX_SLL, sllFrame(v6, 0x86dd)],
      [LinkType.LINUX_SLL2, sll2Frame(v6, 0x86dd)],
      [LinkType.RAW, v6],
      [LinkType.NULL, nullFrame(v6, 30, true)],
    ];
    for (const [linkType, data] of frames) {
      const { datagrams, stats } = readUdpDatagrams(libpcapFile({ littleEndian: true, nanoseconds: false, linkType }, [{ timeUs: T0, data }]));
      expect(datagrams).toHaveLength(0);
      expect(stats.skipped.notIpv4).toBe(1);
    }
  });

  it('refuses a libpcap file whose link type it cannot decode, but still lists its frames', () => {
    const file = libpcapFile({ littleEndian: true, nanoseconds: false, linkType: 105 }, [{ timeUs: T0, data: payload(40) }]);
    const reader = CaptureReader.open(file);
    expect([...reader.frames()]).toHaveLength(1);
    expect(codeOf(() => [...reader.datagrams()])).toBe('CG_PCAP_UNSUPPORTED_LINKTYPE');
  });
});

describe('libpcap byte orders and resolutions', () => {
  for (const littleEndian of [true, false]) {
    for (const nanoseconds of [false, true]) {
      it(`${littleEndian ? 'little' : 'big'}-endian, ${nanoseconds ? 'ns' : 'µs'}`, () => {
        const records = [0, 20_000, 40_017].map((dt, i) => ({
          timeUs: T0 + dt,
          extraNs: 999,
          data: ethernetFrame(ip(payload(10 + i, i))),
        }));
        const file = libpcapFile({ littleEndian, nanoseconds, linkType: LinkType.ETHERNET }, records);
        const reader = CaptureReader.open(file);
        expect(reader.libpcapHeader).toMatchObject({ littleEndian, nanoseconds, snaplen: 65535, linkType: 1 });
        const got = [...reader.datagrams()];
        // Sub-microsecond nanoseconds are truncated, never rounded up into the next microsecond.
        expect(got.map((d) => d.timeUs)).toEqual([T0, T0 + 20_000, T0 + 40_017]);
        expect(got.map((d) => d.payload.length)).toEqual([10, 11, 12]);
      });
    }
  }
});

describe('IPv4 and UDP checks', () => {
  const one = (data: Uint8Array, linkType: number = LinkType.RAW) =>
    readUdpDatagrams(libpcapFile({ littleEndian: true, nanoseconds: false, linkType }, [{ timeUs: T0, data }]));

  it('honours IPv4 options (IHL 6 and 15)', () => {
    for (const optionBytes of [4, 40]) {
      const options = new Uint8Array(optionBytes).fill(1); // NOPs
      const { datagrams } = one(ipv4Packet({ payload: payload(12, 9), options, srcPort: 1111, dstPort: 2222 }));
      expect(datagrams).toHaveLength(1);
      expect(datagrams[0]!.src.port).toBe(1111);
      expect(datagrams[0]!.dst.port).toBe(2222);
      expect([...datagrams[0]!.payload]).toEqual([...payload(12, 9)]);
    }
  });

  it('skips TCP and ICMP as notUdp', () => {
    const { datagrams, stats } = readUdpDatagrams(
      libpcapFile({ littleEndian: true, nanoseconds: false, linkType: LinkType.RAW }, [
        { timeUs: T0, data: ipv4Packet({ protocol: 6, payload: payload(20) }) },
        { timeUs: T0 + 1, data: ipv4Packet({ protocol: 1, payload: payload(8) }) },
        { timeUs: T0 + 2, data: ip() },
      ]),
    );
    expect(datagrams).toHaveLength(1);
    expect(stats.skipped.notUdp).toBe(2);
    expect(stats.frames).toBe(3);
  });

  it('skips and counts fragments (first with MF, later ones with an offset)', () => {
    const { datagrams, stats } = readUdpDatagrams(
      libpcapFile({ littleEndian: true, nanoseconds: false, linkType: LinkType.RAW }, [
        { timeUs: T0, data: ipv4Packet({ payload: payload(100), fragmentWord: 0x2000 }) },
        { timeUs: T0 + 1, data: ipv4Packet({ protocol: 99, payload: payload(50), fragmentWord: 0x000e }) },
        { timeUs: T0 + 2, data: ip() },
      ]),
    );
    expect(datagrams).toHaveLength(1);
    expect(stats.skipped.fragment).toBe(2);
  });

  it('counts malformed headers and frames cut by the snaplen', () => {
    const badIhl = ip();
    badIhl[0] = 0x44;
    const badVersion = ip();
    badVersion[0] = 0x55;
    const shortTotal = ip();
    shortTotal[2] = 0;
    shortTotal[3] = 10;
    const udpTooLong = ipv4Packet({ payload: payload(10), udpLength: 200 });
    const udpTooShort = ipv4Packet({ payload: payload(10), udpLength: 7 });
    const snapped = ip(payload(100)).subarray(0, 60);
    const headerSnapped = ip().subarray(0, 12);
    const { datagrams, stats } = readUdpDatagrams(
      libpcapFile(
        { littleEndian: true, nanoseconds: false, linkType: LinkType.IPV4 },
        [badIhl, badVersion, shortTotal, udpTooLong, udpTooShort, snapped, headerSnapped, new Uint8Array(0)].map((data, i) => ({
          timeUs: T0 + i,
          data,
        })),
      ),
    );
    expect(datagrams).toHaveLength(0);
    expect(stats.skipped).toMatchObject({ malformed: 6, snapped: 2 });
  });

  it('gives up on more than four stacked VLAN tags', () => {
    const { stats } = one(ethernetFrame(ip(), 0x0800, [0x8100, 0x8100, 0x8100, 0x8100, 0x8100]), LinkType.ETHERNET);
    expect(stats.skipped.malformed).toBe(1);
  });

  it('uses the UDP length, not the IP length, for the payload end', () => {
    const p = ipv4Packet({ payload: payload(10, 3), udpLength: 8 + 6 });
    const { datagrams } = one(p);
    expect([...datagrams[0]!.payload]).toEqual([3, 3, 3, 3, 3, 3]);
  });
});

describe('hostile and damaged libpcap files', () => {
  const good = libpcapFile(
    { littleEndian: true, nanoseconds: false, linkType: LinkType.ETHERNET },
    [0, 1, 2].map((i) => ({ timeUs: T0 + i * 20_000, data: ethernetFrame(ip(payload(50, i))) })),
  );

  it('rejects bad magic, empty files and the modified libpcap variant', () => {
    expect(codeOf(() => CaptureReader.open(Buffer.from('GIF89a not a capture at all')))).toBe('CG_PCAP_BAD_MAGIC');
    expect(codeOf(() => CaptureReader.open(new Uint8Array(0)))).toBe('CG_PCAP_BAD_MAGIC');
    expect(codeOf(() => CaptureReader.open(Buffer.from([0x34, 0xcd, 0xb2, 0xa1, 2, 0, 4, 0])))).toBe('CG_PCAP_BAD_MAGIC');
  });

  it('rejects a file shorter than its header, and an unknown major version', () => {
    expect(codeOf(() => CaptureReader.open(good.subarray(0, 10)))).toBe('CG_PCAP_TRUNCATED');
    const v3 = libpcapFile({ littleEndian: false, nanoseconds: false, linkType: 1, versionMajor: 3 }, []);
    expect(codeOf(() => CaptureReader.open(v3))).toBe('CG_PCAP_MALFORMED');
  });

  it('yields the complete records of a truncated file, then throws CG_PCAP_TRUNCATED', () => {
    for (const cut of [good.length - 1, good.length - 80, 24 + 16 + 92 + 5]) {
      const reader = CaptureReader.open(good.subarray(0, cut));
      const got: number[] = [];
      const code = codeOf(() => {
        for (const d of reader.datagrams()) got.push(d.payload[0]!);
      });
      expect(code).toBe('CG_PCAP_TRUNCATED');
      expect(got.length).toBeGreaterThanOrEqual(1);
      expect(got).toEqual([0, 1, 2].slice(0, got.length));
    }
  });

  it('stops quietly at the truncation when asked to tolerate it', () => {
    const { datagrams, stats } = readUdpDatagrams(good.subarray(0, good.length - 1), { tolerateTruncation: true });
    expect(datagrams).toHaveLength(2);
    expect(stats.truncated).toBe(true);
  });

  it('throws on an absurd record length without allocating for it', () => {
    const hostile = Buffer.from(good);
    hostile.writeUInt32LE(0xfffffff0, 24 + 8); // first record's captured length
    const before = process.memoryUsage().arrayBuffers;
    const reader = CaptureReader.open(hostile);
    expect(codeOf(() => [...reader.datagrams()])).toBe('CG_PCAP_MALFORMED');
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);
  });

  it('only ever throws CaptureError on randomly damaged input', () => {
    // A small deterministic PRNG so a failure reproduces.
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let thrown = 0;
    for (let i = 0; i < 400; i++) {
      const damaged = Buffer.from(good.subarray(0, 24 + rand(good.length - 24)));
      for (let k = 0; k < 4; k++) damaged[rand(damaged.length)] = rand(256);
      try {
        readUdpDatagrams(damaged);
      } catch (err) {
        expect(err).toBeInstanceOf(CaptureError);
        thrown++;
      }
    }
    expect(thrown).toBeGreaterThan(0);
  });
});

describe('pcapng', () => {
  const frameA = ethernetFrame(ip(payload(20, 0xa)));
  const frameB = sll2Frame(ip(payload(21, 0xb)));

  for (const le of [true, false]) {
    it(`reads EPB, SPB and obsolete PB across interfaces (${le ? 'little' : 'big'}-endian)`, () => {
      const file = Buffer.concat([
        shb(le),
        idb({ linkType: LinkType.ETHERNET }, le), // µs by default
        idb({ linkType: LinkType.LINUX_SLL2, tsresol: 9 }, le), // ns
        idb({ linkType: LinkType.ETHERNET, tsresol: 0x80 | 10, tsoffset: 100n }, le), // 2^-10 s, +100 s
        pcapngBlock(4, new Uint8Array(8), le), // name resolution block: stepped over
        epb(0, BigInt(T0), frameA, le),
        epb(1, BigInt(T0 + 1000) * 1000n + 999n, frameB, le),
        epb(2, 1024n * 5n + 512n, frameA, le), // 5.5 s + 100 s offset
        spb(frameA, le),
        obsoletePb(1, BigInt(T0 + 3000) * 1000n, frameB, le),
        pcapngBlock(5, new Uint8Array(12), le), // interface statistics: stepped over
      ]);
      const reader = CaptureReader.open(file);
      expect(reader.format).toBe('pcapng');
      const got = [...reader.datagrams()];
      expect(got.map((d) => d.timeUs)).toEqual([T0, T0 + 1000, 105_500_000, 105_500_000, T0 + 3000]);
      expect(got.map((d) => d.payload[0])).toEqual([0xa, 0xb, 0xa, 0xa, 0xb]);
      expect(reader.stats).toMatchObject({ frames: 5, datagrams: 5, badRecords: 0 });
    });
  }

  it('starts afresh at each section: new byte order, new interfaces', () => {
    const file = Buffer.concat([
      shb(true),
      idb({ linkType: LinkType.ETHERNET }, true),
      epb(0, BigInt(T0), frameA, true),
      shb(false),
      idb({ linkType: LinkType.LINUX_SLL2 }, false),
      epb(0, BigInt(T0 + 5), frameB, false),
      epb(1, BigInt(T0 + 6), frameA, false), // interface 1 existed only in the first section
    ]);
    const { datagrams, stats } = readUdpDatagrams(file);
    expect(datagrams.map((d) => d.payload[0])).toEqual([0xa, 0xb]);
    expect(stats.badRecords).toBe(1);
  });

  it('counts packet blocks that contradict themselves and keeps reading', () => {
    const file = Buffer.concat([
      shb(true),
      idb({ linkType: LinkType.ETHERNET }, true),
      epb(7, BigInt(T0), frameA, true), // no such interface
      epb(0, BigInt(T0), frameA, true, 0xffff_fff0), // captured length beyond the block
      epb(0, BigInt(T0 + 1), frameA, true),
    ]);
    const { datagrams, stats } = readUdpDatagrams(file);
    expect(datagrams).toHaveLength(1);
    expect(stats.badRecords).toBe(2);
  });

  it('counts frames on interfaces with link types it cannot decode', () => {
    const file = Buffer.concat([shb(true), idb({ linkType: 127 }, true), epb(0, BigInt(T0), frameA, true)]);
    const { datagrams, stats } = readUdpDatagrams(file);
    expect(datagrams).toHaveLength(0);
    expect(stats.skipped.unsupportedLinkType).toBe(1);
  });

  it('rejects broken framing: bad byte-order magic, mismatched lengths, absurd or short lengths', () => {
    const good = Buffer.concat([shb(true), idb({ linkType: 1 }, true), epb(0, BigInt(T0), frameA, true)]);
    const badBom = Buffer.from(good);
    badBom.writeUInt32LE(0x12345678, 8);
    expect(codeOf(() => CaptureReader.open(badBom))).toBe('CG_PCAP_BAD_MAGIC');

    const badTrailer = Buffer.from(good);
    badTrailer.writeUInt32LE(999, good.length - 4);
    expect(codeOf(() => [...CaptureReader.open(badTrailer).datagrams()])).toBe('CG_PCAP_MALFORMED');

    const oddLength = Buffer.from(good);
    oddLength.writeUInt32LE(13, 28 + 4); // the IDB's length
    expect(codeOf(() => [...CaptureReader.open(oddLength).datagrams()])).toBe('CG_PCAP_MALFORMED');

    const absurd = Buffer.from(good);
    const epbAt = good.length - epb(0, 0n, frameA, true).length;
    absurd.writeUInt32LE(0xffff_fff0, epbAt + 4);
    const before = process.memoryUsage().arrayBuffers;
    expect(codeOf(() => [...CaptureReader.open(absurd).datagrams()])).toBe('CG_PCAP_TRUNCATED');
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);

    expect(codeOf(() => CaptureReader.open(good.subarray(0, 20)))).toBe('CG_PCAP_TRUNCATED');
    const { datagrams, stats } = readUdpDatagrams(good.subarray(0, good.length - 3), { tolerateTruncation: true });
    expect(datagrams).toHaveLength(0);
    expect(stats.truncated).toBe(true);
  });
});
