import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { CallgateError } from '../errors.js';
import { cloudEnvFrom, type CloudEnv } from '../agent/cloudProviders.js';
import { defaultRtpengineProcessOptions, type RtpengineProcessOptions } from '../sip/rtpengine/RtpengineProcess.js';
import { drachtioConnectionFromEnv, type DrachtioConnection } from '../sip/SipConfig.js';
import { defaultDrachtioServerOptions } from '../sip/drachtioServer.js';
import { defaultSourceLimiterOptions } from '../sip/invite/SourceLimiter.js';
import { defaultSourceIgnoreOptions } from '../sip/invite/SourceIgnoreList.js';
import { defaultSipAuthFailureOptions } from '../tenants/SipAuthFailureStore.js';
import { defaultRedisOptions } from '../tenants/redisClient.js';
import { defaultWebRtcDoorOptions } from '../webrtc/WebRtcDoor.js';
import { iceConfigFromEnv, type IceConfig } from '../webrtc/iceServers.js';

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
  /**
   * `CALLGATE_SIP=1` (or `npm start -- --sip`): the gateway starts a drachtio-server of its own
   * (src/sip/drachtioServer.ts) serving SIP on this address and port, and opens the SIP door on it.
   * Undefined: no drachtio is started (`drachtio` may still name a running one; not both).
   */
  readonly sipServer: SipServerConfig | undefined;
  /** rtpengine's ng control port when one runs already; undefined with a SIP door starts one. */
  readonly rtpengineNgPort: number | undefined;
  /**
   * The rtpengine the gateway starts (none of these apply with `rtpengineNgPort`): the address callers'
   * media is relayed on, the address written into the SDP they get (a public or NAT address), and the
   * UDP ports it may use. Our own agent legs stay on loopback whatever these say.
   */
  readonly rtpengineInterface: string;
  readonly rtpengineAdvertisedAddress: string | undefined;
  readonly rtpenginePortMin: number;
  readonly rtpenginePortMax: number;
  /**
   * ng `direction` names (caller side, agent side) for an rtpengine with two interfaces; set for cluster
   * workers by the primary (CALLGATE_RTPENGINE_DIRECTION), whose rtpengine they share.
   */
  readonly rtpengineDirection: { readonly caller: string; readonly agent: string } | undefined;
  /**
   * INVITEs per second one source address may send (a burst of three seconds' worth): above it, 503.
   * A carrier sending all its calls from one address needs this raised to its peak call rate.
   */
  readonly sipInvitesPerSecond: number;
  /**
   * Failed SIP digest attempts (per username, and per source address, cluster-wide) within
   * `sipAuthWindowMs` that lock it out for `sipAuthLockoutMs`, doubling for each repeat up to
   * `sipAuthMaxLockoutMs` (src/tenants/SipAuthFailureStore.ts).
   */
  readonly sipAuthMaxFailures: number;
  readonly sipAuthWindowMs: number;
  readonly sipAuthLockoutMs: number;
  readonly sipAuthMaxLockoutMs: number;
  /** Refusals in a minute after which a source's INVITEs are dropped unanswered for `sipIgnoreMs` (0: never). */
  readonly sipIgnoreAfterRefusals: number;
  readonly sipIgnoreMs: number;
  /** A direct WebRTC call whose media has not connected this long after its answer is given up on (it holds no line meanwhile). */
  readonly webrtcConnectTimeoutMs: number;
  /** Direct WebRTC offers from one client IP answered but not yet connected; a newer one gives up the oldest. */
  readonly webrtcPendingPerIp: number;
  /** Address the direct WebRTC door's peers gather on: one browsers (or the TURN server beside the gateway) can reach. */
  readonly webrtcIceAddress: string;
  /**
   * STUN/TURN for the direct WebRTC door (src/webrtc/iceServers.ts): ICE_SERVERS for every page and
   * peer, and with TURN_SECRET + TURN_URLS a time-limited coturn REST credential per page and per call.
   * The TURN secret is inside `ice.turn.sign`, out of reach of any log line or JSON of this object.
   */
  readonly ice: IceConfig;
  readonly cloud: CloudEnv;
  /** On SIGTERM, how long calls in progress may go on before the agent says goodbye and hangs up. */
  readonly drainTimeoutMs: number;
  /**
   * The demo (Joe's Pizza at /c/demo): made at start when absent, never changed when there (an
   * operator's edits stay), its loopback trunk and number only with the SIP door. Off: `--no-demo` or
   * CALLGATE_SEED_DEMO=0.
   */
  readonly seedDemo: boolean;
  /** This process writes the demo objects (when absent); in a cluster only the first worker does. */
  readonly demoWriter: boolean;
  /**
   * Tenants whose greeting and fixed phrases are made before /readyz says ready (the demo tenant too
   * when seeded), so their first call after a start does not wait for TTS. Others' are made on their first call.
   */
  readonly warmTenants: readonly string[];
  /**
   * A call's line lease and record snapshot lifetime: how soon a killed gateway's calls free their
   * lines and get their `lost` records.
   */
  readonly callLeaseMs: number;
  /** Bearer token /metrics wants when set (at least 24 characters); see src/app/metricsEndpoint.ts. Never logged. */
  readonly metricsToken: string | undefined;
  /** /metrics on its own listener (`metricsHost:metricsPort`) instead of the HTTP port; undefined: on the HTTP port. */
  readonly metricsPort: number | undefined;
  readonly metricsHost: string;
}

