import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { CallgateError } from '../errors.js';

/**
 * Provider keys and trunk passwords at rest: AES-256-GCM under one server key, so a Redis dump or
 * backup alone gives nothing away, and any change to a stored value is detected (the GCM tag).
 * Hand-written over node:crypto because it is a dozen lines around a vetted primitive; a library would
 * add a dependency without adding safety.
 *
 * Format: `v1:<iv>:<tag>:<ciphertext>`, each part base64. The version lets a later key rotation or
 * algorithm change read old values.
 */
export const SECRET_KEY_ENV = 'CALLGATE_SECRET_KEY';

const VERSION = 'v1';
/** 12 bytes: the IV length GCM is specified for (other lengths are hashed down, weaker). */
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

/**
 * Reads the 32-byte key from base64 or hex. Throws CG_SECRET_KEY_MISSING when absent or the wrong size;
 * the error never includes the value.
 */
export function parseSecretKey(raw: string | undefined): Buffer {
  const value = raw?.trim();
  if (!value) throw new CallgateError('CG_SECRET_KEY_MISSING', `${SECRET_KEY_ENV} is not set`);
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(value)) key = Buffer.from(value, 'hex');
  else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) key = Buffer.from(value, value.includes('-') || value.includes('_') ? 'base64url' : 'base64');
  if (key?.length !== KEY_BYTES) {
    throw new CallgateError('CG_SECRET_KEY_MISSING', `${SECRET_KEY_ENV} must be 32 bytes as base64 or 64 hex digits`, {
      details: { decodedBytes: key?.length ?? 0 },
    });
  }
  return key;
}

/** Encrypts and decrypts secrets. The key is read when first needed, so a deployment without secrets needs no key. */
export class SecretBox {
  #key: Buffer | undefined;
  readonly #source: () => string | undefined;

  /** `key`: a fixed key (tests) or, by default, read from CALLGATE_SECRET_KEY when first needed. */
  constructor(key?: string | Buffer) {
    if (Buffer.isBuffer(key)) {
      if (key.length !== KEY_BYTES) throw new CallgateError('CG_SECRET_KEY_MISSING', 'key must be 32 bytes');
      this.#key = Buffer.from(key);
      this.#source = () => undefined;
    } else {
      this.#source = key === undefined ? () => process.env[SECRET_KEY_ENV] : () => key;
    }
  }

  #getKey(): Buffer {
    this.#key ??= parseSecretKey(this.#source());
    return this.#key;
  }

  encrypt(plaintext: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#getKey(), iv);
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, iv.toString('base64'), cipher.getAuthTag().toString('base64'), ciphertext.toString('base64')].join(':');
  }

  /** Throws CG_SECRET_UNREADABLE on a wrong key, a changed byte or a malformed value. */
  decrypt(stored: string): string {
    const parts = stored.split(':');
    if (parts.length !== 4 || parts[0] !== VERSION) {
      throw new CallgateError('CG_SECRET_UNREADABLE', `not a ${VERSION} secret`);
    }
    const iv = Buffer.from(parts[1]!, 'base64');
    const tag = Buffer.from(parts[2]!, 'base64');
    const ciphertext = Buffer.from(parts[3]!, 'base64');
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new CallgateError('CG_SECRET_UNREADABLE', 'bad IV or tag length');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#getKey(), iv, { authTagLength: TAG_BYTES });
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
    } catch (cause) {
      // The cause from node:crypto says only "Unsupported state or unable to authenticate data".
      throw new CallgateError('CG_SECRET_UNREADABLE', 'authentication failed', { cause });
    }
  }
}

export function isEncrypted(value: string): boolean {
  return value.startsWith(`${VERSION}:`);
}

/** What `get()` shows of a secret: that it is set and its last four characters, never more. */
export interface MaskedSecret {
  readonly set: true;
  readonly last4: string;
}

export function maskSecret(plaintext: string): MaskedSecret {
  // Short secrets show nothing: four characters of an eight-character password is half of it.
  return { set: true, last4: plaintext.length >= 12 ? plaintext.slice(-4) : '' };
}
