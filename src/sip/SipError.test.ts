import { describe, expect, it } from 'vitest';
import { CallgateError, errorCatalogue, type ErrorCode } from '../errors.js';
import { SipError, sipErrorFrom } from './SipError.js';

type Answer = readonly [status: number, reason: string, headers?: Record<string, string>];

/**
 * What `sipErrorFrom` answered for every code before the SIP responses moved into the catalogue
 * (issue 18), read off the old `BY_CODE` table and its special cases by running it. Moving them must
 * change nothing a caller hears.
 */
const BEFORE: [Answer, ErrorCode[]][] = [
  [[486, 'Busy Here', { 'Retry-After': '30' }], ['CG_CALL_LIMIT_REACHED']],
  [[503, 'Service Unavailable', { 'Retry-After': '5' }], ['CG_RTPENGINE_UNAVAILABLE', 'CG_RTPENGINE_FAILED', 'CG_RTPENGINE_BAD_SDP', 'CG_DRAINING', 'CG_REDIS_UNAVAILABLE']],
  [[503, 'Service Unavailable'], ['CG_PORT_RANGE_EXHAUSTED']],
  [[400, 'Bad Request'], ['CG_SDP_MALFORMED']],
  [[488, 'Not Acceptable Here'], ['CG_SDP_NO_AUDIO', 'CG_SDP_NO_COMMON_CODEC', 'CG_SDP_BAD_CONNECTION', 'CG_SDP_NOT_WEBRTC']],
  [[404, 'Not Found'], ['CG_TENANT_NOT_FOUND', 'CG_NUMBER_NOT_FOUND']],
  [
    [500, 'Server Internal Error'],
    [
      'CG_PORT_RANGE_INVALID', 'CG_CODEC_ENCODE_FAILED', 'CG_PCAP_WRITE_FAILED', 'CG_TTS_FAILED', 'CG_STT_UNAVAILABLE', 'CG_STT_FAILED',
      'CG_STT_TIMEOUT', 'CG_LLM_FAILED', 'CG_LLM_TIMEOUT', 'CG_TTS_TIMEOUT', 'CG_VAD_UNAVAILABLE', 'CG_DIAL_FAILED',
      'CG_SIP_UNAVAILABLE', 'CG_WEBRTC_NOT_CONNECTED', 'CG_CALL_LOST', 'CG_SECRET_KEY_MISSING', 'CG_SECRET_UNREADABLE',
      'CG_PREVIEW_UNAVAILABLE', 'CG_CONFIG_INVALID', 'CG_INTERNAL',
    ],
  ],
  [
    [403, 'Forbidden'],
    [
      'CG_RTP_TOO_SHORT', 'CG_RTP_TOO_LONG', 'CG_RTP_BAD_VERSION', 'CG_RTP_BAD_CSRC', 'CG_RTP_BAD_EXTENSION', 'CG_RTP_BAD_PADDING',
      'CG_RTP_EMPTY_PAYLOAD', 'CG_RTCP_MALFORMED', 'CG_RTP_UNKNOWN_PAYLOAD_TYPE', 'CG_RTP_UNEXPECTED_SOURCE', 'CG_CODEC_UNSUPPORTED',
      'CG_CODEC_BAD_FRAME', 'CG_CODEC_DECODE_FAILED', 'CG_CODEC_OPTION_INVALID', 'CG_CODEC_CLOSED', 'CG_DTMF_MALFORMED',
      'CG_RESAMPLE_UNSUPPORTED_RATE', 'CG_PCAP_BAD_MAGIC', 'CG_PCAP_TRUNCATED', 'CG_PCAP_UNSUPPORTED_LINKTYPE', 'CG_PCAP_MALFORMED',
      'CG_PCAP_UNENCODABLE', 'CG_REPLAY_NO_STREAM', 'CG_REPLAY_BAD_TARGET', 'CG_WAV_MALFORMED', 'CG_TTS_BAD_REQUEST',
      'CG_PROVIDER_UNKNOWN', 'CG_SIP_SCANNER', 'CG_SIP_FORBIDDEN', 'CG_SIP_AUTH_LOCKED', 'CG_SIP_SOURCE_IGNORED',
      'CG_AGENT_CONFIG_INVALID', 'CG_AGENT_TEMPLATE_VARIABLE', 'CG_AGENT_CLOSED', 'CG_TENANT_EXISTS', 'CG_TENANT_INVALID',
      'CG_CALL_URL_NOT_FOUND', 'CG_CALL_URL_EXISTS', 'CG_CALL_URL_EXPIRED', 'CG_CALL_URL_EXHAUSTED', 'CG_CALL_URL_DISABLED',
      'CG_CALL_URL_ORIGIN', 'CG_CALL_TOKEN_INVALID', 'CG_NUMBER_EXISTS', 'CG_TRUNK_NOT_FOUND', 'CG_TRUNK_EXISTS', 'CG_TRUNK_IN_USE',
      'CG_TRUNK_NO_OUTBOUND', 'CG_CALL_RECORD_NOT_FOUND', 'CG_CALL_RECORD_INVALID', 'CG_HTTP_UNAUTHORIZED', 'CG_HTTP_FORBIDDEN',
      'CG_HTTP_NOT_FOUND', 'CG_HTTP_BAD_REQUEST', 'CG_HTTP_BODY_TOO_LARGE', 'CG_HTTP_UNSUPPORTED_MEDIA_TYPE', 'CG_HTTP_RATE_LIMITED',
      'CG_API_KEY_NOT_FOUND',
    ],
  ],
];

