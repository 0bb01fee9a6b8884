import { parse } from 'sdp-transform';
import { describe, expect, it } from 'vitest';
import { SdpError, type ErrorCode } from '../errors.js';
import { answerFor, buildSdp, MAX_SDP_LENGTH, negotiate, offerCodecs, parseRemoteSdp } from './sdp.js';

const sdp = (...lines: string[]): string => lines.join('\r\n') + '\r\n';

/** A browser's offer after rtpengine made it plain RTP/AVP (ICE/DTLS removed), as it reaches the agent leg. */
const BROWSER_OPUS_OFFER = sdp(
  'v=0',
  'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=msid-semantic: WMS',
  'm=audio 30000 RTP/AVP 111 63 9 0 8 13 110 126',
  'c=IN IP4 203.0.113.10',
  'a=rtcp:30001',
  'a=mid:0',
  'a=sendrecv',
  'a=rtcp-mux',
  'a=rtpmap:111 opus/48000/2',
  'a=rtcp-fb:111 transport-cc',
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
);

/** A carrier SBC's G.711 offer: static payload types without rtpmap, DTMF at 8 kHz, LF line ends. */
const CARRIER_G711_OFFER = [
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
].join('\n');

const G729_ONLY_OFFER = sdp(
  'v=0',
  'o=pbx 11 12 IN IP4 198.51.100.30',
  's=call',
  'c=IN IP4 198.51.100.30',
  't=0 0',
  'm=audio 20000 RTP/AVP 18 101',
  'a=rtpmap:18 G729/8000',
  'a=fmtp:18 annexb=no',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-16',
);

function expectSdpError(fn: () => unknown, code: ErrorCode, reason: RegExp): SdpError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SdpError);
    const e = err as SdpError;
    expect(e.code).toBe(code);
    expect(e.message).toMatch(reason);
    return e;
  }
  throw new Error(`expected SdpError ${code}`);
}

