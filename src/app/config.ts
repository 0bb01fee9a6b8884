import { resolve } from 'node:path';
import { CallgateError } from '../errors.js';
import { cloudEnvFrom, type CloudEnv } from '../providers/cloud.js';
import { drachtioConnectionFromEnv, type DrachtioConnection } from '../sip/SipConfig.js';
import { defaultSourceLimiterOptions } from '../sip/invite/SourceLimiter.js';
import { defaultRedisOptions } from '../tenants/redisClient.js';

/**
 * What `npm start` runs with, read from the environment in one place (the README's configuration
 * table lists the same variables). Everything has a default that works on a fresh machine.
 */
export interface GatewayConfig {
  readonly httpHost: string;
  readonly httpPort: number;
  /** Where the web phone is reachable from outside; call URLs are built on it. */
  readonly publicBaseUrl: string | undefined;
  /** undefined: use 127.0.0.1:6379 if something answers there, else start an embedded redis-server. */
  readonly redisUrl: string | undefined;
  readonly redisPrefix: string;
  /** undefined: a token is made on first start and kept in `<dataDir>/admin-token` (mode 600). */
  readonly adminToken: string | undefined;
  /** Runtime state: the embedded Redis's data, the generated admin token. */
  readonly dataDir: string;
  /** The SIP door: drachtio-server's admin connection; undefined runs without SIP. */
  readonly drachtio: DrachtioConnection | undefined;
  /** rtpengine's ng control port when one runs already; undefined with a SIP door starts one. */
  readonly rtpengineNgPort: number | undefined;
  /**
   * INVITEs per second one source address may send (a burst of three seconds' worth): above it, 503.
   * A carrier sending all its calls from one address needs this raised to its peak call rate.
   */
  readonly sipInvitesPerSecond: number;
  readonly cloud: CloudEnv;
  /** On SIGTERM, how long calls in progress may go on before the agent says goodbye and hangs up. */
  readonly drainTimeoutMs: number;
  /** Write the demo tenant (Joe's Pizza at /c/demo) at start. */
  readonly seedDemo: boolean;
  /**
   * A call's line lease and record snapshot lifetime: how soon a killed gateway's calls free their
   * lines and get their `lost` records.
   */
  readonly callLeaseMs: number;
}

export const defaultGatewayConfig = {
  /** Loopback unless configured: a fresh machine's gateway is not exposed until the operator says so (docker sets 0.0.0.0). */
  httpHost: '127.0.0.1',
  httpPort: 8080,
  redisPrefix: defaultRedisOptions.prefix,
  dataDir: 'var',
  /** 30 s: long enough for most calls' last exchange, short enough for a rolling deploy. */
  drainTimeoutMs: 30_000,
  /** The SIP door's own default (src/sip/invite/SourceLimiter.ts): a PBX or small trunk stays well under it. */
  sipInvitesPerSecond: defaultSourceLimiterOptions.invitesPerSecond,
  seedDemo: true,
  /** 30 s, the call limiter's own default (see CallLimiter for why). */
  callLeaseMs: 30_000,
} as const satisfies Partial<GatewayConfig>;

function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new CallgateError('CG_CONFIG_INVALID', `${name} must be an integer ${min}–${max}, not "${text}"`);
  return n;
}

const optional = (v: string | undefined): string | undefined => (v && v.trim() ? v.trim() : undefined);

export function gatewayConfigFromEnv(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const rtpengine = optional(env['RTPENGINE_NG_PORT']);
  return {
    httpHost: optional(env['HTTP_HOST']) ?? defaultGatewayConfig.httpHost,
    httpPort: intFrom(env, 'HTTP_PORT', defaultGatewayConfig.httpPort, 0, 65535),
    publicBaseUrl: optional(env['PUBLIC_BASE_URL']),
    redisUrl: optional(env['REDIS_URL']),
    redisPrefix: optional(env['CALLGATE_REDIS_PREFIX']) ?? defaultGatewayConfig.redisPrefix,
    adminToken: optional(env['CALLGATE_ADMIN_TOKEN']),
    dataDir: resolve(optional(env['CALLGATE_DATA_DIR']) ?? defaultGatewayConfig.dataDir),
    drachtio: drachtioConnectionFromEnv(env),
    rtpengineNgPort: rtpengine === undefined ? undefined : intFrom(env, 'RTPENGINE_NG_PORT', 0, 1, 65535),
    sipInvitesPerSecond: intFrom(env, 'SIP_INVITES_PER_SECOND', defaultGatewayConfig.sipInvitesPerSecond, 1, 100_000),
    cloud: cloudEnvFrom(env),
    drainTimeoutMs: intFrom(env, 'DRAIN_TIMEOUT_MS', defaultGatewayConfig.drainTimeoutMs, 0, 3_600_000),
    seedDemo: env['CALLGATE_SEED_DEMO'] !== '0',
    callLeaseMs: intFrom(env, 'CALLGATE_CALL_LEASE_MS', defaultGatewayConfig.callLeaseMs, 3000, 600_000),
  };
}
