import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { readCaptureFile } from '../../src/media/capture/pcapReader.js';
import type { ReplayPacket } from '../../src/media/capture/replay.js';
import { findRtpStreams, type RtpStream } from '../../src/media/capture/rtpStreams.js';

export const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

/** The single RTP stream of a fixture capture. */
export async function fixtureStream(name: string): Promise<RtpStream> {
  const reader = await readCaptureFile(FIXTURES + name);
  const { streams } = findRtpStreams(reader.datagrams());
  if (streams.length !== 1 || !streams[0]) throw new Error(`${name}: expected one RTP stream, found ${streams.length}`);
  return streams[0];
}

/** Deterministic PRNG (LCG) so impaired runs are the same every time. */
export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
}

export interface Impairment {
  readonly lossRate: number;
  readonly duplicateRate: number;
  /** Chance that a packet swaps places (and send times) with the one after it. */
  readonly reorderRate: number;
  readonly seed: number;
}

/**
 * Impairs a stream the way a bad network does: drops, duplicates and swaps neighbours. Send times stay
 * ascending (the second of a swapped pair goes out in the first's slot), so the replay keeps real pace.
 */
export function impair(packets: readonly ReplayPacket[], imp: Impairment): { packets: ReplayPacket[]; dropped: number; duplicated: number; swapped: number } {
  const rand = seeded(imp.seed);
  const list = packets.map((p) => ({ timeUs: p.timeUs, bytes: p.bytes }));
  let swapped = 0;
  for (let i = 0; i + 1 < list.length; i++) {
    if (rand() < imp.reorderRate) {
      const a = list[i]!;
      const b = list[i + 1]!;
      [a.bytes, b.bytes] = [b.bytes, a.bytes];
      swapped++;
      i++;
    }
  }
  const out: ReplayPacket[] = [];
  let dropped = 0;
  let duplicated = 0;
  for (const p of list) {
    if (rand() < imp.lossRate) {
      dropped++;
      continue;
    }
    out.push(p);
    if (rand() < imp.duplicateRate) {
      out.push({ timeUs: p.timeUs + 1000, bytes: p.bytes });
      duplicated++;
    }
  }
  out.sort((x, y) => x.timeUs - y.timeUs);
  return { packets: out, dropped, duplicated, swapped };
}

export async function udpSocket(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

export function closeSocket(s: dgram.Socket): Promise<void> {
  return new Promise((r) => s.close(() => r()));
}

export { until } from '../../src/util/testing/wait.js';