describe('parseRemoteSdp', () => {
  it('reads a browser-style Opus offer', () => {
    const r = parseRemoteSdp(BROWSER_OPUS_OFFER);
    expect(r).toMatchObject({
      address: '203.0.113.10',
      addressFamily: 4,
      port: 30000,
      rtcpPort: 30001,
      protocol: 'RTP/AVP',
      direction: 'sendrecv',
      rtcpMux: true,
      ptime: 20,
      maxptime: undefined,
      mediaIndex: 0,
      otherMedia: [],
      origin: { username: '-', sessionId: '4611731400430051336', sessionVersion: 2 },
    });
    expect(r.codecs.map((c) => [c.pt, c.name, c.clockRate, c.channels])).toEqual([
      [111, 'opus', 48000, 2],
      [63, 'red', 48000, 2],
      [9, 'G722', 8000, 1],
      [0, 'PCMU', 8000, 1],
      [8, 'PCMA', 8000, 1],
      [13, 'CN', 8000, 1],
      [110, 'telephone-event', 48000, 1],
      [126, 'telephone-event', 8000, 1],
    ]);
    expect(r.codecs[0]!.fmtp).toBe('minptime=10;useinbandfec=1');
  });

  it('names static payload types that have no rtpmap (carrier G.711)', () => {
    const r = parseRemoteSdp(CARRIER_G711_OFFER);
    expect(r.address).toBe('198.51.100.21'); // session-level c= applies to the m-line
    expect(r.maxptime).toBe(30);
    expect(r.ptime).toBeUndefined();
    expect(r.rtcpMux).toBe(false);
    expect(r.codecs).toEqual([
      { pt: 8, name: 'PCMA', clockRate: 8000, channels: 1, fmtp: undefined },
      { pt: 0, name: 'PCMU', clockRate: 8000, channels: 1, fmtp: undefined },
      { pt: 18, name: 'G729', clockRate: 8000, channels: 1, fmtp: undefined },
      { pt: 101, name: 'telephone-event', clockRate: 8000, channels: 1, fmtp: '0-15' },
    ]);
  });

  it('prefers the media-level c= over the session-level one, and reads IPv6', () => {
    const r = parseRemoteSdp(
      sdp('v=0', 'o=- 1 1 IN IP6 2001:db8::1', 's=-', 'c=IN IP4 198.51.100.1', 't=0 0', 'm=audio 4000 RTP/AVP 0', 'c=IN IP6 2001:db8::10'),
    );
    expect(r).toMatchObject({ address: '2001:db8::10', addressFamily: 6, port: 4000 });
    const s = parseRemoteSdp(sdp('v=0', 'o=- 1 1 IN IP6 ::1', 's=-', 'c=IN IP6 ::1', 't=0 0', 'm=audio 4000 RTP/AVP 8'));
    expect(s).toMatchObject({ address: '::1', addressFamily: 6 });
  });

  it('takes direction from the media level, else the session level', () => {
    const base = ['v=0', 'o=- 1 1 IN IP4 198.51.100.1', 's=-', 'c=IN IP4 198.51.100.1', 't=0 0'];
    expect(parseRemoteSdp(sdp(...base, 'a=sendonly', 'm=audio 4000 RTP/AVP 0')).direction).toBe('sendonly');
    expect(parseRemoteSdp(sdp(...base, 'a=sendonly', 'm=audio 4000 RTP/AVP 0', 'a=inactive')).direction).toBe('inactive');
    expect(parseRemoteSdp(sdp(...base, 'm=audio 4000 RTP/AVP 0')).direction).toBe('sendrecv');
  });

  it('reads an old-style hold (c=0.0.0.0) as the peer not receiving', () => {
    const hold = (dir: string) =>
      parseRemoteSdp(sdp('v=0', 'o=- 1 2 IN IP4 198.51.100.1', 's=-', 'c=IN IP4 0.0.0.0', 't=0 0', 'm=audio 4000 RTP/AVP 0', `a=${dir}`));
    expect(hold('sendrecv').direction).toBe('sendonly');
    expect(hold('recvonly').direction).toBe('inactive');
    expect(hold('sendonly').direction).toBe('sendonly');
  });

  it('uses the first live plain-RTP audio line and lists the others', () => {
    const r = parseRemoteSdp(
      sdp(
        'v=0',
        'o=- 1 1 IN IP4 198.51.100.1',
        's=-',
        'c=IN IP4 198.51.100.1',
        't=0 0',
        'm=video 5000 RTP/AVP 96',
        'a=rtpmap:96 H264/90000',
        'm=audio 0 RTP/AVP 0',
        'm=audio 4002 RTP/AVP 8',
      ),
    );
    expect(r.mediaIndex).toBe(2);
    expect(r.port).toBe(4002);
    expect(r.codecs.map((c) => c.name)).toEqual(['PCMA']);
    expect(r.otherMedia).toEqual([
      { index: 0, type: 'video', protocol: 'RTP/AVP', formats: '96' },
      { index: 1, type: 'audio', protocol: 'RTP/AVP', formats: '0' },
    ]);
  });

  it('refuses an offer without usable audio (CG_SDP_NO_AUDIO)', () => {
    const head = ['v=0', 'o=- 1 1 IN IP4 198.51.100.1', 's=-', 'c=IN IP4 198.51.100.1', 't=0 0'];
    expectSdpError(() => parseRemoteSdp(sdp(...head, 'm=audio 0 RTP/AVP 0 8')), 'CG_SDP_NO_AUDIO', /port 0/);
    expectSdpError(() => parseRemoteSdp(sdp(...head, 'm=video 5000 RTP/AVP 96')), 'CG_SDP_NO_AUDIO', /no m=audio line \(offered: video\)/);
    expectSdpError(() => parseRemoteSdp(sdp(...head)), 'CG_SDP_NO_AUDIO', /no m= line/);
    const e = expectSdpError(
      () => parseRemoteSdp(sdp(...head, 'm=audio 4000 RTP/SAVP 0', 'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA')),
      'CG_SDP_NO_AUDIO',
      /RTP\/SAVP.*plain RTP\/AVP/,
    );
    expect(e).toMatchObject({ status: 422, sip: [488, 'Not Acceptable Here'] });
  });

  it('refuses a missing or invalid connection (CG_SDP_BAD_CONNECTION)', () => {
    const head = ['v=0', 'o=- 1 1 IN IP4 198.51.100.1', 's=-', 't=0 0'];
    expectSdpError(() => parseRemoteSdp(sdp(...head, 'm=audio 4000 RTP/AVP 0')), 'CG_SDP_BAD_CONNECTION', /no "c=" line/);
    expectSdpError(() => parseRemoteSdp(sdp(...head, 'm=audio 4000 RTP/AVP 0', 'c=IN IP4 sbc.example.com')), 'CG_SDP_BAD_CONNECTION', /not a unicast IP/);
    expectSdpError(() => parseRemoteSdp(sdp(...head, 'm=audio 4000 RTP/AVP 0', 'c=IN IP4 233.252.0.1/127')), 'CG_SDP_BAD_CONNECTION', /233\.252\.0\.1\/127/);
    expectSdpError(() => parseRemoteSdp(sdp(...head, 'm=audio 4000 RTP/AVP 0', 'c=IN IP4 2001:db8::1')), 'CG_SDP_BAD_CONNECTION', /says IP4 but .* IPv6/);
    expectSdpError(() => parseRemoteSdp(sdp(...head, 'm=audio 70000 RTP/AVP 0', 'c=IN IP4 198.51.100.1')), 'CG_SDP_BAD_CONNECTION', /port 70000/);
  });

  it('refuses garbage and broken structure (CG_SDP_MALFORMED)', () => {
    expectSdpError(() => parseRemoteSdp(''), 'CG_SDP_MALFORMED', /empty/);
    expectSdpError(() => parseRemoteSdp('INVITE sip:bob@example.com SIP/2.0\r\nhello world\r\n'), 'CG_SDP_MALFORMED', /v=0/);
    expectSdpError(() => parseRemoteSdp(null as unknown as string), 'CG_SDP_MALFORMED', /empty/);
    expectSdpError(() => parseRemoteSdp('\u0000\u0001\u00ff'.repeat(100)), 'CG_SDP_MALFORMED', /v=0/);
    expectSdpError(() => parseRemoteSdp(sdp('v=0', 's=-', 'c=IN IP4 198.51.100.1', 'm=audio 4000 RTP/AVP 0')), 'CG_SDP_MALFORMED', /o=/);
    expectSdpError(
      () => parseRemoteSdp(sdp('v=0', 'o=- 1 1 IN IP4 198.51.100.1', 's=-', 'c=IN IP4 198.51.100.1', 'm=audio 4000/2 RTP/AVP 0')),
      'CG_SDP_MALFORMED',
      /m-line 0 could not be parsed/,
    );
    expectSdpError(
      () => parseRemoteSdp(sdp('v=0', 'o=- 1 1 IN IP4 198.51.100.1', 's=-', 'c=IN IP4 198.51.100.1', 'm=audio 4000 RTP/AVP 0 300')),
      'CG_SDP_MALFORMED',
      /payload type outside 0\.\.127/,
    );
    expectSdpError(() => parseRemoteSdp('v=0\r\n' + 'a=x\r\n'.repeat(MAX_SDP_LENGTH / 5)), 'CG_SDP_MALFORMED', /more than 65536/);
  });
});

