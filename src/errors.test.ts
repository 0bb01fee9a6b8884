import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CallgateError, errorCatalogue, fail, MediaError, toError } from './errors.js';

describe('error catalogue', () => {
  it('documents every code in docs/errors.md', () => {
    const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
    const missing = Object.keys(errorCatalogue).filter((code) => !doc.includes(`\`${code}\``));
    expect(missing).toEqual([]);
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
  });

  it('turns a hot-path failure into an error only when asked', () => {
    const failure = fail('CG_RTP_TOO_SHORT', '3 bytes');
    expect(failure).toEqual({ ok: false, code: 'CG_RTP_TOO_SHORT', detail: '3 bytes' });
    const err = toError(failure);
    expect(err.code).toBe('CG_RTP_TOO_SHORT');
    expect(err.retryable).toBe(false);
  });
});
