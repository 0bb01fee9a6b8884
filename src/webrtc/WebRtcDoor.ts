import { randomInt, randomUUID } from 'node:crypto';
import { Audio, PeerConnection, type DataChannel, type Track } from 'node-datachannel';
import type { Logger } from 'pino';
import { LiveSessions } from '../agent/LiveSessions.js';
import type { AgentEvent } from '../agent/events.js';
import type { ProviderRegistry } from '../agent/ProviderRegistry.js';
import type { VoiceActivityDetector } from '../agent/vad/VoiceActivityDetector.js';
import { CallRunner, type Door, type RunningCall } from '../call/CallRunner.js';
import type { DoorDeps } from '../call/DoorDeps.js';
import type { CallScope } from '../call/CallScope.js';
import { CallgateError, errorCode } from '../errors.js';
import { callLogger, rootLogger } from '../log.js';
import { openAudioLeg, type AudioLeg } from '../media/AudioLeg.js';
import { MediaWatchdog } from '../media/MediaWatchdog.js';
import { CallRecorder } from '../tenants/CallRecorder.js';
import { refusedCallAttempt } from '../tenants/CallTokenStore.js';
import { agentConfigFor } from '../tenants/TenantStore.js';
import { bridgeTransfer, type TransferDialer } from '../call/transfer.js';
import type { TransferRequest, TransferResult } from '../tools/controls.js';
import type { Tenant } from '../tenants/schema.js';
import { stripUndefined } from '../util/options.js';
import { parseBrowserOffer } from './browserOffer.js';
import { PendingOffers } from './PendingOffers.js';
import { TrackBridge } from './TrackBridge.js';
import { applyRemoteDescription } from './remoteDescription.js';
import type { NodeIceServers } from './iceServers.js';

/**
 * The direct WebRTC front door: a browser posts its offer with a call token, and a node-datachannel
 * peer in this process answers it, terminates ICE and DTLS-SRTP, and carries its Opus to an AgentSession.
 * No SIP, no rtpengine. Transcript events go back over the page's data channel.
 */
export interface WebRtcDoorOptions {
  /** Address ICE gathers on: the address browsers reach this gateway at (loopback in tests). */
  readonly iceAddress: string;
  /** UDP ports for ICE (one per call); undefined: any. */
  readonly icePorts: { readonly min: number; readonly max: number } | undefined;
  /**
   * How long ICE gathering may take. With no ICE servers the offer is refused past it; with some, the
   * answer carries the candidates gathered so far (a dead STUN/TURN server must not stop every call).
   */
  readonly gatherTimeoutMs: number;
  /**
   * The STUN/TURN servers of one call's peer (src/webrtc/iceServers.ts `toNodeDataChannel`), asked
   * once per call with its id (a TURN REST credential is per participant). None: host candidates only.
   */
  readonly iceServers: (callId: string) => NodeIceServers;
  /** A browser that has not connected its media this long after the answer is given up on. */
  readonly connectTimeoutMs: number;
  /** Offers from one client address answered but not yet connected; a newer one gives the oldest up. */
  readonly maxPendingPerAddress: number;
  /** No RTP from the browser for this long ends the call (a closed tab does not always say goodbye). */
  readonly mediaTimeoutMs: number;
}

export const defaultWebRtcDoorOptions = {
  iceAddress: '127.0.0.1',
  icePorts: undefined,
  /** 2 s: host candidates gather in a few ms. With STUN/TURN servers the gateway passes iceServers.ts' own (4 s). */
  gatherTimeoutMs: 2000,
  /** None: the gateway's peer offers its own addresses only. */
  iceServers: () => [],
  /**
   * 5 s: ICE and DTLS take tens of ms on a good network and under a second on a poor one; a browser
   * still not there is gone, and an offer that never connects must not linger (it costs a port and a peer).
   */
  connectTimeoutMs: 5000,
  /**
   * 16: one address may be a whole office behind NAT whose people press Call in the same second (at 4,
   * the fifth of five pages at once pushed out the first before it connected); a script still holds no
   * more than 16 peers for 5 s each, and no lines at all.
   */
  maxPendingPerAddress: 16,
  /** 20 s: browsers send a packet every 20 ms even when muted (silence frames); DTX sends one every 400 ms. */
  mediaTimeoutMs: 20_000,
} as const satisfies WebRtcDoorOptions;

