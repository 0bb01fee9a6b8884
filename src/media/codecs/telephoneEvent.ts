import { CallgateError, fail, type Parsed } from '../../errors.js';
import type { DtmfEvent } from '../types.js';

/**
 * RFC 4733 telephone-events (DTMF over RTP).
 *
 * One key press is one event: every packet of it carries the same RTP timestamp (the event start); the
 * first has the marker bit, updates follow with a growing duration, and the end is sent three times
 * with the E bit. The receiver here reports each key press exactly once.
 */

/** Payload of one telephone-event (RFC 4733 §2.3). */
export interface TelephoneEvent {
  /** Event code: 0-9, 10 '*', 11 '#', 12-15 'A'-'D' for DTMF; other codes are other tones. */
  readonly event: number;
  /** E bit: this packet ends the event. */
  readonly end: boolean;
  /** Power in -dBm0, 0 (loudest) .. 63. */
  readonly volume: number;
  /** Duration so far, in RTP timestamp units. */
  readonly duration: number;
}

/** Size of one event block; a payload may be longer (padding, or several blocks), the first one counts. */
export const TELEPHONE_EVENT_BYTES = 4;
/** The largest duration one packet can carry; longer events continue in a new segment (RFC 4733 §2.5.2.3). */
export const MAX_EVENT_DURATION = 0xffff;

const DIGITS = '0123456789*#ABCD';

/** '0'-'9', '*', '#', 'A'-'D' for event codes 0-15, undefined for any other event. */
export function eventToDigit(event: number): string | undefined {
  return Number.isInteger(event) && event >= 0 && event < DIGITS.length ? DIGITS[event] : undefined;
}

/** The event code of a DTMF digit (case-insensitive for A-D), or undefined. */
export function digitToEvent(digit: string): number | undefined {
  if (digit.length !== 1) return undefined;
  const code = DIGITS.indexOf(digit.toUpperCase());
  return code < 0 ? undefined : code;
}

export function parseTelephoneEvent(payload: Uint8Array): Parsed<TelephoneEvent> {
  if (payload.length < TELEPHONE_EVENT_BYTES) {
    return fail('CG_DTMF_MALFORMED', `telephone-event payload of ${payload.length} bytes`);
  }
  const flags = payload[1] as number;
  return {
    ok: true,
    value: {
      event: payload[0] as number,
      end: (flags & 0x80) !== 0,
      // Bit 6 is reserved: senders must send 0 and receivers must ignore it (RFC 4733 §2.3).
      volume: flags & 0x3f,
      duration: ((payload[2] as number) << 8) | (payload[3] as number),
    },
  };
}

/** Throws CG_DTMF_MALFORMED for out-of-range fields: callers build these, a wrong value is a bug. */
export function encodeTelephoneEvent(e: TelephoneEvent): Uint8Array {
  if (!Number.isInteger(e.event) || e.event < 0 || e.event > 255) throw new CallgateError('CG_DTMF_MALFORMED', `event ${e.event}`);
  if (!Number.isInteger(e.volume) || e.volume < 0 || e.volume > 63) throw new CallgateError('CG_DTMF_MALFORMED', `volume ${e.volume}`);
  if (!Number.isInteger(e.duration) || e.duration < 0 || e.duration > MAX_EVENT_DURATION) {
    throw new CallgateError('CG_DTMF_MALFORMED', `duration ${e.duration}`);
  }
  return Uint8Array.of(e.event, (e.end ? 0x80 : 0) | e.volume, e.duration >> 8, e.duration & 0xff);
}

// ── sending ──────────────────────────────────────────────────────────────────────────────────────

export interface DtmfSendOptions {
  /** Reported power, -dBm0 (0 loudest .. 63). */
  readonly volume: number;
  /** Interval between update packets in milliseconds. */
  readonly updateIntervalMs: number;
  /** How many times the final (E bit) packet is sent. */
  readonly endPackets: number;
}

export const defaultDtmfSendOptions = {
  /** 10 dBm0 below full scale, what most phones and gateways send. */
  volume: 10,
  /** 50 ms: RFC 4733 §2.5.1.2 suggests 50 ms updates for DTMF. */
  updateIntervalMs: 50,
  /** 3: RFC 4733 §2.5.1.4 has the end sent three times against loss. */
  endPackets: 3,
} as const satisfies DtmfSendOptions;

