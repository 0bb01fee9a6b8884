import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CallgateError } from '../errors.js';
import { maskSecret, parseSecretKey, SecretBox } from './secrets.js';

const key = randomBytes(32);

describe('secrets', () => {
  it('round-trips and uses a fresh IV each time', () => {
    const box = new SecretBox(key);
    const a = box.encrypt('sk-live-1234567890abcd');
    const b = box.encrypt('sk-live-1234567890abcd');
    expect(a).toMatch(/^v1:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain('sk-live');
    expect(box.decrypt(a)).toBe('sk-live-1234567890abcd');
    expect(box.decrypt(b)).toBe('sk-live-1234567890abcd');
  });

  it('reads the key as base64, base64url or hex', () => {
    const plain = 'trunk-password';
    const stored = new SecretBox(key).encrypt(plain);
    for (const text of [key.toString('base64'), key.toString('base64url'), key.toString('hex')]) {
      expect(new SecretBox(text).decrypt(stored)).toBe(plain);
    }
    expect(parseSecretKey(` ${key.toString('hex')} `)).toEqual(key);
  });

  it('refuses a missing or wrong-sized key with CG_SECRET_KEY_MISSING, without echoing it', () => {
    const attempts = [undefined, '', 'short', randomBytes(16).toString('base64'), 'not base64 at all!!'];
    for (const raw of attempts) {
      const err = (() => {
        try {
          new SecretBox(raw ?? '').encrypt('x');
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(CallgateError);
      expect((err as CallgateError).code).toBe('CG_SECRET_KEY_MISSING');
      if (raw) expect((err as CallgateError).message).not.toContain(raw);
    }
  });

  it('reads the key from CALLGATE_SECRET_KEY only when a secret is needed', () => {
    const before = process.env['CALLGATE_SECRET_KEY'];
    try {
      delete process.env['CALLGATE_SECRET_KEY'];
      const box = new SecretBox();
      expect(() => box.encrypt('x')).toThrow(expect.objectContaining({ code: 'CG_SECRET_KEY_MISSING' }));
      process.env['CALLGATE_SECRET_KEY'] = key.toString('base64');
      expect(new SecretBox().decrypt(new SecretBox(key).encrypt('hello'))).toBe('hello');
    } finally {
      if (before === undefined) delete process.env['CALLGATE_SECRET_KEY'];
      else process.env['CALLGATE_SECRET_KEY'] = before;
    }
  });

  it('detects tampering, a wrong key and malformed values (CG_SECRET_UNREADABLE)', () => {
    const box = new SecretBox(key);
    const stored = box.encrypt('sk-secret-value');
    const [v, iv, tag, ct] = stored.split(':') as [string, string, string, string];
    const flip = (b64: string): string => {
      const buf = Buffer.from(b64, 'base64');
      buf[0] = buf[0]! ^ 1;
      return buf.toString('base64');
    };
    const bad = [
      [v, iv, tag, flip(ct)].join(':'),
      [v, iv, flip(tag), ct].join(':'),
      [v, flip(iv), tag, ct].join(':'),
      ['v2', iv, tag, ct].join(':'),
      'sk-secret-value',
      [v, iv, tag].join(':'),
    ];
    for (const value of bad) expect(() => box.decrypt(value)).toThrow(expect.objectContaining({ code: 'CG_SECRET_UNREADABLE' }));
    expect(() => new SecretBox(randomBytes(32)).decrypt(stored)).toThrow(expect.objectContaining({ code: 'CG_SECRET_UNREADABLE' }));
  });

  it('masks to the last four characters, and to nothing for short secrets', () => {
    expect(maskSecret('sk-abcdefgh1234')).toEqual({ set: true, last4: '1234' });
    expect(maskSecret('password')).toEqual({ set: true, last4: '' });
  });
});
