import { describe, expect, it } from 'vitest';
import type { DtmfEvent } from '../types.js';
import {
  digitToEvent,
  DtmfReceiver,
  dtmfPayloads,
  encodeTelephoneEvent,
  eventToDigit,
  MAX_EVENT_DURATION,
  parseTelephoneEvent,
  type DtmfPacket,
} from './telephoneEvent.js';

/** Feeds packets of one event (all sharing `timestamp`) and collects what comes out. */
function feedAll(receiver: DtmfReceiver, timestamp: number, packets: readonly DtmfPacket[], clockRate = 8000): DtmfEvent[] {
  const out: DtmfEvent[] = [];
  for (const p of packets) {
    const result = receiver.feed(timestamp, p.marker, p.payload, clockRate);
    if (!result.ok) throw new Error(result.code);
    out.push(...result.value);
  }
  return out;
}

describe('telephone-event payload', () => {
  it('parses the RFC 4733 fields', () => {
    // event 5, E=1, R=1 (must be ignored), volume 10, duration 800
    const parsed = parseTelephoneEvent(Uint8Array.of(5, 0x80 | 0x40 | 10, 0x03, 0x20));
    expect(parsed).toEqual({ ok: true, value: { event: 5, end: true, volume: 10, duration: 800 } });
    expect(parseTelephoneEvent(Uint8Array.of(11, 63, 0xff, 0xff))).toEqual({
      ok: true,
      value: { event: 11, end: false, volume: 63, duration: 65535 },
    });
  });

  it('rejects payloads shorter than one event', () => {
    expect(parseTelephoneEvent(Uint8Array.of(1, 2, 3))).toMatchObject({ ok: false, code: 'CG_DTMF_MALFORMED' });
    expect(parseTelephoneEvent(new Uint8Array(0))).toMatchObject({ ok: false, code: 'CG_DTMF_MALFORMED' });
  });

  it('encode is the inverse of parse', () => {
    for (const e of [
      { event: 0, end: false, volume: 0, duration: 0 },
      { event: 15, end: true, volume: 63, duration: 65535 },
      { event: 9, end: true, volume: 10, duration: 1234 },
    ]) {
      expect(parseTelephoneEvent(encodeTelephoneEvent(e))).toEqual({ ok: true, value: e });
    }
    expect(Array.from(encodeTelephoneEvent({ event: 1, end: true, volume: 10, duration: 0x1234 }))).toEqual([1, 0x8a, 0x12, 0x34]);
  });

  it('encode refuses out-of-range fields', () => {
    expect(() => encodeTelephoneEvent({ event: 256, end: false, volume: 0, duration: 0 })).toThrow(expect.objectContaining({ code: 'CG_DTMF_MALFORMED' }));
    expect(() => encodeTelephoneEvent({ event: 1, end: false, volume: 64, duration: 0 })).toThrow();
    expect(() => encodeTelephoneEvent({ event: 1, end: false, volume: 0, duration: 65536 })).toThrow();
  });

  it('maps the 16 DTMF event codes to digits and back', () => {
    const digits = '0123456789*#ABCD';
    for (let code = 0; code < 16; code++) {
      expect(eventToDigit(code)).toBe(digits[code]);
      expect(digitToEvent(digits[code] as string)).toBe(code);
    }
    expect(eventToDigit(16)).toBeUndefined();
    expect(eventToDigit(-1)).toBeUndefined();
    expect(digitToEvent('a')).toBe(12);
    expect(digitToEvent('E')).toBeUndefined();
    expect(digitToEvent('12')).toBeUndefined();
  });
});