/** One RTP packet of an event as a sender emits it; all share the RTP timestamp of the event start. */
export interface DtmfPacket {
  readonly payload: Uint8Array;
  /** Set on the first packet of the event only. */
  readonly marker: boolean;
  /** When to send it, in milliseconds after the first packet. */
  readonly sendOffsetMs: number;
}

/**
 * The packets a sender emits for one key press of `durationMs`: a first packet with the marker, an
 * update every `updateIntervalMs` while the key is down, then the end packet `endPackets` times (back to
 * back at the release; a real sender may space them by a packet time, receivers must not care).
 */
export function dtmfPayloads(digit: string, durationMs: number, clockRate: number, opts: Partial<DtmfSendOptions> = {}): DtmfPacket[] {
  const o: DtmfSendOptions = { ...defaultDtmfSendOptions, ...definedOnly(opts) };
  const event = digitToEvent(digit);
  if (event === undefined) throw new CallgateError('CG_DTMF_MALFORMED', `not a DTMF digit: ${JSON.stringify(digit)}`);
  if (!(durationMs > 0) || !(o.updateIntervalMs > 0) || !Number.isInteger(o.endPackets) || o.endPackets < 1) {
    throw new CallgateError('CG_DTMF_MALFORMED', 'duration, update interval and end packet count must be positive');
  }
  const ticks = (ms: number): number => Math.round((ms * clockRate) / 1000);
  const total = ticks(durationMs);
  if (total > MAX_EVENT_DURATION) throw new CallgateError('CG_DTMF_MALFORMED', `${durationMs} ms does not fit one event at ${clockRate} Hz`);
  const packets: DtmfPacket[] = [];
  // An update goes out every interval while the key is down. Each reports the duration up to the end
  // of its own interval (never past the release), so even the first one says how long it covers.
  // Bounded: durationMs / updateIntervalMs iterations.
  for (let at = 0; at < durationMs; at += o.updateIntervalMs) {
    packets.push({
      payload: encodeTelephoneEvent({ event, end: false, volume: o.volume, duration: ticks(Math.min(at + o.updateIntervalMs, durationMs)) }),
      marker: at === 0,
      sendOffsetMs: at,
    });
  }
  const endPayload = encodeTelephoneEvent({ event, end: true, volume: o.volume, duration: total });
  for (let i = 0; i < o.endPackets; i++) {
    packets.push({ payload: endPayload, marker: false, sendOffsetMs: durationMs });
  }
  return packets;
}

// ── receiving ────────────────────────────────────────────────────────────────────────────────────

export interface DtmfReceiverStats {
  /** Key presses reported. */
  events: number;
  /** Reported without an end packet: the next event started, or flush() was called. */
  endLost: number;
  /** Retransmitted end packets and late packets of events already reported. */
  duplicates: number;
  /** Packets of events other than the 16 DTMF codes (e.g. fax tones), ignored. */
  ignored: number;
  /** Payloads too short to hold an event. */
  malformed: number;
}

interface Current {
  /** RTP timestamp of the first segment: the identity reported to the application. */
  readonly startTimestamp: number;
  /** RTP timestamp of the segment now running (differs after a >65535-tick continuation). */
  segmentTimestamp: number;
  readonly event: number;
  /** Ticks of finished segments plus the running segment's latest duration. */
  finishedTicks: number;
  segmentTicks: number;
  volume: number;
  clockRate: number;
  reported: boolean;
}

const NOTHING: readonly DtmfEvent[] = Object.freeze([]);
/** Recently reported timestamps remembered to drop late retransmissions (a handful is plenty). */
const REMEMBERED = 8;

/** Late packets this far behind the current event are stragglers; further back means a new timestamp base. */
const STRAGGLER_WINDOW_MS = 10_000;

/**
 * True when `ts` lies shortly before the current event (serial arithmetic, RFC 3550): a reordered packet
 * of an earlier event. A jump far backwards is a remote that restarted its timestamps, not a straggler.
 */
function isStraggler(ts: number, current: Current): boolean {
  const behind = (current.segmentTimestamp - ts) | 0;
  return behind > 0 && behind < (STRAGGLER_WINDOW_MS * current.clockRate) / 1000;
}

