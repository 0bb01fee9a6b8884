import { errorCatalogue } from '../../src/errors.js';
import { parseRtp, serializeRtp, type RtpPacket } from '../../src/media/rtp/RtpPacket.js';
import { check, describeBytes, type FuzzTarget } from '../engine.js';
import { mutateBytes, randomBytes, seedOrMutant, type Rng } from '../mutate.js';
import { everyNth, fixtureDatagrams } from '../seeds.js';

/**
 * parseRtp (src/media/rtp/RtpPacket.ts) on one datagram. It is documented never to throw, so any
 * throw is a crash; an accepted packet must re-serialize and parse back to the same fields.
 */
export const rtpTarget: FuzzTarget<Uint8Array> = {
  name: 'rtp',
  about: 'parseRtp on mutated RTP datagrams (serializeRtp variants and the packets of tests/fixtures/*.pcap); accepted packets round-trip through serializeRtp',
  async open() {
    const seeds = [...builtPackets(), ...everyNth(fixtureDatagrams(), 97)];
    return {
      generate: (rng: Rng) =>
        seedOrMutant(
          rng,
          seeds,
          (seed) => mutateBytes(rng, seed, { others: seeds, maxLength: 4096 }),
          () => randomBytes(rng, rng.length(1600)),
        ),
      run(buf: Uint8Array) {
        const parsed = parseRtp(buf);
        if (!parsed.ok) {
          check(parsed.code.startsWith('CG_RTP_') && Object.hasOwn(errorCatalogue, parsed.code), `failure code ${parsed.code} is not a CG_RTP_ code`);
          return 'rejected';
        }
        checkPacket(parsed.value, buf);
        // Whatever we accept we can also write: the endpoint relays and records what it parsed.
        const p = parsed.value;
        const again = parseRtp(serializeRtp(p, p.payload, { csrcs: p.csrcs, ...(p.extension ? { extension: p.extension } : {}) }));
        check(again.ok, `re-serialized packet does not parse: ${again.ok ? '' : again.code}`);
        const q = again.value;
        check(
          q.payloadType === p.payloadType && q.sequenceNumber === p.sequenceNumber && q.timestamp === p.timestamp && q.ssrc === p.ssrc && q.marker === p.marker,
          'header fields change across serializeRtp/parseRtp',
        );
        check(Buffer.from(q.payload).equals(Buffer.from(p.payload)), 'payload changes across serializeRtp/parseRtp');
        return 'accepted';
      },
      isTyped: () => false,
      describe: (buf: Uint8Array) => describeBytes(buf),
    };
  },
};

function checkPacket(p: RtpPacket, buf: Uint8Array): void {
  check(Number.isInteger(p.payloadType) && p.payloadType >= 0 && p.payloadType <= 127, `payload type ${p.payloadType}`);
  check(p.sequenceNumber >= 0 && p.sequenceNumber <= 0xffff, `sequence ${p.sequenceNumber}`);
  check(p.timestamp >= 0 && p.timestamp <= 0xffffffff && p.ssrc >= 0 && p.ssrc <= 0xffffffff, 'timestamp or SSRC outside 32 bits');
  check(p.csrcs.length <= 15, `${p.csrcs.length} CSRCs`);
  check(p.payload.length > 0 && p.payload.byteOffset >= buf.byteOffset && p.payload.byteOffset + p.payload.length <= buf.byteOffset + buf.length, 'payload outside the datagram');
  check(!p.extension || p.extension.data.length % 4 === 0, 'extension data not a multiple of 4 bytes');
}

/** RTP packets from the project's own serializer, across the header's options. */
function builtPackets(): Uint8Array[] {
  const out: Uint8Array[] = [];
  const payloads = [1, 4, 20, 160, 320, 1275].map((n) => new Uint8Array(n).map((_, i) => (i * 37) & 0xff));
  let i = 0;
  for (const payload of payloads) {
    for (const payloadType of [0, 8, 101, 111, 127]) {
      i++;
      const header = { marker: i % 3 === 0, payloadType, sequenceNumber: [0, 1, 0xfffe, 0xffff][i % 4]!, timestamp: [0, 160, 0xffffff60, 0xffffffff][i % 4]!, ssrc: 0x1234abcd + i };
      out.push(serializeRtp(header, payload));
      if (i % 2 === 0) out.push(serializeRtp(header, payload, { csrcs: Array.from({ length: (i % 15) + 1 }, (_, k) => k) }));
      if (i % 3 === 0) out.push(serializeRtp(header, payload, { extension: { profile: 0xbede, data: new Uint8Array(4 * ((i % 3) + 1)).fill(0x10) } }));
      if (i % 4 === 0) out.push(serializeRtp(header, payload, { padTo: [4, 16, 32][i % 3]! }));
    }
  }
  return out;
}
