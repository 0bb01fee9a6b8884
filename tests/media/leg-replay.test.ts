import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAudioLeg, type AudioLeg, type LegCodec } from '../../src/media/AudioLeg.js';
import { readCaptureFile } from '../../src/media/capture/pcapReader.js';
import { replayStream, type ReplayPacket } from '../../src/media/capture/replay.js';
import { findRtpStreams } from '../../src/media/capture/rtpStreams.js';
import { MediaClock } from '../../src/media/MediaClock.js';
import { concatSamples, findLag, snrDb } from '../../src/media/signal.js';
import type { DtmfEvent } from '../../src/media/types.js';
import { readWavFile } from '../../src/media/wav.js';
import { closeSocket, fixtureStream, FIXTURES, impair, udpSocket, until } from './helpers.js';

const OPUS: LegCodec = { name: 'opus', payloadType: 111 };
const PCMU_DTMF: LegCodec = { name: 'PCMU', payloadType: 0, telephoneEvent: { payloadType: 101, clockRate: 8000 } };

let clock: MediaClock;
let source: Int16Array;
beforeAll(async () => {
  clock = new MediaClock();
  source = (await readWavFile(FIXTURES + 'caller-open-today.wav')).samples;
});

interface Received {
  audio: Int16Array;
  dtmf: DtmfEvent[];
  leg: AudioLeg;
}

/** Opens a leg, replays `packets` into it over UDP at the captured pace, and collects what comes out. */
async function replayInto(codec: LegCodec, packets: readonly ReplayPacket[], env: Record<string, string> = {}, legId = 'a'): Promise<Received> {
  const leg = await openAudioLeg({
    callId: 'replay-test',
    legId,
    codec,
    clock,
    env,
    endpoint: { portRange: { min: 33000, max: 33999 } },
    leg: { silence: 'none' },
  });
  const endpoint = leg.endpoint;
  const frames: Int16Array[] = [];
  const dtmf: DtmfEvent[] = [];
  leg.on('audio', (f) => frames.push(Int16Array.from(f)));
  leg.on('dtmf', (e) => dtmf.push(e));
  const socket = await udpSocket();
  try {
    await replayStream(packets, { target: endpoint.localAddress, speed: 1, socket });
    // The jitter buffer may still hold a gap for up to its window.
    await new Promise((r) => setTimeout(r, 120));
  } finally {
    await closeSocket(socket);
  }
  return { audio: concatSamples(frames), dtmf, leg };
}