describe('negotiate', () => {
  it('chooses Opus from a browser offer, keeping its PT, with the 48 kHz telephone-event', () => {
    const n = negotiate(parseRemoteSdp(BROWSER_OPUS_OFFER));
    expect(n.codec).toEqual({ name: 'opus', pt: 111, clockRate: 48000, channels: 2, remoteFmtp: 'minptime=10;useinbandfec=1' });
    expect(n.telephoneEvent).toEqual({ pt: 110, clockRate: 48000, fmtp: undefined });
    expect(n.direction).toBe('sendrecv');
    expect(n.rtcpMux).toBe(true);
  });

  it("keeps the offerer's dynamic PT numbers in the answer", () => {
    const offer = sdp(
      'v=0',
      'o=- 7 7 IN IP4 198.51.100.1',
      's=-',
      'c=IN IP4 198.51.100.1',
      't=0 0',
      'm=audio 4000 RTP/AVP 96 97',
      'a=rtpmap:96 OPUS/48000/2',
      'a=rtpmap:97 telephone-event/48000',
    );
    const n = negotiate(parseRemoteSdp(offer));
    expect([n.codec.name, n.codec.pt, n.telephoneEvent?.pt]).toEqual(['opus', 96, 97]);
    const answer = parse(buildSdp({ address: '192.0.2.5', port: 40000, sessionId: 99, ...answerFor(n) }));
    const m = answer.media[0]!;
    expect(String(m.payloads)).toBe('96 97');
    expect(m.rtp).toEqual([
      { payload: 96, codec: 'opus', rate: 48000, encoding: 2 },
      { payload: 97, codec: 'telephone-event', rate: 48000 },
    ]);
  });

  it('picks by our preference among static PTs (carrier G.711), with the 8 kHz telephone-event', () => {
    const remote = parseRemoteSdp(CARRIER_G711_OFFER);
    const n = negotiate(remote);
    expect([n.codec.name, n.codec.pt, n.codec.clockRate]).toEqual(['PCMU', 0, 8000]);
    expect(n.telephoneEvent).toEqual({ pt: 101, clockRate: 8000, fmtp: '0-15' });
    const alaw = negotiate(remote, { codecs: ['PCMA', 'PCMU'] });
    expect([alaw.codec.name, alaw.codec.pt]).toEqual(['PCMA', 8]);
    expect(negotiate(remote, { telephoneEvent: false }).telephoneEvent).toBeUndefined();
  });

  it('falls back to a telephone-event of another rate when none matches the codec', () => {
    const offer = sdp(
      'v=0',
      'o=- 1 1 IN IP4 198.51.100.1',
      's=-',
      'c=IN IP4 198.51.100.1',
      't=0 0',
      'm=audio 4000 RTP/AVP 0 101',
      'a=rtpmap:101 telephone-event/16000',
    );
    expect(negotiate(parseRemoteSdp(offer)).telephoneEvent).toEqual({ pt: 101, clockRate: 16000, fmtp: undefined });
  });

  it('refuses a G.729-only offer, naming what was offered', () => {
    const e = expectSdpError(
      () => negotiate(parseRemoteSdp(G729_ONLY_OFFER)),
      'CG_SDP_NO_COMMON_CODEC',
      /offered G729\/8000 \(PT 18\), telephone-event\/8000 \(PT 101\); callgate accepts opus, PCMU, PCMA/,
    );
    expect(e).toMatchObject({ status: 422, sip: [488, 'Not Acceptable Here'] });
    expect(e.details).toMatchObject({ offered: ['G729/8000 (PT 18)', 'telephone-event/8000 (PT 101)'] });
  });

  it('does not take a codec whose clock rate or channels do not match', () => {
    const offer = sdp(
      'v=0',
      'o=- 1 1 IN IP4 198.51.100.1',
      's=-',
      'c=IN IP4 198.51.100.1',
      't=0 0',
      'm=audio 4000 RTP/AVP 96 97',
      'a=rtpmap:96 opus/16000/2',
      'a=rtpmap:97 PCMU/8000/2',
    );
    expectSdpError(() => negotiate(parseRemoteSdp(offer)), 'CG_SDP_NO_COMMON_CODEC', /opus\/16000\/2 \(PT 96\)/);
  });

  it('mirrors the direction', () => {
    const withDir = (dir: string) =>
      negotiate(parseRemoteSdp(sdp('v=0', 'o=- 1 1 IN IP4 198.51.100.1', 's=-', 'c=IN IP4 198.51.100.1', 't=0 0', 'm=audio 4000 RTP/AVP 0', `a=${dir}`))).direction;
    expect(withDir('sendonly')).toBe('recvonly');
    expect(withDir('recvonly')).toBe('sendonly');
    expect(withDir('inactive')).toBe('inactive');
    expect(withDir('sendrecv')).toBe('sendrecv');
  });
});

