import type Srf from 'drachtio-srf';
import type { Logger } from 'pino';
import type { CallAgent, Door, RunningCall } from '../call/CallRunner.js';
import { bridgeTransfer, type TransferDialer } from '../call/transfer.js';
import type { TransferRequest, TransferResult } from '../tools/controls.js';
import type { AudioLeg } from '../media/AudioLeg.js';
import { MediaWatchdog, type MediaWatchdogOptions } from '../media/MediaWatchdog.js';
import { answerFor, buildSdp, type SdpDirection } from '../media/sdp.js';
import type { AnchorProfile, MediaAnchor } from './rtpengine/MediaAnchor.js';
import { parseSipInfoDtmf } from './sipInfoDtmf.js';
import { refer } from './transfer/refer.js';

/**
 * What happens on a SIP dialog once it is up, whichever side dialled: the agent session on the leg,
 * the remote BYE, SIP INFO keys, and re-INVITEs through rtpengine. Shared by inbound calls and
 * outbound ones (`POST /v1/calls`).
 */
export interface AnsweredCall {
  /** The call as the runner holds it: its record, line and teardown stack. */
  readonly call: RunningCall;
  readonly dialog: Srf.Dialog;
  readonly leg: AudioLeg;
  /** The tenant's agent. */
  readonly agent: CallAgent;
  readonly anchor: MediaAnchor;
  readonly profile: AnchorProfile;
  /** rtpengine's view of the dialog: the remote party's tag and ours. */
  readonly remoteTag: string;
  readonly localTag: string;
  /** Resolves when the agent should start talking (the ACK of an inbound call). */
  readonly startWhen?: Promise<void>;
  /** When a caller whose RTP stopped without a BYE is hung up on (outcome `media-timeout`). */
  readonly mediaWatchdog?: Partial<MediaWatchdogOptions>;
  /** The caller joins a room instead of the agent (a number routed to a room): resolves when they leave. */
  readonly room?: (door: Door, remoteGone: Promise<void>) => Promise<void>;
  /** How the agent hands this call to a person (transfer_call); absent: it cannot. */
  readonly transfers?: SipTransfers;
}

export interface SipTransfers {
  /** Dials the person for a bridged (or warm) transfer. */
  readonly dialer: TransferDialer;
  /** How long a REFER may go without a final NOTIFY before the bridge is tried (30 s). */
  readonly notifyTimeoutMs?: number;
}

/**
 * How long a hang-up waits for the answer to its BYE. A live peer answers within a round trip; one
 * that does not (the vanished phone the media watchdog hangs up on, a drachtio lost mid-transaction)
 * would otherwise hold the call — its line, rtpengine session and record — for SIP's 32 s transaction
 * timeout, or for ever when drachtio never reports. drachtio goes on retransmitting the BYE meanwhile.
 */
export const BYE_WAIT_MS = 1000;

/**
 * Runs what a call does on an event from drachtio-srf, the media or a timer, so that nothing it throws
 * or rejects leaves it. Out of a drachtio-srf event handler an exception unwinds into the drachtio
 * link's socket handler (the link is dropped for every call: drachtioFraming.ts); out of a timer or an
 * event emitted from one, it ends the process. One call's failure is logged with its stack instead.
 */
export function contained(log: Logger, what: string, fn: () => unknown): void {
  const report = (err: unknown): void => log.error({ err: err instanceof Error ? err.stack : String(err) }, `${what} failed`);
  try {
    const result = fn();
    if (result instanceof Promise) result.catch(report);
  } catch (err) {
    report(err);
  }
}

/** Sends a BYE on `dialog`; resolves at its answer or failure, or after `waitMs` at most. */
export function sendBye(dialog: Srf.Dialog, waitMs: number = BYE_WAIT_MS): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, waitMs);
    dialog.destroy(undefined, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * The SIP dialog as the call runner's Door, and what only SIP has (SIP INFO keys, re-INVITEs, a caller
 * whose RTP stops without a BYE); resolves when the call has ended. `state.open` tells the door's
 * teardown whether the dialog still needs a BYE.
 */
