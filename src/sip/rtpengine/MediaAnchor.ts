import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { parse, write, type SessionDescription } from 'sdp-transform';
import { CallgateError, isCallgateError } from '../../errors.js';
import type { CodecName } from '../../media/codecs/AudioCodec.js';
import { missingWebRtc, negotiate, parseRemoteSdp, type NegotiatedMedia } from '../../media/sdp.js';

/**
 * Which kind of caller the anchored call has. 'trunk': plain RTP on both sides (G.711). 'webrtc': the
 * caller is a browser (ICE, DTLS-SRTP, rtcp-mux), our side plain RTP/AVP.
 */
export type AnchorProfile = 'trunk' | 'webrtc';

export interface MediaAnchorOptions {
  /** rtpengine's ng address. */
  readonly host: string;
  readonly port: number;
  /** A command with no reply by then fails with CG_RTPENGINE_UNAVAILABLE. */
  readonly timeoutMs: number;
  /** Local address of our ng socket. */
  readonly localAddress: string;
  /** Trunk calls: also offer Opus to the agent side (rtpengine transcodes). */
  readonly trunkTranscodeOpus: boolean;
  /** Codecs the agent side accepts; every SDP rtpengine returns must carry one of them. */
  readonly codecs: readonly CodecName[];
  /**
   * rtpengine interface names facing the caller and the agent (ng `direction`), for an rtpengine with
   * several interfaces (rtpengine/docker.conf: public and internal). Undefined: its single interface.
   */
  readonly interfaces: { readonly caller: string; readonly agent: string } | undefined;
}

export const defaultMediaAnchorOptions = {
  host: '127.0.0.1',
  port: 22222,
  /** 1 s: commands take ~1 ms on loopback; a second means rtpengine is gone or overloaded. */
  timeoutMs: 1000,
  localAddress: '127.0.0.1',
  /** false: G.711 end to end costs rtpengine nothing; transcoding costs CPU for little gain on a phone line. */
  trunkTranscodeOpus: false,
  /** Everything the media engine implements. */
  codecs: ['opus', 'PCMU', 'PCMA'],
  /** One interface, as in rtpengine/local.conf and the test harness. */
  interfaces: undefined,
} as const satisfies MediaAnchorOptions;

export interface OfferRequest {
  readonly callId: string;
  readonly fromTag: string;
  /** The caller's offer. */
  readonly sdp: string;
  readonly profile: AnchorProfile;
  /** On a re-INVITE: the other party's tag, so rtpengine knows the dialog whichever side offers. */
  readonly toTag?: string;
}

export interface AnswerRequest extends OfferRequest {
  readonly toTag: string;
}

/** An SDP rtpengine returned, checked, with what our side would negotiate from it. */
export interface AnchoredSdp {
  readonly sdp: string;
  readonly media: NegotiatedMedia;
}

/** The part of rtpengine-client 0.4 we use (it ships no types). */
interface NgClient {
  on(event: 'error', listener: (err: unknown) => void): void;
  once(event: 'listening', listener: () => void): void;
  close(): void;
  ping(remote: NgRemote, opts?: NgParams): Promise<NgReply>;
  offer(remote: NgRemote, opts: NgParams): Promise<NgReply>;
  answer(remote: NgRemote, opts: NgParams): Promise<NgReply>;
  delete(remote: NgRemote, opts: NgParams): Promise<NgReply>;
  statistics(remote: NgRemote, opts?: NgParams): Promise<NgReply>;
}
interface NgRemote {
  readonly host: string;
  readonly port: number;
}
type NgParams = Record<string, unknown>;
interface NgReply {
  readonly result?: string;
  readonly sdp?: string | Buffer;
  readonly warning?: string;
  readonly 'error-reason'?: string;
  readonly statistics?: { readonly currentstatistics?: { readonly sessionstotal?: number } };
}

// rtpengine-client is CommonJS without types; createRequire keeps its untyped surface in this file.
const { Client } = createRequire(import.meta.url)('rtpengine-client') as {
  Client: new (opts: { localAddress: string; localPort: number; timeout: number; rejectOnError: boolean }) => NgClient;
};

/**
 * ng flags per profile and direction (measured with rtpengine 10.5, /work/shared/ENVIRONMENT.md).
 * The offer's flags shape what our side gets; the answer's shape what goes back to the caller.
 */
