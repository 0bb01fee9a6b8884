import { findRtpStreams } from '../../src/media/capture/rtpStreams.js';
import { epb, ethernetFrame, idb, ipv4Packet, libpcapFile, nullFrame, obsoletePb, sll2Frame, sllFrame, shb, spb } from '../../src/media/testing/fixtureBuilders.js';
import { LinkType } from '../../src/media/capture/frameDecoder.js';
import { readUdpDatagrams } from '../../src/media/capture/pcapReader.js';
import { encodePcap } from '../../src/media/capture/pcapWriter.js';
import { serializeRtp } from '../../src/media/rtp/RtpPacket.js';
import { check, describeBytes, type FuzzTarget } from '../engine.js';
import { concat, mutateBytes, randomBytes, seedOrMutant, type Rng } from '../mutate.js';
import { fixtureCaptures } from '../seeds.js';

/**
 * The capture reader (src/media/capture/pcapReader.ts, libpcap and pcapng) and the RTP stream scan
 * that replay runs on its output. Only CaptureError may come out; what is read must add up (every
 * frame is a datagram or a counted skip) and every datagram lie inside the file.
 */
export interface PcapCase {
  readonly bytes: Uint8Array;
  readonly tolerateTruncation: boolean;
}

export const pcapTarget: FuzzTarget<PcapCase> = {
  name: 'pcap',
  about: 'readUdpDatagrams + findRtpStreams on mutated libpcap (tests/fixtures, encodePcap, every link type and byte order) and pcapng (SHB/IDB/EPB/PB/SPB, tsresol, tsoffset) files',
  async open() {
    const seeds = captureSeeds();
    return {
      generate: (rng: Rng) => ({
        bytes: seedOrMutant(
          rng,
          seeds,
          (seed) => mutateBytes(rng, seed, { others: seeds, maxLength: 128 * 1024, maxRounds: 8 }),
          () => {
            const b = randomBytes(rng, rng.length(4096));
            // Noise behind a real magic number, or the reader only ever sees CG_PCAP_BAD_MAGIC.
            const start = rng.pick(seeds);
            if (rng.bool(0.8)) b.set(start.subarray(0, Math.min(b.length, rng.pick([4, 8, 24, 28]))));
            return b;
          },
        ),
        tolerateTruncation: rng.bool(),
      }),
      run(c: PcapCase) {
        const { datagrams, stats } = readUdpDatagrams(c.bytes, { tolerateTruncation: c.tolerateTruncation });
        const skipped = Object.values(stats.skipped).reduce((a, b) => a + b, 0);
        check(stats.datagrams === datagrams.length, `stats say ${stats.datagrams} datagrams, ${datagrams.length} yielded`);
        check(stats.frames === stats.datagrams + skipped, `${stats.frames} frames but ${stats.datagrams} datagrams + ${skipped} skipped`);
        check(!stats.truncated || c.tolerateTruncation, 'truncated without tolerateTruncation');
        const file = c.bytes;
        for (const d of datagrams) {
          check(d.payload.buffer === file.buffer && d.payload.byteOffset + d.payload.length <= file.byteOffset + file.length, 'datagram outside the file');
          check(Number.isFinite(d.timeUs), `time ${d.timeUs}`);
          for (const a of [d.src, d.dst]) check(/^\d{1,3}(\.\d{1,3}){3}$/.test(a.address) && a.port >= 0 && a.port <= 0xffff, `address ${a.address}:${a.port}`);
        }
        const scan = findRtpStreams(datagrams);
        const inStreams = scan.streams.reduce((n, s) => n + s.packetCount, 0);
        check(inStreams + scan.rtcpPackets + scan.notRtpPackets === datagrams.length, 'stream scan lost or invented datagrams');
        for (const s of scan.streams) check(s.lostPackets >= 0 && Number.isFinite(s.durationMs), `stream ${s.ssrc}: lost ${s.lostPackets}, ${s.durationMs} ms`);
        return datagrams.length > 0 ? 'accepted' : 'rejected';
      },
      describe: (c: PcapCase) => `${c.tolerateTruncation ? 'tolerant' : 'strict'}, ${describeBytes(c.bytes)}`,
    };
  },
};

