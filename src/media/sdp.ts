import { randomInt } from 'node:crypto';
import { isIP } from 'node:net';
import { parse, parsePayloads, write, type MediaDescription, type SessionDescription } from 'sdp-transform';
import { SdpError } from '../errors.js';
import type { CodecName } from './codecs/AudioCodec.js';
import { stripUndefined } from '../util/options.js';
import { FRAME_MS } from './types.js';

/**
 * SDP for the agent leg (RFC 4566, offer/answer RFC 3264, RTP/AVP RFC 3551). Text is parsed and
 * written by `sdp-transform` only; this module decides what the fields mean.
 */

export type SdpDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

/** One format of an m-line, as offered. */
export interface SdpCodec {
  readonly pt: number;
  /** As the offer spells it (rtpmap), or the RFC 3551 name of a static PT with no rtpmap. */
  readonly name: string;
  readonly clockRate: number;
  readonly channels: number;
  /** The raw a=fmtp parameters, when there are any. */
  readonly fmtp: string | undefined;
}

/** An m-line other than the one we use: an answer must repeat it with port 0 (RFC 3264 §6). */
export interface SdpMediaLine {
  /** Position among the offer's m-lines. */
  readonly index: number;
  readonly type: string;
  readonly protocol: string;
  /** The format list as written (e.g. "96 97"). */
  readonly formats: string;
}

export interface RemoteMedia {
  /** Where to send RTP: the media-level c= address, else the session-level one. */
  readonly address: string;
  readonly addressFamily: 4 | 6;
  readonly port: number;
  /** From a=rtcp, when given (RFC 3605); otherwise RTCP goes to port + 1, or to `port` with rtcp-mux. */
  readonly rtcpPort: number | undefined;
  readonly protocol: string;
  /**
   * The peer's direction (media level over session level). An old-style hold (c= 0.0.0.0, RFC 3264 §8.4)
   * is read as the peer not wanting to receive: sendrecv becomes sendonly, recvonly becomes inactive.
   */
  readonly direction: SdpDirection;
  readonly rtcpMux: boolean;
  readonly ptime: number | undefined;
  readonly maxptime: number | undefined;
  /** Every format of the audio m-line in the offered order, telephone-event and CN included. */
  readonly codecs: readonly SdpCodec[];
  readonly origin: { readonly username: string; readonly sessionId: string; readonly sessionVersion: number };
  /** Position of the audio m-line used, among all m-lines. */
  readonly mediaIndex: number;
  /** All other m-lines (video, a second audio…), for the answer to reject in place. */
  readonly otherMedia: readonly SdpMediaLine[];
}

/** Largest SDP accepted: a real audio offer is 0.5–3 KiB; parsing is per line and must stay cheap. */
export const MAX_SDP_LENGTH = 64 * 1024;

/** RFC 3551 §6 static audio payload types, used when an offer lists one without an rtpmap. */
const STATIC_PAYLOAD_TYPES: ReadonlyMap<number, { name: string; clockRate: number; channels: number }> = new Map([
  [0, { name: 'PCMU', clockRate: 8000, channels: 1 }],
  [3, { name: 'GSM', clockRate: 8000, channels: 1 }],
  [4, { name: 'G723', clockRate: 8000, channels: 1 }],
  [5, { name: 'DVI4', clockRate: 8000, channels: 1 }],
  [6, { name: 'DVI4', clockRate: 16000, channels: 1 }],
  [7, { name: 'LPC', clockRate: 8000, channels: 1 }],
  [8, { name: 'PCMA', clockRate: 8000, channels: 1 }],
  [9, { name: 'G722', clockRate: 8000, channels: 1 }],
  [10, { name: 'L16', clockRate: 44100, channels: 2 }],
  [11, { name: 'L16', clockRate: 44100, channels: 1 }],
  [12, { name: 'QCELP', clockRate: 8000, channels: 1 }],
  [13, { name: 'CN', clockRate: 8000, channels: 1 }],
  [14, { name: 'MPA', clockRate: 90000, channels: 1 }],
  [15, { name: 'G728', clockRate: 8000, channels: 1 }],
  [16, { name: 'DVI4', clockRate: 11025, channels: 1 }],
  [17, { name: 'DVI4', clockRate: 22050, channels: 1 }],
  [18, { name: 'G729', clockRate: 8000, channels: 1 }],
]);

