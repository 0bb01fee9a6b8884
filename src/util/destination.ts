import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/**
 * Where the gateway may send a request an operator configured (tool webhooks, MCP servers, call
 * webhooks): public addresses only, so a tenant cannot aim the gateway at its own admin API, Redis or
 * a cloud metadata service (SSRF). Checked when a URL is saved and again on every connection
 * (`guardedLookup`), so a name that later resolves to 127.0.0.1 (DNS rebinding) is still refused.
 * `CALLGATE_WEBHOOK_ALLOW_PRIVATE=true` lifts it (local development, tests, a private network).
 */
export const ALLOW_PRIVATE_ENV = 'CALLGATE_WEBHOOK_ALLOW_PRIVATE';

export function privateDestinationsAllowed(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[ALLOW_PRIVATE_ENV] === 'true';
}

/** Ranges that are not the public internet: RFC 1918, loopback, link-local, CGNAT, ULA, multicast, reserved. */
const NOT_PUBLIC = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 3],
] as const) NOT_PUBLIC.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['2001:db8::', 32],
  ['64:ff9b::', 96],
] as const) NOT_PUBLIC.addSubnet(net, bits, 'ipv6');

/** Whether `address` (an IP literal) is on the public internet. IPv4-mapped IPv6 is judged as its IPv4. */
export function isPublicAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return isPublicAddress(mapped);
  const family = isIP(address);
  if (family === 0) return false;
  return !NOT_PUBLIC.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * A destination that is not allowed. Not a CallgateError: util sits below the catalogue's layer; whoever
 * catches it says what it means there (a 400 naming the field when saved, a failed tool when called).
 */
export class DestinationRefused extends Error {
  readonly code = 'DESTINATION_REFUSED';
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`${url}: ${reason}`);
    this.name = 'DestinationRefused';
  }
}

function refused(url: string, why: string): DestinationRefused {
  return new DestinationRefused(url, why);
}

/**
 * Resolves `url`'s host and refuses it (DestinationRefused) when any address it resolves to is not
 * public. For saving a URL: the check that matters is `guardedLookup`, on every connection.
 */
export async function checkDestination(url: string, allowPrivate = privateDestinationsAllowed()): Promise<void> {
  if (allowPrivate) return;
  let host: string;
  try {
    host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  } catch {
    throw refused(url, 'not a URL');
  }
  if (host === 'localhost' || host.endsWith('.localhost')) throw refused(url, 'resolves to a loopback address');
  const addresses = isIP(host) ? [host] : await resolveAll(host).catch((err: unknown) => {
    throw refused(url, `its host does not resolve (${(err as NodeJS.ErrnoException).code ?? 'DNS error'})`);
  });
  const bad = addresses.find((a) => !isPublicAddress(a));
  if (bad !== undefined) throw refused(url, `resolves to ${bad}, a loopback, private or link-local address (set ${ALLOW_PRIVATE_ENV}=true to allow)`);
}

function resolveAll(host: string): Promise<string[]> {
  return new Promise((resolve, reject) => dnsLookup(host, { all: true }, (err, list) => (err ? reject(err) : resolve(list.map((a) => a.address)))));
}

/**
 * Node connects to an IP literal without calling `lookup`, so `guardedLookup` never sees one: a URL
 * whose host is a non-public IP literal is refused here, before connecting. Undefined: go ahead.
 */
export function refusedLiteral(url: URL, allowPrivate: boolean): DestinationRefused | undefined {
  const literal = url.hostname.replace(/^\[|\]$/g, '');
  if (allowPrivate || !isIP(literal) || isPublicAddress(literal)) return undefined;
  return refused(url.origin, `${literal} is a loopback, private or link-local address`);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for node:http(s) and net that refuses non-public addresses at connect time, after DNS, so
 * the address checked is the address connected to.
 */
export function guardedLookup(allowPrivate = privateDestinationsAllowed()) {
  return (hostname: string, options: { all?: boolean; family?: number | string }, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true } as { all: true }, (err, list) => {
      if (err) return callback(err, []);
      const bad = list.find((a) => !allowPrivate && !isPublicAddress(a.address));
      if (bad) {
        return callback(refused(hostname, `resolves to ${bad.address}, a loopback, private or link-local address`) as NodeJS.ErrnoException, []);
      }
      if (options.all) return callback(null, list);
      const first = list[0];
      if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
      callback(null, first.address, first.family);
    });
  };
}
