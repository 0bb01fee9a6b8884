import { describe, expect, it } from 'vitest';
import { sdpCandidates } from './remoteDescription.js';

describe('sdpCandidates', () => {
  it("reads each media section's candidates with its mid, for adding them after the description took", () => {
    const sdp = [
      'v=0',
      'o=- 1 1 IN IP4 127.0.0.1',
      's=-',
      't=0 0',
      'a=group:BUNDLE 0 1',
      'm=audio 50000 UDP/TLS/RTP/SAVPF 111',
      'a=mid:0',
      'a=candidate:1 1 UDP 2122317823 127.0.0.1 50000 typ host',
      'a=candidate:2 1 UDP 2122317822 127.0.0.2 50002 typ host',
      'm=application 50000 UDP/DTLS/SCTP webrtc-datachannel',
      'a=mid:1',
      'a=candidate:3 1 UDP 2122317823 127.0.0.1 50000 typ host',
      '',
    ].join('\r\n');
    expect(sdpCandidates(sdp)).toEqual([
      { candidate: 'candidate:1 1 UDP 2122317823 127.0.0.1 50000 typ host', mid: '0' },
      { candidate: 'candidate:2 1 UDP 2122317822 127.0.0.2 50002 typ host', mid: '0' },
      { candidate: 'candidate:3 1 UDP 2122317823 127.0.0.1 50000 typ host', mid: '1' },
    ]);
    expect(sdpCandidates('v=0\r\ns=-\r\n')).toEqual([]);
  });
});