describe('dtmfPayloads (sender)', () => {
  it('emits a marked first packet, 50 ms updates and three identical end packets', () => {
    const packets = dtmfPayloads('7', 180, 8000);
    const parsed = packets.map((p) => {
      const r = parseTelephoneEvent(p.payload);
      if (!r.ok) throw new Error(r.code);
      return r.value;
    });
    expect(packets.map((p) => p.marker)).toEqual([true, false, false, false, false, false, false]);
    expect(packets.map((p) => p.sendOffsetMs)).toEqual([0, 50, 100, 150, 180, 180, 180]);
    expect(parsed.map((e) => e.duration)).toEqual([400, 800, 1200, 1440, 1440, 1440, 1440]);
    expect(parsed.map((e) => e.end)).toEqual([false, false, false, false, true, true, true]);
    expect(parsed.every((e) => e.event === 7 && e.volume === 10)).toBe(true);
  });

  it('uses the clock rate of the negotiated telephone-event (48 kHz for WebRTC)', () => {
    const last = dtmfPayloads('#', 100, 48000).at(-1);
    const parsed = parseTelephoneEvent(last?.payload ?? new Uint8Array(0));
    expect(parsed).toMatchObject({ ok: true, value: { event: 11, end: true, duration: 4800 } });
  });

  it('a press shorter than one update interval is one marked update, then the end packets', () => {
    const packets = dtmfPayloads('1', 40, 8000, { endPackets: 2, volume: 20 });
    expect(packets.map((p) => p.marker)).toEqual([true, false, false]);
    const parsed = packets.map((p) => parseTelephoneEvent(p.payload));
    expect(parsed.map((r) => r.ok && [r.value.end, r.value.duration, r.value.volume])).toEqual([
      [false, 320, 20],
      [true, 320, 20],
      [true, 320, 20],
    ]);
  });

  it('refuses non-digits, non-positive durations and durations that overflow one event', () => {
    expect(() => dtmfPayloads('x', 100, 8000)).toThrow(expect.objectContaining({ code: 'CG_DTMF_MALFORMED' }));
    expect(() => dtmfPayloads('1', 0, 8000)).toThrow();
    expect(() => dtmfPayloads('1', 2000, 48000)).toThrow(); // 96000 ticks > 65535
  });
});

