import { isCallgateError, type ErrorCode } from '../errors.js';

/**
 * A SIP final response for a call we will not take. Every failure of the INVITE chain becomes one of
 * these in one place (`sipErrorFrom`), so the mapping from callgate's error codes to SIP statuses is
 * read and changed here, not scattered through handlers.
 */
export class SipError extends Error {
  override readonly name = 'SipError';

  constructor(
    readonly status: number,
    readonly reason: string,
    /** Extra headers for the response (e.g. Retry-After). */
    readonly headers: Readonly<Record<string, string>> = {},
    /** Send nothing at all (scanners): a response only confirms that something listens here. */
    readonly silent = false,
    /** The callgate code behind it, for logs and call records. */
    readonly code?: ErrorCode,
  ) {
    super(`${status} ${reason}`);
  }
}

/** Seconds a caller (or carrier) should wait before retrying when we are busy or degraded. */
export const RETRY_AFTER_S = { busy: 30, degraded: 5 } as const;

const BY_CODE: Partial<Record<ErrorCode, [number, string]>> = {
  CG_NUMBER_NOT_FOUND: [404, 'Not Found'],
  CG_TENANT_NOT_FOUND: [404, 'Not Found'],
  CG_SDP_MALFORMED: [400, 'Bad Request'],
  CG_SDP_NO_AUDIO: [488, 'Not Acceptable Here'],
  CG_SDP_NO_COMMON_CODEC: [488, 'Not Acceptable Here'],
  CG_SDP_BAD_CONNECTION: [488, 'Not Acceptable Here'],
  CG_SDP_NOT_WEBRTC: [488, 'Not Acceptable Here'],
  CG_PORT_RANGE_EXHAUSTED: [503, 'Service Unavailable'],
};

/** The SIP response for any error the INVITE chain raised. */
export function sipErrorFrom(err: unknown): SipError {
  if (err instanceof SipError) return err;
  if (!isCallgateError(err)) return new SipError(500, 'Server Internal Error', {}, false, 'CG_INTERNAL');
  if (err.code === 'CG_CALL_LIMIT_REACHED') {
    // 486: this tenant's lines are all busy, which is what a caller should hear; try again later.
    return new SipError(486, 'Busy Here', { 'Retry-After': String(RETRY_AFTER_S.busy) }, false, err.code);
  }
  if (err.code === 'CG_REDIS_UNAVAILABLE' || err.code === 'CG_DRAINING' || err.code.startsWith('CG_RTPENGINE_')) {
    return new SipError(503, 'Service Unavailable', { 'Retry-After': String(RETRY_AFTER_S.degraded) }, false, err.code);
  }
  const mapped = BY_CODE[err.code];
  if (mapped) return new SipError(mapped[0], mapped[1], {}, false, err.code);
  return new SipError(err.status >= 500 ? 500 : 403, err.status >= 500 ? 'Server Internal Error' : 'Forbidden', {}, false, err.code);
}