/** The call-token store as this door uses it (src/tenants/CallTokenStore.ts). */
export interface WebCallTokens {
  redeem(token: string, bind?: { origin?: string }): Promise<{ slug: string; tenantId: string; variables: Readonly<Record<string, string>> }>;
}

export interface WebRtcDoorDeps extends DoorDeps {
  readonly tokens: WebCallTokens;
  /**
   * Dials a transfer target for a web caller (the SIP door's dialer, when the gateway has one); read
   * at each transfer, so a SIP door that connects later is used. None: web calls cannot be transferred.
   */
  readonly transferDialer?: () => TransferDialer | undefined;
}

export interface WebRtcOffer {
  readonly token: string;
  readonly sdp: string;
  /** The page's Origin header: the token must have been issued to the same origin. */
  readonly origin?: string;
  /** The client's address as the HTTP server saw it: offers still connecting are capped per address. */
  readonly clientIp?: string;
}

export interface WebRtcAnswer {
  readonly callId: string;
  readonly sdp: string;
}

/** What the page receives on its data channel, one JSON object per message. */
export type WebPhoneEvent =
  /** The agent's words come piece by piece (a sentence or clause at a time) as they are spoken. */
  | { readonly type: 'transcript'; readonly role: 'agent' | 'caller'; readonly turn: number; readonly text: string; readonly final: boolean }
  | { readonly type: 'ended'; readonly reason: string };

export class WebRtcDoor {
  private readonly options: WebRtcDoorOptions;
  private readonly log: Logger;
  private readonly active = new Set<Promise<void>>();
  private readonly sessions = new LiveSessions();
  private readonly pending: PendingOffers;
  private readonly runner: CallRunner;

  constructor(
    private readonly deps: WebRtcDoorDeps,
    options: Partial<WebRtcDoorOptions> = {},
  ) {
    this.options = { ...defaultWebRtcDoorOptions, ...stripUndefined(options) };
    this.log = (deps.logger ?? rootLogger).child({ door: 'webrtc' });
    this.pending = new PendingOffers(this.options.maxPendingPerAddress);
    this.runner = deps.runner ?? new CallRunner(deps);
  }

  /** A real token refused (its URL used up, disabled or expired; the wrong origin): the tenant's call attempt gets a record. */
  private async recordRefusal(err: unknown): Promise<void> {
    const attempt = refusedCallAttempt(err);
    if (!attempt || !(err instanceof CallgateError)) return;
    const { tenantId, slug } = attempt;
    const recorder = new CallRecorder(this.deps.records, { callId: `web-${randomUUID()}`, tenantId, door: 'webrtc', from: `web:${slug}`, to: `callurl:${slug}` });
    await recorder.finish({ outcome: 'rejected', error: { code: err.code } }).catch((e: unknown) => this.log.warn({ err: String(e) }, 'call record not written'));
  }

