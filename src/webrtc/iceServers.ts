import { createHmac } from 'node:crypto';
import type { IceServer as NodeIceServer } from 'node-datachannel';
import { z } from 'zod';
import { CallgateError } from '../errors.js';

/**
 * The ICE servers (STUN, TURN) of the direct WebRTC door, for the web phone's RTCPeerConnection and
 * for the gateway's own node-datachannel peer (docs/web-phone.md, "Behind NAT: TURN").
 *
 * Two sources, both optional:
 * - `ICE_SERVERS`: a JSON array shaped like the browser's RTCIceServer[] (`{urls, username?, credential?}`),
 *   given to every page and peer as it is (a STUN server, a TURN server with fixed credentials).
 * - `TURN_SECRET` + `TURN_URLS` (+ `TURN_TTL_S`): coturn's TURN REST API (`use-auth-secret`,
 *   `static-auth-secret`): each participant gets its own time-limited credential,
 *   username `<expiry unix seconds>:<id>` and credential base64(HMAC-SHA1(secret, username)), which
 *   coturn checks with the same secret and no database. The secret itself never leaves this process:
 *   it is held in a closure (no log line or JSON of the configuration can carry it), and pages get
 *   only derived credentials.
 */

/** What node-datachannel's PeerConnection takes as `iceServers` (from `toNodeDataChannel`). */
export type NodeIceServers = readonly NodeIceServer[];

/** One ICE server as RTCPeerConnection takes it (RTCIceServer). */
export interface IceServer {
  readonly urls: string | readonly string[];
  readonly username?: string;
  readonly credential?: string;
}

/** The TURN REST API settings; `sign` holds the secret. */
export interface TurnRest {
  readonly urls: readonly string[];
  /** How long a credential is accepted after it is made. */
  readonly ttlS: number;
  /** base64(HMAC-SHA1(secret, username)). */
  readonly sign: (username: string) => string;
}

/** The ICE configuration, `GatewayConfig.ice` (src/app/config.ts). */
export interface IceConfig {
  /** ICE_SERVERS, given to every page and to the gateway's peer unchanged. */
  readonly servers: readonly IceServer[];
  /** TURN_SECRET + TURN_URLS; undefined: no per-participant TURN credentials. */
  readonly turn: TurnRest | undefined;
}

export const defaultIceOptions = {
  /**
   * 3600 s. A credential must outlive the whole call, not only its start: coturn checks the expiry on
   * every Refresh and CreatePermission of the allocation, so a relayed call that outlasts its
   * credential loses its relay. An hour covers a page's prepared connection (remade after 5 min) and a
   * long call; a credential copied out of a page is good for an hour at most.
   */
  turnTtlS: 3600,
  /** A TURN_TTL_S below 10 min would cut relayed calls short (see above). */
  minTurnTtlS: 600,
  /** HMAC keys shorter than this are guessable offline from one credential a page shows. */
  minTurnSecretChars: 16,
  /**
   * 4 s: how long the gateway's peer may gather when it has STUN/TURN servers (host candidates alone
   * take a few ms; a STUN or TURN answer is one round trip, a lost packet is retransmitted after
   * 0.5–1 s). Past it the answer carries the candidates gathered so far rather than refusing the call:
   * a slow or dead TURN server must not stop the calls that do not need it.
   */
  gatherTimeoutMs: 4000,
} as const;

const ICE_URL = /^(stuns?|turns?):/;

const iceServerSchema = z
  .object({
    urls: z.union([z.string().regex(ICE_URL, 'must start with stun:, stuns:, turn: or turns:'), z.array(z.string().regex(ICE_URL, 'must start with stun:, stuns:, turn: or turns:')).min(1)]),
    username: z.string().min(1).optional(),
    credential: z.string().min(1).optional(),
  })
  .strict()
  // Browsers throw at `new RTCPeerConnection` for a TURN URL without both (InvalidAccessError): refused at start, not on a caller's page.
  .refine((s) => !(typeof s.urls === 'string' ? [s.urls] : s.urls).some((u) => u.startsWith('turn')) || (s.username !== undefined && s.credential !== undefined), {
    message: 'a turn: or turns: URL needs username and credential',
  });

const iceServersSchema = z.array(iceServerSchema).max(16);

const optional = (v: string | undefined): string | undefined => (v && v.trim() ? v.trim() : undefined);

/** ICE_SERVERS as given; the message names what is wrong, never the text (it may hold credentials). */
export function parseIceServers(text: string): IceServer[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const why = err instanceof SyntaxError ? err.message.replace(/"[^"]*"/g, '…').slice(0, 120) : 'not JSON';
    throw new CallgateError('CG_CONFIG_INVALID', `ICE_SERVERS must be a JSON array of {urls, username?, credential?}: it is not valid JSON (${why})`);
  }
  const parsed = iceServersSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? `[${issue.path.join('].[')}]` : '';
    throw new CallgateError('CG_CONFIG_INVALID', `ICE_SERVERS${where}: ${issue?.message ?? 'invalid'} (a JSON array of {urls, username?, credential?})`);
  }
  // urls always a list: the token route's schema and the page take one shape.
  return parsed.data.map((s) => ({ urls: typeof s.urls === 'string' ? [s.urls] : s.urls, ...(s.username === undefined ? {} : { username: s.username }), ...(s.credential === undefined ? {} : { credential: s.credential }) }));
}

/** coturn's REST API credential for `username`: base64(HMAC-SHA1(secret, username)). */
export function turnCredential(secret: string, username: string): string {
  return createHmac('sha1', secret).update(username).digest('base64');
}

/** The TURN REST settings with the secret shut in `sign`. */
export function turnRest(secret: string, urls: readonly string[], ttlS: number = defaultIceOptions.turnTtlS): TurnRest {
  return { urls: [...urls], ttlS, sign: (username) => turnCredential(secret, username) };
}