/** Where the drachtio-server the gateway starts serves SIP (UDP and TCP). */
export interface SipServerConfig {
  readonly address: string;
  readonly port: number;
}

export const defaultSipServerConfig = {
  /** Loopback unless SIP_ADDRESS names another address: not exposed until the operator says so, as HTTP. */
  address: defaultDrachtioServerOptions.sipAddress,
  /** 5060, SIP's well-known port: what a softphone dials when the address names none. */
  port: defaultDrachtioServerOptions.sipPort,
} as const satisfies SipServerConfig;

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
  /** The SIP door's own defaults (5 failures in 10 min → 15 min, doubling up to 4 h; see SipAuthFailureStore for why). */
  sipAuthMaxFailures: defaultSipAuthFailureOptions.maxFailures,
  sipAuthWindowMs: defaultSipAuthFailureOptions.windowMs,
  sipAuthLockoutMs: defaultSipAuthFailureOptions.lockoutMs,
  sipAuthMaxLockoutMs: defaultSipAuthFailureOptions.maxLockoutMs,
  /** 100 refusals in a minute → ignored 10 min (see SourceIgnoreList for why). */
  sipIgnoreAfterRefusals: defaultSourceIgnoreOptions.refusals,
  sipIgnoreMs: defaultSourceIgnoreOptions.ignoreMs,
  /** The WebRTC door's own defaults (5 s, 4 per IP; see src/webrtc/WebRtcDoor.ts for why). */
  webrtcConnectTimeoutMs: defaultWebRtcDoorOptions.connectTimeoutMs,
  webrtcPendingPerIp: defaultWebRtcDoorOptions.maxPendingPerAddress,
  /** Loopback, the door's own default, as the HTTP server: a public or private address is the operator's choice. */
  webrtcIceAddress: defaultWebRtcDoorOptions.iceAddress,
  seedDemo: true,
  /** One process, or the first of a cluster's workers (src/app/cluster.ts sets CALLGATE_DEMO_WRITER=0 on the rest). */
  demoWriter: true,
  /**
   * Loopback, as the HTTP server: carriers on other hosts need the operator to name an interface. With
   * CALLGATE_SIP and SIP_ADDRESS it is SIP_ADDRESS: a phone that reaches the SIP address reaches media there.
   */
  rtpengineInterface: defaultRtpengineProcessOptions.address,
  /** 30000–30999, RtpengineProcess's own: clear of 20000–29999, which our agent legs use. */
  rtpenginePortMin: defaultRtpengineProcessOptions.portMin,
  rtpenginePortMax: defaultRtpengineProcessOptions.portMax,
  /** 30 s, the call limiter's own default (see CallLimiter for why). */
  callLeaseMs: 30_000,
  /** Loopback: the metrics listener is for a Prometheus on this host unless the operator says otherwise. */
  metricsHost: '127.0.0.1',
} as const satisfies Partial<GatewayConfig>;

