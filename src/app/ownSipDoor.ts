import { drachtioMissingLine, findDrachtio } from '../sip/drachtioServer.js';
import { defaultRtpengineProcessOptions } from '../sip/rtpengine/RtpengineProcess.js';
import { findOnPath } from '../util/executable.js';
import type { GatewayConfig } from './config.js';

/**
 * Whether the SIP door of `CALLGATE_SIP=1` (or `--sip`) can open here: the drachtio-server binary to
 * start, or the one line that says what is missing and where to get it (drachtio-server; or rtpengine,
 * which the gateway starts beside it unless RTPENGINE_NG_PORT names one). Undefined when no such door
 * was asked for. Missing either, the gateway runs its web door alone rather than not at all.
 */
export function ownSipDoor(c: Pick<GatewayConfig, 'sipServer' | 'rtpengineNgPort'>, env: NodeJS.ProcessEnv = process.env): { readonly binary: string } | { readonly missing: string } | undefined {
  if (!c.sipServer) return undefined;
  const binary = findDrachtio(env);
  if (!binary) return { missing: drachtioMissingLine(env) };
  if (c.rtpengineNgPort === undefined && !findOnPath(defaultRtpengineProcessOptions.binary, env)) {
    return { missing: 'rtpengine not found on PATH, which the SIP door needs beside drachtio-server: Debian package rtpengine-daemon (`CALLGATE_SIP=1 npm start` installs it), or RTPENGINE_NG_PORT for one that runs' };
  }
  return { binary };
}

/** The warning logged when the door cannot open. */
export const sipDoorClosedLine = (missing: string): string => `${missing}. The SIP door stays closed; the web phone runs.`;