describe('fixture captures replayed into an AudioLeg over loopback UDP', () => {
  it('Opus: decoded audio matches the source WAV (normalized correlation ≥ 0.85)', async () => {
    const stream = await fixtureStream('caller-open-today.opus.pcap');
    const { audio, leg } = await replayInto(OPUS, stream.packets);
    const stats = leg.stats();
    await leg.close();
    expect(stats.endpoint.received.packets).toBe(stream.packetCount);
    expect(stats.concealedFrames).toBe(0);
    expect(audio.length).toBe(stream.packetCount * 320);
    const match = findLag(source, audio, { maxLag: 800 });
    // Opus at 24 kb/s is perceptual (SILK does not keep the waveform): 0.904 measured, 0.85 leaves room.
    expect(match.correlation).toBeGreaterThanOrEqual(0.85);
    expect(match.lag).toBeGreaterThan(0); // the codec's look-ahead delays the output
    // The measure discriminates: another phrase from the same voice does not correlate.
    const other = (await readWavFile(FIXTURES + 'caller-book-table.wav')).samples;
    expect(findLag(other, audio, { maxLag: 800 }).correlation).toBeLessThan(0.3);
  });

  it('Opus with 5 % loss, duplicates and reordering: every frame accounted for, still ≥ 0.75 correlated', async () => {
    const stream = await fixtureStream('caller-open-today.opus.pcap');
    const { packets, dropped, duplicated, swapped } = impair(stream.packets, { lossRate: 0.05, duplicateRate: 0.05, reorderRate: 0.08, seed: 2 });
    expect(dropped).toBeGreaterThan(0);
    expect(duplicated).toBeGreaterThan(0);
    expect(swapped).toBeGreaterThan(0);
    const { audio, leg } = await replayInto(OPUS, packets);
    const stats = leg.stats();
    await leg.close();
    // Losses are concealed, duplicates dropped, swaps put back in order: the timeline has no hole.
    expect(stats.endpoint.jitterBuffer.duplicates).toBe(duplicated);
    expect(stats.concealedFrames).toBe(dropped);
    expect(stats.endpoint.jitterBuffer.reordered).toBeGreaterThan(0);
    expect(audio.length).toBe(stream.packetCount * 320);
    const match = findLag(source, audio, { maxLag: 800 });
    // 0.822 measured (PLC guesses the lost frames), against 0.904 clean.
    expect(match.correlation).toBeGreaterThanOrEqual(0.75);
  });

  it('PCMU: decoded audio matches the source WAV (SNR ≥ 24 dB through 8 kHz µ-law and back)', async () => {
    const stream = await fixtureStream('caller-open-today.pcmu.pcap');
    const { audio, leg } = await replayInto({ name: 'PCMU', payloadType: 0 }, stream.packets);
    await leg.close();
    const match = findLag(source, audio, { maxLag: 800 });
    expect(match.correlation).toBeGreaterThan(0.99);
    // 27.2 dB measured: µ-law's ~38 dB plus the band above 4 kHz that 8 kHz cannot carry.
    expect(snrDb(source, audio, match.lag)).toBeGreaterThanOrEqual(24);
  });

  it('DTMF: the telephone-event capture yields 1, 5, # once each with their durations', async () => {
    const stream = await fixtureStream('dtmf-1-5-hash.pcmu.pcap');
    const { dtmf, leg } = await replayInto(PCMU_DTMF, stream.packets);
    await leg.close();
    expect(dtmf.map((e) => e.digit)).toEqual(['1', '5', '#']);
    expect(dtmf.map((e) => e.durationMs)).toEqual([120, 100, 160]);
  });

  describe('recording (CAPTURE_DIR)', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'callgate-capture-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('records both directions, and the recording replays back identically', async () => {
      const stream = await fixtureStream('caller-open-today.opus.pcap');
      const first = await replayInto(OPUS, stream.packets, { CAPTURE_DIR: dir }, 'first');
      // The agent side talks back during the call so the capture has an outbound stream too.
      first.leg.play(source.subarray(0, 16000));
      await until(() => first.leg.queuedMs === 0, 3000, 'playback');
      await first.leg.close();
      const files = await readdir(dir);
      expect(files).toEqual(['replay-test-first.pcap']);

      const recorded = await readCaptureFile(join(dir, files[0]!));
      const { streams } = findRtpStreams(recorded.datagrams());
      const inbound = streams.find((s) => s.ssrc === stream.ssrc);
      const outbound = streams.find((s) => s.ssrc !== stream.ssrc);
      expect(inbound?.packetCount).toBe(stream.packetCount);
      expect(outbound?.packetCount).toBeGreaterThanOrEqual(50);
      // Same datagrams, same order, and the same spacing within a few ms of scheduling noise.
      expect(inbound!.packets.map((p) => Buffer.from(p.bytes).toString('hex'))).toEqual(
        stream.packets.map((p) => Buffer.from(p.bytes).toString('hex')),
      );
      const span = (ps: readonly ReplayPacket[]): number => (ps.at(-1)!.timeUs - ps[0]!.timeUs) / 1000;
      expect(Math.abs(span(inbound!.packets) - span(stream.packets))).toBeLessThan(50);

      // Replaying the recording into a fresh leg gives back exactly the audio of the first call.
      const second = await replayInto(OPUS, inbound!.packets, {}, 'second');
      await second.leg.close();
      expect(second.audio.length).toBe(first.audio.length);
      expect(Buffer.from(second.audio.buffer).equals(Buffer.from(first.audio.buffer))).toBe(true);
    });
  });

  it('leaves no sockets or timers behind once legs are closed', async () => {
    // Everything above has closed its legs; the shared clock stops when its last sender leaves.
    await new Promise((r) => setTimeout(r, 50));
    expect(clock.subscriberCount).toBe(0);
    expect(clock.running).toBe(false);
    const left = process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap');
    expect(left).toEqual([]);
  });
});