  /**
   * Answers a browser's offer. Resolves with our answer once the call is set up (token redeemed,
   * providers, VAD and media ready); the call then runs in the background until either side ends it.
   * Everything the call acquires belongs to its CallScope and is released by the scope's close, on
   * every path: a refused offer leaves no timer, socket or promise behind to fail later.
   * The call takes one of the tenant's lines only once its media connects: offers that never connect
   * must not hold a tenant's lines (they are capped per client address and expire instead).
   */
  async answer(offer: WebRtcOffer): Promise<WebRtcAnswer> {
    const parsed = parseBrowserOffer(offer.sdp);
    const { deps } = this;
    const url = await deps.tokens.redeem(offer.token, offer.origin === undefined ? {} : { origin: offer.origin }).catch(async (err: unknown) => {
      await this.recordRefusal(err);
      throw err;
    });
    const tenant = await deps.tenants.get(url.tenantId);
    // Counted once the token is spent, so posts with made-up tokens cannot push a real caller's offer out.
    // Set when a newer offer from the same address pushes this one out of the pending queue.
    const evicted = new AbortController();
    // An offer from no address (an in-process caller, not the HTTP route) is not counted.
    const leavePending = offer.clientIp === undefined ? () => undefined : this.pending.enter(offer.clientIp, () => evicted.abort());
    const callId = `web-${randomUUID()}`;
    const log = callLogger({ callId, tenant: tenant.id }, this.log);
    const call = this.runner.begin({ callId, tenantId: tenant.id, door: 'webrtc', from: `web:${url.slug}`, to: `callurl:${url.slug}`, log, sessions: this.sessions });
    const { scope } = call;
    scope.defer('pending offer', leavePending);
    try {
      // A full tenant is told now (429), not after ICE; the line itself is taken when media connects.
      if ((await deps.limiter.active(tenant.id)) >= tenant.maxConcurrentCalls) {
        throw new CallgateError('CG_CALL_LIMIT_REACHED', undefined, { details: { tenantId: tenant.id, limit: tenant.maxConcurrentCalls } });
      }
      const { config, variables } = agentConfigFor(tenant, url.variables);
      const providers = deps.providers.forCall(config, tenant.providerKeys, log);
      const vad = await deps.createVad();
      scope.defer('VAD close', () => vad.close());
      const leg = await openAudioLeg({
        callId,
        legId: 'agent',
        codec: { name: 'opus', payloadType: parsed.opusPayloadType },
        clock: deps.clock,
        endpoint: { ...deps.endpoint, bindAddress: '127.0.0.1' },
        logger: this.log,
      });
      scope.defer('audio leg', () => leg.close());
      leg.once('closing', (stats) => deps.legStats?.(stats));
      const iceServers = this.options.iceServers(callId);
      const pc = new PeerConnection(callId, {
        iceServers: [...iceServers],
        bindAddress: this.options.iceAddress,
        ...(this.options.icePorts ? { portRangeBegin: this.options.icePorts.min, portRangeEnd: this.options.icePorts.max } : {}),
      });
      scope.defer('peer connection', () => pc.close());
      const audio = new Audio(parsed.audioMid, 'SendRecv');
      audio.addOpusCodec(parsed.opusPayloadType);
      const ssrc = randomInt(1, 2 ** 32 - 1);
      audio.addSSRC(ssrc, 'callgate', 'callgate', 'agent');
      const track = pc.addTrack(audio);
      const bridge = await TrackBridge.open(track, leg.endpoint.localAddress, ssrc);
      scope.defer('track bridge', () => bridge.close());
      leg.endpoint.setRemote(bridge.address);
      const channel = new PageChannel();
      pc.onDataChannel((dc) => {
        channel.attach(dc);
        // The page's keypad: keys arrive as {type: 'dtmf', digit} and reach the agent like RFC 4733 ones.
        dc.onMessage((msg) => {
          const digit = pageDtmf(msg);
          if (digit) leg.emit('dtmf', { digit, durationMs: 250, rtpTimestamp: 0, volume: 10 });
        });
      });
      const connected = scope.wait(
        this.options.connectTimeoutMs,
        () => new CallgateError('CG_WEBRTC_NOT_CONNECTED', `no media connection within ${this.options.connectTimeoutMs} ms`),
        (resolve, reject) => {
          const replaced = (): void => reject(new CallgateError('CG_WEBRTC_NOT_CONNECTED', 'a newer offer from the same address replaced it before it connected'));
          if (evicted.signal.aborted) replaced();
          evicted.signal.addEventListener('abort', replaced, { once: true });
          track.onOpen(() => resolve());
          pc.onStateChange((state) => {
            if (state === 'failed' || state === 'closed') reject(new CallgateError('CG_WEBRTC_NOT_CONNECTED', `peer connection ${state} before media flowed`));
          });
        },
      );
      const sdp = await this.localAnswer(scope, pc, offer.sdp, iceServers.length > 0 ? log : undefined);
      const running = this.run({ call, tenant, leg, pc, track, connected, vad, providers, config, variables, channel, slug: url.slug, leavePending }).catch((err: unknown) =>
        log.error({ err: String(err) }, 'web call failed'),
      );
      this.active.add(running);
      void running.finally(() => this.active.delete(running));
      log.info({ slug: url.slug }, 'web call answered');
      return { callId, sdp };
    } catch (err) {
      // Refused before the answer (limits, bad SDP, no port): a record like the SIP door's.
      call.end({ outcome: 'rejected', error: { code: errorCode(err) } });
      await call.close();
      throw err;
    }
  }

