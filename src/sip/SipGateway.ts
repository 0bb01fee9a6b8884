import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import Srf from 'drachtio-srf';
import { joinRoomByPhone } from '../rooms/phoneParticipant.js';
import type { Door } from '../call/CallRunner.js';
import type { Logger } from 'pino';
import { LiveSessions } from '../agent/LiveSessions.js';
import { CallRunner, type RunningCall } from '../call/CallRunner.js';
import { CallgateError, isCallgateError, type ErrorCode } from '../errors.js';
import { callLogger, rootLogger } from '../log.js';
import { legCodecFrom, openAudioLeg } from '../media/AudioLeg.js';
import { answerFor, buildSdp, parseRemoteSdp } from '../media/sdp.js';
import { agentConfigFor } from '../tenants/TenantStore.js';
import { userOf, type InviteRequest } from './invite/InviteRequest.js';
import { identifySource, rejectScanners, routeToNumber, tenantFor, type AuthLockout } from './invite/steps.js';
import type { AnchorProfile } from './rtpengine/MediaAnchor.js';
import { defaultDrachtioConnection, type DrachtioConnection } from './SipConfig.js';
import { DigestAuth } from './invite/DigestAuth.js';
import { SourceLimiter } from './invite/SourceLimiter.js';
import { SourceIgnoreList } from './invite/SourceIgnoreList.js';
import { forgetUnansweredInvite } from './drachtioPending.js';
import { drachtioUnparsed, installUnparsedRequestGuard, type UnparsedRequest } from './drachtioUnparsed.js';
import { drachtioFramingErrors, installDrachtioFramingGuard, type FramingError } from './drachtioFraming.js';
import { contained, runAnsweredCall, sendBye, type SipTransfers } from './answeredCall.js';
import { SipDialer } from './transfer/SipDialer.js';
import type { SipGatewayDeps } from './SipGatewayDeps.js';
import { startOutboundCall, type DialRequest, type DialStarted } from './outboundCall.js';
import { SipError, sipErrorFrom } from './SipError.js';
import { Registrar } from './register/Registrar.js';

/**
 * One answered call's signalling-to-media milestones (performance.now() ms), emitted when the
 * greeting's first packet leaves: what the SIP benchmark and metrics read.
 */
export interface SipCallTiming {
  readonly callId: string;
  readonly tenantId: string;
  readonly inviteAt: number;
  readonly answeredAt: number;
  /** Undefined when no ACK came within `ackWaitMs` (the agent started anyway). */
  readonly ackAt: number | undefined;
  readonly firstPacketAt: number;
}

/**
 * An INVITE refused before it reached a tenant (rate-limited, scanner, unknown source, unknown
 * number, …): no call record is written for it, so this is what metrics count.
 */
export interface SipRefusal {
  readonly code: ErrorCode;
  /** The source address it came from. */
  readonly source: string;
}

/** A source put on the ignore list: its INVITEs are dropped unanswered until `ignoreMs` has passed. */
export interface SipIgnoredSource {
  readonly source: string;
  readonly ignoreMs: number;
}

export interface SipGatewayEvents {
  'call-timing': [SipCallTiming];
  refused: [SipRefusal];
  /** A username or source was locked out after too many failed digest attempts. */
  'auth-lockout': [AuthLockout];
  'source-ignored': [SipIgnoredSource];
}

/**
 * How long after the 200 OK the agent waits for the ACK before greeting anyway. The greeting is meant
 * to start at the ACK (the caller's side is then ready for media); a lost ACK is retransmitted-for by
 * drachtio, and the caller should not hear silence meanwhile.
 */
const ACK_WAIT_MS = 2000;

/**
 * Most m= lines an offer may have. rtpengine opens ports for every one of them before anything is
 * checked (measured: 100 audio m-lines were anchored as 100 streams; 2 500 took its whole port range,
 * "Ran out of ports"), so one INVITE could starve every other call. A real offer has one to three
 * (audio, maybe video or T.38); 8 leaves room for capability-negotiation duplicates.
 */
