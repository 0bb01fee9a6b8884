/**
 * The one catalogue of callgate's errors. Codes are stable and machine-readable: the API returns them,
 * logs carry them, docs/errors.md lists them. Add a code here rather than throwing a bare Error.
 *
 * Each door answers with its own kind: `status` is the HTTP status the API (and the web phone's
 * offer route) answers with; `sip` is the final response the SIP door sends for an INVITE that fails
 * with the code (src/sip/SipError.ts adds Retry-After where a retry later can succeed). `retryable`
 * tells a caller (provider fallback, client) whether trying again can succeed without changing the
 * request.
 */
export interface ErrorDefinition {
  readonly status: number;
  readonly sip: SipResponse;
  readonly retryable: boolean;
  readonly message: string;
  /** What to do about it, in plain words, for the people who read API answers (sent as `hint`). */
  readonly hint?: string;
}

/** A SIP final response: status and the reason phrase RFC 3261 §21 gives it. */
export type SipResponse = readonly [status: number, reason: string];

/**
 * The SIP answers the catalogue uses. A code with no better SIP meaning gets 500 when its HTTP status
 * is a 5xx and 403 otherwise: a caller (or scanner) learns no more than "not here", and the SIP door's
 * ignore list counts 403s of unknown sources.
 */
const SIP = {
  badRequest: [400, 'Bad Request'],
  forbidden: [403, 'Forbidden'],
  notFound: [404, 'Not Found'],
  busyHere: [486, 'Busy Here'],
  /** RFC 3261 §21.4.18: the callee is known but cannot be reached now (a device with no registration). */
  temporarilyUnavailable: [480, 'Temporarily Unavailable'],
  notAcceptableHere: [488, 'Not Acceptable Here'],
  serverError: [500, 'Server Internal Error'],
  unavailable: [503, 'Service Unavailable'],
} as const satisfies Record<string, SipResponse>;

