import { createSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import type { AudioEncoder } from './codecs/AudioCodec.js';
import { createG711Encoder } from './codecs/g711.js';
import { MediaClock } from './MediaClock.js';
import { VirtualTimers } from './testing/VirtualTimers.js';
import { PacedSender, type PacedSenderInit } from './PacedSender.js';
import { parseRtp, type RtpPacket } from './rtp/RtpPacket.js';

/**
 * A stand-in codec at 8 kHz: each payload byte is the low byte of its sample, so a test can tell which
 * frame went out; silence is 0xEE bytes. Counts encode() calls to prove encoding happens at tick time.
 */
class TestEncoder implements AudioEncoder {
  readonly codec = 'PCMU' as const;
  readonly sampleRate = 8000 as const;
  readonly clockRate = 8000;
  readonly frameSamples = 160;
  readonly timestampIncrement = 160;
  readonly silence = new Uint8Array(160).fill(0xee);
  encodeCalls = 0;
  failNext = false;
  encode(pcm: Int16Array): Uint8Array {
    if (pcm.length !== this.frameSamples) throw new Error(`bad frame ${pcm.length}`);
    if (this.failNext) {
      this.failNext = false;
      throw new Error('encoder broke');
    }
    this.encodeCalls++;
    return Uint8Array.from(pcm, (s) => s & 0xff);
  }
  close(): void {}
}

/** `count` frames of PCM whose samples all equal firstId, firstId+1, …: each frame is recognisable. */
function pcmFrames(firstId: number, count: number): Int16Array {
  const pcm = new Int16Array(160 * count);
  for (let f = 0; f < count; f++) pcm.fill(firstId + f, f * 160, (f + 1) * 160);
  return pcm;
}

/** Already-encoded payloads (a cached prompt) tagged firstId, firstId+1, … */
function encodedPrompt(firstId: number, count: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => new Uint8Array(160).fill(firstId + i));
}

function setup(overrides: Partial<PacedSenderInit> = {}) {
  const timers = new VirtualTimers(() => 0, 0);
  const clock = new MediaClock({ timers });
  const encoder = new TestEncoder();
  const packets: RtpPacket[] = [];
  const sendTimes: number[] = [];
  const sender = new PacedSender({
    clock,
    encoder,
    payloadType: 0,
    // Most cases pin tick-only sending; the early first frame has its own tests below.
    startTalkspurtAtOnce: false,
    send: (buf) => {
      const parsed = parseRtp(buf);
      if (!parsed.ok) throw new Error(`sent an invalid RTP packet: ${parsed.code}`);
      packets.push(parsed.value);
      sendTimes.push(timers.now());
    },
    ...overrides,
  });
  // Stop half-way between deadlines so "n ticks" never depends on which side of a deadline we stop.
  let offset = 10;
  /** Runs n ticks of the clock (the first tick is due 20 ms after the sender subscribed). */
  const ticks = (n: number): void => {
    timers.advance(n * 20 + offset);
    offset = 0;
  };
  return { timers, clock, encoder, packets, sendTimes, sender, ticks };
}

const tag = (p: RtpPacket): number => p.payload[0]!;