/**
 * Turns one leg's telephone-event packets into key presses. Feed every packet of the negotiated
 * telephone-event payload type; each key press comes out exactly once:
 * - on its first end packet (the two retransmissions are recognised by timestamp and dropped);
 * - or, when all end packets were lost, as soon as the next event starts, with the last duration seen;
 * - or from flush(), for a leg that went quiet (call it on hang-up or after a silence timeout).
 */
export class DtmfReceiver {
  readonly stats: DtmfReceiverStats = { events: 0, endLost: 0, duplicates: 0, ignored: 0, malformed: 0 };
  private current: Current | undefined;
  private readonly reportedTimestamps: number[] = [];

  /**
   * Returns the key presses this packet completes: usually none, one on an end packet, at most two
   * (an unfinished event plus a new one whose first surviving packet is already its end).
   */
  feed(timestamp: number, marker: boolean, payload: Uint8Array, clockRate: number): Parsed<readonly DtmfEvent[]> {
    const parsed = parseTelephoneEvent(payload);
    if (!parsed.ok) {
      this.stats.malformed++;
      return parsed;
    }
    const e = parsed.value;
    if (eventToDigit(e.event) === undefined) {
      this.stats.ignored++;
      return { ok: true, value: NOTHING };
    }
    const ts = timestamp >>> 0;
    const current = this.current;

    if (current && ts === current.segmentTimestamp && e.event === current.event) {
      return { ok: true, value: this.update(current, e) };
    }
    if (this.reportedTimestamps.includes(ts) || (current && isStraggler(ts, current))) {
      // A retransmitted end of an event already reported, or a straggler from before the current event.
      this.stats.duplicates++;
      return { ok: true, value: NOTHING };
    }
    if (current && !current.reported && !marker && e.event === current.event && current.segmentTicks === MAX_EVENT_DURATION) {
      // A key held past 65535 ticks (1.37 s at 48 kHz) continues in a new segment with a new timestamp.
      current.finishedTicks += current.segmentTicks;
      current.segmentTimestamp = ts;
      current.segmentTicks = 0;
      return { ok: true, value: this.update(current, e) };
    }

    const out: DtmfEvent[] = [];
    if (current && !current.reported) {
      this.stats.endLost++;
      out.push(this.report(current));
    }
    const next: Current = {
      startTimestamp: ts,
      segmentTimestamp: ts,
      event: e.event,
      finishedTicks: 0,
      segmentTicks: 0,
      volume: e.volume,
      clockRate,
      reported: false,
    };
    this.current = next;
    out.push(...this.update(next, e));
    return { ok: true, value: out.length === 0 ? NOTHING : out };
  }

  /** Reports the event still in progress, if any (its end never arrived). */
  flush(): DtmfEvent | undefined {
    const current = this.current;
    if (!current || current.reported) return undefined;
    this.stats.endLost++;
    return this.report(current);
  }

  /** Forgets all state (e.g. the remote changed SSRC); statistics are kept. */
  reset(): void {
    this.current = undefined;
    this.reportedTimestamps.length = 0;
  }

  private update(current: Current, e: TelephoneEvent): readonly DtmfEvent[] {
    if (current.reported) {
      this.stats.duplicates++;
      return NOTHING;
    }
    // Durations only grow; a reordered older update must not shrink it.
    if (e.duration > current.segmentTicks) current.segmentTicks = e.duration;
    current.volume = e.volume;
    return e.end ? [this.report(current)] : NOTHING;
  }

  private report(current: Current): DtmfEvent {
    current.reported = true;
    this.stats.events++;
    this.reportedTimestamps.push(current.segmentTimestamp);
    if (current.startTimestamp !== current.segmentTimestamp) this.reportedTimestamps.push(current.startTimestamp);
    while (this.reportedTimestamps.length > REMEMBERED) this.reportedTimestamps.shift();
    const ticks = current.finishedTicks + current.segmentTicks;
    return {
      digit: eventToDigit(current.event) as string,
      durationMs: Math.round((ticks * 1000) / current.clockRate),
      rtpTimestamp: current.startTimestamp,
      volume: current.volume,
    };
  }
}

function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<T>;
}