/** How callgate describes the codecs it implements. Opus is always opus/48000/2 in SDP (RFC 7587 §7). */
const CODEC_SPECS: Readonly<Record<CodecName, { clockRate: number; channels: number; fmtp?: string }>> = {
  opus: { clockRate: 48000, channels: 2, fmtp: 'minptime=10;useinbandfec=1' },
  PCMU: { clockRate: 8000, channels: 1 },
  PCMA: { clockRate: 8000, channels: 1 },
};

const TELEPHONE_EVENT = 'telephone-event';
/** DTMF digits 0-9, *, #, A-D and flash (RFC 4733 §3.2). */
const TELEPHONE_EVENT_FMTP = '0-16';
const PLAIN_RTP_PROTOCOLS = new Set(['RTP/AVP', 'RTP/AVPF']);

// ── Parsing ────────────────────────────────────────────────────────────────────────────────────

/**
 * Reads the peer's audio from an offer or answer: the first audio m-line with a non-zero port over
 * plain RTP. Throws SdpError CG_SDP_MALFORMED / CG_SDP_NO_AUDIO / CG_SDP_BAD_CONNECTION with the reason.
 */
export function parseRemoteSdp(sdp: string): RemoteMedia {
  if (typeof sdp !== 'string' || sdp.trim() === '') throw new SdpError('CG_SDP_MALFORMED', 'empty SDP');
  if (sdp.length > MAX_SDP_LENGTH) {
    throw new SdpError('CG_SDP_MALFORMED', `SDP is ${sdp.length} characters, more than ${MAX_SDP_LENGTH}`);
  }
  let session: SessionDescription;
  try {
    session = parse(sdp);
  } catch (err) {
    throw new SdpError('CG_SDP_MALFORMED', 'sdp-transform could not parse it', { cause: err });
  }
  if (session.version !== 0) throw new SdpError('CG_SDP_MALFORMED', 'no "v=0" line');
  const origin = session.origin as Partial<SessionDescription['origin']> | undefined;
  if (!origin || origin.sessionId === undefined || origin.sessionVersion === undefined) {
    throw new SdpError('CG_SDP_MALFORMED', 'no valid "o=" line');
  }

  const media = session.media ?? [];
  media.forEach((m, i) => {
    // sdp-transform leaves the fields out when an m= line does not match its grammar.
    if (typeof m.type !== 'string' || typeof m.port !== 'number' || typeof m.protocol !== 'string') {
      throw new SdpError('CG_SDP_MALFORMED', `m-line ${i} could not be parsed`);
    }
  });

  const audio = media.map((m, index) => ({ m, index })).filter(({ m }) => m.type === 'audio');
  if (audio.length === 0) {
    const types = media.map((m) => m.type);
    throw new SdpError('CG_SDP_NO_AUDIO', types.length ? `no m=audio line (offered: ${types.join(', ')})` : 'no m= line at all');
  }
  const live = audio.filter(({ m }) => m.port !== 0);
  if (live.length === 0) throw new SdpError('CG_SDP_NO_AUDIO', 'the audio m-line has port 0 (stream disabled)');
  const chosen = live.find(({ m }) => PLAIN_RTP_PROTOCOLS.has(m.protocol.toUpperCase()));
  if (!chosen) {
    const protos = [...new Set(live.map(({ m }) => m.protocol))].join(', ');
    throw new SdpError('CG_SDP_NO_AUDIO', `audio is offered over ${protos}; the agent leg takes plain RTP/AVP only`);
  }
  const { m, index: mediaIndex } = chosen;

  if (!Number.isInteger(m.port) || m.port < 1 || m.port > 65535) {
    throw new SdpError('CG_SDP_BAD_CONNECTION', `audio port ${m.port} is out of range`);
  }
  const connection = m.connection ?? session.connection;
  if (!connection) throw new SdpError('CG_SDP_BAD_CONNECTION', 'no "c=" line at session level or in the audio m-line');
  const family = isIP(connection.ip);
  if (family === 0) {
    throw new SdpError('CG_SDP_BAD_CONNECTION', `c= address "${connection.ip}" is not a unicast IP address (host names are not resolved)`);
  }
  if (family !== connection.version) {
    throw new SdpError('CG_SDP_BAD_CONNECTION', `c= says IP${connection.version} but "${connection.ip}" is an IPv${family} address`);
  }
  const rtcpPort = m.rtcp?.port;
  if (rtcpPort !== undefined && (!Number.isInteger(rtcpPort) || rtcpPort < 1 || rtcpPort > 65535)) {
    throw new SdpError('CG_SDP_BAD_CONNECTION', `a=rtcp port ${rtcpPort} is out of range`);
  }

  let direction: SdpDirection = m.direction ?? session.direction ?? 'sendrecv';
  // RFC 3264 §8.4: an unspecified address means "do not send to me" (pre-RFC 3264 hold).
  if (connection.ip === '0.0.0.0' || connection.ip === '::') {
    direction = direction === 'sendrecv' ? 'sendonly' : direction === 'recvonly' ? 'inactive' : direction;
  }
  // ptime is a media attribute, but some endpoints put it at session level; sdp-transform keeps it there.
  const sessionAttrs = session as SessionDescription & { ptime?: number; maxptime?: number };

  return {
    address: connection.ip,
    addressFamily: family === 6 ? 6 : 4,
    port: m.port,
    rtcpPort,
    protocol: m.protocol,
    direction,
    rtcpMux: m.rtcpMux !== undefined,
    ptime: positiveOrUndefined(m.ptime ?? sessionAttrs.ptime),
    maxptime: positiveOrUndefined(m.maxptime ?? sessionAttrs.maxptime),
    codecs: readFormats(m, mediaIndex),
    origin: { username: String(origin.username ?? '-'), sessionId: String(origin.sessionId), sessionVersion: Number(origin.sessionVersion) },
    mediaIndex,
    otherMedia: media
      .map((o, index) => ({ index, type: o.type, protocol: o.protocol, formats: String(o.payloads ?? '') }))
      .filter((o) => o.index !== mediaIndex),
  };
}

