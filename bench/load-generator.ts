/**
 * The second process of `npm run bench:media`: plays a caller into every leg of the gateway process and
 * listens to what each leg sends back. Started by bench/media.ts with IPC; never run by hand.
 *
 * Each leg gets its own UDP socket (a caller). The fixture's Opus packets are looped with rewritten
 * sequence numbers and timestamps so every stream is one continuous call, and the legs' send times are
 * spread across the 20 ms frame as independent callers' would be.
 */
import dgram from 'node:dgram';
import { readCaptureFile } from '../src/media/capture/pcapReader.js';
import { findRtpStreams } from '../src/media/capture/rtpStreams.js';
import { parseRtp, serializeRtp } from '../src/media/rtp/RtpPacket.js';
import { seqDiff } from '../src/media/rtp/sequence.js';
import { percentile, sortedAscending } from '../src/util/percentile.js';

export interface LoadRequest {
  readonly type: 'start';
  readonly capture: string;
  readonly ports: readonly number[];
  readonly durationMs: number;
}

export interface LegResult {
  readonly sent: number;
  readonly received: number;
  /** Packets missing from the leg's outbound sequence (never sent, or lost on loopback). */
  readonly seqGaps: number;
}

export interface LoadReport {
  readonly type: 'report';
  readonly legs: readonly LegResult[];
  readonly sendLatenessP99Ms: number;
}

interface Caller {
  readonly socket: dgram.Socket;
  readonly port: number;
  readonly offsetMs: number;
  readonly ssrc: number;
  sent: number;
  received: number;
  seqGaps: number;
  lastSeq: number | undefined;
}

async function run(req: LoadRequest): Promise<LoadReport> {
  const reader = await readCaptureFile(req.capture);
  const stream = findRtpStreams(reader.datagrams()).streams[0];
  if (!stream) throw new Error(`no RTP stream in ${req.capture}`);
  const payloads = stream.packets.map((p) => {
    const parsed = parseRtp(p.bytes);
    if (!parsed.ok) throw new Error('fixture packet is not RTP');
    return { payloadType: parsed.value.payloadType, payload: Uint8Array.from(parsed.value.payload) };
  });

  const callers: Caller[] = [];
  for (const [i, port] of req.ports.entries()) {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    const caller: Caller = { socket, port, offsetMs: (i * 20) / req.ports.length, ssrc: 0x10000 + i, sent: 0, received: 0, seqGaps: 0, lastSeq: undefined };
    // Only the sequence number is needed: reading it directly keeps this process light, so it does not
    // steal the CPU the gateway is being measured on.
    socket.on('message', (msg) => {
      if (msg.length < 12) return;
      const seq = msg.readUInt16BE(2);
      caller.received++;
      if (caller.lastSeq !== undefined) {
        const d = seqDiff(seq, caller.lastSeq);
        if (d > 1) caller.seqGaps += d - 1;
      }
      caller.lastSeq = seq;
    });
    callers.push(caller);
  }

  // One scheduler for all callers: caller i's n-th packet is due at start + offset_i + 20n (drift-free).
  const start = performance.now() + 50;
  const frames = Math.floor(req.durationMs / 20);
  const lateness: number[] = [];
  await new Promise<void>((resolve) => {
    const next = new Array<number>(callers.length).fill(0);
    const tick = (): void => {
      const now = performance.now();
      let pending = false;
      for (const [i, c] of callers.entries()) {
        while (next[i]! < frames) {
          const n = next[i]!;
          const due = start + c.offsetMs + n * 20;
          if (due > now) break;
          const { payloadType, payload } = payloads[n % payloads.length]!;
          const packet = serializeRtp({ marker: n === 0, payloadType, sequenceNumber: n & 0xffff, timestamp: (n * 960) >>> 0, ssrc: c.ssrc }, payload);
          c.socket.send(packet, c.port, '127.0.0.1');
          c.sent++;
          if (n % 10 === 0) lateness.push(now - due);
          next[i] = n + 1;
        }
        if (next[i]! < frames) pending = true;
      }
      if (pending) setTimeout(tick, 1);
      else resolve();
    };
    setTimeout(tick, 50);
  });
  // Let the last packets the gateway sends arrive.
  await new Promise((r) => setTimeout(r, 300));
  for (const c of callers) c.socket.close();
  return {
    type: 'report',
    legs: callers.map((c) => ({ sent: c.sent, received: c.received, seqGaps: c.seqGaps })),
    sendLatenessP99Ms: percentile(sortedAscending(lateness), 0.99),
  };
}

process.on('message', (msg: LoadRequest) => {
  if (msg.type !== 'start') return;
  run(msg).then(
    (report) => process.send?.(report, () => process.exit(0)),
    (err: unknown) => {
      process.stderr.write(`load generator failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
});
