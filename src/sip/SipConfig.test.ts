import { describe, expect, it } from 'vitest';
import { digestOptionsFromEnv, drachtioConnectionFromEnv } from './SipConfig.js';

describe('SIP door settings from the environment', () => {
  it('is off without DRACHTIO_HOST/PORT, and needs the secret once configured', () => {
    expect(drachtioConnectionFromEnv({})).toBeUndefined();
    expect(() => drachtioConnectionFromEnv({ DRACHTIO_HOST: '10.0.0.5' })).toThrow(expect.objectContaining({ code: 'CG_CONFIG_INVALID' }));
    expect(drachtioConnectionFromEnv({ DRACHTIO_HOST: '10.0.0.5', DRACHTIO_SECRET: 's' })).toEqual({ host: '10.0.0.5', port: 9022, secret: 's', reconnectMaxDelayMs: 2000 });
    expect(drachtioConnectionFromEnv({ DRACHTIO_PORT: '9033', DRACHTIO_SECRET: 's' })).toMatchObject({ host: '127.0.0.1', port: 9033 });
    expect(() => drachtioConnectionFromEnv({ DRACHTIO_PORT: 'abc', DRACHTIO_SECRET: 's' })).toThrow(expect.objectContaining({ code: 'CG_CONFIG_INVALID' }));
  });

  it('derives one digest nonce key per deployment from CALLGATE_SECRET_KEY, and reads SIP_REALM', () => {
    const key = Buffer.alloc(32, 3).toString('base64');
    const a = digestOptionsFromEnv({ CALLGATE_SECRET_KEY: key, SIP_REALM: 'calls.example.com' });
    const b = digestOptionsFromEnv({ CALLGATE_SECRET_KEY: key });
    expect(a.realm).toBe('calls.example.com');
    expect(a.secret).toEqual(b.secret);
    // Derived, not the storage key itself.
    expect(a.secret!.equals(Buffer.from(key, 'base64'))).toBe(false);
    expect(digestOptionsFromEnv({})).toEqual({});
  });
});