  /** Waits for every call this door started to end. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.active]);
  }

  get activeCalls(): number {
    return this.active.size;
  }

  /** Shutdown past the drain: every call in progress says goodbye and hangs up. */
  shutdownCalls(): number {
    return this.sessions.shutdownAll();
  }

  /** `slowServers`: this peer has ICE servers; a gathering past the deadline answers with what it has (logged there). */
  private async localAnswer(scope: CallScope, pc: PeerConnection, offerSdp: string, slowServers?: Logger): Promise<string> {
    // A scope wait: if the offer is refused below, nobody awaits this, and the scope's close clears its
    // deadline (which once fired later as an unhandled rejection and stopped the process).
    const complete = scope.wait(
      this.options.gatherTimeoutMs,
      () => new CallgateError('CG_WEBRTC_NOT_CONNECTED', `ICE gathering took over ${this.options.gatherTimeoutMs} ms`),
      (resolve) => {
        if (pc.gatheringState() === 'complete') resolve();
        pc.onGatheringStateChange((state) => {
          if (state === 'complete') resolve();
        });
      },
    );
    // The answer is made by libdatachannel as the offer is applied; we wait for its candidates (no trickle).
    try {
      await applyRemoteDescription(pc, offerSdp, 'offer');
    } catch (err) {
      throw new CallgateError('CG_SDP_MALFORMED', `the offer was refused: ${String(err)}`.slice(0, 300));
    }
    const gathered = slowServers
      ? complete.catch(() => slowServers.warn({ gatherTimeoutMs: this.options.gatherTimeoutMs }, 'ICE gathering not complete (a STUN/TURN server slow or down); answering with the candidates so far'))
      : complete;
    if (pc.gatheringState() !== 'complete') await gathered;
    const local = pc.localDescription();
    // libdatachannel took the offer but made no answer of it (found by fuzzing: an offer whose
    // session-level lines were garbled): the offer's fault, not an outage.
    if (!local || local.type !== 'answer') throw new CallgateError('CG_SDP_MALFORMED', 'the offer could not be answered');
    return local.sdp;
  }