/** Shortest METRICS_TOKEN accepted, as for the admin token: a guessable one would list every tenant. */
export const MIN_METRICS_TOKEN_CHARS = 24;

function metricsTokenFrom(env: NodeJS.ProcessEnv): string | undefined {
  const token = optional(env['METRICS_TOKEN']);
  // The message never carries the token.
  if (token !== undefined && token.length < MIN_METRICS_TOKEN_CHARS) throw new CallgateError('CG_CONFIG_INVALID', `METRICS_TOKEN must be at least ${MIN_METRICS_TOKEN_CHARS} characters`);
  return token;
}

function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new CallgateError('CG_CONFIG_INVALID', `${name} must be an integer ${min}–${max}, not "${text}"`);
  return n;
}

function ipFrom(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const ip = optional(env[name]);
  if (ip !== undefined && isIP(ip) === 0) throw new CallgateError('CG_CONFIG_INVALID', `${name} must be an IP address, not "${ip}"`);
  return ip;
}

const isUnspecified = (ip: string): boolean => ip === '0.0.0.0' || /^[0:]+$/.test(ip);

/** The rtpengine npm start runs; its ports are checked together, so a reversed range is named as such. */
function rtpengineFrom(env: NodeJS.ProcessEnv, sipServer: SipServerConfig | undefined): Pick<GatewayConfig, 'rtpengineInterface' | 'rtpengineAdvertisedAddress' | 'rtpenginePortMin' | 'rtpenginePortMax' | 'rtpengineDirection'> {
  const d = defaultGatewayConfig;
  const portMin = intFrom(env, 'RTPENGINE_PORT_MIN', d.rtpenginePortMin, 1024, 65535);
  const portMax = intFrom(env, 'RTPENGINE_PORT_MAX', d.rtpenginePortMax, 1024, 65535);
  // rtpengine takes an RTP/RTCP pair per stream: fewer than two ports can carry no call at all.
  if (portMax <= portMin) throw new CallgateError('CG_CONFIG_INVALID', `RTPENGINE_PORT_MIN (${portMin}) must be below RTPENGINE_PORT_MAX (${portMax})`);
  const iface = ipFrom(env, 'RTPENGINE_INTERFACE') ?? sipServer?.address ?? d.rtpengineInterface;
  const advertised = ipFrom(env, 'RTPENGINE_ADVERTISED_ADDRESS');
  // "Any address" in callers' SDP is an address nobody can send to; and rtpengine wants a local
  // address per interface (its manual), so 0.0.0.0 is refused there too rather than left to it.
  if (advertised !== undefined && isUnspecified(advertised)) throw new CallgateError('CG_CONFIG_INVALID', `RTPENGINE_ADVERTISED_ADDRESS must be an address callers can send to, not "${advertised}"`);
  if (isUnspecified(iface)) throw new CallgateError('CG_CONFIG_INVALID', `RTPENGINE_INTERFACE must be an address of this host, not "${iface}"`);
  const direction = optional(env['CALLGATE_RTPENGINE_DIRECTION'])?.split(',');
  return {
    rtpengineInterface: iface,
    rtpengineAdvertisedAddress: advertised,
    rtpenginePortMin: portMin,
    rtpenginePortMax: portMax,
    rtpengineDirection: direction?.length === 2 && direction[0] && direction[1] ? { caller: direction[0], agent: direction[1] } : undefined,
  };
}

