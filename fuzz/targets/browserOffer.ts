import { parseBrowserOffer } from '../../src/webrtc/browserOffer.js';
import { check, describeText, type FuzzTarget } from '../engine.js';
import { mutateText, randomText, seedOrMutant, type Rng } from '../mutate.js';
import { renumberPayloadType, SDP_DICTIONARY } from './sdp.js';

/**
 * parseBrowserOffer (src/webrtc/browserOffer.ts): the web door's check of a browser's WebRTC offer
 * before any resource is spent on it. Only CG_SDP_* errors may come out; an accepted offer's Opus
 * payload type must be one RTP can carry (0–127) and its mid a real token.
 */
export const browserOfferTarget: FuzzTarget<string> = {
  name: 'browser-offer',
  about: 'parseBrowserOffer on mutated Chrome, Firefox and libdatachannel offers',
  async open() {
    const seeds = [CHROME_OFFER, FIREFOX_OFFER, LIBDATACHANNEL_OFFER];
    const dictionary = [...SDP_DICTIONARY, 'a=rtpmap:111 opus/48000/2', 'a=group:BUNDLE 0 1', 'a=sctp-port:5000'];
    return {
      generate: (rng: Rng) =>
        seedOrMutant(
          rng,
          seeds,
          (seed) => mutateText(rng, rng.bool(0.3) ? renumberPayloadType(rng, seed) : seed, { others: seeds, dictionary, maxLength: 40 * 1024 }),
          () => 'v=0\r\n' + randomText(rng, rng.length(4000), dictionary),
        ),
      run(sdp: string) {
        const offer = parseBrowserOffer(sdp);
        check(Number.isInteger(offer.opusPayloadType) && offer.opusPayloadType >= 0 && offer.opusPayloadType <= 127, `Opus payload type ${String(offer.opusPayloadType)}`);
        check(typeof offer.audioMid === 'string' && offer.audioMid.length > 0 && !/\s/.test(offer.audioMid), `mid ${JSON.stringify(offer.audioMid)}`);
        return 'accepted';
      },
      describe: (sdp: string) => describeText(sdp),
    };
  },
};

const crlf = (...l: string[]): string => l.join('\r\n') + '\r\n';

export const CHROME_OFFER = crlf(
  'v=0',
  'o=- 3140197467386618342 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1',
  'a=extmap-allow-mixed',
  'a=msid-semantic: WMS 5c1d0c2a-7f0e-4a3c-9d36-1a1c0f6f2b11',
  'm=audio 54321 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126',
  'c=IN IP4 192.0.2.10',
  'a=rtcp:9 IN IP4 0.0.0.0',
  'a=candidate:842163049 1 udp 2122260223 192.0.2.10 54321 typ host generation 0 network-id 1',
  'a=candidate:1467250027 1 tcp 1518280447 192.0.2.10 9 typ host tcptype active generation 0 network-id 1',
  'a=ice-ufrag:Zk3o',
  'a=ice-pwd:3QnMH0w6kPeRyq7yAyWqjq4A',
  'a=ice-options:trickle',
  'a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4C:2A:CA:FB:0E:F4:FD:47:DD:5B:5A:2E',
  'a=setup:actpass',
  'a=mid:0',
  'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
  'a=sendrecv',
  'a=msid:5c1d0c2a-7f0e-4a3c-9d36-1a1c0f6f2b11 0b0f3a52-6a4e-4b57-9f0a-0f1d6a0a3c22',
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
  'a=ssrc:1001 cname:Vb6a2yQ6bq6S1dYQ',
  'm=application 54321 UDP/DTLS/SCTP webrtc-datachannel',
  'c=IN IP4 192.0.2.10',
  'a=candidate:842163049 1 udp 2122260223 192.0.2.10 54321 typ host generation 0 network-id 1',
  'a=ice-ufrag:Zk3o',
  'a=ice-pwd:3QnMH0w6kPeRyq7yAyWqjq4A',
  'a=ice-options:trickle',
  'a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4C:2A:CA:FB:0E:F4:FD:47:DD:5B:5A:2E',
  'a=setup:actpass',
  'a=mid:1',
  'a=sctp-port:5000',
  'a=max-message-size:262144',
);

export const FIREFOX_OFFER = crlf(
  'v=0',
  'o=mozilla...THIS_IS_SDPARTA-99.0 7043184936512093471 0 IN IP4 0.0.0.0',
  's=-',
  't=0 0',
  'a=fingerprint:sha-256 1F:22:9B:7E:56:0A:6D:24:2C:7A:0D:AB:3B:9E:61:A9:9A:8C:4E:43:0E:5F:DB:12:75:0C:8A:3E:1B:0E:5E:90',
  'a=group:BUNDLE 0',
  'a=ice-options:trickle',
  'a=msid-semantic:WMS *',
  'm=audio 9 UDP/TLS/RTP/SAVPF 109 9 0 8 101',
  'c=IN IP4 0.0.0.0',
  'a=candidate:0 1 UDP 2122252543 192.0.2.20 61234 typ host',
  'a=end-of-candidates',
  'a=sendrecv',
  'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
  'a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1',
  'a=fmtp:101 0-15',
  'a=ice-pwd:0c1c2b1f6d2e4a3b9c8d7e6f5a4b3c2d',
  'a=ice-ufrag:8a1b2c3d',
  'a=mid:0',
  'a=msid:{7a3c1e2b-0f4d-4c5e-9a8b-1c2d3e4f5a6b} {1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e}',
  'a=rtcp-mux',
  'a=rtpmap:109 opus/48000/2',
  'a=rtpmap:9 G722/8000/1',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=setup:actpass',
  'a=ssrc:2655508255 cname:{6c1a7e2f-3b4d-4e5f-8a9b-0c1d2e3f4a5b}',
);

export const LIBDATACHANNEL_OFFER = crlf(
  'v=0',
  'o=rtc 2281582238 0 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE audio 1',
  'a=group:LS audio 1',
  'a=msid-semantic:WMS *',
  'a=ice-options:ice2,trickle',
  'a=fingerprint:sha-256 B5:14:33:4F:1D:25:70:2A:7E:3C:0B:6E:0F:51:0E:8D:4C:67:2A:54:1F:AD:C7:04:2E:6F:83:0B:95:17:29:53',
  'm=audio 50000 UDP/TLS/RTP/SAVPF 111',
  'c=IN IP4 127.0.0.1',
  'a=mid:audio',
  'a=sendrecv',
  'a=ssrc:42 cname:callgate-fuzz',
  'a=rtcp-mux',
  'a=rtpmap:111 opus/48000/2',
  'a=fmtp:111 minptime=10;maxaveragebitrate=96000;stereo=1;sprop-stereo=1;useinbandfec=1',
  'a=setup:actpass',
  'a=ice-ufrag:Kz0r',
  'a=ice-pwd:dG8Sm8nVwS0DR4W6uXqrc1',
  'a=candidate:1 1 UDP 2122317823 127.0.0.1 50000 typ host',
  'a=end-of-candidates',
  'm=application 50000 UDP/DTLS/SCTP webrtc-datachannel',
  'c=IN IP4 127.0.0.1',
  'a=mid:1',
  'a=sendrecv',
  'a=sctp-port:5000',
  'a=max-message-size:262144',
  'a=setup:actpass',
  'a=ice-ufrag:Kz0r',
  'a=ice-pwd:dG8Sm8nVwS0DR4W6uXqrc1',
);
