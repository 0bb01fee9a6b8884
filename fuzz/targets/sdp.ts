import { isIP } from 'node:net';
import type { CodecName } from '../../src/media/codecs/AudioCodec.js';
import { answerFor, buildSdp, negotiate, offerCodecs, parseRemoteSdp, type RemoteMedia } from '../../src/media/sdp.js';
import { check, describeText, type FuzzTarget } from '../engine.js';
import { mutateText, randomText, seedOrMutant, type Rng } from '../mutate.js';

/**
 * The agent leg's offer/answer (src/media/sdp.ts) as the SIP door runs it: parseRemoteSdp on the
 * peer's SDP, negotiate, then buildSdp(answerFor(...)) for our answer. Only SdpError may come out;
 * what is accepted must have payload types 0–127, a usable address and port, and an answer that
 * parses back to the same codec.
 */
export interface SdpCase {
  readonly sdp: string;
  /** Our preference order (the gateway's configuration). */
  readonly codecs: readonly CodecName[];
}

const PREFERENCES: readonly (readonly CodecName[])[] = [['opus', 'PCMU', 'PCMA'], ['PCMU', 'PCMA'], ['PCMA'], ['opus']];

export const SDP_DICTIONARY = [
  'v=0',
  'o=- 1 1 IN IP4 198.51.100.1',
  's=-',
  't=0 0',
  'c=IN IP4 ',
  'c=IN IP6 ',
  'c=IN IP4 0.0.0.0',
  'm=audio ',
  'm=video 0 RTP/AVP 96',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
  ' RTP/AVP ',
  ' RTP/SAVP ',
  ' UDP/TLS/RTP/SAVPF ',
  'a=rtpmap:',
  'a=fmtp:',
  'a=rtcp:',
  'a=rtcp-mux',
  'a=ptime:',
  'a=maxptime:',
  'a=sendonly',
  'a=recvonly',
  'a=inactive',
  'a=mid:',
  'a=ice-ufrag:',
  'a=ice-pwd:',
  'a=fingerprint:sha-256 ',
  'a=setup:actpass',
  'a=candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host',
  'a=ssrc:',
  'a=extmap:',
  'opus/48000/2',
  'PCMU/8000',
  'PCMA/8000',
  'telephone-event/8000',
  'telephone-event/48000',
  '\r\n',
  '\n',
];

export const sdpTarget: FuzzTarget<SdpCase> = {
  name: 'sdp',
  about: 'parseRemoteSdp → negotiate → buildSdp(answerFor) on mutated SIP/rtpengine offers (buildSdp output, carrier and browser shapes); answers must parse back',
  async open() {
    const seeds = sdpSeeds();
    return {
      generate: (rng: Rng) => ({
        sdp: seedOrMutant(
          rng,
          seeds,
          (seed) => mutateText(rng, rng.bool(0.3) ? renumberPayloadType(rng, seed) : seed, { others: seeds, dictionary: SDP_DICTIONARY }),
          () => randomText(rng, rng.length(4000), SDP_DICTIONARY),
        ),
        codecs: rng.pick(PREFERENCES),
      }),
      run(c: SdpCase) {
        const remote = parseRemoteSdp(c.sdp);
        checkRemote(remote);
        const n = negotiate(remote, { codecs: c.codecs });
        check(c.codecs.includes(n.codec.name), `negotiated ${n.codec.name}, not among ${c.codecs.join(', ')}`);
        check(remote.codecs.some((x) => x.pt === n.codec.pt), `negotiated PT ${n.codec.pt} was not offered`);
        check(!n.telephoneEvent || remote.codecs.some((x) => x.pt === n.telephoneEvent!.pt), 'negotiated telephone-event PT was not offered');
        // The answer the SIP door sends: it must be SDP we ourselves accept, for the codec we chose.
        const address = remote.addressFamily === 6 ? '2001:db8::1' : '192.0.2.1';
        const answer = buildSdp({ address, port: 40000, sessionId: 1, ...answerFor(n) });
        const back = parseRemoteSdp(answer);
        check(back.codecs[0]?.pt === n.codec.pt, `answer's first PT ${back.codecs[0]?.pt} is not the negotiated ${n.codec.pt}`);
        check(negotiate(back, { codecs: c.codecs }).codec.name === n.codec.name, 'answer negotiates to another codec');
        check(back.mediaIndex === remote.mediaIndex, `answer puts audio at m-line ${back.mediaIndex}, offer at ${remote.mediaIndex}`);
        return 'accepted';
      },
      describe: (c: SdpCase) => `prefs ${c.codecs.join(',')}; ${describeText(c.sdp)}`,
    };
  },
};

/**
 * Gives one payload type another number everywhere it appears (m-line, rtpmap, fmtp): a consistent
 * offer that plain text mutation almost never produces, with numbers from the ranges RTP cares about.
 */