export const errorCatalogue = {
  // ── RTP / RTCP (src/media/rtp) ───────────────────────────────────────────────────────────────
  CG_RTP_TOO_SHORT: { status: 400, sip: SIP.forbidden, retryable: false, message: 'RTP packet shorter than its header' },
  CG_RTP_TOO_LONG: { status: 400, sip: SIP.forbidden, retryable: false, message: 'RTP packet longer than the largest accepted datagram' },
  CG_RTP_BAD_VERSION: { status: 400, sip: SIP.forbidden, retryable: false, message: 'RTP version is not 2' },
  CG_RTP_BAD_CSRC: { status: 400, sip: SIP.forbidden, retryable: false, message: 'RTP CSRC count runs past the end of the packet' },
  CG_RTP_BAD_EXTENSION: { status: 400, sip: SIP.forbidden, retryable: false, message: 'RTP header extension runs past the end of the packet' },
  CG_RTP_BAD_PADDING: { status: 400, sip: SIP.forbidden, retryable: false, message: 'RTP padding length is zero or runs past the payload' },
  CG_RTP_EMPTY_PAYLOAD: { status: 400, sip: SIP.forbidden, retryable: false, message: 'RTP packet carries no payload' },
  CG_RTCP_MALFORMED: { status: 400, sip: SIP.forbidden, retryable: false, message: 'RTCP packet is malformed' },
  CG_RTP_UNKNOWN_PAYLOAD_TYPE: { status: 400, sip: SIP.forbidden, retryable: false, message: 'RTP payload type was not negotiated for this leg' },
  CG_RTP_UNEXPECTED_SOURCE: { status: 400, sip: SIP.forbidden, retryable: false, message: 'RTP packet from an address other than the remote peer' },

  // ── Sockets and endpoints (src/media) ────────────────────────────────────────────────────────
  CG_PORT_RANGE_EXHAUSTED: { status: 503, sip: SIP.unavailable, retryable: true, message: 'no free UDP port in the configured RTP port range' },
  CG_PORT_RANGE_INVALID: { status: 500, sip: SIP.serverError, retryable: false, message: 'RTP port range is invalid' },

  // ── Codecs, DTMF, resampling (src/media/codecs) ──────────────────────────────────────────────
  CG_CODEC_UNSUPPORTED: { status: 415, sip: SIP.forbidden, retryable: false, message: 'codec is not supported' },
  CG_CODEC_BAD_FRAME: { status: 400, sip: SIP.forbidden, retryable: false, message: 'audio frame has the wrong number of samples for the codec' },
  CG_CODEC_DECODE_FAILED: { status: 400, sip: SIP.forbidden, retryable: false, message: 'codec could not decode the payload' },
  CG_CODEC_ENCODE_FAILED: { status: 500, sip: SIP.serverError, retryable: false, message: 'codec could not encode the frame' },
  CG_CODEC_OPTION_INVALID: { status: 400, sip: SIP.forbidden, retryable: false, message: 'codec option is out of range' },
  CG_CODEC_CLOSED: { status: 409, sip: SIP.forbidden, retryable: false, message: 'the codec is closed' },
  CG_DTMF_MALFORMED: { status: 400, sip: SIP.forbidden, retryable: false, message: 'telephone-event payload is malformed' },
  CG_RESAMPLE_UNSUPPORTED_RATE: { status: 400, sip: SIP.forbidden, retryable: false, message: 'sample rate is not one of 8000, 16000, 24000, 48000' },

  // ── SDP (src/media/sdp) ──────────────────────────────────────────────────────────────────────
  // SDP that parses but cannot be used is 488 on SIP and 422 over HTTP (the web phone's offer): the
  // request is well-formed, its content is what cannot be served, and 400 stays for SDP that does not
  // parse, so a client tells "fix the syntax" from "this offer lacks what a call needs". 488 is a SIP
  // status; an HTTP client would not know it.
  CG_SDP_MALFORMED: { status: 400, sip: SIP.badRequest, retryable: false, message: 'SDP could not be parsed' },
  CG_SDP_NO_AUDIO: { status: 422, sip: SIP.notAcceptableHere, retryable: false, message: 'SDP has no usable audio stream' },
  CG_SDP_NO_COMMON_CODEC: { status: 422, sip: SIP.notAcceptableHere, retryable: false, message: 'SDP offers no codec callgate supports' },
  CG_SDP_BAD_CONNECTION: { status: 422, sip: SIP.notAcceptableHere, retryable: false, message: 'SDP connection address or port is missing or invalid' },
  CG_SDP_NOT_WEBRTC: { status: 422, sip: SIP.notAcceptableHere, retryable: false, message: 'a WebRTC call offered SDP without ICE and DTLS-SRTP' },
  CG_SDP_TOO_MANY_MEDIA: { status: 422, sip: SIP.notAcceptableHere, retryable: false, message: 'SDP offers more media streams (m= lines) than callgate anchors' },

  // ── Captures, WAV and replay (src/media/capture, src/media/wav) ────────────────────────────────────
  CG_PCAP_BAD_MAGIC: { status: 400, sip: SIP.forbidden, retryable: false, message: 'not a libpcap or pcapng file' },
  CG_PCAP_TRUNCATED: { status: 400, sip: SIP.forbidden, retryable: false, message: 'capture file ends in the middle of a record' },
  CG_PCAP_UNSUPPORTED_LINKTYPE: { status: 400, sip: SIP.forbidden, retryable: false, message: 'capture link type is not supported' },
  CG_PCAP_MALFORMED: { status: 400, sip: SIP.forbidden, retryable: false, message: 'capture record is malformed' },
  CG_PCAP_UNENCODABLE: { status: 400, sip: SIP.forbidden, retryable: false, message: 'datagram cannot be written to a capture (IPv4 only, at most 65507 bytes)' },
  CG_PCAP_WRITE_FAILED: { status: 500, sip: SIP.serverError, retryable: false, message: 'capture file could not be written' },
  CG_REPLAY_NO_STREAM: { status: 404, sip: SIP.forbidden, retryable: false, message: 'no RTP stream in the capture matches' },
  CG_REPLAY_BAD_TARGET: { status: 400, sip: SIP.forbidden, retryable: false, message: 'replay target must be host:port' },
  CG_WAV_MALFORMED: { status: 400, sip: SIP.forbidden, retryable: false, message: 'WAV file is malformed or not 16-bit PCM' },

  // ── Providers (src/providers) ────────────────────────────────────────────────────────────────
  CG_TTS_FAILED: { status: 502, sip: SIP.serverError, retryable: false, message: 'speech synthesis failed' },
  CG_TTS_BAD_REQUEST: { status: 400, sip: SIP.forbidden, retryable: false, message: 'speech synthesis request is invalid' },
  CG_STT_UNAVAILABLE: { status: 503, sip: SIP.serverError, retryable: false, message: 'speech recognition engine is not installed or could not start' },
  CG_STT_FAILED: { status: 502, sip: SIP.serverError, retryable: false, message: 'speech recognition failed' },
  CG_STT_TIMEOUT: { status: 504, sip: SIP.serverError, retryable: true, message: 'speech recognition gave no final result in time' },
  CG_LLM_FAILED: { status: 502, sip: SIP.serverError, retryable: true, message: 'language model request failed' },
  CG_REALTIME_UNAVAILABLE: { status: 502, sip: SIP.serverError, retryable: true, message: 'the speech-to-speech model could not be reached', hint: 'check OPENAI_BASE_URL / GEMINI_BASE_URL and the tenant\'s provider key; the call goes on with the cascade meanwhile' },
  CG_REALTIME_FAILED: { status: 502, sip: SIP.serverError, retryable: true, message: 'the speech-to-speech model failed during the call' },
  CG_LLM_TIMEOUT: { status: 504, sip: SIP.serverError, retryable: true, message: 'language model gave no first token in time' },
  CG_TTS_TIMEOUT: { status: 504, sip: SIP.serverError, retryable: true, message: 'speech synthesis gave no audio in time' },
  CG_PROVIDER_UNKNOWN: { status: 400, sip: SIP.forbidden, retryable: false, message: 'no provider of that name is available', hint: 'use one of the providers docs/providers.md lists, or set the vendor\'s API key' },
  CG_VAD_UNAVAILABLE: { status: 503, sip: SIP.serverError, retryable: false, message: 'voice activity detector could not be loaded' },

  // ── Media anchor: rtpengine (src/sip/rtpengine) ─────────────────────────────────────────────────
  // SIP 503 for all three, even a refusal: it tells a carrier to fail over to another gateway.
  CG_RTPENGINE_UNAVAILABLE: { status: 503, sip: SIP.unavailable, retryable: true, message: 'rtpengine did not answer in time or could not start' },
  CG_RTPENGINE_FAILED: { status: 502, sip: SIP.unavailable, retryable: false, message: 'rtpengine refused the command' },
  CG_RTPENGINE_BAD_SDP: { status: 502, sip: SIP.unavailable, retryable: false, message: 'rtpengine returned SDP that callgate cannot use' },

  // ── SIP door: INVITEs refused before they reach a tenant (src/sip) ──────────────────────────────
  // The door answers these itself (a rate-limited source gets its own Retry-After; scanners and
  // ignored sources get nothing at all); `sip` says what it sends when it answers.
  CG_SIP_RATE_LIMITED: { status: 503, sip: SIP.unavailable, retryable: true, message: 'this source sent INVITEs above its rate; retry after the time in the Retry-After header' },
  CG_SIP_SCANNER: { status: 403, sip: SIP.forbidden, retryable: false, message: 'INVITE from a known SIP scanner; nothing is sent back' },
  CG_SIP_FORBIDDEN: { status: 403, sip: SIP.forbidden, retryable: false, message: 'the source may not place this call (no trunk covers its address, wrong credentials, or a number pinned to another trunk)' },
  CG_SIP_AUTH_LOCKED: { status: 403, sip: SIP.forbidden, retryable: false, message: 'too many failed digest attempts for this username or from this source; refused like a wrong password until the lockout ends' },
  CG_SIP_SOURCE_IGNORED: { status: 403, sip: SIP.forbidden, retryable: false, message: 'this source kept sending INVITEs that were refused; they are dropped unanswered for a cool-down' },
  CG_SIP_MALFORMED: { status: 400, sip: SIP.badRequest, retryable: false, message: 'a request drachtio-server accepted but drachtio-srf cannot parse (a space in the Request-URI, …); answered 400' },

  // ── Agent (src/agent) ───────────────────────────────────────────────────────────────────────────
  CG_AGENT_CONFIG_INVALID: { status: 400, sip: SIP.forbidden, retryable: false, message: 'agent configuration is invalid' },
  CG_AGENT_TEMPLATE_VARIABLE: { status: 400, sip: SIP.forbidden, retryable: false, message: 'greeting template names a variable the call does not have', hint: 'give the variable a value in the call URL\'s `variables`, or a default in the template: {{name|default}}' },
  CG_AGENT_CLOSED: { status: 409, sip: SIP.forbidden, retryable: false, message: 'the agent session has ended' },

  // ── Tenants, call URLs, numbers, trunks (src/tenants) ─────────────────────────────────────────
  CG_TENANT_NOT_FOUND: { status: 404, sip: SIP.notFound, retryable: false, message: 'no tenant with that id', hint: 'check the id; GET /v1/tenants lists them' },
  CG_TENANT_EXISTS: { status: 409, sip: SIP.forbidden, retryable: false, message: 'a tenant with that id already exists', hint: 'choose another id, or change the existing tenant with PATCH /v1/tenants/{id}' },
  CG_TENANT_INVALID: { status: 400, sip: SIP.forbidden, retryable: false, message: 'tenant, call URL, number or trunk is invalid', hint: 'fix each field `details.issues` names (path and what is wrong)' },
  CG_CALL_URL_NOT_FOUND: { status: 404, sip: SIP.forbidden, retryable: false, message: 'no call URL with that slug', hint: 'check the slug; GET /v1/tenants/{id}/call-urls lists a tenant\'s call URLs' },
  CG_CALL_URL_EXISTS: { status: 409, sip: SIP.forbidden, retryable: false, message: 'a call URL with that slug already exists', hint: 'choose another slug, or leave it out for a random one' },
  CG_CALL_URL_EXPIRED: { status: 410, sip: SIP.forbidden, retryable: false, message: 'the call URL has expired', hint: 'set a later expiresAt (or null) with PATCH on the call URL, or make a new one' },
  CG_CALL_URL_EXHAUSTED: { status: 410, sip: SIP.forbidden, retryable: false, message: 'the call URL has no uses left', hint: 'raise maxUses (or set it to null) with PATCH on the call URL, or make a new one' },
  CG_CALL_URL_DISABLED: { status: 403, sip: SIP.forbidden, retryable: false, message: 'the call URL is disabled', hint: 'switch it on with PATCH {"enabled": true} on the call URL' },
  CG_CALL_URL_ORIGIN: { status: 403, sip: SIP.forbidden, retryable: false, message: 'the call URL may not be used from this origin', hint: 'add the site\'s origin (https://host[:port]) to the call URL\'s allowedOrigins, or empty the list to allow any site' },
  CG_CALL_TOKEN_INVALID: { status: 401, sip: SIP.forbidden, retryable: false, message: 'call token is unknown, expired or already used; load the call page again' },
  CG_ROOM_NOT_FOUND: { status: 404, sip: SIP.notFound, retryable: false, message: 'no room with that id', hint: 'check the room id; GET /v1/tenants/{id}/rooms lists a tenant\'s rooms' },
  CG_ROOM_EXPIRED: { status: 410, sip: SIP.forbidden, retryable: false, message: 'the room has expired', hint: 'make a new room (POST /v1/tenants/{id}/rooms)' },
  CG_ROOM_FULL: { status: 409, sip: SIP.busyHere, retryable: true, message: 'the room is full', hint: 'wait for someone to leave, or make the room bigger (maxParticipants) next time' },
  CG_ROOM_LIMIT_REACHED: { status: 429, sip: SIP.forbidden, retryable: false, message: 'the tenant has as many rooms as it may', hint: 'delete rooms that are no longer used (DELETE /v1/tenants/{id}/rooms/{roomId})' },
  CG_ROOM_PIN: { status: 403, sip: SIP.forbidden, retryable: false, message: 'wrong or missing room PIN', hint: 'enter the PIN the room was made with' },
  CG_ROOM_PARTICIPANT_NOT_FOUND: { status: 404, sip: SIP.forbidden, retryable: false, message: 'no participant with that id in the room', hint: 'GET the room to list its participants' },
  CG_ROOM_ELSEWHERE: { status: 503, sip: SIP.unavailable, retryable: true, message: 'the room\'s audio is on another gateway', hint: 'join through the URL in `details.url`' },
  CG_NUMBER_NOT_FOUND: { status: 404, sip: SIP.notFound, retryable: false, message: 'no route for that number', hint: 'check the number (E.164, `+` URL-encoded as %2B in a path); GET /v1/tenants/{id}/numbers lists a tenant\'s' },
  CG_NUMBER_EXISTS: { status: 409, sip: SIP.forbidden, retryable: false, message: 'that number is already routed', hint: 'move it with PATCH /v1/tenants/{id}/numbers/{number}, or delete it first' },
  CG_TRUNK_NOT_FOUND: { status: 404, sip: SIP.forbidden, retryable: false, message: 'no trunk with that name', hint: 'check the name; GET /v1/trunks lists them' },
  CG_TRUNK_EXISTS: { status: 409, sip: SIP.forbidden, retryable: false, message: 'a trunk with that name already exists', hint: 'choose another name, or change the trunk with PATCH /v1/trunks/{name}' },
  CG_TRUNK_IN_USE: { status: 409, sip: SIP.forbidden, retryable: false, message: 'numbers of a tenant the trunk would no longer list are pinned to it; move or unpin them first' },
  CG_TRUNK_NO_OUTBOUND: { status: 422, sip: SIP.forbidden, retryable: false, message: 'the trunk has no outbound settings', hint: 'add `outbound` (host, and credentials if the carrier asks) to the trunk to dial through it' },
  CG_DEVICE_NOT_FOUND: { status: 404, sip: SIP.notFound, retryable: false, message: 'no device with that username for this tenant', hint: 'check the username; GET /v1/tenants/{id}/devices lists the tenant\'s devices' },
  CG_DEVICE_EXISTS: { status: 409, sip: SIP.forbidden, retryable: false, message: 'a device with that username already exists (usernames are unique across the gateway)', hint: 'choose another username, or change the device with PATCH /v1/tenants/{id}/devices/{username}' },
  CG_DEVICE_NOT_REGISTERED: { status: 409, sip: SIP.temporarilyUnavailable, retryable: true, message: 'the device has no current registration to call', hint: 'make the phone REGISTER (docs/devices.md); GET /v1/tenants/{id}/devices/{username} shows its bindings' },
  CG_DIAL_FAILED: { status: 502, sip: SIP.serverError, retryable: false, message: 'the outbound call was not answered' },
  CG_SIP_UNAVAILABLE: { status: 503, sip: SIP.serverError, retryable: false, message: 'the SIP door is not connected', hint: 'start with CALLGATE_SIP=1 (drachtio-server started by the gateway), or set DRACHTIO_HOST and DRACHTIO_SECRET and check that drachtio-server is running (docs/sip.md)' },
  CG_DRACHTIO_UNAVAILABLE: { status: 503, sip: SIP.serverError, retryable: false, message: 'the drachtio-server the gateway starts (CALLGATE_SIP=1) could not start or exited', hint: 'read the drachtio lines in the message or log; a SIP port in use needs another SIP_PORT (docs/sip.md)' },
  CG_DRAINING: { status: 503, sip: SIP.unavailable, retryable: true, message: 'the gateway is shutting down and takes no new calls; try another', hint: 'send the request to another gateway, or wait for this one to restart' },
  CG_WEBRTC_NOT_CONNECTED: { status: 504, sip: SIP.serverError, retryable: false, message: 'the browser did not connect its media' },
  CG_CALL_RECORD_NOT_FOUND: { status: 404, sip: SIP.forbidden, retryable: false, message: 'no call record with that call id for this tenant', hint: 'check the call id; GET /v1/tenants/{id}/calls lists the tenant\'s calls' },
  CG_CALL_RECORD_INVALID: { status: 400, sip: SIP.forbidden, retryable: false, message: 'call record, list cursor or page size is invalid' },
  CG_CALL_LOST: { status: 500, sip: SIP.serverError, retryable: false, message: 'the gateway carrying the call stopped before the call ended; the record is its last snapshot' },
  CG_SECRET_KEY_MISSING: { status: 500, sip: SIP.serverError, retryable: false, message: 'CALLGATE_SECRET_KEY is missing or not 32 bytes (base64 or hex)', hint: 'set CALLGATE_SECRET_KEY to 32 random bytes, e.g. `openssl rand -base64 32`' },
  CG_SECRET_UNREADABLE: { status: 500, sip: SIP.serverError, retryable: false, message: 'a stored secret could not be decrypted (wrong key or tampered)' },
  // SIP 486 Busy Here: the tenant's lines are all busy, which is what a caller should hear.
  CG_CALL_LIMIT_REACHED: { status: 429, sip: SIP.busyHere, retryable: true, message: 'the tenant is at its limit of concurrent calls', hint: 'wait for a call to end, or raise the tenant\'s maxConcurrentCalls (admin token)' },
  CG_REDIS_UNAVAILABLE: { status: 503, sip: SIP.unavailable, retryable: true, message: 'Redis did not answer in time', hint: 'check that Redis is running and that REDIS_URL points at it; try again in a few seconds' },

  // ── HTTP API (src/http) ───────────────────────────────────────────────────────────────────────
  CG_HTTP_UNAUTHORIZED: { status: 401, sip: SIP.forbidden, retryable: false, message: 'missing or invalid API token', hint: 'send `Authorization: Bearer <token>` with the admin token (var/admin-token, or CALLGATE_ADMIN_TOKEN) or a tenant key from POST /v1/tenants/{id}/keys' },
  CG_HTTP_FORBIDDEN: { status: 403, sip: SIP.forbidden, retryable: false, message: 'this key may not act on that tenant', hint: 'use the admin token, or the key of the tenant named in the path' },
  CG_HTTP_NOT_FOUND: { status: 404, sip: SIP.forbidden, retryable: false, message: 'no such route', hint: 'check the method and path against the API reference at /docs' },
  CG_HTTP_BAD_REQUEST: { status: 400, sip: SIP.forbidden, retryable: false, message: 'request is invalid', hint: 'fix what `details` names; /docs shows each route\'s body' },
  CG_HTTP_BODY_TOO_LARGE: { status: 413, sip: SIP.forbidden, retryable: false, message: 'request body is larger than this route accepts', hint: 'send a smaller body' },
  CG_HTTP_UNSUPPORTED_MEDIA_TYPE: { status: 415, sip: SIP.forbidden, retryable: false, message: 'request body must be JSON (content-type: application/json)', hint: 'send the body as JSON with `content-type: application/json`' },
  CG_HTTP_RATE_LIMITED: { status: 429, sip: SIP.forbidden, retryable: true, message: 'too many requests; retry after the time in the Retry-After header', hint: 'wait the seconds in Retry-After, then try again' },
  CG_API_KEY_NOT_FOUND: { status: 404, sip: SIP.forbidden, retryable: false, message: 'no API key with that id for this tenant', hint: 'check the key id; GET /v1/tenants/{id}/keys lists them' },
  CG_PREVIEW_UNAVAILABLE: { status: 503, sip: SIP.serverError, retryable: true, message: 'the greeting preview could not be synthesised', hint: 'try again in a minute' },

  // ── Configuration ─────────────────────────────────────────────────────────────────────────────
  CG_CONFIG_INVALID: { status: 500, sip: SIP.serverError, retryable: false, message: 'configuration value is invalid', hint: 'see the configuration table in the README for each setting\'s allowed values' },
  CG_INTERNAL: { status: 500, sip: SIP.serverError, retryable: false, message: 'internal error', hint: 'try again; if it keeps happening, the gateway\'s log has the details at the time of the request' },
} as const satisfies Record<string, ErrorDefinition>;