/** ICE_SERVERS, TURN_SECRET, TURN_URLS and TURN_TTL_S; every mistake is a CG_CONFIG_INVALID at start. */
export function iceConfigFromEnv(env: NodeJS.ProcessEnv, turnTtlS: number = defaultIceOptions.turnTtlS): IceConfig {
  const serversText = optional(env['ICE_SERVERS']);
  const servers = serversText === undefined ? [] : parseIceServers(serversText);
  const secret = optional(env['TURN_SECRET']);
  const urls = (env['TURN_URLS'] ?? '').split(',').map((u) => u.trim()).filter((u) => u !== '');
  if (secret === undefined && urls.length === 0) {
    if (optional(env['TURN_TTL_S']) !== undefined) throw new CallgateError('CG_CONFIG_INVALID', 'TURN_TTL_S is set without TURN_SECRET and TURN_URLS');
    return { servers, turn: undefined };
  }
  if (secret === undefined) throw new CallgateError('CG_CONFIG_INVALID', 'TURN_URLS is set without TURN_SECRET (coturn\'s static-auth-secret)');
  if (urls.length === 0) throw new CallgateError('CG_CONFIG_INVALID', 'TURN_SECRET is set without TURN_URLS (comma-separated turn: or turns: URLs)');
  // The message never carries the secret.
  if (secret.length < defaultIceOptions.minTurnSecretChars) throw new CallgateError('CG_CONFIG_INVALID', `TURN_SECRET must be at least ${defaultIceOptions.minTurnSecretChars} characters`);
  for (const u of urls) {
    if (!/^turns?:/.test(u) || parseIceUrl(u) === undefined) throw new CallgateError('CG_CONFIG_INVALID', `TURN_URLS: "${u.slice(0, 100)}" is not a turn: or turns: URL (turn:host[:port][?transport=udp|tcp])`);
  }
  const ttlText = optional(env['TURN_TTL_S']);
  const ttlS = ttlText === undefined ? turnTtlS : Number(ttlText);
  if (!Number.isInteger(ttlS) || ttlS < defaultIceOptions.minTurnTtlS || ttlS > 7 * 86_400) {
    throw new CallgateError('CG_CONFIG_INVALID', `TURN_TTL_S must be an integer ${defaultIceOptions.minTurnTtlS}–${7 * 86_400}, not "${ttlText ?? ''}"`);
  }
  return { servers, turn: turnRest(secret, urls, ttlS) };
}

/** Whether peers gather anything beyond their own addresses. */
export const hasIceServers = (config: IceConfig): boolean => config.servers.length > 0 || config.turn !== undefined;

/**
 * The ICE servers of one participant (a page, a call's gateway peer): ICE_SERVERS plus, with TURN
 * REST configured, a TURN entry whose username is `<expiry>:<id>`. `id` names the participant in
 * coturn's log; it should hold no ':' and nothing secret (a call token is no id).
 */
export function iceServersFor(config: IceConfig, id: string, nowMs: number = Date.now()): IceServer[] {
  const out = [...config.servers];
  if (config.turn) {
    const username = `${Math.floor(nowMs / 1000) + config.turn.ttlS}:${id}`;
    out.push({ urls: [...config.turn.urls], username, credential: config.turn.sign(username) });
  }
  return out;
}

interface IceUrl {
  readonly scheme: 'stun' | 'stuns' | 'turn' | 'turns';
  readonly host: string;
  readonly port: number;
  readonly transport: 'udp' | 'tcp' | undefined;
}

/** RFC 7064/7065 URLs: `stun:host[:port]`, `turn:host[:port][?transport=udp|tcp]`; IPv6 in brackets. */
export function parseIceUrl(url: string): IceUrl | undefined {
  const m = /^(stuns?|turns?):(\[[0-9a-fA-F:.]+\]|[^\s:?[\]/@]+)(?::(\d{1,5}))?(?:\?transport=(udp|tcp))?$/.exec(url);
  if (!m) return undefined;
  const scheme = m[1] as IceUrl['scheme'];
  const port = m[3] === undefined ? (scheme.endsWith('s') ? 5349 : 3478) : Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  const host = (m[2] ?? '').replace(/^\[|\]$/g, '');
  const transport = m[4] as IceUrl['transport'];
  if (scheme.startsWith('stun') && transport !== undefined) return undefined;
  return { scheme, host, port, transport };
}

/**
 * The same servers as node-datachannel's `iceServers` takes them. Its strings
 * (`turn:user:pass@host:port`) are parsed by libdatachannel as a URL, so a REST username
 * (`1700000000:id`, a ':' inside) and a base64 credential (`+`, `/`, `=`) must be percent-encoded
 * there; the object form (`{hostname, port, username, password, relayType}`) carries them as they
 * are, so that is what this returns. `stuns:` has no equivalent in libdatachannel and is left out.
 */
export function toNodeDataChannel(servers: readonly IceServer[]): NodeIceServers {
  const out: NodeIceServer[] = [];
  for (const s of servers) {
    for (const url of typeof s.urls === 'string' ? [s.urls] : s.urls) {
      const u = parseIceUrl(url);
      if (!u || u.scheme === 'stuns') continue;
      if (u.scheme === 'stun') {
        out.push({ hostname: u.host, port: u.port });
        continue;
      }
      if (s.username === undefined || s.credential === undefined) continue;
      const relayType = u.scheme === 'turns' ? 'TurnTls' : u.transport === 'tcp' ? 'TurnTcp' : 'TurnUdp';
      out.push({ hostname: u.host, port: u.port, username: s.username, password: s.credential, relayType });
    }
  }
  return out;
}
