import type Srf from 'drachtio-srf';

/**
 * INVITEs left unanswered on purpose (a scanner's, an ignored source's) must not be kept for ever.
 *
 * drachtio-srf keeps each incoming INVITE (request and response objects, the whole message) in a map
 * until the app sends a final response or a CANCEL comes (`pendingNetworkInvites`, per drachtio link).
 * An INVITE we never answer would stay in it for the life of the process: a scanner's run of 20 000
 * INVITEs, 20 000 entries. drachtio-server forgets its own side after 64 s. There is no API for it, so
 * this deletes the entry through drachtio-srf's internals (checked against 5.0.x, as drachtioFraming.ts);
 * when they differ, nothing is touched and the call says so.
 */
interface AgentLike {
  readonly mapServer?: Map<unknown, { readonly pendingNetworkInvites?: Map<string, unknown> }>;
}

/** Forgets an INVITE that will get no final response from us. False when drachtio-srf's internals are not as expected. */
export function forgetUnansweredInvite(req: Srf.SrfRequest): boolean {
  const r = req as unknown as { agent?: AgentLike; socket?: unknown };
  const pending = r.agent?.mapServer?.get(r.socket)?.pendingNetworkInvites;
  if (!(pending instanceof Map)) return false;
  const callId = req.get('Call-ID');
  if (typeof callId === 'string') pending.delete(callId);
  return true;
}

/** INVITEs drachtio-srf is holding for a final response, over all its drachtio links (for tests and checks). */
export function pendingInviteCount(srf: Srf): number | undefined {
  const agent = (srf as unknown as { _app?: { client?: AgentLike } })._app?.client;
  if (!(agent?.mapServer instanceof Map)) return undefined;
  let n = 0;
  for (const link of agent.mapServer.values()) n += link.pendingNetworkInvites?.size ?? 0;
  return n;
}