function rtpPayload(i: number): Uint8Array {
  return serializeRtp({ marker: i === 0, payloadType: i % 3 === 0 ? 101 : 0, sequenceNumber: 65534 + i, timestamp: 160 * i, ssrc: 0xabc }, new Uint8Array(20).fill(i));
}

function udp(i: number, options: { fragmentWord?: number; protocol?: number } = {}): Uint8Array {
  return ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 4000, dstPort: 5004, payload: rtpPayload(i), ...options });
}

/** One capture per format variant the reader handles, small enough for mutations to reach every field. */
function captureSeeds(): Uint8Array[] {
  const seeds: Uint8Array[] = [];
  // The smallest recorded calls as they are (the large ones add time, not coverage).
  for (const f of fixtureCaptures().sort((a, b) => a.bytes.length - b.bytes.length).slice(0, 2)) seeds.push(f.bytes.subarray(0, 4096));
  seeds.push(
    encodePcap(
      [0, 1, 2].map((i) => ({ timeUs: 1_767_225_600_000_000 + i * 20_000, src: { address: '10.0.0.1', port: 4000 }, dst: { address: '10.0.0.2', port: 5004 }, payload: rtpPayload(i) })),
    ),
  );
  const frames: [number, (body: Uint8Array) => Uint8Array][] = [
    [LinkType.ETHERNET, (b) => ethernetFrame(b)],
    [LinkType.ETHERNET, (b) => ethernetFrame(b, 0x0800, [0x8100, 0x88a8])],
    [LinkType.LINUX_SLL, (b) => sllFrame(b)],
    [LinkType.LINUX_SLL2, (b) => sll2Frame(b)],
    [LinkType.RAW, (b) => b],
    [LinkType.IPV4, (b) => b],
    [LinkType.NULL, (b) => nullFrame(b, 2, true)],
    [LinkType.LOOP, (b) => nullFrame(b, 2, false)],
  ];
  for (const [k, [linkType, frame]] of frames.entries()) {
    const records = [
      { timeUs: 1_000_000 + k, data: frame(udp(0)) },
      { timeUs: 1_020_000, data: frame(udp(1, { fragmentWord: k % 2 ? 0x2000 : 0x4000 })) },
      { timeUs: 1_040_000, data: frame(udp(2, { protocol: k % 3 === 0 ? 6 : 17 })) },
    ];
    seeds.push(libpcapFile({ littleEndian: k % 2 === 0, nanoseconds: k % 3 === 0, linkType }, records));
  }
  for (const le of [true, false]) {
    seeds.push(
      concat(
        shb(le),
        idb({ linkType: LinkType.ETHERNET, snaplen: 65535 }, le),
        idb({ linkType: LinkType.RAW, tsresol: 9, tsoffset: 1_700_000_000n }, le),
        epb(0, 1_700_000_000_000_000n, ethernetFrame(udp(0)), le),
        epb(1, 1_700_000_000_020_000_000n, udp(1), le),
        obsoletePb(0, 1_700_000_000_040_000n, ethernetFrame(udp(2)), le),
        spb(ethernetFrame(udp(3)), le),
      ),
    );
    seeds.push(
      concat(
        shb(le),
        idb({ linkType: LinkType.LINUX_SLL2, tsresol: 0x80 | 20 }, le),
        epb(0, 1n << 52n, sll2Frame(udp(0)), le),
        // A second section in the other byte order: interfaces start over.
        shb(!le),
        idb({ linkType: LinkType.NULL, tsresol: 3 }, !le),
        epb(0, 1_700_000_000_000n, nullFrame(udp(1), 2, !le), !le),
      ),
    );
  }
  return seeds;
}