function readFormats(m: MediaDescription, index: number): SdpCodec[] {
  // sdp-transform gives a number when the m-line has a single format.
  const list = String(m.payloads ?? '').trim();
  if (list === '') throw new SdpError('CG_SDP_MALFORMED', `audio m-line ${index} lists no formats`);
  const pts = parsePayloads(list);
  const codecs: SdpCodec[] = [];
  const seen = new Set<number>();
  for (const pt of pts) {
    if (!Number.isInteger(pt) || pt < 0 || pt > 127) {
      throw new SdpError('CG_SDP_MALFORMED', `audio m-line ${index} has a payload type outside 0..127 in "${list}"`);
    }
    if (seen.has(pt)) continue;
    seen.add(pt);
    const rtpmap = m.rtp.find((r) => r.payload === pt);
    const config = m.fmtp.find((f) => f.payload === pt)?.config;
    const fmtp = config === undefined ? undefined : String(config);
    if (rtpmap) {
      // sdp-transform turns digit-only fields into numbers and leaves other text as it is, whatever its
      // typings say: "a=rtpmap:96 123/x/y" has a numeric name, a text rate and text channels.
      const clockRate = Number(rtpmap.rate ?? 0);
      const channels = Number(rtpmap.encoding ?? 1);
      codecs.push({
        pt,
        name: String(rtpmap.codec),
        clockRate: Number.isInteger(clockRate) ? clockRate : 0,
        channels: Number.isInteger(channels) ? channels : 0,
        fmtp,
      });
      continue;
    }
    const known = STATIC_PAYLOAD_TYPES.get(pt);
    // A dynamic PT without rtpmap cannot be identified (RFC 4566 §6 requires the rtpmap): not offered.
    if (known) codecs.push({ pt, ...known, fmtp });
  }
  return codecs;
}

