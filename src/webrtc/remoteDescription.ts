import type { DescriptionType, PeerConnection } from 'node-datachannel';

/**
 * Applies a remote description (ICE gathered, candidates inside) to a node-datachannel peer.
 *
 * libdatachannel sometimes has not set up its ICE transport yet on a process's first connection and
 * throws "Got a remote candidate without ICE transport" while reading the description's candidates.
 * Sometimes the description itself was taken by then (the signalling state moved on) and only its
 * candidates were dropped; sometimes not. A moment later the transport exists: the description is
 * applied again if it did not take, otherwise only its candidates are added. Re-applying a description
 * that did take fails ("Unexpected remote answer description in signaling state stable").
 */
export async function applyRemoteDescription(pc: PeerConnection, sdp: string, type: DescriptionType): Promise<void> {
  try {
    pc.setRemoteDescription(sdp, type);
    return;
  } catch (err) {
    if (!/without ICE transport/.test(String(err))) throw err;
  }
  await new Promise((r) => setTimeout(r, 100));
  if (pc.remoteDescription() === null) {
    pc.setRemoteDescription(sdp, type);
    return;
  }
  for (const { candidate, mid } of sdpCandidates(sdp)) pc.addRemoteCandidate(candidate, mid);
}

/** The `a=candidate` lines of an SDP with the `a=mid` of their media section. */
export function sdpCandidates(sdp: string): { candidate: string; mid: string }[] {
  const out: { candidate: string; mid: string }[] = [];
  for (const section of sdp.split(/\r?\n(?=m=)/).slice(1)) {
    const mid = /^a=mid:(\S+)/m.exec(section)?.[1] ?? '0';
    for (const m of section.matchAll(/^a=(candidate:[^\r\n]+)/gm)) out.push({ candidate: m[1]!, mid });
  }
  return out;
}
