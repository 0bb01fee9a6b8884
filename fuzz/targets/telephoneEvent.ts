import { DtmfReceiver, dtmfPayloads, encodeTelephoneEvent, eventToDigit, parseTelephoneEvent } from '../../src/media/codecs/telephoneEvent.js';
import { check, describeBytes, shorten, type FuzzTarget } from '../engine.js';
import { INTERESTING_32, mutateBytes, randomBytes, type Rng } from '../mutate.js';

/**
 * RFC 4733 telephone-events (src/media/codecs/telephoneEvent.ts): a stream of event packets, as one
 * leg receives them, through parseTelephoneEvent and a fresh DtmfReceiver. Neither may throw; every
 * parsed event re-encodes, and every key press reported is a DTMF digit with a sane duration.
 */
export interface DtmfCase {
  readonly clockRate: number;
  readonly packets: readonly { timestamp: number; marker: boolean; payload: Uint8Array }[];
}

const DIGITS = '0123456789*#ABCD';
const CLOCK_RATES = [8000, 16000, 48000];

export const telephoneEventTarget: FuzzTarget<DtmfCase> = {
  name: 'dtmf',
  about: 'parseTelephoneEvent and DtmfReceiver.feed on mutated RFC 4733 packet streams (dtmfPayloads output, lost/reordered/duplicated packets, wrapping timestamps)',
  async open() {
    const seeds = seedStreams();
    return {
      generate: (rng: Rng) => (rng.bool(0.1) ? randomStream(rng) : mutateStream(rng, rng.pick(seeds), seeds)),
      run(c: DtmfCase) {
        const receiver = new DtmfReceiver();
        let parsedAny = false;
        let reported = 0;
        for (const p of c.packets) {
          const one = parseTelephoneEvent(p.payload);
          if (one.ok) {
            parsedAny = true;
            const e = one.value;
            // Whatever we parse we can send back (encodeTelephoneEvent throws on out-of-range fields).
            const again = encodeTelephoneEvent(e);
            check(again[0] === p.payload[0] && again[2] === p.payload[2] && again[3] === p.payload[3], 'event, duration change across parse/encode');
            check((again[1]! & 0xbf) === (p.payload[1]! & 0xbf), 'E bit or volume change across parse/encode');
          } else {
            check(one.code === 'CG_DTMF_MALFORMED', `failure code ${one.code}`);
          }
          const fed = receiver.feed(p.timestamp, p.marker, p.payload, c.clockRate);
          check(fed.ok === one.ok, 'feed and parseTelephoneEvent disagree on the payload');
          if (fed.ok) for (const ev of fed.value) checkEvent(ev, c.clockRate, c.packets.length);
          if (fed.ok) reported += fed.value.length;
        }
        const last = receiver.flush();
        if (last) {
          checkEvent(last, c.clockRate, c.packets.length);
          reported++;
        }
        check(reported === receiver.stats.events, `reported ${reported} key presses, stats say ${receiver.stats.events}`);
        // One press needs at least one packet: more presses than packets means events were invented.
        check(reported <= c.packets.length, `${reported} key presses from ${c.packets.length} packets`);
        return parsedAny ? 'accepted' : 'rejected';
      },
      isTyped: () => false,
      describe: (c: DtmfCase) =>
        shorten(
          `${c.clockRate} Hz, ${c.packets.length} packets: ` +
            c.packets
              .slice(0, 8)
              .map((p) => `ts=${p.timestamp}${p.marker ? ' M' : ''} ${describeBytes(p.payload, 8)}`)
              .join('; '),
          400,
        ),
    };
  },
};