export async function runAnsweredCall(c: AnsweredCall, state: { open: boolean }): Promise<void> {
  const { dialog, leg, call } = c;
  const { log } = call;
  const door: Door = {
    leg,
    hangup: () => {
      if (!state.open) return;
      state.open = false;
      return sendBye(dialog);
    },
    onRemoteHangup: (fn) => {
      dialog.on('destroy', () => {
        state.open = false;
        contained(log, 'remote hangup', fn);
      });
      // A BYE read in the same socket chunk as the ACK is handled by drachtio-srf before our code resumes
      // after the answer: the dialog is already gone and its 'destroy' fired with no listener. Without
      // this the agent would talk to nobody until a timeout (tests/sip/websocket.test.ts holds the loop
      // at the 200 OK to prove it). drachtio-srf's typings do not declare `connected`.
      if (!(dialog as unknown as { connected: boolean }).connected) {
        state.open = false;
        fn();
      }
    },
    ...(c.startWhen ? { ready: c.startWhen } : {}),
    ...(c.transfers ? { transfer: (request: TransferRequest) => transferSipCall(c, state, c.transfers!, request) } : {}),
    sendDtmf: (digits: string) => sendInfoDtmf(dialog, digits),
  };
  // rtpengine forwards the caller's RTP, silence included, for as long as the caller sends it; when it
  // stops with no BYE (a phone gone, a BYE lost), we hang up rather than talk to nobody until max duration.
  const watchdog = new MediaWatchdog(leg.endpoint, (silentForMs) => {
    log.info({ silentForMs: Math.round(silentForMs) }, 'no media from the caller; hanging up');
    call.hangup('media-timeout');
  }, c.mediaWatchdog);
  call.scope.defer('media watchdog', () => watchdog.close());
  // Keys sent as SIP INFO reach the agent as the leg's DTMF events, like RFC 4733 ones.
  dialog.on('info', (infoReq, infoRes) => {
    contained(log, 'SIP INFO', () => {
      const key = parseSipInfoDtmf(infoReq.get('Content-Type') ?? undefined, infoReq.body as string | undefined);
      infoRes.send(key ? 200 : 415);
      if (key) leg.emit('dtmf', key);
    });
  });
  // Re-INVITEs (hold, unhold, session refresh, a codec change) go through rtpengine like the first
  // offer: its answer goes back to the remote party, and the leg follows if rtpengine's side moved.
  dialog.on('modify', (modReq: Srf.SrfRequest, modRes: Srf.SrfResponse) => {
    contained(log, 're-INVITE', async () => {
      let answer: Awaited<ReturnType<typeof reoffer>>;
      try {
        answer = await reoffer(c, modReq.body as string);
      } catch (err) {
        log.warn({ err: String(err) }, 're-INVITE refused');
        modRes.send(488);
        return;
      }
      // On hold the caller may send nothing at all: not a dead caller.
      if (answer.direction === 'sendrecv') watchdog.resume();
      else watchdog.pause();
      modRes.send(200, { body: answer.sdp });
    });
  });
  if (c.room) await call.attend(door, c.room);
  else await call.run(door, c.agent);
}

/**
 * A mid-call offer: rtpengine re-anchors it, our leg answers with the same codec (direction
 * mirrored, so a hold is answered recvonly), and rtpengine's answer is what the remote party gets.
 */
async function reoffer(c: AnsweredCall, sdp: string): Promise<{ sdp: string; direction: SdpDirection }> {
  const { anchor, leg } = c;
  const offered = await anchor.offer({ callId: c.call.callId, fromTag: c.remoteTag, toTag: c.localTag, sdp, profile: c.profile });
  const remote = offered.media.remote;
  const current = leg.endpoint.remoteAddress;
  if (!current || current.address !== remote.address || current.port !== remote.port) leg.endpoint.setRemote({ address: remote.address, port: remote.port });
  const ourSdp = buildSdp({ address: leg.endpoint.localAddress.address, port: leg.endpoint.localAddress.port, ...answerFor(offered.media) });
  const answered = await anchor.answer({ callId: c.call.callId, fromTag: c.remoteTag, toTag: c.localTag, sdp: ourSdp, profile: c.profile });
  return { sdp: answered.sdp, direction: offered.media.direction };
}

/**
 * transfer_call on a SIP call. Cold: REFER first, and when the caller's side refuses it, reports a
 * failure or never reports, the bridge; warm: the bridge, with the briefing.
 */
async function transferSipCall(c: AnsweredCall, state: { open: boolean }, transfers: SipTransfers, request: TransferRequest): Promise<TransferResult> {
  const { dialog, call } = c;
  const log = call.log.child({ transfer: request.target.name, mode: request.target.mode });
  const callerGone = new Promise<void>((resolve) => {
    if (!state.open) return resolve();
    dialog.once('destroy', () => resolve());
  });
  if (request.target.mode === 'cold') {
    const referredBy = (dialog as unknown as { local?: { uri?: string } }).local?.uri ?? 'sip:callgate@localhost';
    const outcome = await refer(dialog, request.target.uri, referredBy, log, transfers.notifyTimeoutMs);
    if (outcome.accepted) {
      log.info('REFER followed: the caller reached the transfer target');
      return { result: 'transferred', method: 'refer' };
    }
    log.info({ detail: outcome.detail }, 'REFER not followed; bridging instead');
    if (!state.open) return { result: 'failed', method: 'refer', detail: outcome.detail };
  }
  return bridgeTransfer({ callerLeg: c.leg, callerGone, dialer: transfers.dialer, request, callId: call.callId, tenantId: call.start.tenantId, log });
}

/**
 * Keys to the far end as SIP INFO (application/dtmf-relay, the form carriers and PBXs most often take
 * in-dialog), one request per key, 160 ms each.
 */
async function sendInfoDtmf(dialog: Srf.Dialog, digits: string): Promise<void> {
  for (const key of digits) {
    const res = (await dialog.request({ method: 'INFO', headers: { 'Content-Type': 'application/dtmf-relay' }, body: `Signal=${key}\r\nDuration=160\r\n` } as never)) as { status: number };
    if (res.status >= 300) throw new Error(`INFO for key ${key} answered ${res.status}`);
  }
}
