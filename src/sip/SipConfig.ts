import { createHash } from 'node:crypto';
import { CallgateError } from '../errors.js';
import { SECRET_KEY_ENV } from '../tenants/secrets.js';
import type { DigestAuthOptions } from './invite/DigestAuth.js';

/** Where drachtio-server's admin (command) port is, and its shared secret. */
export interface DrachtioConnection {
  readonly host: string;
  readonly port: number;
  readonly secret: string;
  /** Longest wait between reconnection attempts after the link to drachtio is lost. */
  readonly reconnectMaxDelayMs?: number;
}

export const defaultDrachtioConnection = {
  host: '127.0.0.1',
  /** drachtio-server's default admin port. */
  port: 9022,
  /** 2 s: drachtio-srf's own backoff grows without bound; a restarted drachtio should see us back quickly. */
  reconnectMaxDelayMs: 2000,
} as const satisfies Partial<DrachtioConnection>;

/**
 * The SIP door's settings from the environment. `undefined` when no drachtio is configured (neither
 * DRACHTIO_HOST nor DRACHTIO_PORT): the gateway then runs without a SIP door. A configured door must
 * have DRACHTIO_SECRET; drachtio's well-known default secret is not assumed.
 */
export function drachtioConnectionFromEnv(env: NodeJS.ProcessEnv = process.env): DrachtioConnection | undefined {
  const host = env['DRACHTIO_HOST'];
  const portText = env['DRACHTIO_PORT'];
  if (!host && !portText) return undefined;
  const port = portText ? Number(portText) : defaultDrachtioConnection.port;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new CallgateError('CG_CONFIG_INVALID', `DRACHTIO_PORT must be a port number, not "${portText}"`);
  const secret = env['DRACHTIO_SECRET'];
  if (!secret) throw new CallgateError('CG_CONFIG_INVALID', 'DRACHTIO_SECRET must be set when DRACHTIO_HOST or DRACHTIO_PORT is');
  return { host: host || defaultDrachtioConnection.host, port, secret, reconnectMaxDelayMs: defaultDrachtioConnection.reconnectMaxDelayMs };
}

/**
 * Digest settings from the environment: SIP_REALM, and a nonce key derived from CALLGATE_SECRET_KEY
 * so that every gateway of a deployment accepts the others' challenges (a random one per process
 * otherwise, fine for a single gateway).
 */
export function digestOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<DigestAuthOptions> {
  const key = env[SECRET_KEY_ENV];
  return {
    ...(env['SIP_REALM'] ? { realm: env['SIP_REALM'] } : {}),
    ...(key ? { secret: createHash('sha256').update(`callgate sip digest nonce\0${key}`).digest() } : {}),
  };
}
