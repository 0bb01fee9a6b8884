import type { DtmfEvent } from '../media/types.js';

/**
 * DTMF sent as SIP INFO instead of RFC 4733 packets (some carriers and PBXs do): the bodies
 * `application/dtmf-relay` ("Signal=5\r\nDuration=160") and `application/dtmf` ("5"). Returns the key as
 * the media layer reports RFC 4733 events, so the agent handles both the same way; undefined when the
 * body is not a key press.
 */
export function parseSipInfoDtmf(contentType: string | undefined, body: string | undefined): DtmfEvent | undefined {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const text = (body ?? '').trim();
  let digit: string | undefined;
  let durationMs = 250;
  if (type === 'application/dtmf-relay') {
    digit = /^\s*signal\s*=\s*(\S)/im.exec(text)?.[1];
    const d = /^\s*duration\s*=\s*(\d+)/im.exec(text)?.[1];
    if (d !== undefined) durationMs = Math.min(10_000, Number(d));
  } else if (type === 'application/dtmf') {
    digit = text.length === 1 ? text : undefined;
  }
  if (digit === undefined) return undefined;
  const key = digit === '10' ? '*' : digit === '11' ? '#' : digit.toUpperCase();
  if (!/^[0-9*#A-D]$/.test(key)) return undefined;
  // No RTP timestamp: INFO is not on the media timeline. 10 dBm0 is the usual level senders report.
  return { digit: key, durationMs, rtpTimestamp: 0, volume: 10 };
}