const MAX_OFFER_MEDIA = 8;

/** Unparseable requests are logged at most once per this window (with the count since the last line). */
const UNPARSED_LOG_WINDOW_MS = 60_000;

export type { SipGatewayDeps } from './SipGatewayDeps.js';

/**
 * The SIP front door: drachtio-srf on a drachtio-server. An INVITE goes through the steps in
 * invite/steps.ts (source → number → tenant), then the call runner takes it (record, line), media is
 * anchored in rtpengine, the call answered, and the runner starts the tenant's agent. Everything the
 * call acquires is on its teardown stack: every path out releases the line, closes the leg and
 * deletes the rtpengine session.
 */
export class SipGateway extends EventEmitter<SipGatewayEvents> {
  readonly srf = new Srf();
  private readonly log: Logger;
  private readonly active = new Set<Promise<void>>();
  private readonly digest = new DigestAuth();
  /** INVITEs per source address, checked before anything that touches Redis. */
  readonly sources: SourceLimiter;
  /** Sources that kept sending what we refuse: dropped unanswered, before anything else. */
  readonly ignored: SourceIgnoreList;
  /** Present when the door has devices: answers REGISTERs (src/sip/register). */
  readonly registrar: Registrar | undefined;
  /** Set by `stopAccepting()` (SIGTERM): new INVITEs get 503 with Retry-After, calls in progress go on. */
  private accepting = true;

  private readonly deps: SipGatewayDeps & { readonly sessions: LiveSessions; readonly runner: CallRunner; readonly transfers: SipTransfers };
  /** Dials transfer targets: this door's own transfers, and the web door's (through the gateway). */
  readonly transferDialer: SipDialer;

  constructor(deps: SipGatewayDeps) {
    super();
    this.transferDialer = new SipDialer({ srf: this.srf, anchor: deps.anchor, numbers: deps.numbers, clock: deps.clock, ...(deps.endpoint ? { endpoint: deps.endpoint } : {}) });
    const transfers: SipTransfers = { dialer: this.transferDialer, ...(deps.transferNotifyTimeoutMs === undefined ? {} : { notifyTimeoutMs: deps.transferNotifyTimeoutMs }) };
    this.deps = { ...deps, sessions: deps.sessions ?? new LiveSessions(), runner: deps.runner ?? new CallRunner(deps), transfers };
    this.log = (deps.logger ?? rootLogger).child({ door: 'sip' });
    this.sources = new SourceLimiter(deps.sourceLimit);
    this.ignored = new SourceIgnoreList(deps.ignore);
    this.srf.on('error', (err: Error) => this.log.warn({ err: err.message }, 'drachtio connection error; drachtio-srf reconnects'));
    // Carriers ping with OPTIONS to see the gateway is up. Registering the verb (srf.options, which
    // drachtio-srf's typings omit) is what makes drachtio-server route OPTIONS to us; without it, 503.
    (this.srf as unknown as { options(handler: (req: Srf.SrfRequest, res: Srf.SrfResponse) => void): void }).options((_req, res) => res.send(200));
    // REGISTER reaches us only once the verb is registered (drachtio answers 503 to verbs no app took).
    this.registrar = deps.devices && deps.bindings ? new Registrar({ devices: deps.devices, bindings: deps.bindings, digest: deps.digest ?? this.digest, authFailures: deps.authFailures, onLockout: this.onLockout, logger: this.log }, deps.registrar) : undefined;
    if (this.registrar) {
      const registrar = this.registrar;
      (this.srf as unknown as { register(handler: (req: Srf.SrfRequest, res: Srf.SrfResponse) => void): void }).register((req, res) => {
        void this.onRegister(registrar, req, res).catch((err: unknown) => this.log.error({ err: String(err) }, 'REGISTER handler failed'));
      });
    }
    this.srf.invite((req, res) => {
      const handling = this.onInvite(req, res).catch((err: unknown) => this.log.error({ err: String(err) }, 'INVITE handler failed'));
      this.active.add(handling);
      void handling.finally(() => this.active.delete(handling));
    });
  }

