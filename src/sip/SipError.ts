import { errorCatalogue, errorCode, type ErrorCode } from '../errors.js';

/**
 * A SIP final response for a call we will not take. Every failure of the INVITE chain becomes one of
 * these in one place (`sipErrorFrom`); the SIP status of each code is in the error catalogue
 * (src/errors.ts, its `sip`), next to its HTTP status, not scattered through handlers.
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

/**
 * Codes whose refusal asks the caller to come back: a busy tenant after a call or two has ended, a
 * degraded gateway (Redis, rtpengine, draining) once a carrier has tried elsewhere.
 */
const RETRY_AFTER_S_BY_CODE: Partial<Record<ErrorCode, number>> = {
  CG_CALL_LIMIT_REACHED: RETRY_AFTER_S.busy,
  CG_REDIS_UNAVAILABLE: RETRY_AFTER_S.degraded,
  CG_DRAINING: RETRY_AFTER_S.degraded,
  CG_RTPENGINE_UNAVAILABLE: RETRY_AFTER_S.degraded,
  CG_RTPENGINE_FAILED: RETRY_AFTER_S.degraded,
  CG_RTPENGINE_BAD_SDP: RETRY_AFTER_S.degraded,
};

/** The SIP response for any error the INVITE chain raised: the catalogue's `sip` for its code. */
export function sipErrorFrom(err: unknown): SipError {
  // A SipError was decided where it was thrown (a digest challenge, a silent drop): sent as it is.
  if (err instanceof SipError) return err;
  const code = errorCode(err);
  const [status, reason] = errorCatalogue[code].sip;
  const retryAfterS = RETRY_AFTER_S_BY_CODE[code];
  return new SipError(status, reason, retryAfterS === undefined ? {} : { 'Retry-After': String(retryAfterS) }, false, code);
}