export function renumberPayloadType(rng: Rng, sdp: string): string {
  const m = /^m=audio \S+ \S+ ([\d ]+)/m.exec(sdp);
  const pts = m?.[1]?.trim().split(/\s+/) ?? [];
  if (pts.length === 0) return sdp;
  const from = rng.pick(pts);
  // Static (0–34), RTCP-colliding under rtcp-mux (64–95), dynamic (96–127), and just outside.
  const to = String(rng.pick([rng.int(35), rng.range(64, 95), rng.range(96, 127), rng.pick([-1, 128, 255, 65536])]));
  return sdp
    .replace(/^(m=audio \S+ \S+ )([\d ]+)/m, (_, head: string, list: string) => head + list.split(' ').map((p) => (p === from ? to : p)).join(' '))
    .replace(new RegExp(`^a=(rtpmap|fmtp|rtcp-fb):${from}\\b`, 'gm'), `a=$1:${to}`);
}

function checkRemote(r: RemoteMedia): void {
  for (const c of r.codecs) check(Number.isInteger(c.pt) && c.pt >= 0 && c.pt <= 127, `payload type ${c.pt}`);
  check(new Set(r.codecs.map((c) => c.pt)).size === r.codecs.length, 'a payload type listed twice');
  check(Number.isInteger(r.port) && r.port >= 1 && r.port <= 65535, `port ${r.port}`);
  check(r.rtcpPort === undefined || (Number.isInteger(r.rtcpPort) && r.rtcpPort >= 1 && r.rtcpPort <= 65535), `rtcp port ${r.rtcpPort}`);
  check(isIP(r.address) === r.addressFamily, `address ${r.address} is not IPv${r.addressFamily}`);
  check(r.ptime === undefined || (Number.isFinite(r.ptime) && r.ptime > 0), `ptime ${r.ptime}`);
}

const lines = (...l: string[]): string => l.join('\r\n') + '\r\n';

/** Offers as they reach the agent leg: ours (buildSdp), carriers', rtpengine's rewrite of a browser's. */
export function sdpSeeds(): string[] {
  const built = [
    buildSdp({ address: '198.51.100.7', port: 30000, sessionId: 42, ...offerCodecs() }),
    buildSdp({ address: '198.51.100.7', port: 30002, sessionId: 43, ...offerCodecs(['PCMU', 'PCMA']), rtcpMux: true, direction: 'sendonly' }),
    buildSdp({ address: '2001:db8::7', port: 30004, sessionId: 44, ...offerCodecs(['opus']), maxptime: undefined }),
    buildSdp({
      address: '198.51.100.7',
      port: 30006,
      sessionId: 45,
      ...offerCodecs(['PCMA', 'PCMU']),
      rejectedMedia: [{ index: 0, type: 'video', protocol: 'RTP/AVP', formats: '96 97' }],
    }),
  ];
  return [
    ...built,
    lines(
      'v=0',
      'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
      's=-',
      't=0 0',
      'm=audio 30000 RTP/AVP 111 63 9 0 8 13 110 126',
      'c=IN IP4 203.0.113.10',
      'a=rtcp:30001',
      'a=mid:0',
      'a=sendrecv',
      'a=rtcp-mux',
      'a=rtpmap:111 opus/48000/2',
      'a=fmtp:111 minptime=10;useinbandfec=1',
      'a=rtpmap:63 red/48000/2',
      'a=fmtp:63 111/111',
      'a=rtpmap:9 G722/8000',
      'a=rtpmap:0 PCMU/8000',
      'a=rtpmap:8 PCMA/8000',
      'a=rtpmap:13 CN/8000',
      'a=rtpmap:110 telephone-event/48000',
      'a=rtpmap:126 telephone-event/8000',
      'a=ptime:20',
    ),
    [
      'v=0',
      'o=SBC 1684415331 1684415332 IN IP4 198.51.100.20',
      's=SIP Media Capabilities',
      'c=IN IP4 198.51.100.21',
      't=0 0',
      'm=audio 17000 RTP/AVP 8 0 18 101',
      'a=rtpmap:101 telephone-event/8000',
      'a=fmtp:101 0-15',
      'a=sendrecv',
      'a=maxptime:30',
      '',
    ].join('\n'),
    lines('v=0', 'o=pbx 11 12 IN IP4 198.51.100.30', 's=call', 'c=IN IP4 0.0.0.0', 't=0 0', 'a=sendonly', 'm=audio 20000 RTP/AVP 0 101', 'a=rtpmap:101 telephone-event/8000', 'a=ptime:30'),
    lines(
      'v=0',
      'o=- 1 1 IN IP6 2001:db8::1',
      's=-',
      'c=IN IP6 2001:db8::10',
      't=0 0',
      'm=video 5000 RTP/AVP 96',
      'a=rtpmap:96 H264/90000',
      'm=audio 0 RTP/AVP 0',
      'm=audio 4000 RTP/AVP 96 0',
      'a=rtpmap:96 opus/48000',
      'a=rtcp:4001 IN IP6 2001:db8::10',
      'a=recvonly',
    ),
  ];
}
