import { randomInt, randomUUID } from 'node:crypto';
import { Audio, PeerConnection, type DataChannel, type Track } from 'node-datachannel';
import type { Logger } from 'pino';
import { LiveSessions } from '../agent/LiveSessions.js';
import { AgentSession, type AgentSessionOptions } from '../agent/AgentSession.js';
import { CallSession } from '../agent/CallSession.js';
import type { AgentEvent } from '../agent/events.js';
import type { PromptCache } from '../agent/PromptCache.js';
import type { ProviderRegistry } from '../agent/ProviderRegistry.js';
import type { VoiceActivityDetector } from '../agent/vad/VoiceActivityDetector.js';
import { CallgateError } from '../errors.js';
import { callLogger, rootLogger } from '../log.js';
import { openAudioLeg, type AudioLeg, type AudioLegStats } from '../media/AudioLeg.js';
import type { MediaClock } from '../media/MediaClock.js';
import { MediaWatchdog } from '../media/MediaWatchdog.js';
import type { RtpEndpointOptions } from '../media/RtpEndpoint.js';
import type { CallLease, CallLimiter } from '../tenants/CallLimiter.js';
import { CallRecorder } from '../tenants/CallRecorder.js';
import { refusedCallAttempt } from '../tenants/CallTokenStore.js';
import type { CallRecordStore } from '../tenants/CallRecordStore.js';
import type { TenantCache } from '../tenants/TenantCache.js';
import { agentConfigFor } from '../tenants/TenantStore.js';
import { stripUndefined } from '../util/options.js';
import { parseBrowserOffer } from './browserOffer.js';
import { TrackBridge } from './TrackBridge.js';
import { applyRemoteDescription } from './remoteDescription.js';

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
  /** How long ICE gathering may take before the offer is refused. */
  readonly gatherTimeoutMs: number;
  /** A browser that has not connected this long after the answer gives its line back. */
  readonly connectTimeoutMs: number;
  /** No RTP from the browser for this long ends the call (a closed tab does not always say goodbye). */
  readonly mediaTimeoutMs: number;
}

export const defaultWebRtcDoorOptions = {
  iceAddress: '127.0.0.1',
  icePorts: undefined,
  /** 2 s: host candidates gather in a few ms; no STUN/TURN here. */
  gatherTimeoutMs: 2000,
  /** 15 s: ICE and DTLS take tens of ms; a browser still not there is gone. */
  connectTimeoutMs: 15_000,
  /** 20 s: browsers send a packet every 20 ms even when muted (silence frames); DTX sends one every 400 ms. */
  mediaTimeoutMs: 20_000,
} as const satisfies WebRtcDoorOptions;

/** The call-token store as this door uses it (src/tenants/CallTokenStore.ts). */
export interface WebCallTokens {
  redeem(token: string, bind?: { origin?: string }): Promise<{ slug: string; tenantId: string; variables: Readonly<Record<string, string>> }>;
}

export interface WebRtcDoorDeps {
  readonly tokens: WebCallTokens;
  readonly tenants: TenantCache;
  readonly limiter: CallLimiter;
  readonly records: CallRecordStore;
  readonly providers: ProviderRegistry;
  readonly prompts: PromptCache;
  readonly createVad: () => Promise<VoiceActivityDetector>;
  readonly clock: MediaClock;
  readonly endpoint?: Partial<RtpEndpointOptions>;
  readonly agent?: Partial<AgentSessionOptions>;
  readonly logger?: Logger;
  /** Told each call's media statistics as its leg closes (metrics: RTP loss and jitter). */
  readonly legStats?: (stats: AudioLegStats) => void;
}

export interface WebRtcOffer {
  readonly token: string;
  readonly sdp: string;
  /** The page's Origin header: the token must have been issued to the same origin. */
  readonly origin?: string;
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