  /**
   * Connects to drachtio-server and resolves at the first connection. Losing it later is not fatal:
   * drachtio-srf reconnects with backoff (capped here at `reconnectMaxDelayMs`), and calls in
   * progress keep their media (rtpengine and our legs do not depend on the signalling link).
   */
  async connect(conn: DrachtioConnection): Promise<void> {
    if (installDrachtioFramingGuard()) drachtioFramingErrors.on('recovered', this.onFramingError);
    else this.log.warn('drachtio-srf internals changed: an interleaved oversized message from drachtio would crash the process');
    if (installUnparsedRequestGuard()) drachtioUnparsed.on('refused', this.onUnparsed);
    else this.log.warn('drachtio-srf internals changed: requests it cannot parse get 100 Trying and no answer');
    // drachtio-srf emits these but its typings list only SIP methods.
    const events = this.srf as unknown as NodeJS.EventEmitter;
    events.on('reconnecting', (opts: { attempt: number; delay: number }) => this.log.warn(opts, 'drachtio connection lost; reconnecting'));
    events.on('connect', (err: Error | undefined, hostport: string) => {
      if (!err) this.log.info({ drachtio: `${conn.host}:${conn.port}`, sip: hostport }, 'connected to drachtio-server');
    });
    await new Promise<void>((resolve, reject) => {
      this.srf.once('connect', (err: Error) => (err ? reject(err) : resolve()));
      this.srf.connect({ host: conn.host, port: conn.port, secret: conn.secret, reconnect: { retryMaxDelay: conn.reconnectMaxDelayMs ?? defaultDrachtioConnection.reconnectMaxDelayMs } } as never);
    });
  }

  /** Disconnects from drachtio; calls in progress are left to finish (await `drain()` to wait). */
  disconnect(): void {
    drachtioFramingErrors.off('recovered', this.onFramingError);
    drachtioUnparsed.off('refused', this.onUnparsed);
    this.srf.disconnect();
  }

  /** Unparseable requests answered 400 since the last log line, and when that was. */
  private unparsed = { count: 0, loggedAt: -Infinity };

  private readonly onUnparsed = (u: UnparsedRequest): void => {
    this.emit('refused', { code: 'CG_SIP_MALFORMED', source: u.source });
    this.countRefusal(u.source);
    this.unparsed.count++;
    const now = performance.now();
    // One line a minute at most, with the count: the requests are the sender's to multiply.
    if (now - this.unparsed.loggedAt >= UNPARSED_LOG_WINDOW_MS) {
      this.log.warn({ source: u.source, bytes: u.bytes, refused: this.unparsed.count, code: 'CG_SIP_MALFORMED' }, 'SIP request drachtio-srf cannot parse: answered 400');
      this.unparsed = { count: 0, loggedAt: now };
    }
  };

  private readonly onFramingError = (e: FramingError): void => {
    this.log.error(e, 'drachtio link lost its message framing (an oversized message interleaved): reconnecting; calls keep their media');
  };

  /**
   * Calls `req.to` through a trunk and runs the tenant's agent when answered. Resolves once the call
   * is under way (tenant, trunk and a line checked); `done` settles when it is over.
   */
  async dial(req: DialRequest): Promise<DialStarted> {
    if (!this.accepting) throw new CallgateError('CG_DRAINING');
    const started = await startOutboundCall(this.srf, this.deps, req, this.log);
    const tracked = started.done.catch((err: unknown) => this.log.error({ err: String(err) }, 'outbound call failed'));
    this.active.add(tracked);
    void tracked.finally(() => this.active.delete(tracked));
    return started;
  }

  async drain(): Promise<void> {
    await Promise.allSettled([...this.active]);
  }

  /** From now on, new calls in and out are refused with CG_DRAINING (SIP 503); calls in progress go on. */
  stopAccepting(): void {
    this.accepting = false;
  }