/**
 * The codes whose answer from `sipErrorFrom` changed, and why it changes nothing on the wire: none of
 * them reaches `sipErrorFrom` as a CallgateError. The SIP door sends each itself, with the answer the
 * catalogue now names, where the old fallback (500 for a 5xx, else 403) said something it never sent.
 */
const CHANGED: [ErrorCode, was: Answer, now: Answer][] = [
  // SipGateway's m= line count throws SipError(488) before rtpengine; the parser's other SDP refusals are 488 too.
  ['CG_SDP_TOO_MANY_MEDIA', [403, 'Forbidden'], [488, 'Not Acceptable Here']],
  // The per-source INVITE limit answers 503 with the source's own Retry-After (SipGateway.overRate).
  ['CG_SIP_RATE_LIMITED', [500, 'Server Internal Error'], [503, 'Service Unavailable']],
  // drachtioUnparsed answers 400 Bad Request to a request drachtio-srf cannot parse.
  ['CG_SIP_MALFORMED', [403, 'Forbidden'], [400, 'Bad Request']],
];

/**
 * Codes added since (issue 22, rooms), with the answer each gets: a number routed to a room that is
 * gone is 404/403 like a number without a tenant; no gateway to hold the room, 503 (another may).
 */
const ADDED: [Answer, ErrorCode[]][] = [
  [[404, 'Not Found'], ['CG_ROOM_NOT_FOUND']],
  [[486, 'Busy Here'], ['CG_ROOM_FULL']],
  [[503, 'Service Unavailable'], ['CG_ROOM_ELSEWHERE']],
  [[403, 'Forbidden'], ['CG_ROOM_EXPIRED', 'CG_ROOM_LIMIT_REACHED', 'CG_ROOM_PIN', 'CG_ROOM_PARTICIPANT_NOT_FOUND']],
  // Issue 23: a speech-to-speech model failing is a provider failure like the LLM's (the call goes on).
  [[500, 'Server Internal Error'], ['CG_REALTIME_UNAVAILABLE', 'CG_REALTIME_FAILED']],
  // Issue 25, devices: a device that is not there is 404 like a number; one with no registration is
  // 480, what a proxy answers for a known callee it cannot reach now (RFC 3261 §21.4.18).
  [[404, 'Not Found'], ['CG_DEVICE_NOT_FOUND']],
  [[403, 'Forbidden'], ['CG_DEVICE_EXISTS']],
  [[480, 'Temporarily Unavailable'], ['CG_DEVICE_NOT_REGISTERED']],
  // Issue 25, one-command SIP: the drachtio-server the gateway starts failing is a start-up error; no
  // INVITE can meet it (with no drachtio there is no SIP), so it is 500 as every 5xx with no SIP meaning.
  [[500, 'Server Internal Error'], ['CG_DRACHTIO_UNAVAILABLE']],
];

const expected = (code: ErrorCode, [status, reason, headers = {}]: Answer) => ({ status, reason, headers, silent: false, code });

describe('sipErrorFrom', () => {
  it('answers every code as before the move into the catalogue, and the codes added since as listed', () => {
    for (const [answer, codes] of [...BEFORE, ...ADDED]) {
      for (const code of codes) expect(sipErrorFrom(new CallgateError(code, 'detail'))).toMatchObject(expected(code, answer));
    }
  });

  it('changes only codes the SIP door answers itself, to what it sends', () => {
    for (const [code, was, now] of CHANGED) {
      expect(was).not.toEqual(now);
      expect(sipErrorFrom(new CallgateError(code))).toMatchObject(expected(code, now));
    }
  });

  it('has an answer in one of the tables for every code, so a new code is a decision', () => {
    const tabled = [...BEFORE.flatMap(([, codes]) => codes), ...ADDED.flatMap(([, codes]) => codes), ...CHANGED.map(([code]) => code)];
    expect(new Set(tabled).size).toBe(tabled.length);
    expect([...tabled].sort()).toEqual(Object.keys(errorCatalogue).sort());
  });

  it('answers anything else 500 as CG_INTERNAL, and passes a SipError (a challenge, a silent drop) through as it is', () => {
    expect(sipErrorFrom(new Error('boom'))).toMatchObject(expected('CG_INTERNAL', [500, 'Server Internal Error']));
    expect(sipErrorFrom('not even an error')).toMatchObject({ status: 500, code: 'CG_INTERNAL' });
    const silent = new SipError(403, 'Forbidden', {}, true, 'CG_SIP_SOURCE_IGNORED');
    expect(sipErrorFrom(silent)).toBe(silent);
  });
});
