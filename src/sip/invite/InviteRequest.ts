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

/** The user part of a SIP or tel URI (`sip:+14155550100@gw;user=phone` → `+14155550100`). */
export function userOf(uri: string): string | undefined {
  const u = uriOf(uri);
  const tel = /^tel:([^;]+)/i.exec(u);
  if (tel) return tel[1];
  return /^sips?:([^@;]+)@/i.exec(u)?.[1];
}