  get activeCalls(): number {
    return this.active.size;
  }

  /** Shutdown past the drain: every call in progress says goodbye and hangs up. */
  shutdownCalls(): number {
    return this.deps.sessions.shutdownAll();
  }

  /**
   * What is decided before any logger, Redis lookup or rtpengine offer, in this order: an ignored
   * source's INVITE is dropped; a known scanner's is dropped and counted towards ignoring its source
   * (no final response from us: drachtio-server has already sent 100 Trying, which is all it hears);
   * one over the source's rate gets 503. True when the INVITE was dealt with here.
   */
  private screen(req: Srf.SrfRequest, invite: InviteRequest, res: Srf.SrfResponse): boolean {
    const source = invite.sourceAddress;
    if (this.ignored.isIgnored(source)) {
      forgetUnansweredInvite(req);
      this.emit('refused', { code: 'CG_SIP_SOURCE_IGNORED', source });
      return true;
    }
    if (isScanner(invite)) {
      forgetUnansweredInvite(req);
      this.emit('refused', { code: 'CG_SIP_SCANNER', source });
      this.countRefusal(source);
      return true;
    }
    return this.overRate(invite, res);
  }

  /** A refusal only an unwelcome source earns (SourceIgnoreList says which); enough of them and it is ignored. */
  private countRefusal(source: string): void {
    if (!this.ignored.refused(source)) return;
    const { refusals, windowMs, ignoreMs } = this.ignored.options;
    this.log.warn({ source, refusals, windowMs, ignoreMs, code: 'CG_SIP_SOURCE_IGNORED' }, 'SIP source kept sending INVITEs we refuse: ignoring it for a while');
    this.emit('source-ignored', { source, ignoreMs });
  }

  /** One log line per lockout: who and from where, never the password or the digest response. */
  private readonly onLockout = (l: AuthLockout): void => {
    this.log.warn({ scope: l.scope, username: l.username.slice(0, 64), source: l.source, lockoutMs: l.lockoutMs, code: 'CG_SIP_AUTH_LOCKED' }, 'SIP digest: too many failed attempts; locked out');
    this.emit('auth-lockout', l);
  };

  /**
   * The per-source INVITE limit: over it, a 503 with Retry-After (a final response, so drachtio ends
   * the transaction) and no log line but one per source a window.
   */
  private overRate(invite: InviteRequest, res: Srf.SrfResponse): boolean {
    const verdict = this.sources.take(invite.sourceAddress);
    if (verdict.allowed) return false;
    res.send(503, 'Service Unavailable', { headers: { 'Retry-After': String(verdict.retryAfterS) } });
    if (verdict.report !== undefined) {
      this.log.warn({ source: verdict.bucket, refused: verdict.report, code: 'CG_SIP_RATE_LIMITED' }, 'SIP source over its INVITE rate: refusing with 503');
    }
    this.emit('refused', { code: 'CG_SIP_RATE_LIMITED', source: invite.sourceAddress });
    return true;
  }

  /**
   * A REGISTER: screened like an INVITE (ignored sources, scanners, the per-source rate), then the
   * registrar's answer. Its challenges and refusals count towards ignoring the source: a phone earns
   * one challenge per registration, a guesser or a flood a hundred a minute.
   */
  private async onRegister(registrar: Registrar, req: Srf.SrfRequest, res: Srf.SrfResponse): Promise<void> {
    const request = fromSrfRequest(req);
    if (this.screen(req, request, res)) return;
    const cseq = Number(/^\s*(\d+)/.exec(req.get('CSeq') ?? '')?.[1] ?? NaN);
    const r = (req as unknown as { source_port?: number }).source_port;
    const result = await registrar.handle({
      callId: request.callId,
      uri: req.uri,
      to: request.to,
      cseq: Number.isFinite(cseq) ? cseq : 0,
      contact: req.get('Contact') ?? undefined,
      expires: req.get('Expires') ?? undefined,
      authorization: request.header('authorization'),
      userAgent: request.header('user-agent'),
      source: { address: request.sourceAddress, port: r ?? 5060, transport: request.transport },
    });
    res.send(result.status, result.reason, { headers: result.headers });
    if (result.status === 401 || result.status === 403) this.countRefusal(request.sourceAddress);
    if (result.status >= 400 && result.status !== 401) this.log.info({ callId: request.callId, status: result.status, source: request.sourceAddress }, 'REGISTER refused');
  }