function positiveOrUndefined(n: number | undefined): number | undefined {
  return n !== undefined && Number.isFinite(n) && n > 0 ? n : undefined;
}

// ── Negotiation ────────────────────────────────────────────────────────────────────────────────

export interface NegotiateOptions {
  /** Codecs callgate may use, best first: our preference decides, not the offer's order. */
  readonly codecs: readonly CodecName[];
  /** Whether to accept RFC 4733 telephone-events (DTMF) when offered. */
  readonly telephoneEvent: boolean;
}

export const defaultNegotiateOptions = {
  /** Opus (wideband, FEC) first; then G.711 µ-law and A-law for carriers. */
  codecs: ['opus', 'PCMU', 'PCMA'],
  /** true: DTMF is how callers navigate menus and are transferred. */
  telephoneEvent: true,
} as const satisfies NegotiateOptions;

export interface NegotiatedCodec {
  readonly name: CodecName;
  /** The offerer's PT: the answer must use the same number for the same codec. */
  readonly pt: number;
  readonly clockRate: number;
  readonly channels: number;
  /** The peer's fmtp for it (e.g. Opus `useinbandfec=1`, `maxaveragebitrate`), for configuring our encoder. */
  readonly remoteFmtp: string | undefined;
}

export interface NegotiatedTelephoneEvent {
  readonly pt: number;
  readonly clockRate: number;
  readonly fmtp: string | undefined;
}

export interface NegotiatedMedia {
  readonly codec: NegotiatedCodec;
  readonly telephoneEvent: NegotiatedTelephoneEvent | undefined;
  /** Our direction for the answer: the peer's, mirrored. */
  readonly direction: SdpDirection;
  /** rtcp-mux for the answer: as offered, unless a chosen payload type is one RTCP would collide with (64–95). */
  readonly rtcpMux: boolean;
  readonly remote: RemoteMedia;
}

const MIRRORED: Readonly<Record<SdpDirection, SdpDirection>> = {
  sendrecv: 'sendrecv',
  sendonly: 'recvonly',
  recvonly: 'sendonly',
  inactive: 'inactive',
};

/**
 * Chooses the codec (our preference order among those offered), the telephone-event PT of the same
 * clock rate when there is one, and the answer's direction and rtcp-mux. Throws SdpError
 * CG_SDP_NO_COMMON_CODEC naming what was offered.
 */
