import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readUdpDatagrams } from '../../media/capture/pcapReader.js';
import { findRtpStreams } from '../../media/capture/rtpStreams.js';
import type { CodecName } from '../../media/codecs/AudioCodec.js';
import { createDecoder } from '../../media/codecs/registry.js';
import { resample } from '../../media/Resampler.js';
import { parseRtp } from '../../media/rtp/RtpPacket.js';
import { seqDiff } from '../../media/rtp/sequence.js';
import { concatSamples } from '../../media/signal.js';
import { PIPELINE_RATE } from '../../media/types.js';

/**
 * What a SIP test's caller received, captured off the wire with tcpdump (sipp only plays audio, it
 * keeps none of what it gets) and decoded back to speech for a recogniser.
 */
export interface UdpCaptureOptions {
  /** BPF filter, e.g. `udp and dst port 6000`. */
  readonly filter: string;
  readonly iface: string;
  readonly binary: string;
  /** How long tcpdump may take to say it is listening. */
  readonly startTimeoutMs: number;
}

export const defaultUdpCaptureOptions = {
  iface: 'lo',
  binary: 'tcpdump',
  startTimeoutMs: 5000,
} as const satisfies Partial<UdpCaptureOptions>;

export interface RunningCapture {
  /** Stops tcpdump (SIGINT, so it closes the file properly) and returns the capture's bytes. Idempotent. */
  stop(): Promise<Uint8Array>;
}

/** Starts tcpdump and resolves once it is capturing (it says "listening on" after the filter is set). */
export async function startUdpCapture(input: Pick<UdpCaptureOptions, 'filter'> & Partial<UdpCaptureOptions>): Promise<RunningCapture> {
  const o: UdpCaptureOptions = { ...defaultUdpCaptureOptions, ...input };
  const dir = await mkdtemp(join(tmpdir(), 'callgate-capture-'));
  const file = join(dir, 'capture.pcap');
  // As root tcpdump drops to its own user before opening the file, which then cannot write in our
  // directory: stay root (-Z root). Without --immediate-mode libpcap hands packets over in blocks up
  // to a second late, and the block still pending at SIGINT is lost: the end of the call would be
  // missing. -U then writes each packet to the file as it comes.
  const asRoot = process.getuid?.() === 0 ? ['-Z', 'root'] : [];
  const proc = spawn(o.binary, ['-i', o.iface, '-n', '--immediate-mode', '-U', ...asRoot, '-w', file, o.filter], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = once(proc, 'close');
  try {
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`tcpdump did not start within ${o.startTimeoutMs} ms: ${stderr}`)), o.startTimeoutMs);
      proc.once('error', (err) => (clearTimeout(timer), rej(err)));
      proc.once('close', (code) => (clearTimeout(timer), rej(new Error(`tcpdump exited (${code}): ${stderr}`))));
      proc.stderr.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-2000);
        if (stderr.includes('listening on')) {
          clearTimeout(timer);
          res();
        }
      });
    });
  } catch (err) {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  let stopped: Promise<Uint8Array> | undefined;
  return {
    stop: () =>
      (stopped ??= (async () => {
        if (proc.exitCode === null && proc.signalCode === null) {
          proc.kill('SIGINT');
          const timer = setTimeout(() => proc.kill('SIGKILL'), 2000);
          await exited;
          clearTimeout(timer);
        }
        try {
          return new Uint8Array(await readFile(file));
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      })()),
  };
}

export interface CapturedAudio {
  /** 16 kHz mono (the pipeline rate, what the recogniser takes), every stream in order of its first packet. */
  readonly pcm: Int16Array;
  /** RTP packets of `payloadType` decoded. */
  readonly packets: number;
  readonly streams: number;
}

/**
 * Decodes the RTP sent to `port` in a capture: packets of `payloadType` (others, such as
 * telephone-event or comfort noise, are skipped), each stream in sequence order with a lost packet
 * concealed, so the result is as long as what was sent.
 */
export function decodeCapturedRtp(capture: Uint8Array, opts: { readonly port: number; readonly codec: CodecName; readonly payloadType: number }): CapturedAudio {
  const { datagrams } = readUdpDatagrams(capture);
  const { streams } = findRtpStreams(datagrams.filter((d) => d.dst.port === opts.port));
  const pieces: Int16Array[] = [];
  let packets = 0;
  let used = 0;
  for (const stream of streams) {
    const rtp = stream.packets
      .map((p) => parseRtp(p.bytes))
      .flatMap((r) => (r.ok && r.value.payloadType === opts.payloadType ? [r.value] : []))
      .sort((a, b) => seqDiff(a.sequenceNumber, b.sequenceNumber));
    if (rtp.length === 0) continue;
    used++;
    const decoder = opts.codec === 'opus' ? createDecoder('opus', { sampleRate: PIPELINE_RATE }) : createDecoder(opts.codec);
    const frames: Int16Array[] = [];
    try {
      let prev: number | undefined;
      for (const p of rtp) {
        if (prev !== undefined) for (let gap = seqDiff(p.sequenceNumber, prev) - 1; gap > 0; gap--) frames.push(decoder.conceal());
        prev = p.sequenceNumber;
        const out = decoder.decode(p.payload);
        frames.push(out.ok ? out.value : decoder.conceal());
        packets++;
      }
    } finally {
      decoder.close();
    }
    // One resampling pass per stream: frame by frame, each frame's filter edges would click.
    pieces.push(resample(concatSamples(frames), decoder.sampleRate, PIPELINE_RATE));
  }
  return { pcm: concatSamples(pieces), packets, streams: used };
}