  private async onInvite(req: Srf.SrfRequest, res: Srf.SrfResponse): Promise<void> {
    const inviteAt = performance.now();
    const invite = fromSrfRequest(req);
    if (this.screen(req, invite, res)) return;
    const log = callLogger({ callId: invite.callId }, this.log);
    const { deps } = this;
    const digest = deps.digest ?? this.digest;
    let dialog: Srf.Dialog | undefined;
    /** `open`: the dialog is up and neither side has ended it; whatever happens next, it gets a BYE. */
    const state = { open: false };
    let canceled = false;
    /** Set once the source is proven: refusals before it count towards ignoring the source. */
    let identified = false;
    /** Begun once the tenant is known: refused and failed calls get a record too. */
    let call: RunningCall | undefined;
    req.on('cancel', () => {
      canceled = true;
      log.info('caller canceled before answer');
    });
    try {
      if (!this.accepting) throw new CallgateError('CG_DRAINING');
      const source = await identifySource(invite, {
        numbers: deps.numbers,
        digest,
        authFailures: deps.authFailures,
        onLockout: this.onLockout,
        ...(deps.devices ? { devices: deps.devices, onStrangerChallenge: (source: string) => this.countRefusal(source) } : {}),
        ...(deps.tokens ? { tokens: deps.tokens } : {}),
      });
      identified = true;
      const route = await routeToNumber(invite, source, deps.numbers);
      const tenant = await tenantFor(route, deps.tenants);
      // A number routed to a room: the room must be there, this tenant's, and joinable, before we answer.
      if (route.room !== undefined) {
        if (!deps.rooms) throw new CallgateError('CG_ROOM_ELSEWHERE', 'this gateway holds no rooms');
        const room = await deps.rooms.store.joinable(route.room);
        if (room.tenantId !== tenant.id) throw new CallgateError('CG_ROOM_NOT_FOUND', route.room);
      }
      // A browser's media is WebRTC (ICE, DTLS-SRTP) for rtpengine to terminate; a trunk's is plain RTP.
      const profile: AnchorProfile = source.kind === 'web' ? 'webrtc' : 'trunk';
      const from = source.kind === 'web' ? `web:${source.callUrl.slug}` : (userOf(invite.from) ?? invite.from);
      call = deps.runner.begin({ callId: invite.callId, tenantId: tenant.id, door: 'sip', from, to: route.number, log, sessions: deps.sessions });
      const { scope } = call;
      await call.takeLine(tenant.maxConcurrentCalls);
      const fromTag = tagOf(req.get('From')) ?? '';
      scope.defer('rtpengine delete', () => deps.anchor.delete({ callId: invite.callId, fromTag }));
      checkMediaCount(req.body);
      const offered = await deps.anchor.offer({ callId: invite.callId, fromTag, sdp: req.body as string, profile }).catch((err: unknown) => {
        throw profile === 'trunk' ? callerSdpFault(req.body, err) : err;
      });
      const leg = await openAudioLeg({
        callId: invite.callId,
        legId: 'agent',
        codec: legCodecFrom(offered.media),
        clock: deps.clock,
        endpoint: { ...deps.endpoint, remote: { address: offered.media.remote.address, port: offered.media.remote.port } },
      });
      scope.defer('leg close', () => leg.close());
      leg.once('closing', (stats) => contained(log, 'leg statistics hook', () => deps.legStats?.(stats)));
      const ourSdp = buildSdp({ address: leg.endpoint.localAddress.address, port: leg.endpoint.localAddress.port, ...answerFor(offered.media) });
      const toTag = randomBytes(6).toString('hex');
      const answered = await deps.anchor.answer({ callId: invite.callId, fromTag, toTag, sdp: ourSdp, profile });
      // Everything that can fail is done before the 200 OK, so a failure is a SIP response, not a
      // silent answered call.
      const { config, variables } = agentConfigFor(tenant, source.kind === 'web' ? source.callUrl.variables : {});
      const providers = deps.providers.forCall(config, tenant.providerKeys, log.child({ tenant: tenant.id }));
      const vad = await deps.createVad();
      scope.defer('VAD close', () => vad.close());
      if (canceled) throw new Error('canceled');
      const answeredDialog = await this.srf.createUAS(req, res, { localSdp: answered.sdp });
      const answeredAt = performance.now();
      let ackAt: number | undefined;
      const acked = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ACK_WAIT_MS);
        answeredDialog.once('ack', () => {
          ackAt = performance.now();
          clearTimeout(timer);
          resolve();
        });
        // A caller gone before the ACK (or whose BYE drachtio-srf handled first, dropping our
        // listeners) must not keep the line and rtpengine for the whole wait.
        answeredDialog.once('destroy', () => {
          clearTimeout(timer);
          resolve();
        });
        if (!(answeredDialog as unknown as { connected: boolean }).connected) {
          clearTimeout(timer);
          resolve();
        }
      });
      dialog = answeredDialog;
      state.open = true;
      scope.defer('BYE', async () => {
        if (state.open) {
          state.open = false;
          await sendBye(answeredDialog);
        }
      });
      log.info({ tenant: tenant.id, number: route.number }, 'call answered');
      // Emitted from the paced sender's timer: a listener's exception must not escape into it.
      leg.once('talkspurt', () => {
        const firstPacketAt = performance.now();
        contained(log, 'call-timing listener', () => this.emit('call-timing', { callId: invite.callId, tenantId: tenant.id, inviteAt, answeredAt, ackAt, firstPacketAt }));
      });
      await runAnsweredCall(
        {
          call,
          dialog: answeredDialog,
          leg,
          agent: { config, variables, providers, vad, tenant },
          anchor: deps.anchor,
          profile,
          remoteTag: fromTag,
          localTag: toTag,
          startWhen: acked,
          transfers: deps.transfers,
          ...(route.room !== undefined && deps.rooms
            ? {
                room: (door: Door, remoteGone: Promise<void>) =>
                  joinRoomByPhone({ hub: deps.rooms!, roomId: route.room!, name: from.startsWith('+') ? from : 'Phone caller', door, remoteGone, tts: providers.tts, voice: config.voice, log }),
              }
            : {}),
          ...(deps.mediaWatchdog ? { mediaWatchdog: deps.mediaWatchdog } : {}),
        },
        state,
      );
    } catch (err) {
      // drachtio answers a CANCEL (487) on its own and tells us over the same link; when our 200 OK
      // is already on its way, the notice finds no pending INVITE and only the refused send tells.
      if (!dialog && /unknown transaction/i.test(err instanceof Error ? err.message : String(err))) canceled = true;
      let sip = sipErrorFrom(err);
      // A refusal only an unwelcome source earns; once it has earned enough, the ones still in flight
      // (they passed the screen before it was ignored) go unanswered too.
      const unwelcome = !identified && !canceled && !call && sip.status === 403;
      if (unwelcome && this.ignored.isIgnored(invite.sourceAddress)) sip = new SipError(403, 'Forbidden', {}, true, 'CG_SIP_SOURCE_IGNORED');
      // An unexpected failure is a bug or a broken dependency: worth a warning with the error itself.
      if (sip.code === 'CG_INTERNAL' && !canceled) log.warn({ err: err instanceof Error ? err.stack : String(err) }, 'call setup failed');
      if (canceled) log.debug('setup stopped: the caller canceled');
      else if (sip.silent) forgetUnansweredInvite(req);
      else if (!res.finalResponseSent) {
        res.send(sip.status, sip.reason, { headers: sip.headers });
        log.info({ status: sip.status, code: sip.code }, 'call refused');
      }
      // Refused before a tenant was known: no call record tells of it, so the event does. A 401 is a
      // digest challenge, the first half of a device's normal call, not a refusal.
      if (!call && !canceled && sip.status !== 401) {
        const code = sip.code ?? (sip.silent ? 'CG_SIP_SCANNER' : sip.status === 403 ? 'CG_SIP_FORBIDDEN' : 'CG_INTERNAL');
        this.emit('refused', { code, source: invite.sourceAddress });
        if (unwelcome && code !== 'CG_SIP_SOURCE_IGNORED') this.countRefusal(invite.sourceAddress);
      }
      // A cancel is the caller hanging up before the answer; otherwise refused before it, failed after.
      call?.end(canceled ? { outcome: 'caller-hangup' } : { outcome: dialog ? 'failed' : 'rejected', error: { code: sip.code ?? 'CG_INTERNAL' } });
    } finally {
      await call?.close();
    }
  }
}