export function negotiate(remote: RemoteMedia, preferences: Partial<NegotiateOptions> = {}): NegotiatedMedia {
  const opts: NegotiateOptions = { ...defaultNegotiateOptions, ...preferences };
  let codec: NegotiatedCodec | undefined;
  for (const name of opts.codecs) {
    const offered = remote.codecs.find((c) => matchesCodec(c, name));
    if (offered) {
      codec = { name, pt: offered.pt, clockRate: offered.clockRate, channels: offered.channels, remoteFmtp: offered.fmtp };
      break;
    }
  }
  if (!codec) {
    const offered = remote.codecs.map(describeCodec).join(', ') || 'nothing identifiable';
    throw new SdpError('CG_SDP_NO_COMMON_CODEC', `offered ${offered}; callgate accepts ${opts.codecs.join(', ')}`, {
      details: { offered: remote.codecs.map(describeCodec), accepted: [...opts.codecs] },
    });
  }

  let telephoneEvent: NegotiatedTelephoneEvent | undefined;
  if (opts.telephoneEvent) {
    const events = remote.codecs.filter((c) => c.name.toLowerCase() === TELEPHONE_EVENT && c.clockRate > 0);
    // Same clock as the codec keeps one RTP timestamp base for audio and DTMF (RFC 4733 §2.1).
    const te = events.find((c) => c.clockRate === codec.clockRate) ?? events[0];
    if (te) telephoneEvent = { pt: te.pt, clockRate: te.clockRate, fmtp: te.fmtp };
  }

  // RFC 5761 §4: under rtcp-mux, RTP payload types 64–95 read as RTCP. A peer that muxes one anyway gets
  // an answer without a=rtcp-mux (§5.1.1 lets the answerer decline), not one buildSdp refuses to write.
  const collides = [codec.pt, ...(telephoneEvent ? [telephoneEvent.pt] : [])].some((pt) => pt >= 64 && pt <= 95);
  return { codec, telephoneEvent, direction: MIRRORED[remote.direction], rtcpMux: remote.rtcpMux && !collides, remote };
}

function matchesCodec(c: SdpCodec, name: CodecName): boolean {
  if (c.name.toLowerCase() !== name.toLowerCase()) return false; // subtype names are case-insensitive (RFC 4855)
  const spec = CODEC_SPECS[name];
  if (c.clockRate !== spec.clockRate) return false;
  // RFC 7587 says opus/48000/2, but "opus/48000" (one channel) is seen in the wild and decodes the same.
  return name === 'opus' ? c.channels === 1 || c.channels === 2 : c.channels === 1;
}

function describeCodec(c: SdpCodec): string {
  return `${c.name}/${c.clockRate}${c.channels !== 1 ? `/${c.channels}` : ''} (PT ${c.pt})`;
}

// ── Writing ────────────────────────────────────────────────────────────────────────────────────

export interface SdpCodecSpec {
  readonly pt: number;
  readonly name: string;
  readonly clockRate: number;
  /** Written only when not 1. */
  readonly channels?: number;
  readonly fmtp?: string;
}

export interface SdpTelephoneEventSpec {
  readonly pt: number;
  readonly clockRate: number;
  /** Default "0-16". */
  readonly fmtp?: string;
}

export interface BuildSdpOptions {
  /** Our RTP address (c=), IPv4 or IPv6. */
  readonly address: string;
  readonly port: number;
  /** o= session id: keep it for the whole call (random when omitted). */
  readonly sessionId: string | number | undefined;
  /** o= version: increment it for every new offer or answer in the same call (RFC 3264 §8). */
  readonly sessionVersion: number;
  readonly username: string;
  readonly sessionName: string;
  /** In preference order; an answer lists just the chosen one. */
  readonly codecs: readonly SdpCodecSpec[];
  readonly telephoneEvents: readonly SdpTelephoneEventSpec[];
  readonly ptime: number;
  /** Longest packet we accept; undefined leaves a=maxptime out. */
  readonly maxptime: number | undefined;
  readonly direction: SdpDirection;
  readonly rtcpMux: boolean;
  /** The offer's other m-lines, written back with port 0 at their positions (answers only). */
  readonly rejectedMedia: readonly SdpMediaLine[];
}

export const defaultBuildSdpOptions = {
  /** Random per call. */
  sessionId: undefined,
  /** 1 for the first offer/answer. */
  sessionVersion: 1,
  /** "-": no user name (RFC 4566 §5.2). */
  username: '-',
  sessionName: 'callgate',
  /** No DTMF unless given. */
  telephoneEvents: [],
  /** 20 ms: every leg moves audio in 20 ms frames. */
  ptime: FRAME_MS,
  /** 20 ms: the receive path is built around 20 ms frames. */
  maxptime: FRAME_MS,
  direction: 'sendrecv',
  rtcpMux: false,
  rejectedMedia: [],
} as const satisfies Partial<BuildSdpOptions>;