describe('offers found by the fuzzer (npm run fuzz -- --target sdp)', () => {
  const head = ['v=0', 'o=- 1 1 IN IP4 198.51.100.1', 's=-', 'c=IN IP4 198.51.100.1', 't=0 0'];

  it('reads an rtpmap whose encoding name is all digits as text, not as a number that breaks negotiate', () => {
    // sdp-transform turns "1" into the number 1; negotiate then called .toLowerCase() on it (TypeError).
    const offer = sdp(...head, 'm=audio 4000 RTP/AVP 0 101', 'a=rtpmap:101 1/8000', 'a=fmtp:101 15');
    const remote = parseRemoteSdp(offer);
    expect(remote.codecs[1]).toEqual({ pt: 101, name: '1', clockRate: 8000, channels: 1, fmtp: '15' });
    expect(negotiate(remote).codec).toMatchObject({ name: 'PCMU', pt: 0 });
    expectSdpError(() => negotiate(parseRemoteSdp(sdp(...head, 'm=audio 4000 RTP/AVP 111', 'a=rtpmap:111 1 110'))), 'CG_SDP_NO_COMMON_CODEC', /offered 1/);
  });

  it('answers an rtcp-mux offer whose chosen PT collides with RTCP (64-95) without rtcp-mux instead of throwing', () => {
    // buildSdp(answerFor(...)) threw RangeError "payload type 86 collides with RTCP under rtcp-mux".
    const offer = sdp(...head, 'm=audio 4000 RTP/AVP 86 72', 'a=rtcp-mux', 'a=rtpmap:86 opus/48000/2', 'a=rtpmap:72 telephone-event/48000');
    const n = negotiate(parseRemoteSdp(offer));
    expect(n).toMatchObject({ codec: { name: 'opus', pt: 86 }, telephoneEvent: { pt: 72 }, rtcpMux: false });
    const answer = parseRemoteSdp(buildSdp({ address: '192.0.2.5', port: 40000, ...answerFor(n) }));
    expect(answer.rtcpMux).toBe(false);
    expect(answer.codecs.map((c) => c.pt)).toEqual([86, 72]);
    // A PT clear of RTCP keeps the peer's rtcp-mux.
    expect(negotiate(parseRemoteSdp(sdp(...head, 'm=audio 4000 RTP/AVP 111', 'a=rtcp-mux', 'a=rtpmap:111 opus/48000/2'))).rtcpMux).toBe(true);
  });
});