/** Refuses an offer with more than MAX_OFFER_MEDIA m= lines before rtpengine sees it. */
function checkMediaCount(sdp: unknown): void {
  if (typeof sdp !== 'string') return;
  let count = 0;
  for (let i = sdp.indexOf('m='); i !== -1; i = sdp.indexOf('m=', i + 2)) {
    if (i === 0 || sdp[i - 1] === '\n') count++;
  }
  if (count > MAX_OFFER_MEDIA) throw new SipError(488, 'Not Acceptable Here', {}, false, 'CG_SDP_TOO_MANY_MEDIA');
}

/**
 * rtpengine refuses (or turns into unusable SDP) a caller's broken offer as it does its own failures,
 * and those map to 503, which tells a carrier to fail over. After such a failure, an offer our own
 * parser refuses too is the caller's fault: its SdpError (400/488) is the answer. Checked only after
 * a failure, so an offer rtpengine can take and we could not (SRTP from a trunk) still goes through.
 */
function callerSdpFault(sdp: unknown, err: unknown): unknown {
  if (!isCallgateError(err) || (err.code !== 'CG_RTPENGINE_FAILED' && err.code !== 'CG_RTPENGINE_BAD_SDP')) return err;
  try {
    parseRemoteSdp(typeof sdp === 'string' ? sdp : '');
  } catch (sdpErr) {
    return sdpErr;
  }
  return err;
}