function offerFlags(profile: AnchorProfile, opts: MediaAnchorOptions): NgParams {
  if (profile === 'webrtc') {
    return {
      ICE: 'remove',
      DTLS: 'off',
      SDES: ['off'],
      'transport-protocol': 'RTP/AVP',
      'rtcp-mux': ['demux'],
      replace: ['origin', 'session-connection'],
      // Without ICE-lite backward (and DTLS passive in the answer) rtpengine races the browser for
      // ICE/DTLS from offer time: some setups fail or take over a second.
      'ICE-lite': 'backward',
    };
  }
  return {
    ICE: 'remove',
    'transport-protocol': 'RTP/AVP',
    'rtcp-mux': ['demux'],
    replace: ['origin', 'session-connection'],
    ...(opts.trunkTranscodeOpus ? { codec: { transcode: ['opus'] } } : {}),
  };
}

function answerFlags(profile: AnchorProfile): NgParams {
  if (profile === 'webrtc') return { DTLS: 'passive', replace: ['origin', 'session-connection'] };
  return { replace: ['origin', 'session-connection'] };
}

/**
 * Anchors a call's media in rtpengine over its ng protocol: the caller's offer goes in and the SDP for
 * our agent leg comes out; our answer goes in and the SDP for the caller comes out. Every reply is
 * checked, because rtpengine answers `ok` to much bad input (an empty SDP even creates a call).
 */
export class MediaAnchor {
  private readonly remote: NgRemote;
  private closed = false;

  private constructor(
    private readonly client: NgClient,
    readonly options: MediaAnchorOptions,
  ) {
    this.remote = { host: options.host, port: options.port };
    // ICMP port-unreachable and the like arrive as socket errors; the command then times out, which
    // is what callers see (CG_RTPENGINE_UNAVAILABLE). Unhandled, the event would crash the process.
    client.on('error', () => {});
  }

  static async open(options: Partial<MediaAnchorOptions> = {}): Promise<MediaAnchor> {
    const opts: MediaAnchorOptions = { ...defaultMediaAnchorOptions, ...options };
    // rejectOnError makes `result: error` replies reject (the README's rejectOnFailure does nothing).
    const client = new Client({ localAddress: opts.localAddress, localPort: 0, timeout: opts.timeoutMs, rejectOnError: true });
    await new Promise<void>((resolve) => client.once('listening', resolve));
    return new MediaAnchor(client, opts);
  }

  async ping(): Promise<void> {
    const reply = await this.command('ping', () => this.client.ping(this.remote));
    if (reply.result !== 'pong') throw new CallgateError('CG_RTPENGINE_FAILED', `ping answered "${String(reply.result)}"`);
  }

  /** Sends the caller's offer; returns the SDP to give our agent leg. */
  async offer(req: OfferRequest): Promise<AnchoredSdp> {
    // rtpengine would anchor a plain offer under the WebRTC flags too, and a "browser" call would run
    // without encryption: refuse it before rtpengine makes a call of it.
    if (req.profile === 'webrtc') checkWebRtcShape(req.sdp, 'CG_SDP_NOT_WEBRTC', 'the offer');
    const ifs = this.options.interfaces;
    const params = {
      'call-id': req.callId,
      'from-tag': req.fromTag,
      ...(req.toTag ? { 'to-tag': req.toTag } : {}),
      sdp: req.sdp,
      ...offerFlags(req.profile, this.options),
      ...(ifs ? { direction: [ifs.caller, ifs.agent] } : {}),
    };
    const reply = await this.command('offer', () => this.client.offer(this.remote, params));
    try {
      // Our side is plain RTP/AVP for both profiles.
      return this.checkSdp(reply, false);
    } catch (err) {
      // rtpengine has made a call of it even so; leave nothing behind.
      await this.delete({ callId: req.callId, fromTag: req.fromTag }).catch(() => {});
      throw err;
    }
  }

  /** Sends our agent leg's answer; returns the SDP to give the caller. */
  async answer(req: AnswerRequest): Promise<AnchoredSdp> {
    const params = { 'call-id': req.callId, 'from-tag': req.fromTag, 'to-tag': req.toTag, sdp: req.sdp, ...answerFlags(req.profile) };
    const reply = await this.command('answer', () => this.client.answer(this.remote, params));
    const anchored = this.checkSdp(reply, req.profile === 'webrtc');
    if (req.profile === 'webrtc') checkWebRtcShape(anchored.sdp, 'CG_RTPENGINE_BAD_SDP', "rtpengine's answer");
    return anchored;
  }

  /** Ends the call in rtpengine at once. An unknown call is CG_RTPENGINE_FAILED. */
  async delete(req: { readonly callId: string; readonly fromTag: string }): Promise<void> {
    // `fatal` turns "Call-ID not found" from a warning into an error; `delete delay: 0` frees the
    // call now instead of after rtpengine's default 30 s.
    const params = { 'call-id': req.callId, 'from-tag': req.fromTag, 'delete delay': 0, flags: ['fatal'] };
    await this.command('delete', () => this.client.delete(this.remote, params));
  }