function checkEvent(ev: { digit: string; durationMs: number; rtpTimestamp: number; volume: number }, clockRate: number, packets: number): void {
  check(ev.digit.length === 1 && DIGITS.includes(ev.digit), `reported digit ${JSON.stringify(ev.digit)}`);
  check(eventToDigit(DIGITS.indexOf(ev.digit)) === ev.digit, 'digit table disagrees with itself');
  check(Number.isFinite(ev.durationMs) && ev.durationMs >= 0, `duration ${ev.durationMs} ms`);
  // A duration only adds up segments of at most 65535 ticks, one packet each: anything longer is invented.
  check(ev.durationMs <= Math.ceil((packets * 0xffff * 1000) / clockRate), `duration ${ev.durationMs} ms from ${packets} packets at ${clockRate} Hz`);
  check(Number.isInteger(ev.rtpTimestamp) && ev.rtpTimestamp >= 0 && ev.rtpTimestamp <= 0xffffffff, `timestamp ${ev.rtpTimestamp}`);
  check(ev.volume >= 0 && ev.volume <= 63, `volume ${ev.volume}`);
}

/** Key presses as a phone sends them, back to back, with timestamps near 0 and near the 32-bit wrap. */
function seedStreams(): DtmfCase[] {
  const out: DtmfCase[] = [];
  for (const clockRate of CLOCK_RATES) {
    for (const base of [0, 160_000, 0xffffffff - 4000]) {
      const packets: { timestamp: number; marker: boolean; payload: Uint8Array }[] = [];
      let ts = base;
      for (const [i, digit] of ['1', '5', '#', '*', 'A', '0'].entries()) {
        const durationMs = [40, 100, 250, 1000][i % 4]!;
        for (const p of dtmfPayloads(digit, durationMs, clockRate)) packets.push({ timestamp: ts >>> 0, marker: p.marker, payload: p.payload });
        ts += Math.round(((durationMs + 60) * clockRate) / 1000);
      }
      out.push({ clockRate, packets });
    }
  }
  return out;
}

function mutateStream(rng: Rng, seed: DtmfCase, seeds: readonly DtmfCase[]): DtmfCase {
  const packets = seed.packets.slice();
  const rounds = rng.range(1, 6);
  for (let r = 0; r < rounds && packets.length > 0; r++) {
    const i = rng.int(packets.length);
    const p = packets[i]!;
    switch (rng.int(8)) {
      case 0: // lost
        packets.splice(i, 1);
        break;
      case 1: // duplicated
        packets.splice(rng.int(packets.length + 1), 0, p);
        break;
      case 2: // reordered
        packets.splice(i, 1);
        packets.splice(rng.int(packets.length + 1), 0, p);
        break;
      case 3: // payload bytes
        packets[i] = { ...p, payload: mutateBytes(rng, p.payload, { maxLength: 32, maxRounds: 3 }) };
        break;
      case 4: // timestamp at an edge or jumping
        packets[i] = { ...p, timestamp: (rng.bool() ? rng.pick(INTERESTING_32) : p.timestamp + rng.range(-100_000, 100_000)) >>> 0 };
        break;
      case 5:
        packets[i] = { ...p, marker: !p.marker };
        break;
      case 6: // a packet of another stream (another clock, another timestamp base)
        packets.splice(i, 0, rng.pick(rng.pick(seeds).packets));
        break;
      default: // a held key: one event whose duration sits at the 16-bit edge
        packets.splice(i, 0, { timestamp: p.timestamp, marker: false, payload: Uint8Array.of(p.payload[0] ?? 1, rng.int(256), 0xff, rng.pick([0xfe, 0xff])) });
    }
  }
  return { clockRate: rng.bool(0.9) ? seed.clockRate : rng.pick([...CLOCK_RATES, 1, 90000]), packets };
}

function randomStream(rng: Rng): DtmfCase {
  const n = rng.length(60);
  let ts = rng.int(2 ** 32);
  const packets = Array.from({ length: n }, () => {
    ts = (ts + rng.range(-1000, 5000)) >>> 0;
    return { timestamp: ts, marker: rng.bool(0.2), payload: randomBytes(rng, rng.bool(0.8) ? 4 : rng.int(12)) };
  });
  return { clockRate: rng.pick(CLOCK_RATES), packets };
}