/** Whether the INVITE steps would take it for a scanner's (they throw for one; nothing else does). */
function isScanner(invite: InviteRequest): boolean {
  try {
    rejectScanners(invite);
    return false;
  } catch {
    return true;
  }
}

/** The tag parameter of a From/To header. */
function tagOf(header: string | undefined): string | undefined {
  return header ? /;\s*tag=([^;\s>]+)/i.exec(header)?.[1] : undefined;
}

/** Adapts drachtio-srf's request to the INVITE steps' view of it. */
export function fromSrfRequest(req: Srf.SrfRequest): InviteRequest {
  const via = req.get('Via') ?? '';
  const viaTransport = /^SIP\/2\.0\/(\w+)/i.exec(via)?.[1]?.toLowerCase();
  // drachtio reports WS calls as tcp: the Via tells them apart (ENVIRONMENT.md).
  const transport = (viaTransport === 'ws' || viaTransport === 'wss' ? viaTransport : (req as unknown as { protocol?: string }).protocol) as InviteRequest['transport'];
  return {
    callId: req.get('Call-ID') ?? req.callId,
    uri: req.uri,
    to: req.get('To') ?? '',
    from: req.get('From') ?? '',
    sourceAddress: (req as unknown as { source_address?: string }).source_address ?? '',
    transport: transport ?? 'udp',
    header: (name) => req.get(name) ?? undefined,
  };
}
