import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CallgateError, errorCatalogue, fail, MediaError, toError, type ErrorDefinition } from './errors.js';

describe('error catalogue', () => {
  it('documents every code in docs/errors.md', () => {
    const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
    const missing = Object.keys(errorCatalogue).filter((code) => !doc.includes(`\`${code}\``));
    expect(missing).toEqual([]);
  });

  it("gives every code an HTTP status, a SIP response with its reason, and whether it is retryable", () => {
    for (const [code, def] of Object.entries(errorCatalogue) as [string, ErrorDefinition][]) {
      const [sipStatus, sipReason] = def.sip;
      expect({ code, http: def.status >= 400 && def.status <= 599 }).toEqual({ code, http: true });
      expect({ code, sip: sipStatus >= 400 && sipStatus <= 699 && Number.isInteger(sipStatus) }).toEqual({ code, sip: true });
      expect(sipReason.trim(), code).not.toBe('');
      expect(typeof def.retryable, code).toBe('boolean');
    }
  });

  it("answers a refused offer with each door's own kind: 422 over HTTP, 488 on SIP", () => {
    for (const code of ['CG_SDP_NO_AUDIO', 'CG_SDP_NO_COMMON_CODEC', 'CG_SDP_BAD_CONNECTION', 'CG_SDP_NOT_WEBRTC', 'CG_SDP_TOO_MANY_MEDIA'] as const) {
      expect(new CallgateError(code)).toMatchObject({ code, status: 422, sip: [488, 'Not Acceptable Here'] });
    }
    expect(new CallgateError('CG_SDP_MALFORMED')).toMatchObject({ status: 400, sip: [400, 'Bad Request'] });
  });

  it("lists each code's HTTP status, SIP response and retryability in docs/errors.md as the catalogue has them", () => {
    const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
    const rows = new Map<string, string>();
    for (const m of doc.matchAll(/^\| `(CG_[A-Z_]+)` \| (\d+) \| (\d+ [^|]+?) \| (yes|no) \|/gm)) rows.set(m[1]!, `${m[2]} | ${m[3]} | ${m[4]}`);
    for (const [code, def] of Object.entries(errorCatalogue) as [string, ErrorDefinition][]) {
      expect({ code, row: rows.get(code) }).toEqual({ code, row: `${def.status} | ${def.sip[0]} ${def.sip[1]} | ${def.retryable ? 'yes' : 'no'}` });
    }
  });

  it('tells API clients what to do: the codes a caller of the API can act on carry a hint, sent beside the message', () => {
    for (const code of ['CG_HTTP_UNAUTHORIZED', 'CG_HTTP_FORBIDDEN', 'CG_TENANT_NOT_FOUND', 'CG_TENANT_INVALID', 'CG_CALL_URL_ORIGIN', 'CG_CALL_LIMIT_REACHED', 'CG_REDIS_UNAVAILABLE', 'CG_INTERNAL'] as const) {
      expect((errorCatalogue[code] as ErrorDefinition).hint, code).toMatch(/\w{3,}/);
    }
    expect(new CallgateError('CG_TENANT_NOT_FOUND', 'acme').toJSON()).toEqual({ code: 'CG_TENANT_NOT_FOUND', message: 'no tenant with that id: acme', hint: "check the id; GET /v1/tenants lists them" });
  });

  it('builds typed errors carrying code, status, retryability and details', () => {
    const err = new MediaError('CG_PORT_RANGE_EXHAUSTED', '20000-20001', { details: { legs: 1 } });
    expect(err).toBeInstanceOf(CallgateError);
    expect(err.name).toBe('MediaError');
    expect(err.code).toBe('CG_PORT_RANGE_EXHAUSTED');
    expect(err.status).toBe(503);
    expect(err.retryable).toBe(true);
    expect(err.message).toBe('no free UDP port in the configured RTP port range: 20000-20001');
    expect(err.toJSON()).toEqual({ code: 'CG_PORT_RANGE_EXHAUSTED', message: err.message, details: { legs: 1 } });
    // The SIP answer is read from the catalogue, not carried: API bodies and logs stay as they were.
    expect(err.sip).toEqual([503, 'Service Unavailable']);
    expect(Object.keys(err)).not.toContain('sip');
  });

  it('turns a hot-path failure into an error only when asked', () => {
    const failure = fail('CG_RTP_TOO_SHORT', '3 bytes');
    expect(failure).toEqual({ ok: false, code: 'CG_RTP_TOO_SHORT', detail: '3 bytes' });
    const err = toError(failure);
    expect(err.code).toBe('CG_RTP_TOO_SHORT');
    expect(err.retryable).toBe(false);
  });
});
