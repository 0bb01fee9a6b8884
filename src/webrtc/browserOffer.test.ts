import { describe, expect, it } from 'vitest';
import { CallgateError, type ErrorCode } from '../errors.js';
import { parseBrowserOffer } from './browserOffer.js';

const offer = (...audio: string[]): string =>
  [
    'v=0',
    'o=- 1 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4C:2A:CA:FB:0E:F4:FD:47:DD:5B:5A:2E',
    'a=ice-ufrag:Zk3o',
    'a=ice-pwd:3QnMH0w6kPeRyq7yAyWqjq4A',
    ...audio,
    '',
  ].join('\r\n');

function refusal(sdp: string): ErrorCode {
  try {
    parseBrowserOffer(sdp);
  } catch (err) {
    expect(err).toBeInstanceOf(CallgateError);
    return (err as CallgateError).code;
  }
  throw new Error('expected the offer to be refused');
}

describe('parseBrowserOffer', () => {
  it('takes a WebRTC offer with Opus, its mid and a data channel', () => {
    const sdp = offer(
      'm=audio 9 UDP/TLS/RTP/SAVPF 111 0',
      'c=IN IP4 0.0.0.0',
      'a=mid:0',
      'a=rtpmap:111 opus/48000/2',
      'a=rtpmap:0 PCMU/8000',
      'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
      'a=mid:1',
    );
    expect(parseBrowserOffer(sdp)).toEqual({ audioMid: '0', opusPayloadType: 111, dataChannel: true });
  });

  // Inputs the fuzzer found (npm run fuzz -- --target browser-offer): each one was accepted with a value
  // no RTP header or answer can carry, or threw a TypeError instead of a CG_SDP_* refusal.
  it('refuses an Opus payload type outside 0..127 (the rtpmap grammar takes any digits)', () => {
    expect(refusal(offer('m=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=mid:0', 'a=rtpmap:4294967295 opus/48000/2'))).toBe('CG_SDP_MALFORMED');
    expect(refusal(offer('m=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=mid:0', 'a=rtpmap:9007199254740991 opus/48000/2'))).toBe('CG_SDP_MALFORMED');
  });

  it('refuses an empty a=mid', () => {
    expect(refusal(offer('m=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=mid:', 'a=rtpmap:111 opus/48000/2'))).toBe('CG_SDP_NOT_WEBRTC');
  });

  it('refuses, with a typed error, fields sdp-transform hands back as numbers', () => {
    // "m=audio 9 1 111": the protocol is the number 1 (missingWebRtc called .includes on it).
    expect(refusal(offer('m=audio 9 1 111', 'a=mid:0', 'a=rtpmap:111 opus/48000/2'))).toBe('CG_SDP_NOT_WEBRTC');
    // "a=rtpmap:111 1/48000": the encoding name is the number 1 (.toLowerCase on it).
    expect(refusal(offer('m=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=mid:0', 'a=rtpmap:111 1/48000'))).toBe('CG_SDP_NO_COMMON_CODEC');
    // "m=application 9 1 x": a data channel line with a numeric protocol is simply not a data channel.
    const sdp = offer('m=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=mid:0', 'a=rtpmap:111 opus/48000/2', 'm=application 9 1 webrtc-datachannel', 'a=mid:1');
    expect(parseBrowserOffer(sdp).dataChannel).toBe(false);
  });
});