export type BuildSdpInput = Pick<BuildSdpOptions, 'address' | 'port' | 'codecs'> & Partial<BuildSdpOptions>;

/**
 * Writes an offer or answer with one m=audio over RTP/AVP (plus any rejected m-lines of the offer).
 * Throws SdpError CG_SDP_BAD_CONNECTION for a bad address/port and RangeError for a bad codec list:
 * both are our own configuration, not a peer's input.
 */
export function buildSdp(input: BuildSdpInput): string {
  const o: BuildSdpOptions = { ...defaultBuildSdpOptions, ...stripUndefined(input) } as BuildSdpOptions;
  const family = isIP(o.address);
  if (family === 0) throw new SdpError('CG_SDP_BAD_CONNECTION', `local address "${o.address}" is not an IP address`);
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) {
    throw new SdpError('CG_SDP_BAD_CONNECTION', `local port ${o.port} is out of range`);
  }
  if (o.codecs.length === 0) throw new RangeError('buildSdp: at least one codec is needed');
  const pts = [...o.codecs.map((c) => c.pt), ...o.telephoneEvents.map((t) => t.pt)];
  for (const pt of pts) {
    if (!Number.isInteger(pt) || pt < 0 || pt > 127) throw new RangeError(`buildSdp: payload type ${pt} is outside 0..127`);
    // With rtcp-mux, RTCP packet types 200–204 would read as RTP PTs 72–76 (RFC 5761 §4).
    if (o.rtcpMux && pt >= 64 && pt <= 95) throw new RangeError(`buildSdp: payload type ${pt} collides with RTCP under rtcp-mux`);
  }
  if (new Set(pts).size !== pts.length) throw new RangeError(`buildSdp: duplicate payload types in ${pts.join(' ')}`);

  const ipVer = family;
  const audio: MediaDescription = {
    type: 'audio',
    port: o.port,
    protocol: 'RTP/AVP',
    payloads: pts.join(' '),
    rtp: [
      ...o.codecs.map((c) => ({ payload: c.pt, codec: c.name, rate: c.clockRate, ...(c.channels && c.channels !== 1 ? { encoding: c.channels } : {}) })),
      ...o.telephoneEvents.map((t) => ({ payload: t.pt, codec: TELEPHONE_EVENT, rate: t.clockRate })),
    ],
    fmtp: [
      ...o.codecs.flatMap((c) => (c.fmtp ? [{ payload: c.pt, config: c.fmtp }] : [])),
      ...o.telephoneEvents.map((t) => ({ payload: t.pt, config: t.fmtp ?? TELEPHONE_EVENT_FMTP })),
    ],
    ptime: o.ptime,
    ...(o.maxptime !== undefined ? { maxptime: o.maxptime } : {}),
    direction: o.direction,
    ...(o.rtcpMux ? { rtcpMux: 'rtcp-mux' as const } : {}),
  };

  // An answer keeps the offer's m-line order (RFC 3264 §6): the audio goes in the one slot not rejected.
  const rejected = [...o.rejectedMedia].sort((a, b) => a.index - b.index);
  const media: MediaDescription[] = rejected.map((r) => ({
    type: r.type,
    port: 0,
    protocol: r.protocol,
    payloads: r.formats || '0',
    rtp: [],
    fmtp: [],
  }));
  media.splice(Math.min(firstGap(rejected), media.length), 0, audio);

  const session: SessionDescription = {
    version: 0,
    origin: {
      username: o.username,
      sessionId: String(o.sessionId ?? randomInt(1, 2 ** 47)),
      sessionVersion: o.sessionVersion,
      netType: 'IN',
      ipVer,
      address: o.address,
    },
    name: o.sessionName,
    connection: { version: ipVer, ip: o.address },
    timing: { start: 0, stop: 0 },
    media,
  };
  return write(session);
}

