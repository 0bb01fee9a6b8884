import { afterAll, describe, expect, it } from 'vitest';
import { legCodecFrom, openAudioLeg } from '../../src/media/AudioLeg.js';
import { dtmfPayloads } from '../../src/media/codecs/telephoneEvent.js';
import { linearToMulaw } from '../../src/media/codecs/g711.js';
import { MediaClock } from '../../src/media/MediaClock.js';
import { parseRtp, serializeRtp } from '../../src/media/rtp/RtpPacket.js';
import { answerFor, buildSdp, negotiate, parseRemoteSdp } from '../../src/media/sdp.js';
import { tone } from '../../src/media/signal.js';
import type { DtmfEvent } from '../../src/media/types.js';
import { closeSocket, udpSocket, until } from './helpers.js';

const clock = new MediaClock();
afterAll(() => clock.stop());

function carrierOffer(port: number): string {
  return [
    'v=0',
    'o=carrier 1001 1 IN IP4 127.0.0.1',
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    `m=audio ${port} RTP/AVP 18 0 8 101`,
    'a=rtpmap:18 G729/8000',
    'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-16',
    'a=ptime:20',
    'a=sendrecv',
    '',
  ].join('\r\n');
}

describe('a carrier offer, negotiated and answered, carries audio and DTMF both ways', () => {
  it('picks PCMU, answers with our port, and the leg talks to the address in the SDP', async () => {
    const carrier = await udpSocket();
    const negotiated = negotiate(parseRemoteSdp(carrierOffer(carrier.address().port)));
    expect(negotiated.codec.name).toBe('PCMU');
    expect(negotiated.telephoneEvent?.pt).toBe(101);

    const leg = await openAudioLeg({
      callId: 'sdp-test',
      legId: 'carrier',
      codec: legCodecFrom(negotiated),
      clock,
      env: {},
      endpoint: { latching: false, remote: { address: negotiated.remote.address, port: negotiated.remote.port }, portRange: { min: 34000, max: 34999 } },
    });
    const answer = parseRemoteSdp(buildSdp({ address: '127.0.0.1', port: leg.endpoint.localAddress.port, ...answerFor(negotiated) }));
    expect(answer.port).toBe(leg.endpoint.localAddress.port);
    expect(answer.codecs.map((c) => c.name)).toEqual(['PCMU', 'telephone-event']);

    // carrier → leg: 200 ms of a 440 Hz tone, then the digit 7
    const frames: Int16Array[] = [];
    const digits: DtmfEvent[] = [];
    leg.on('audio', (f) => frames.push(Int16Array.from(f)));
    leg.on('dtmf', (d) => digits.push(d));
    const pcm = tone(440, 200, { sampleRate: 8000, amplitude: 8000 });
    let seq = 100;
    let ts = 8000;
    for (let i = 0; i < 10; i++) {
      const payload = Uint8Array.from(pcm.subarray(i * 160, (i + 1) * 160), (s) => linearToMulaw(s));
      carrier.send(serializeRtp({ marker: i === 0, payloadType: 0, sequenceNumber: seq++, timestamp: ts, ssrc: 5 }, payload), leg.endpoint.localAddress.port, '127.0.0.1');
      ts += 160;
    }
    for (const p of dtmfPayloads('7', 120, 8000)) {
      carrier.send(serializeRtp({ marker: p.marker, payloadType: 101, sequenceNumber: seq++, timestamp: ts, ssrc: 5 }, p.payload), leg.endpoint.localAddress.port, '127.0.0.1');
    }
    await until(() => frames.length === 10 && digits.length === 1, 3000, 'audio and DTMF');
    expect(digits[0]?.digit).toBe('7');

    // leg → carrier: PCMU packets with the negotiated PT arrive at the SDP's address
    const got: number[] = [];
    carrier.on('message', (m) => {
      const p = parseRtp(m);
      if (p.ok) got.push(p.value.payloadType);
    });
    leg.play(tone(1000, 100, { sampleRate: 16000, amplitude: 8000 }));
    await until(() => got.length >= 5, 2000, 'packets at the carrier');
    expect(new Set(got)).toEqual(new Set([0]));

    await leg.close();
    await closeSocket(carrier);
  });

  it('refuses an offer with only G.729, naming what was offered', () => {
    const offer = carrierOffer(4000).replace('RTP/AVP 18 0 8 101', 'RTP/AVP 18 101');
    expect(() => negotiate(parseRemoteSdp(offer))).toThrow(expect.objectContaining({ code: 'CG_SDP_NO_COMMON_CODEC', status: 422, sip: [488, 'Not Acceptable Here'] }));
    try {
      negotiate(parseRemoteSdp(offer));
    } catch (err) {
      expect(String((err as Error).message)).toMatch(/G729/);
    }
  });
});