export type ErrorCode = keyof typeof errorCatalogue;

export interface CallgateErrorOptions {
  /** Facts that help the reader of a log or an API response; never secrets or caller audio/text. */
  readonly details?: Readonly<Record<string, unknown>>;
  readonly cause?: unknown;
}

/** Every error callgate raises or returns on purpose. `code` is stable; `message` is for people. */
export class CallgateError extends Error {
  override name = 'CallgateError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, detail?: string, options: CallgateErrorOptions = {}) {
    const def: ErrorDefinition = errorCatalogue[code];
    super(detail ? `${def.message}: ${detail}` : def.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = def.status;
    this.retryable = def.retryable;
    this.details = options.details;
  }

  /** The final response the SIP door sends for it (a getter, so logs and API bodies do not carry it). */
  get sip(): SipResponse {
    return errorCatalogue[this.code].sip;
  }

  toJSON(): { code: ErrorCode; message: string; hint?: string; details?: Readonly<Record<string, unknown>> } {
    const hint = (errorCatalogue[this.code] as ErrorDefinition).hint;
    return { code: this.code, message: this.message, ...(hint ? { hint } : {}), ...(this.details ? { details: this.details } : {}) };
  }
}

/** Packet-level problems: counted and dropped by the endpoint, never thrown out of a socket handler. */
export class MediaError extends CallgateError {
  override name = 'MediaError';
}

