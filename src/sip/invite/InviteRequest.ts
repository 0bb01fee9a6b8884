/**
 * What the INVITE steps read from a request: a small surface instead of drachtio-srf's whole
 * SrfRequest, so each step is tested with plain objects (`fromSrfRequest` adapts a real one).
 */
export interface InviteRequest {
  readonly callId: string;
  /** Request-URI. */
  readonly uri: string;
  /** The To header (a name-addr or a bare URI; `uriOf` takes the URI out). */
  readonly to: string;
  readonly from: string;
  /** Where the packet came from (the carrier's address for a trunk). */
  readonly sourceAddress: string;
  readonly transport: 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';
  /** A header, case-insensitive; undefined when absent. */
  header(name: string): string | undefined;
}

/** The URI inside a name-addr (`"Sam" <sip:+1415…@host>;tag=x` → `sip:+1415…@host`). */
export function uriOf(nameAddr: string): string {
  const angled = /<([^>]+)>/.exec(nameAddr);
  return (angled ? angled[1]! : nameAddr.split(';')[0]!).trim();
}

/**
 * The user part of a SIP or tel URI (`sip:+14155550100@gw;user=phone` → `+14155550100`), with its
 * %-escapes decoded (RFC 3261 §19.1.2: `%2B1415…` is `+1415…`) and without user-part parameters, which
 * carriers add to numbers (`sip:+1415…;npdi;rn=+1415…@gw`, RFC 4694). Undefined when there is none or
 * an escape is broken.
 */
export function userOf(uri: string): string | undefined {
  // Not uriOf: a bare URI's first ';' may be inside its user part, and what follows the host
  // (header parameters such as ;tag) does not matter here.
  const u = /<([^>]+)>/.exec(uri)?.[1] ?? uri.trim();
  const raw = /^tel:([^;]+)/i.exec(u)?.[1] ?? /^sips?:([^@]+)@/i.exec(u)?.[1];
  if (raw === undefined) return undefined;
  const user = raw.split(';')[0]!;
  try {
    return decodeURIComponent(user) || undefined;
  } catch {
    return undefined;
  }
}