  private async run(c: {
    call: RunningCall;
    tenant: Tenant;
    leg: AudioLeg;
    pc: PeerConnection;
    track: Track;
    connected: Promise<void>;
    vad: VoiceActivityDetector;
    providers: ReturnType<ProviderRegistry['forCall']>;
    config: ReturnType<typeof agentConfigFor>['config'];
    variables: Record<string, string>;
    channel: PageChannel;
    slug: string;
    leavePending: () => void;
  }): Promise<void> {
    const { call } = c;
    const { scope, log } = call;
    try {
      try {
        await c.connected;
      } catch (err) {
        // The page never connected its media: nothing was said and no line was used.
        const code = errorCode(err);
        log.info({ code }, 'web call never connected');
        call.end({ outcome: 'abandoned', error: { code } });
        return;
      }
      c.leavePending();
      try {
        await call.takeLine(c.tenant.maxConcurrentCalls);
      } catch (err) {
        // The tenant filled up between the offer and the connection.
        call.end({ outcome: 'rejected', error: { code: errorCode(err) } });
        return;
      }
      const watchdog = new MediaWatchdog(c.leg.endpoint, (silentForMs) => {
        log.info({ silentForMs: Math.round(silentForMs) }, 'no media from the page; hanging up');
        call.hangup('media-timeout');
      }, { timeoutMs: this.options.mediaTimeoutMs });
      scope.defer('media watchdog', () => watchdog.close());
      let pageGone: () => void = () => undefined;
      const gone = new Promise<void>((resolve) => (pageGone = resolve));
      const door: Door = {
        leg: c.leg,
        // Let the goodbye's last packets leave before the peer connection goes.
        hangup: () => void scope.timeout(200, () => c.pc.close()),
        onRemoteHangup: (fn) => {
          // A page that hangs up closes its peer connection; a page that vanishes fails ICE consent.
          c.pc.onStateChange((state) => {
            if (state === 'closed' || state === 'failed' || state === 'disconnected') {
              pageGone();
              fn();
            }
          });
          c.track.onClosed(() => {
            pageGone();
            fn();
          });
        },
        agentEvent: (e) => c.channel.send(e),
        // A web caller is handed to a phone by bridging: the gateway dials the target over SIP and
        // joins the browser's leg (Opus) to the phone's (G.711) here.
        transfer: (request: TransferRequest): Promise<TransferResult> => {
          const dialer = this.deps.transferDialer?.();
          if (!dialer) return Promise.resolve({ result: 'failed', method: 'bridge', detail: 'transfers from the web phone need the SIP door (drachtio) configured' });
          return bridgeTransfer({ callerLeg: c.leg, callerGone: gone, dialer, request, callId: call.callId, tenantId: c.tenant.id, log });
        },
      };
      await call.run(door, { config: c.config, variables: c.variables, providers: c.providers, vad: c.vad, tenant: c.tenant });
    } catch (err) {
      call.end({ outcome: 'failed', error: { code: errorCode(err) } });
    } finally {
      await call.close();
    }
  }
}

/**
 * What the page shows (both sides' words, the end), for its data channel. The agent's words are the
 * pieces as spoken (`agent-text`, the greeting's included), not the 'greeting' event's whole text,
 * which would show the greeting twice.
 */
function pageEvent(e: AgentEvent): WebPhoneEvent | undefined {
  if (e.type === 'agent-text') return { type: 'transcript', role: 'agent', turn: e.turn, text: e.text, final: true };
  if (e.type === 'transcript') return { type: 'transcript', role: 'caller', turn: e.turn, text: e.text, final: e.final };
  // The page hangs up when told the call ended; after a transfer the call goes on without the agent
  // (the bridge's end closes the peer connection, which the page sees).
  if (e.type === 'session-ended' && e.reason !== 'transferred') return { type: 'ended', reason: e.reason };
  return undefined;
}

/**
 * The page's data channel opens a little after the media (SCTP over the same DTLS): what the agent
 * says first (the greeting) is held until it is open rather than lost.
 */
class PageChannel {
  private channel: DataChannel | undefined;
  private readonly pending: string[] = [];

  attach(dc: DataChannel): void {
    this.channel = dc;
    const flush = (): void => {
      for (const m of this.pending.splice(0)) dc.sendMessage(m);
    };
    if (dc.isOpen()) flush();
    else dc.onOpen(flush);
  }

  send(e: AgentEvent): void {
    const out = pageEvent(e);
    if (!out) return;
    const text = JSON.stringify(out);
    if (this.channel?.isOpen()) this.channel.sendMessage(text);
    // Bounded: a page that never opens its channel must not grow this without end.
    else if (this.pending.length < 200) this.pending.push(text);
  }
}

/** A key from the page's keypad message, or undefined for anything else (never throws). */
function pageDtmf(msg: string | Buffer | ArrayBuffer): string | undefined {
  if (typeof msg !== 'string' || msg.length > 100) return undefined;
  try {
    const m = JSON.parse(msg) as { type?: unknown; digit?: unknown };
    return m.type === 'dtmf' && typeof m.digit === 'string' && /^[0-9*#]$/.test(m.digit) ? m.digit : undefined;
  } catch {
    return undefined;
  }
}
