import { parse, type SessionDescription } from 'sdp-transform';
import { CallgateError } from '../errors.js';
import { missingWebRtc } from '../media/sdp.js';

/** What the door needs from a browser's offer. */
export interface BrowserOffer {
  /** The audio m-line's mid: our answer's track must carry the same. */
  readonly audioMid: string;
  /** The payload type the browser gave Opus. */
  readonly opusPayloadType: number;
  /** The page opened a data channel (transcript events go over it). */
  readonly dataChannel: boolean;
}

/** Longest offer accepted: a browser's is 3–6 kB; anything far larger is not one. */
export const MAX_OFFER_BYTES = 32 * 1024;

/**
 * Checks a browser's offer before any resource is spent on it: WebRTC-shaped (UDP/TLS/RTP/SAVPF, a DTLS
 * fingerprint, ICE credentials), one audio m-line offering Opus. Throws CG_SDP_* errors (HTTP 422, or 400 for
 * what is not SDP at all).
 */
export function parseBrowserOffer(sdp: string): BrowserOffer {
  if (typeof sdp !== 'string' || sdp.length === 0 || sdp.length > MAX_OFFER_BYTES || !sdp.startsWith('v=0')) {
    throw new CallgateError('CG_SDP_MALFORMED', 'the offer is not an SDP session description');
  }
  let session: SessionDescription;
  try {
    session = parse(sdp);
  } catch (err) {
    throw new CallgateError('CG_SDP_MALFORMED', 'the offer could not be parsed', { cause: err });
  }
  const audio = (session.media ?? []).filter((m) => m.type === 'audio' && m.port !== 0);
  if (audio.length !== 1) throw new CallgateError('CG_SDP_NO_AUDIO', `${audio.length} live audio m-lines, expected 1`);
  const m = audio[0]!;
  const missing = missingWebRtc(session, m);
  if (missing.length > 0) throw new CallgateError('CG_SDP_NOT_WEBRTC', `the offer is not WebRTC: no ${missing.join(', ')}`, { details: { missing } });
  // String(): sdp-transform gives digit-only fields as numbers ("a=rtpmap:111 1/48000", "m=application 9 1 x").
  const opus = (m.rtp ?? []).find((r) => String(r.codec).toLowerCase() === 'opus' && r.rate === 48000);
  if (!opus) throw new CallgateError('CG_SDP_NO_COMMON_CODEC', 'the offer has no opus/48000');
  // The PT goes into every RTP header we send: 7 bits (the rtpmap grammar takes any run of digits).
  if (!Number.isInteger(opus.payload) || opus.payload < 0 || opus.payload > 127) {
    throw new CallgateError('CG_SDP_MALFORMED', `the offer's Opus payload type ${String(opus.payload)} is outside 0..127`);
  }
  // An empty a=mid is no identification tag (RFC 5888 §4): our answer's track could not name it.
  if (m.mid === undefined || String(m.mid) === '') throw new CallgateError('CG_SDP_NOT_WEBRTC', 'the audio m-line has no a=mid');
  const dataChannel = (session.media ?? []).some((x) => x.type === 'application' && x.port !== 0 && String(x.protocol).includes('SCTP'));
  return { audioMid: String(m.mid), opusPayloadType: opus.payload, dataChannel };
}
