import type { Logger } from 'pino';
import type { AudioLeg } from '../media/AudioLeg.js';
import { bridgeLegs, playRingback } from '../media/bridge.js';
import type { TransferTarget } from '../tenants/schema.js';
import type { TransferRequest, TransferResult } from '../tools/controls.js';

/**
 * Transfers by bridging: the gateway dials the person itself and joins the caller's leg to theirs, the
 * agent leaving the media path. Both doors use it (the SIP door when the caller's side will not take a
 * REFER, or for a warm transfer; the WebRTC door always); the dialling is the SIP door's
 * (src/sip/transfer/SipDialer.ts), reached through `TransferDialer` so the web door needs no SIP code.
 */
export interface TransferDialer {
  /** Resolves once the person answered; rejects with a DialRefused saying why they did not. */
  dial(request: DialRequest): Promise<DialedParty>;
}

export interface DialRequest {
  /** The transferred call's id (the new leg's logs and rtpengine session are named after it). */
  readonly callId: string;
  readonly tenantId: string;
  readonly target: TransferTarget;
  /** The trunk a `tel:` target is dialled through. */
  readonly trunk: string | undefined;
  /** Ringing longer than this is 'no-answer' (CANCEL). */
  readonly timeoutMs: number;
  readonly log: Logger;
}

/** The person's side once they answered. */
export interface DialedParty {
  readonly leg: AudioLeg;
  /** Hangs up their side (BYE) and releases its media. Idempotent. */
  hangup(): Promise<void>;
  /** Settles when their side is gone (their BYE, or ours). */
  readonly ended: Promise<void>;
}

/** Why the person was not reached. */
export class DialRefused extends Error {
  constructor(
    readonly result: 'busy' | 'declined' | 'no-answer' | 'failed',
    readonly detail: string,
  ) {
    super(detail);
    this.name = 'DialRefused';
  }
}

export interface BridgeTransferInput {
  readonly callerLeg: AudioLeg;
  /** Settles when the caller hangs up (then the person's side is hung up too). */
  readonly callerGone: Promise<void>;
  readonly dialer: TransferDialer;
  readonly request: TransferRequest;
  readonly callId: string;
  readonly tenantId: string;
  readonly log: Logger;
}

/** How long a warm transfer's briefing may play before the legs are joined anyway. */
const SUMMARY_MAX_MS = 20_000;

/**
 * Rings the person while the caller hears ringback; warm: briefs them first; then joins the legs.
 * Not reached: the caller stays with the agent and the result says why.
 */
export async function bridgeTransfer(t: BridgeTransferInput): Promise<TransferResult> {
  const { request, log } = t;
  let callerGone = false;
  void t.callerGone.then(() => (callerGone = true));
  const stopRingback = playRingback(t.callerLeg);
  let party: DialedParty;
  try {
    party = await t.dialer.dial({ callId: t.callId, tenantId: t.tenantId, target: request.target, trunk: request.trunk, timeoutMs: request.timeoutMs, log });
  } catch (err) {
    stopRingback();
    const refused = err instanceof DialRefused ? err : new DialRefused('failed', err instanceof Error ? err.message.slice(0, 200) : String(err));
    log.info({ target: request.target.name, result: refused.result, detail: refused.detail }, 'transfer target not reached');
    return { result: refused.result, method: 'bridge', detail: refused.detail };
  }
  if (callerGone) {
    stopRingback();
    await party.hangup();
    return { result: 'failed', method: 'bridge', detail: 'the caller hung up while the target rang' };
  }
  if (request.target.mode === 'warm') {
    const summary = await request.summary().catch((err: unknown) => {
      log.warn({ err: err instanceof Error ? err.message : String(err) }, 'no transfer summary; bridging without it');
      return undefined;
    });
    if (summary && summary.audio.length > 0) {
      log.info({ target: request.target.name, summary: summary.text }, 'briefing the transfer target');
      party.leg.play(summary.audio);
      await drained(party.leg, SUMMARY_MAX_MS, party.ended);
    }
  }
  stopRingback();
  const unbridge = bridgeLegs(t.callerLeg, party.leg);
  log.info({ target: request.target.name, mode: request.target.mode }, 'caller bridged to the transfer target');
  const bridge = Promise.race([party.ended, t.callerGone]).then(async () => {
    unbridge();
    await party.hangup();
  });
  return { result: 'bridged', method: 'bridge', bridge };
}

/** Resolves when everything queued on `leg` has been sent, `maxMs` passed, or `gone` settled. */
function drained(leg: AudioLeg, maxMs: number, gone: Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      leg.off('drain', done);
      resolve();
    };
    const timer = setTimeout(done, maxMs);
    leg.on('drain', done);
    void gone.then(done);
  });
}