describe('DtmfReceiver', () => {
  it('reports a key press exactly once, on the first end packet', () => {
    const receiver = new DtmfReceiver();
    const packets = dtmfPayloads('5', 120, 8000);
    const outputs = packets.map((p) => receiver.feed(1000, p.marker, p.payload, 8000));
    const counts = outputs.map((o) => (o.ok ? o.value.length : -1));
    // 3 updates (0, 50, 100 ms) report nothing; the first end reports; the 2 retransmissions are dropped.
    expect(counts).toEqual([0, 0, 0, 1, 0, 0]);
    const event = outputs[3];
    expect(event?.ok && event.value[0]).toEqual({ digit: '5', durationMs: 120, rtpTimestamp: 1000, volume: 10 });
    expect(receiver.stats).toMatchObject({ events: 1, duplicates: 2, endLost: 0 });
    expect(receiver.flush()).toBeUndefined();
  });

  it('reports a sequence of key presses in order', () => {
    const receiver = new DtmfReceiver();
    const digits = '1234567890*#ABCD';
    const got: string[] = [];
    let ts = 50_000;
    for (const d of digits) {
      got.push(...feedAll(receiver, ts, dtmfPayloads(d, 100, 8000)).map((e) => e.digit));
      ts += 8000 * 0.3;
    }
    expect(got.join('')).toBe(digits);
    expect(receiver.stats.events).toBe(16);
  });

  it('when every end packet is lost, the next event reports the old one with its last duration', () => {
    const receiver = new DtmfReceiver();
    const first = dtmfPayloads('3', 200, 8000).filter((p) => {
      const r = parseTelephoneEvent(p.payload);
      return r.ok && !r.value.end;
    });
    expect(feedAll(receiver, 8000, first)).toEqual([]);
    const second = dtmfPayloads('4', 100, 8000);
    const firstOfSecond = receiver.feed(8000 + 3200, true, (second[0] as DtmfPacket).payload, 8000);
    expect(firstOfSecond.ok && firstOfSecond.value).toEqual([{ digit: '3', durationMs: 200, rtpTimestamp: 8000, volume: 10 }]);
    const rest = feedAll(receiver, 8000 + 3200, second.slice(1));
    expect(rest.map((e) => e.digit)).toEqual(['4']);
    expect(receiver.stats).toMatchObject({ events: 2, endLost: 1 });
  });

  it('reports both when an unfinished event is followed by an event whose first surviving packet is its end', () => {
    const receiver = new DtmfReceiver();
    feedAll(receiver, 100, dtmfPayloads('1', 150, 8000).slice(0, 2));
    const endOnly = dtmfPayloads('2', 80, 8000).at(-1) as DtmfPacket;
    const result = receiver.feed(5000, false, endOnly.payload, 8000);
    expect(result.ok && result.value.map((e) => e.digit)).toEqual(['1', '2']);
  });

  it('flush() reports an event whose end never came, once', () => {
    const receiver = new DtmfReceiver();
    feedAll(receiver, 77, dtmfPayloads('9', 300, 8000).slice(0, 3));
    expect(receiver.flush()).toEqual({ digit: '9', durationMs: 150, rtpTimestamp: 77, volume: 10 });
    expect(receiver.flush()).toBeUndefined();
    // A late end packet of the flushed event is recognised and not reported again.
    const late = dtmfPayloads('9', 300, 8000).at(-1) as DtmfPacket;
    const r = receiver.feed(77, false, late.payload, 8000);
    expect(r.ok && r.value).toEqual([]);
  });

  it('a reordered older update does not shrink the duration', () => {
    const receiver = new DtmfReceiver();
    const packets = dtmfPayloads('0', 200, 8000);
    // 50, 150, then the late 100 ms update.
    const reordered = [packets[0], packets[2], packets[1]] as DtmfPacket[];
    expect(feedAll(receiver, 10, reordered)).toEqual([]);
    expect(receiver.flush()?.durationMs).toBe(150);
  });

  it('drops a straggler from an earlier event that arrives after the next one started', () => {
    const receiver = new DtmfReceiver();
    const a = dtmfPayloads('1', 100, 8000);
    const b = dtmfPayloads('2', 100, 8000);
    feedAll(receiver, 1000, a.slice(0, 2));
    feedAll(receiver, 4000, b.slice(0, 1)); // reports '1' (end lost)
    const straggler = receiver.feed(1000, false, (a[1] as DtmfPacket).payload, 8000);
    expect(straggler.ok && straggler.value).toEqual([]);
    expect(feedAll(receiver, 4000, b.slice(1)).map((e) => e.digit)).toEqual(['2']);
    expect(receiver.stats.events).toBe(2);
  });

  it('handles RTP timestamp wrap-around', () => {
    const receiver = new DtmfReceiver();
    const nearTop = 0xffff_ff00;
    const got = [
      ...feedAll(receiver, nearTop, dtmfPayloads('6', 100, 8000)),
      ...feedAll(receiver, (nearTop + 2400) >>> 0, dtmfPayloads('8', 100, 8000)),
    ];
    expect(got.map((e) => [e.digit, e.rtpTimestamp])).toEqual([
      ['6', nearTop],
      ['8', (nearTop + 2400) >>> 0],
    ]);
  });

  it('a remote that restarts its timestamps far back is treated as new, not as stragglers', () => {
    const receiver = new DtmfReceiver();
    feedAll(receiver, 5_000_000, dtmfPayloads('1', 100, 8000));
    const got = feedAll(receiver, 1000, dtmfPayloads('2', 100, 8000));
    expect(got.map((e) => e.digit)).toEqual(['2']);
  });

  it('joins the segments of a key held longer than one event can express (48 kHz clock)', () => {
    const receiver = new DtmfReceiver();
    const clock = 48000;
    const full = (duration: number, end: boolean): Uint8Array => encodeTelephoneEvent({ event: 11, end, volume: 12, duration });
    // Segment 1: 0 .. 65535 ticks, then segment 2 starts at ts + 65535 without a marker.
    expect(feedAll(receiver, 0, [{ payload: full(48000, false), marker: true, sendOffsetMs: 0 }], clock)).toEqual([]);
    expect(feedAll(receiver, 0, [{ payload: full(MAX_EVENT_DURATION, false), marker: false, sendOffsetMs: 0 }], clock)).toEqual([]);
    const got = feedAll(
      receiver,
      MAX_EVENT_DURATION,
      [
        { payload: full(20000, false), marker: false, sendOffsetMs: 0 },
        { payload: full(30465, true), marker: false, sendOffsetMs: 0 },
        { payload: full(30465, true), marker: false, sendOffsetMs: 0 },
      ],
      clock,
    );
    // 65535 + 30465 = 96000 ticks = 2 s, reported once, identified by the first segment's timestamp.
    expect(got).toEqual([{ digit: '#', durationMs: 2000, rtpTimestamp: 0, volume: 12 }]);
  });

  it('counts and ignores events other than DTMF, and malformed payloads', () => {
    const receiver = new DtmfReceiver();
    const fax = receiver.feed(10, true, encodeTelephoneEvent({ event: 36, end: true, volume: 10, duration: 800 }), 8000);
    expect(fax.ok && fax.value).toEqual([]);
    expect(receiver.feed(10, true, Uint8Array.of(1, 2), 8000)).toMatchObject({ ok: false, code: 'CG_DTMF_MALFORMED' });
    expect(receiver.stats).toMatchObject({ ignored: 1, malformed: 1, events: 0 });
    expect(receiver.flush()).toBeUndefined();
  });

  it('reset() forgets the event in progress', () => {
    const receiver = new DtmfReceiver();
    feedAll(receiver, 10, dtmfPayloads('1', 200, 8000).slice(0, 2));
    receiver.reset();
    expect(receiver.flush()).toBeUndefined();
  });
});