/** Index of the first position not taken by a rejected m-line: where the audio goes. */
function firstGap(rejected: readonly SdpMediaLine[]): number {
  const taken = new Set(rejected.map((r) => r.index));
  let i = 0;
  while (taken.has(i)) i++;
  return i;
}

/** Payload types callgate offers (dynamic ones from the 96–127 range, clear of RTCP under rtcp-mux). */
export const OFFER_PAYLOAD_TYPES = {
  opus: 111,
  PCMU: 0,
  PCMA: 8,
  telephoneEvent48000: 110,
  telephoneEvent8000: 101,
} as const;

/**
 * The codec part of an offer for `names` in that order, with telephone-event at each clock rate used.
 * Spread it into `buildSdp({ address, port, ...offerCodecs() })`.
 */
export function offerCodecs(
  names: readonly CodecName[] = defaultNegotiateOptions.codecs,
): Pick<BuildSdpOptions, 'codecs' | 'telephoneEvents'> {
  const codecs = names.map((name) => ({ pt: OFFER_PAYLOAD_TYPES[name], name, ...CODEC_SPECS[name] }));
  const telephoneEvents: SdpTelephoneEventSpec[] = [];
  if (codecs.some((c) => c.clockRate === 48000)) telephoneEvents.push({ pt: OFFER_PAYLOAD_TYPES.telephoneEvent48000, clockRate: 48000 });
  if (codecs.some((c) => c.clockRate === 8000)) telephoneEvents.push({ pt: OFFER_PAYLOAD_TYPES.telephoneEvent8000, clockRate: 8000 });
  return { codecs, telephoneEvents };
}

/**
 * The negotiated part of an answer: the chosen codec under the offerer's PT, its telephone-event,
 * the mirrored direction, rtcp-mux if offered, and the offer's other m-lines rejected.
 * Spread it into `buildSdp({ address, port, sessionId, ...answerFor(negotiated) })`.
 */
export function answerFor(
  n: NegotiatedMedia,
): Pick<BuildSdpOptions, 'codecs' | 'telephoneEvents' | 'direction' | 'rtcpMux' | 'rejectedMedia'> {
  const spec = CODEC_SPECS[n.codec.name];
  return {
    codecs: [{ pt: n.codec.pt, name: n.codec.name, clockRate: spec.clockRate, channels: spec.channels, ...(spec.fmtp ? { fmtp: spec.fmtp } : {}) }],
    telephoneEvents: n.telephoneEvent
      ? [{ pt: n.telephoneEvent.pt, clockRate: n.telephoneEvent.clockRate, fmtp: n.telephoneEvent.fmtp ?? TELEPHONE_EVENT_FMTP }]
      : [],
    direction: n.direction,
    rtcpMux: n.rtcpMux,
    rejectedMedia: n.remote.otherMedia,
  };
}

/**
 * What a WebRTC media section must carry (RFC 8829/8842) that this one lacks: the UDP/TLS/RTP/SAVPF
 * profile, a DTLS fingerprint and ICE credentials (each at media or session level). Empty when it is
 * WebRTC. One rule for both places that need it: the web door's offer check and rtpengine's answers.
 */
export function missingWebRtc(session: SessionDescription, m: MediaDescription | undefined): string[] {
  return [
    // String(): an m-line protocol of digits comes back from sdp-transform as a number.
    String(m?.protocol ?? '').includes('SAVPF') ? undefined : 'UDP/TLS/RTP/SAVPF',
    (m?.fingerprint ?? session.fingerprint) ? undefined : 'a=fingerprint',
    (m?.iceUfrag ?? session.iceUfrag) && (m?.icePwd ?? session.icePwd) ? undefined : 'a=ice-ufrag/ice-pwd',
  ].filter((x): x is string => x !== undefined);
}