  /** Calls rtpengine holds now (own and foreign), from ng `statistics`. */
  async sessionCount(): Promise<number> {
    const reply = await this.command('statistics', () => this.client.statistics(this.remote));
    const n = reply.statistics?.currentstatistics?.sessionstotal;
    if (typeof n !== 'number') throw new CallgateError('CG_RTPENGINE_FAILED', 'statistics reply has no currentstatistics.sessionstotal');
    return n;
  }

  /** Closes the ng socket. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.close();
  }

  private async command(name: string, send: () => Promise<NgReply>): Promise<NgReply> {
    if (this.closed) throw new CallgateError('CG_RTPENGINE_UNAVAILABLE', `${name}: the anchor is closed`);
    let reply: NgReply;
    try {
      reply = await send();
    } catch (err) {
      // With rejectOnError, rtpengine's own refusals arrive as the bare error-reason string; timeouts
      // and socket failures as Error objects.
      if (typeof err === 'string') {
        throw new CallgateError('CG_RTPENGINE_FAILED', `${name}: ${err}`, { details: { command: name, reason: err } });
      }
      throw new CallgateError('CG_RTPENGINE_UNAVAILABLE', `${name}: no reply from ${this.remote.host}:${this.remote.port}`, {
        details: { command: name, timeoutMs: this.options.timeoutMs },
        cause: err,
      });
    }
    if (reply.result === 'error') {
      const reason = reply['error-reason'] ?? 'no reason given';
      throw new CallgateError('CG_RTPENGINE_FAILED', `${name}: ${reason}`, { details: { command: name, reason } });
    }
    return reply;
  }

  private checkSdp(reply: NgReply, secure: boolean): AnchoredSdp {
    const sdp = reply.sdp === undefined ? '' : String(reply.sdp);
    try {
      return { sdp, media: validateAnchoredSdp(sdp, secure, this.options.codecs) };
    } catch (err) {
      if (isCallgateError(err) && err.code === 'CG_RTPENGINE_BAD_SDP') throw err;
      const reason = err instanceof Error ? err.message : String(err);
      throw new CallgateError('CG_RTPENGINE_BAD_SDP', reason, { details: isCallgateError(err) ? { sdpCode: err.code } : {}, cause: err });
    }
  }
}

/**
 * What every WebRTC SDP has (RFC 8829/8842): the UDP/TLS/RTP/SAVPF profile, a DTLS fingerprint and
 * ICE credentials, at media or session level.
 */
function checkWebRtcShape(sdp: string, code: 'CG_SDP_NOT_WEBRTC' | 'CG_RTPENGINE_BAD_SDP', what: string): void {
  let session: SessionDescription;
  try {
    session = parse(sdp);
  } catch (err) {
    throw new CallgateError(code, `${what} could not be parsed`, { cause: err });
  }
  const missing = missingWebRtc(session, (session.media ?? []).find((x) => x.type === 'audio'));
  if (missing.length > 0) throw new CallgateError(code, `${what} is not WebRTC: no ${missing.join(', ')}`, { details: { missing } });
}

/**
 * One live audio m-line, a unicast connection address, a non-zero port and a codec we implement.
 * `secure`: the browser-facing SDP (UDP/TLS/RTP/SAVPF), which parseRemoteSdp refuses by design (our
 * legs take plain RTP only); its codec list is checked through a plain-RTP view of the same SDP.
 */
export function validateAnchoredSdp(sdp: string, secure: boolean, codecs: readonly CodecName[]): NegotiatedMedia {
  if (sdp.trim() === '') throw new CallgateError('CG_RTPENGINE_BAD_SDP', 'no SDP in the reply');
  let session: SessionDescription;
  try {
    session = parse(sdp);
  } catch (err) {
    throw new CallgateError('CG_RTPENGINE_BAD_SDP', 'SDP could not be parsed', { cause: err });
  }
  const audio = (session.media ?? []).filter((m) => m.type === 'audio');
  if (audio.length !== 1) throw new CallgateError('CG_RTPENGINE_BAD_SDP', `${audio.length} audio m-lines, expected 1`);
  const m = audio[0]!;
  if (!(m.port > 0)) throw new CallgateError('CG_RTPENGINE_BAD_SDP', `audio port ${m.port}`);
  const ip = (m.connection ?? session.connection)?.ip;
  if (!ip || isIP(ip) === 0 || ip === '0.0.0.0' || ip === '::') {
    throw new CallgateError('CG_RTPENGINE_BAD_SDP', `connection address "${ip ?? ''}"`);
  }
  let plain = sdp;
  if (secure) {
    m.protocol = 'RTP/AVP';
    plain = write(session);
  }
  return negotiate(parseRemoteSdp(plain), { codecs });
}