/** What RtpengineProcess.start gets from the configuration. */
export function rtpengineProcessOptions(c: GatewayConfig): Partial<RtpengineProcessOptions> {
  return { callerAddress: c.rtpengineInterface, advertisedAddress: c.rtpengineAdvertisedAddress, portMin: c.rtpenginePortMin, portMax: c.rtpenginePortMax };
}

const optional = (v: string | undefined): string | undefined => (v && v.trim() ? v.trim() : undefined);

/** The digest lockout settings; the backoff's cap is never below the first lockout. */
function sipAuthFrom(env: NodeJS.ProcessEnv): Pick<GatewayConfig, 'sipAuthMaxFailures' | 'sipAuthWindowMs' | 'sipAuthLockoutMs' | 'sipAuthMaxLockoutMs'> {
  const d = defaultGatewayConfig;
  const lockoutMs = intFrom(env, 'SIP_AUTH_LOCKOUT_MS', d.sipAuthLockoutMs, 1000, 7 * 86_400_000);
  const maxLockoutMs = intFrom(env, 'SIP_AUTH_MAX_LOCKOUT_MS', Math.max(d.sipAuthMaxLockoutMs, lockoutMs), 1000, 30 * 86_400_000);
  if (maxLockoutMs < lockoutMs) throw new CallgateError('CG_CONFIG_INVALID', `SIP_AUTH_MAX_LOCKOUT_MS (${maxLockoutMs}) must not be below SIP_AUTH_LOCKOUT_MS (${lockoutMs})`);
  return {
    sipAuthMaxFailures: intFrom(env, 'SIP_AUTH_MAX_FAILURES', d.sipAuthMaxFailures, 1, 1000),
    sipAuthWindowMs: intFrom(env, 'SIP_AUTH_WINDOW_MS', d.sipAuthWindowMs, 1000, 7 * 86_400_000),
    sipAuthLockoutMs: lockoutMs,
    sipAuthMaxLockoutMs: maxLockoutMs,
  };
}

/** An on/off setting: 1/true/yes or 0/false/no (empty is off); anything else stops the start. */
function flagFrom(env: NodeJS.ProcessEnv, name: string): boolean {
  const text = optional(env[name])?.toLowerCase();
  if (text === undefined || ['0', 'false', 'no'].includes(text)) return false;
  if (['1', 'true', 'yes'].includes(text)) return true;
  throw new CallgateError('CG_CONFIG_INVALID', `${name} must be 1 or 0, not "${env[name]}"`);
}

/**
 * The drachtio-server the gateway starts (CALLGATE_SIP=1 or `--sip`): SIP_ADDRESS (an address of this
 * host, not "any") and SIP_PORT. Not together with DRACHTIO_HOST/DRACHTIO_PORT, which name a running one.
 */
function sipServerFrom(env: NodeJS.ProcessEnv, forced: boolean): SipServerConfig | undefined {
  if (!flagFrom(env, 'CALLGATE_SIP') && !forced) return undefined;
  if (optional(env['DRACHTIO_HOST']) !== undefined || optional(env['DRACHTIO_PORT']) !== undefined) {
    throw new CallgateError('CG_CONFIG_INVALID', 'CALLGATE_SIP=1 (or --sip) starts a drachtio-server here, and DRACHTIO_HOST/DRACHTIO_PORT name one already running: set one or the other');
  }
  const address = ipFrom(env, 'SIP_ADDRESS') ?? defaultSipServerConfig.address;
  // drachtio puts the address in its Contact and Via headers: "any address" is one nobody can answer to.
  if (isUnspecified(address)) throw new CallgateError('CG_CONFIG_INVALID', `SIP_ADDRESS must be an address of this host, not "${address}"`);
  return { address, port: intFrom(env, 'SIP_PORT', defaultSipServerConfig.port, 1, 65535) };
}