/** An SDP we cannot use: 400/422 over HTTP, 400/488 on SIP (the catalogue's `status` and `sip`). */
export class SdpError extends CallgateError {
  override name = 'SdpError';
}

/** A capture (pcap/pcapng) or WAV file we cannot read. */
export class CaptureError extends CallgateError {
  override name = 'CaptureError';
}

/**
 * Hot paths (one call per packet) return failures instead of throwing: an Error per hostile packet
 * would capture a stack each time, and a flood of them is exactly when we need to stay cheap. The
 * failure carries only the stable code; `toError` builds a real error when one must be surfaced.
 */
export type Parsed<T> = { ok: true; value: T } | { ok: false; code: ErrorCode; detail?: string };

export function fail(code: ErrorCode, detail?: string): { ok: false; code: ErrorCode; detail?: string } {
  return detail === undefined ? { ok: false, code } : { ok: false, code, detail };
}

export function toError(failure: { code: ErrorCode; detail?: string }): CallgateError {
  return new CallgateError(failure.code, failure.detail);
}

export function isCallgateError(err: unknown): err is CallgateError {
  return err instanceof CallgateError;
}

/** The catalogue code of any thrown value: its own for a CallgateError, CG_INTERNAL for anything else. */
export function errorCode(err: unknown): ErrorCode {
  return isCallgateError(err) ? err.code : 'CG_INTERNAL';
}