  constructor(
    private readonly deps: WebRtcDoorDeps,
    options: Partial<WebRtcDoorOptions> = {},
  ) {
    this.options = { ...defaultWebRtcDoorOptions, ...stripUndefined(options) };
    this.log = (deps.logger ?? rootLogger).child({ door: 'webrtc' });
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
   * Answers a browser's offer. Resolves with our answer once the call is set up (token redeemed, a line
   * held, providers, VAD and media ready); the call then runs in the background until either side ends it.
   */
  async answer(offer: WebRtcOffer): Promise<WebRtcAnswer> {
    const parsed = parseBrowserOffer(offer.sdp);
    const { deps } = this;
    const url = await deps.tokens.redeem(offer.token, offer.origin === undefined ? {} : { origin: offer.origin }).catch(async (err: unknown) => {
      await this.recordRefusal(err);
      throw err;
    });
    const tenant = await deps.tenants.get(url.tenantId);
    const callId = `web-${randomUUID()}`;
    const log = callLogger({ callId, tenant: tenant.id }, this.log);
    const recorder = new CallRecorder(deps.records, { callId, tenantId: tenant.id, door: 'webrtc', from: `web:${url.slug}`, to: `callurl:${url.slug}` });
    const parts: { lease?: CallLease; vad?: VoiceActivityDetector; leg?: AudioLeg; bridge?: TrackBridge; pc?: PeerConnection } = {};
    const release = async (): Promise<void> => {
      parts.bridge?.close();
      try {
        parts.pc?.close();
      } catch {
        // already closed
      }
      parts.vad?.close();
      await parts.leg?.close();
      await parts.lease?.release().catch((err: unknown) => log.warn({ err: String(err) }, 'call lease release failed'));
    };
    try {
      parts.lease = await deps.limiter.lease(tenant.id, callId, { limit: tenant.maxConcurrentCalls });
      const { config, variables } = agentConfigFor(tenant, url.variables);
      const providers = deps.providers.forCall(config, tenant.providerKeys, log);
      parts.vad = await deps.createVad();
      const leg = (parts.leg = await openAudioLeg({
        callId,
        legId: 'agent',
        codec: { name: 'opus', payloadType: parsed.opusPayloadType },
        clock: deps.clock,
        endpoint: { ...deps.endpoint, bindAddress: '127.0.0.1' },
      }));
      leg.once('closing', (stats) => deps.legStats?.(stats));
      const pc = (parts.pc = new PeerConnection(callId, {
        iceServers: [],
        bindAddress: this.options.iceAddress,
        ...(this.options.icePorts ? { portRangeBegin: this.options.icePorts.min, portRangeEnd: this.options.icePorts.max } : {}),
      }));
      const audio = new Audio(parsed.audioMid, 'SendRecv');
      audio.addOpusCodec(parsed.opusPayloadType);
      const ssrc = randomInt(1, 2 ** 32 - 1);
      audio.addSSRC(ssrc, 'callgate', 'callgate', 'agent');
      const track = pc.addTrack(audio);
      parts.bridge = await TrackBridge.open(track, leg.endpoint.localAddress, ssrc);
      leg.endpoint.setRemote(parts.bridge.address);
      const channel = new PageChannel();
      pc.onDataChannel((dc) => {
        channel.attach(dc);
        // The page's keypad: keys arrive as {type: 'dtmf', digit} and reach the agent like RFC 4733 ones.
        dc.onMessage((msg) => {
          const digit = pageDtmf(msg);
          if (digit) leg.emit('dtmf', { digit, durationMs: 250, rtpTimestamp: 0, volume: 10 });
        });
      });
      const connected = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new CallgateError('CG_WEBRTC_NOT_CONNECTED', `no media connection within ${this.options.connectTimeoutMs} ms`)), this.options.connectTimeoutMs);
        track.onOpen(() => {
          clearTimeout(timer);
          resolve();
        });
        pc.onStateChange((state) => {
          if (state === 'failed' || state === 'closed') {
            clearTimeout(timer);
            reject(new CallgateError('CG_WEBRTC_NOT_CONNECTED', `peer connection ${state} before media flowed`));
          }
        });
      });
      connected.catch(() => undefined);
      const sdp = await this.localAnswer(pc, offer.sdp);
      const { vad } = parts;
      parts.vad = undefined;
      const running = this.run({ callId, log, recorder, leg, pc, track, connected, vad, providers, config, variables, release, channel, slug: url.slug })
        .catch((err: unknown) => log.error({ err: String(err) }, 'web call failed'));
      this.active.add(running);
      void running.finally(() => this.active.delete(running));
      log.info({ slug: url.slug }, 'web call answered');
      return { callId, sdp };
    } catch (err) {
      await release();
      // Refused before the answer (limits, tokens, bad SDP): a record like the SIP door's.
      if (err instanceof CallgateError) await recorder.finish({ outcome: 'rejected', error: { code: err.code } }).catch(() => undefined);
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

  private async localAnswer(pc: PeerConnection, offerSdp: string): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    const gathered = new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new CallgateError('CG_WEBRTC_NOT_CONNECTED', `ICE gathering took over ${this.options.gatherTimeoutMs} ms`)), this.options.gatherTimeoutMs);
      pc.onGatheringStateChange((state) => {
        if (state === 'complete') {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    // The answer is made by libdatachannel as the offer is applied; we wait for its candidates (no trickle).
    try {
      await applyRemoteDescription(pc, offerSdp, 'offer');
    } catch (err) {
      throw new CallgateError('CG_SDP_MALFORMED', `the offer was refused: ${String(err)}`.slice(0, 300));
    }
    // Already complete: the timer must not fire later as an unhandled rejection.
    if (pc.gatheringState() !== 'complete') await gathered;
    else clearTimeout(timer);
    const local = pc.localDescription();
    if (!local || local.type !== 'answer') throw new CallgateError('CG_WEBRTC_NOT_CONNECTED', 'no local answer after ICE gathering');
    return local.sdp;
  }

  private async run(c: {
    callId: string;
    log: Logger;
    recorder: CallRecorder;
    leg: AudioLeg;
    pc: PeerConnection;
    track: Track;
    connected: Promise<void>;
    vad: VoiceActivityDetector;
    providers: ReturnType<ProviderRegistry['forCall']>;
    config: ReturnType<typeof agentConfigFor>['config'];
    variables: Record<string, string>;
    release: () => Promise<void>;
    channel: PageChannel;
    slug: string;
  }): Promise<void> {
    let vad: VoiceActivityDetector | undefined = c.vad;
    let watchdog: MediaWatchdog | undefined;
    try {
      await c.connected;
      let open = true;
      const call = new CallSession({
        callId: c.callId,
        config: c.config,
        media: c.leg,
        variables: c.variables,
        metadata: { from: `web:${c.slug}`, to: `callurl:${c.slug}` },
        hangup: () => {
          open = false;
          // Let the goodbye's last packets leave before the peer connection goes.
          setTimeout(() => c.pc.close(), 200);
        },
      });
      const gone = (): void => {
        if (!open) return;
        open = false;
        call.remoteHangup();
      };
      // A page that hangs up closes its peer connection; a page that vanishes fails ICE consent.
      c.pc.onStateChange((state) => {
        if (state === 'closed' || state === 'failed' || state === 'disconnected') gone();
      });
      c.track.onClosed(gone);
      watchdog = new MediaWatchdog(c.leg.endpoint, (silentForMs) => {
        c.log.info({ silentForMs: Math.round(silentForMs) }, 'no media from the page; hanging up');
        void call.hangup('media-timeout');
      }, { timeoutMs: this.options.mediaTimeoutMs });
      const session = new AgentSession({ call, providers: c.providers, vad, prompts: this.deps.prompts, options: this.deps.agent ?? {}, logger: c.log });
      vad = undefined;
      session.on('event', (e) => c.channel.send(e));
      c.recorder.attach(session);
      this.sessions.add(session);
      c.recorder.answered();
      await session.start();
      const reason = await session.ended;
      c.channel.send({ type: 'session-ended', atMs: 0, reason });
      await c.recorder.finish();
    } catch (err) {
      const code = err instanceof CallgateError ? err.code : 'CG_INTERNAL';
      await c.recorder.finish({ outcome: 'failed', error: { code } }).catch(() => undefined);
    } finally {
      // Cleared here, not on the call's end: a session that fails to start never ends it.
      watchdog?.close();
      vad?.close();
      await c.release();
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
  if (e.type === 'session-ended') return { type: 'ended', reason: e.reason };
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