/** What the command line can say besides the environment (`npm start -- --sip`). */
export interface GatewayFlags {
  /** Start drachtio-server here, as CALLGATE_SIP=1. */
  readonly sip?: boolean;
}

export function gatewayConfigFromEnv(env: NodeJS.ProcessEnv = process.env, flags: GatewayFlags = {}): GatewayConfig {
  const rtpengine = optional(env['RTPENGINE_NG_PORT']);
  const sipServer = sipServerFrom(env, flags.sip === true);
  return {
    httpHost: optional(env['HTTP_HOST']) ?? defaultGatewayConfig.httpHost,
    httpPort: intFrom(env, 'HTTP_PORT', defaultGatewayConfig.httpPort, 0, 65535),
    publicBaseUrl: optional(env['PUBLIC_BASE_URL']),
    redisUrl: optional(env['REDIS_URL']),
    redisPrefix: optional(env['CALLGATE_REDIS_PREFIX']) ?? defaultGatewayConfig.redisPrefix,
    adminToken: optional(env['CALLGATE_ADMIN_TOKEN']),
    dataDir: resolve(optional(env['CALLGATE_DATA_DIR']) ?? defaultGatewayConfig.dataDir),
    drachtio: drachtioConnectionFromEnv(env),
    sipServer,
    rtpengineNgPort: rtpengine === undefined ? undefined : intFrom(env, 'RTPENGINE_NG_PORT', 0, 1, 65535),
    ...rtpengineFrom(env, sipServer),
    sipInvitesPerSecond: intFrom(env, 'SIP_INVITES_PER_SECOND', defaultGatewayConfig.sipInvitesPerSecond, 1, 100_000),
    ...sipAuthFrom(env),
    sipIgnoreAfterRefusals: intFrom(env, 'SIP_IGNORE_AFTER_REFUSALS', defaultGatewayConfig.sipIgnoreAfterRefusals, 1, 1_000_000),
    sipIgnoreMs: intFrom(env, 'SIP_IGNORE_MS', defaultGatewayConfig.sipIgnoreMs, 0, 86_400_000),
    webrtcConnectTimeoutMs: intFrom(env, 'WEBRTC_CONNECT_TIMEOUT_MS', defaultGatewayConfig.webrtcConnectTimeoutMs, 500, 60_000),
    webrtcPendingPerIp: intFrom(env, 'WEBRTC_PENDING_PER_IP', defaultGatewayConfig.webrtcPendingPerIp, 1, 10_000),
    // Its defaults are iceServers.ts' own (`defaultIceOptions`: TURN_TTL_S 3600, each with its reason).
    ice: iceConfigFromEnv(env),
    webrtcIceAddress: ipFrom(env, 'WEBRTC_ICE_ADDRESS') ?? defaultGatewayConfig.webrtcIceAddress,
    cloud: cloudEnvFrom(env),
    drainTimeoutMs: intFrom(env, 'DRAIN_TIMEOUT_MS', defaultGatewayConfig.drainTimeoutMs, 0, 3_600_000),
    seedDemo: env['CALLGATE_SEED_DEMO'] !== '0',
    demoWriter: env['CALLGATE_DEMO_WRITER'] !== '0',
    warmTenants: (env['CALLGATE_WARM_TENANTS'] ?? '').split(',').map((id) => id.trim()).filter((id) => id !== ''),
    callLeaseMs: intFrom(env, 'CALLGATE_CALL_LEASE_MS', defaultGatewayConfig.callLeaseMs, 3000, 600_000),
    metricsToken: metricsTokenFrom(env),
    metricsPort: optional(env['METRICS_PORT']) === undefined ? undefined : intFrom(env, 'METRICS_PORT', 0, 0, 65535),
    metricsHost: optional(env['METRICS_HOST']) ?? defaultGatewayConfig.metricsHost,
  };
}