describe('buildSdp', () => {
  it('writes a full offer that reads back to the same codecs', () => {
    const text = buildSdp({ address: '192.0.2.5', port: 40000, sessionId: '123456789', sessionVersion: 3, rtcpMux: true, ...offerCodecs() });
    const s = parse(text);
    expect(s.origin).toMatchObject({ username: '-', sessionId: 123456789, sessionVersion: 3, ipVer: 4, address: '192.0.2.5' });
    expect(s.connection).toEqual({ version: 4, ip: '192.0.2.5' });
    const m = s.media[0]!;
    expect(m).toMatchObject({ type: 'audio', port: 40000, protocol: 'RTP/AVP', ptime: 20, maxptime: 20, direction: 'sendrecv', rtcpMux: 'rtcp-mux' });
    expect(String(m.payloads)).toBe('111 0 8 110 101');
    expect(m.fmtp).toEqual([
      { payload: 111, config: 'minptime=10;useinbandfec=1' },
      { payload: 110, config: '0-16' },
      { payload: 101, config: '0-16' },
    ]);
    // Our own offer negotiates with our own parser.
    const n = negotiate(parseRemoteSdp(text));
    expect([n.codec.name, n.codec.pt, n.telephoneEvent?.pt, n.rtcpMux]).toEqual(['opus', 111, 110, true]);
    const g711 = negotiate(parseRemoteSdp(text), { codecs: ['PCMA'] });
    expect([g711.codec.pt, g711.telephoneEvent?.pt]).toEqual([8, 101]);
  });

  it('writes a G.711-only offer without a 48 kHz telephone-event and without rtcp-mux', () => {
    const s = parse(buildSdp({ address: '192.0.2.5', port: 40002, ...offerCodecs(['PCMU', 'PCMA']) }));
    const m = s.media[0]!;
    expect(String(m.payloads)).toBe('0 8 101');
    expect(m.rtcpMux).toBeUndefined();
    expect(m.rtp.map((r) => `${r.payload} ${r.codec}/${r.rate}`)).toEqual(['0 PCMU/8000', '8 PCMA/8000', '101 telephone-event/8000']);
    expect(String(s.origin.sessionId)).toMatch(/^\d+$/);
  });

  it('writes IPv6 origin and connection', () => {
    const s = parse(buildSdp({ address: '2001:db8::5', port: 40000, ...offerCodecs(['PCMU']) }));
    expect(s.connection).toEqual({ version: 6, ip: '2001:db8::5' });
    expect(s.origin.ipVer).toBe(6);
  });

  it('answers a sendonly offer with audio and video: recvonly, video rejected in place', () => {
    const offer = sdp(
      'v=0',
      'o=linphone 1 1 IN IP4 198.51.100.7',
      's=Talk',
      'c=IN IP4 198.51.100.7',
      't=0 0',
      'm=audio 7078 RTP/AVP 96 0 8 101',
      'a=rtpmap:96 opus/48000/2',
      'a=rtpmap:101 telephone-event/8000',
      'a=sendonly',
      'm=video 9078 RTP/AVP 97',
      'a=rtpmap:97 VP8/90000',
    );
    const n = negotiate(parseRemoteSdp(offer));
    // No telephone-event at 48 kHz offered: the 8 kHz one is taken.
    expect(n.telephoneEvent?.pt).toBe(101);
    const text = buildSdp({ address: '192.0.2.5', port: 40004, sessionId: 5, ...answerFor(n) });
    const s = parse(text);
    expect(s.media.map((m) => [m.type, m.port])).toEqual([
      ['audio', 40004],
      ['video', 0],
    ]);
    expect(s.media[0]!.direction).toBe('recvonly');
    expect(String(s.media[0]!.payloads)).toBe('96 101');
    expect(String(s.media[1]!.payloads)).toBe('97');
    // The answer is itself valid input.
    expect(parseRemoteSdp(text).direction).toBe('recvonly');
  });

  it('puts the audio in the slot the offer had it in', () => {
    const offer = sdp('v=0', 'o=- 1 1 IN IP4 198.51.100.1', 's=-', 'c=IN IP4 198.51.100.1', 't=0 0', 'm=video 5000 RTP/AVP 96', 'm=audio 4000 RTP/AVP 0');
    const s = parse(buildSdp({ address: '192.0.2.5', port: 40006, ...answerFor(negotiate(parseRemoteSdp(offer))) }));
    expect(s.media.map((m) => [m.type, m.port])).toEqual([
      ['video', 0],
      ['audio', 40006],
    ]);
  });

  it('refuses bad local parameters', () => {
    const codecs = offerCodecs(['PCMU']);
    expectSdpError(() => buildSdp({ address: 'localhost', port: 4000, ...codecs }), 'CG_SDP_BAD_CONNECTION', /localhost/);
    expectSdpError(() => buildSdp({ address: '192.0.2.5', port: 0, ...codecs }), 'CG_SDP_BAD_CONNECTION', /port 0/);
    expect(() => buildSdp({ address: '192.0.2.5', port: 4000, codecs: [] })).toThrow(RangeError);
    expect(() => buildSdp({ address: '192.0.2.5', port: 4000, rtcpMux: true, codecs: [{ pt: 72, name: 'PCMU', clockRate: 8000 }] })).toThrow(
      /collides with RTCP/,
    );
    expect(() =>
      buildSdp({ address: '192.0.2.5', port: 4000, codecs: [{ pt: 0, name: 'PCMU', clockRate: 8000 }], telephoneEvents: [{ pt: 0, clockRate: 8000 }] }),
    ).toThrow(/duplicate/);
  });
});