describe('PacedSender', () => {
  it('keeps sequence and timestamp continuous across two prompts and the silence between', () => {
    const { sender, packets, ticks } = setup({ initialSequence: 100, initialTimestamp: 5000, ssrc: 0x1234 });
    sender.enqueueEncoded(encodedPrompt(1, 3)); // cached greeting
    ticks(5); // 3 prompt frames, then 2 comfort-silence ticks
    sender.enqueuePcm(pcmFrames(10, 2)); // TTS answer
    ticks(3);

    expect(packets.length).toBe(8);
    expect(packets.map((p) => p.sequenceNumber)).toEqual([100, 101, 102, 103, 104, 105, 106, 107]);
    expect(packets.map((p) => p.timestamp)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => 5000 + i * 160));
    expect(packets.map(tag)).toEqual([1, 2, 3, 0xee, 0xee, 10, 11, 0xee]);
    expect(packets.every((p) => p.ssrc === 0x1234 && p.payloadType === 0)).toBe(true);
    sender.close();
  });

  it("with silence 'none' sends nothing while idle but the timestamp keeps advancing", () => {
    const { sender, packets, ticks } = setup({ silence: 'none', initialSequence: 7, initialTimestamp: 0 });
    sender.enqueueEncoded(encodedPrompt(1, 2));
    ticks(6); // 2 frames, then 4 idle ticks
    sender.enqueueEncoded(encodedPrompt(5, 2));
    ticks(2);
    expect(packets.map(tag)).toEqual([1, 2, 5, 6]);
    // Sequence has no gap (no loss), the timestamp has one of 4 frames (the silence).
    expect(packets.map((p) => p.sequenceNumber)).toEqual([7, 8, 9, 10]);
    expect(packets.map((p) => p.timestamp)).toEqual([0, 160, 960, 1120]);
    sender.close();
  });

  it("comfort mode sends the encoder's precomputed silence without encoding", () => {
    const { sender, packets, encoder, ticks } = setup({ silence: 'comfort' });
    ticks(10);
    expect(packets.length).toBe(10);
    expect(packets.every((p) => p.payload.every((b) => b === 0xee))).toBe(true);
    expect(encoder.encodeCalls).toBe(0);
    expect(sender.stats().packetsSent).toBe(10);
    expect(sender.stats().bytesSent).toBe(10 * (12 + 160));
    sender.close();
  });

  it('with encodeAheadFrames 0, encodes each PCM frame inside its tick', () => {
    const { sender, encoder, ticks } = setup({ encodeAheadFrames: 0 });
    sender.enqueuePcm(pcmFrames(1, 5));
    expect(encoder.encodeCalls).toBe(0);
    expect(sender.queuedFrames).toBe(5);
    ticks(1);
    expect(encoder.encodeCalls).toBe(1);
    ticks(2);
    expect(encoder.encodeCalls).toBe(3);
    expect(sender.queuedMs).toBe(40);
    sender.close();
  });

  it('encodes ahead between ticks, in order, so a tick only sends ready payloads', async () => {
    const { sender, encoder, packets, ticks } = setup();
    const idle = (): Promise<void> => new Promise((r) => setImmediate(r));
    sender.enqueuePcm(pcmFrames(1, 5));
    expect(encoder.encodeCalls).toBe(0); // nothing inside enqueue: the caller is not blocked
    await idle();
    expect(encoder.encodeCalls).toBe(2);
    ticks(1);
    expect(encoder.encodeCalls).toBe(2); // the tick sent a payload encoded before it
    await idle();
    expect(encoder.encodeCalls).toBe(3); // topped back up to two ahead
    ticks(1);
    await idle();
    ticks(3);
    expect(packets.slice(0, 5).map(tag)).toEqual([1, 2, 3, 4, 5]);
    // flush drops frames encoded ahead as well
    sender.enqueuePcm(pcmFrames(10, 4));
    await idle();
    expect(sender.flush()).toBe(80);
    ticks(1);
    expect(packets.at(-1)!.payload[0]).toBe(0xee);
    sender.close();
  });

  it('sets the marker on the first packet of each talkspurt only', () => {
    const { sender, packets, ticks } = setup();
    sender.enqueueEncoded(encodedPrompt(1, 2));
    ticks(2);
    // Queued before the queue ran dry: the same talkspurt goes on, no marker.
    sender.enqueueEncoded(encodedPrompt(3, 1));
    ticks(1);
    ticks(2); // idle: comfort silence, never marked
    sender.enqueuePcm(pcmFrames(20, 3));
    ticks(1);
    sender.flush(); // barge-in
    sender.enqueuePcm(pcmFrames(40, 2));
    ticks(2);
    const marks = packets.map((p) => `${tag(p)}${p.marker ? '*' : ''}`);
    expect(marks).toEqual(['1*', '2', '3', `${0xee}`, `${0xee}`, '20*', '40*', '41']);
    sender.close();
  });

  it('flush() drops every queued frame at once and reports how much', () => {
    const { sender, packets, ticks } = setup();
    sender.enqueuePcm(pcmFrames(1, 50)); // 1 s
    sender.enqueueEncoded(encodedPrompt(100, 25));
    ticks(3);
    expect(sender.flush()).toBe((75 - 3) * 20);
    expect(sender.queuedFrames).toBe(0);
    ticks(2);
    // The very next tick is silence: nothing of the flushed audio leaks out.
    expect(packets.slice(3).map(tag)).toEqual([0xee, 0xee]);
    expect(sender.stats()).toMatchObject({ framesQueued: 75, framesDropped: 72 });
    expect(sender.flush()).toBe(0);
    sender.close();
  });

  it("emits 'drain' once when the queue empties after playing, not on flush", () => {
    const { sender, ticks } = setup();
    let drains = 0;
    sender.on('drain', () => drains++);
    sender.enqueueEncoded(encodedPrompt(1, 3));
    ticks(2);
    expect(drains).toBe(0);
    ticks(1);
    expect(drains).toBe(1);
    ticks(5);
    expect(drains).toBe(1);
    sender.enqueuePcm(pcmFrames(1, 4));
    ticks(1);
    sender.flush();
    ticks(3);
    expect(drains).toBe(1);
    sender.close();
  });

  it('cuts PCM of any length into frames and pads the tail when the queue runs dry', () => {
    const { sender, packets, ticks } = setup({ silence: 'none' });
    const first = pcmFrames(1, 2).subarray(0, 240); // 1.5 frames
    sender.enqueuePcm(first);
    expect(sender.queuedFrames).toBe(2);
    sender.enqueuePcm(pcmFrames(2, 1).subarray(0, 80)); // completes the second frame
    expect(sender.queuedFrames).toBe(2);
    sender.enqueuePcm(pcmFrames(9, 1).subarray(0, 100)); // a tail that never completes
    ticks(4);
    expect(packets.length).toBe(3);
    expect(packets.map((p) => p.payload.length)).toEqual([160, 160, 160]);
    expect(Array.from(packets[1]!.payload.subarray(78, 82))).toEqual([2, 2, 2, 2]);
    expect(Array.from(packets[2]!.payload.subarray(98, 102))).toEqual([9, 9, 0, 0]);
    expect(sender.stats().framesQueued).toBe(3);
    sender.close();
  });

  it('sends every owed frame after a stall, back to back, and counts them as late', () => {
    const { sender, packets, sendTimes, timers, ticks } = setup({ initialTimestamp: 0 });
    sender.enqueueEncoded(encodedPrompt(1, 10));
    ticks(2);
    timers.stallNext = 70; // the timeout armed by tick 3 fires 70 ms late
    ticks(6);
    expect(packets.map(tag).slice(0, 8)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // Timestamps follow media time, not send time: no frame is skipped or duplicated.
    expect(packets.map((p) => p.timestamp).slice(0, 8)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => i * 160));
    const burstAt = sendTimes[3]!;
    expect(sendTimes.filter((t) => t === burstAt).length).toBe(4);
    expect(sender.stats().lateFramesSent).toBe(3);
    sender.close();
  });

  it('picks random SSRC, sequence and timestamp unless given, and wraps them', () => {
    const a = setup();
    const b = setup();
    a.ticks(1);
    b.ticks(1);
    const pa = a.packets[0]!;
    const pb = b.packets[0]!;
    expect(a.sender.ssrc).toBe(pa.ssrc);
    // Three independent 16/32-bit random values all colliding would be a broken RNG.
    expect(pa.ssrc === pb.ssrc && pa.sequenceNumber === pb.sequenceNumber && pa.timestamp === pb.timestamp).toBe(false);
    a.sender.close();
    b.sender.close();

    const w = setup({ initialSequence: 65535, initialTimestamp: 2 ** 32 - 160 });
    w.ticks(2);
    expect(w.packets.map((p) => p.sequenceNumber)).toEqual([65535, 0]);
    expect(w.packets.map((p) => p.timestamp)).toEqual([2 ** 32 - 160, 0]);
    w.sender.close();
  });

  it('refuses to queue past maxQueueMs', () => {
    const { sender } = setup({ maxQueueMs: 100 });
    expect(sender.enqueuePcm(pcmFrames(1, 4))).toBe(true);
    expect(sender.enqueueEncoded(encodedPrompt(1, 2))).toBe(false);
    expect(sender.enqueueEncoded(encodedPrompt(1, 1))).toBe(true);
    expect(sender.queuedFrames).toBe(5);
    sender.close();
  });

  it('survives a failing encoder and a failing send, reporting them', () => {
    let failSend = false;
    const sent: Buffer[] = [];
    const { sender, encoder, ticks } = setup({
      send: (b) => {
        if (failSend) throw new Error('EHOSTUNREACH');
        sent.push(b);
      },
    });
    const errors: unknown[] = [];
    sender.on('error', (e) => errors.push(e));
    sender.enqueuePcm(pcmFrames(1, 2));
    encoder.failNext = true;
    ticks(1);
    failSend = true;
    ticks(1);
    failSend = false;
    ticks(1);
    expect(sent.length).toBe(2);
    expect(sent[0]!.subarray(12).every((b) => b === 0xee)).toBe(true); // silence stood in
    expect(sender.stats()).toMatchObject({ encodeErrors: 1, sendErrors: 1, packetsSent: 2 });
    expect(errors.length).toBe(2);
    sender.close();
  });

  it('startTalkspurtAtOnce sends the first frame on enqueue, in the next tick\'s slot, with no timeline shift', () => {
    const { sender, packets, ticks } = setup({ startTalkspurtAtOnce: true, silence: 'none', initialTimestamp: 0, initialSequence: 0 });
    let talkspurts = 0;
    sender.on('talkspurt', () => talkspurts++);
    ticks(2); // idle: timestamps 0 and 160 pass unsent
    sender.enqueueEncoded(encodedPrompt(10, 3));
    expect(packets.map(tag)).toEqual([10]); // before any tick
    expect(packets[0]!.marker).toBe(true);
    expect(packets[0]!.timestamp).toBe(320);
    expect(talkspurts).toBe(1);
    ticks(1); // the slot the early frame took: nothing more goes out
    expect(packets).toHaveLength(1);
    ticks(2);
    expect(packets.map(tag)).toEqual([10, 11, 12]);
    expect(packets.map((p) => p.timestamp)).toEqual([320, 480, 640]);
    expect(packets.map((p) => p.sequenceNumber)).toEqual([0, 1, 2]);
    expect(packets.map((p) => p.marker)).toEqual([true, false, false]);
    // Mid-talkspurt (no idle tick yet), more audio waits for its tick: no second early frame.
    sender.enqueueEncoded(encodedPrompt(20, 1));
    expect(packets).toHaveLength(3);
    ticks(1);
    expect(packets.map(tag)).toEqual([10, 11, 12, 20]);
    expect(talkspurts).toBe(1);
  });

  it('startTalkspurtAtOnce after a flush starts the next reply at once with the marker; a partial frame waits', () => {
    const { sender, packets, ticks } = setup({ startTalkspurtAtOnce: true, silence: 'comfort' });
    sender.enqueuePcm(pcmFrames(1, 5));
    expect(packets.map(tag)).toEqual([1]);
    ticks(2);
    expect(packets.map(tag)).toEqual([1, 2]); // the slot tick sent nothing, not even comfort silence
    sender.flush();
    sender.enqueuePcm(pcmFrames(40, 1).subarray(0, 100)); // less than a frame
    expect(packets).toHaveLength(2);
    sender.enqueuePcm(pcmFrames(40, 1).subarray(100));
    expect(packets.map(tag)).toEqual([1, 2, 40]);
    expect(packets[2]!.marker).toBe(true);
    const ts = packets.map((p) => p.timestamp);
    expect(ts[2]! - ts[1]!).toBe(160);
  });

  it('duck() scales PCM and encoded frames from the next tick on, and 0 dB restores them as queued', () => {
    // The stand-in decoder reverses TestEncoder: each byte back to the sample it came from.
    const decoder = { codec: 'PCMU' as const, sampleRate: 8000 as const, clockRate: 8000, frameSamples: 160, decode: (p: Uint8Array) => ({ ok: true as const, value: Int16Array.from(p) }), conceal: () => new Int16Array(160), close: () => undefined };
    const { sender, packets, ticks } = setup({ createDecoder: () => decoder as never });
    sender.enqueuePcm(pcmFrames(100, 2));
    sender.enqueueEncoded(encodedPrompt(100, 2));
    sender.enqueuePcm(pcmFrames(100, 1));
    ticks(1);
    sender.duck(-20); // a tenth of the amplitude
    ticks(3);
    sender.duck(0);
    ticks(1);
    expect(packets.map(tag)).toEqual([100, 10, 10, 10, 100]);
    sender.close();
  });

  it('hold() sends silence while it holds, loses nothing, and goes on where it stopped with a new talkspurt', () => {
    const { sender, packets, ticks } = setup();
    sender.enqueueEncoded(encodedPrompt(1, 4));
    ticks(2);
    sender.hold(true);
    expect(sender.held).toBe(true);
    ticks(3);
    expect(sender.queuedFrames).toBe(2);
    sender.hold(false);
    ticks(3);
    expect(packets.map(tag)).toEqual([1, 2, 0xee, 0xee, 0xee, 3, 4, 0xee]);
    expect(packets.map((p) => p.marker)).toEqual([true, false, false, false, false, true, false, false]);
    sender.close();
  });

  it('close() is idempotent, leaves the clock and leaves no timer behind', () => {
    const { sender, clock, timers, packets, ticks } = setup();
    const other = new PacedSender({ clock, encoder: new TestEncoder(), payloadType: 8, send: () => undefined });
    expect(clock.subscriberCount).toBe(2);
    sender.enqueuePcm(pcmFrames(1, 10));
    ticks(2);
    sender.close();
    sender.close();
    expect(sender.isClosed).toBe(true);
    expect(clock.subscriberCount).toBe(1);
    expect(clock.running).toBe(true);
    ticks(3);
    expect(packets.length).toBe(2);
    expect(sender.enqueuePcm(pcmFrames(1, 1))).toBe(false);
    other.close();
    expect(clock.subscriberCount).toBe(0);
    expect(clock.running).toBe(false);
    expect(timers.pending.size).toBe(0);
  });

  it('paces a real PCMU stream over UDP on 127.0.0.1 at 20 ms, then leaves nothing running', async () => {
    const receiver = createSocket('udp4');
    const sender = createSocket('udp4');
    try {
      await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
      const port = receiver.address().port;
      const arrivals: { at: number; pkt: RtpPacket }[] = [];
      receiver.on('message', (msg) => {
        const parsed = parseRtp(msg);
        if (parsed.ok) arrivals.push({ at: performance.now(), pkt: parsed.value });
      });
      const clock = new MediaClock();
      const encoder = createG711Encoder('PCMU');
      const paced = new PacedSender({
        clock,
        encoder,
        payloadType: 0,
        send: (buf) => sender.send(buf, port, '127.0.0.1'),
      });
      const drained = new Promise<void>((resolve) => paced.once('drain', () => resolve()));
      // A 400 Hz tone, 0.5 s, handed over in uneven TTS-like chunks.
      const tone = Int16Array.from({ length: 4000 }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * 400 * i) / 8000)));
      for (let off = 0; off < tone.length; off += 1234) paced.enqueuePcm(tone.subarray(off, off + 1234));
      await drained;
      await new Promise((r) => setTimeout(r, 100)); // a few comfort-silence packets, then stop
      paced.close();
      encoder.close();
      expect(clock.subscriberCount).toBe(0);
      expect(clock.running).toBe(false);
      await new Promise((r) => setTimeout(r, 30));

      const speech = arrivals.filter((a) => a.pkt.payload.some((b) => b !== 0xff));
      expect(speech.length).toBe(25);
      expect(speech[0]!.pkt.marker).toBe(true);
      expect(arrivals.length).toBe(paced.stats().packetsSent);
      for (let i = 1; i < arrivals.length; i++) {
        expect(arrivals[i]!.pkt.sequenceNumber).toBe((arrivals[0]!.pkt.sequenceNumber + i) & 0xffff);
        expect((arrivals[i]!.pkt.timestamp - arrivals[i - 1]!.pkt.timestamp) >>> 0).toBe(160);
      }
      // 20 ms apart on average: the span matches media time within a few ms. The first packet went out
      // at once on enqueue (startTalkspurtAtOnce), ahead of its tick, so the span starts at the second.
      const span = arrivals.at(-1)!.at - arrivals[1]!.at;
      expect(Math.abs(span - (arrivals.length - 2) * 20)).toBeLessThan(10);
    } finally {
      receiver.close();
      sender.close();
    }
  });
});
