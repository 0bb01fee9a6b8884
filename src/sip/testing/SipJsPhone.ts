import { Inviter, SessionState, UserAgent, type BodyAndContentType, type Session, type SessionDescriptionHandler } from 'sip.js';
import { WebSocket as WsWebSocket } from 'ws';
import { BrowserPeer, type BrowserPeerOptions } from '../../webrtc/testing/BrowserPeer.js';

/**
 * A web phone for tests, built on the real SIP.js over SIP-over-WebSocket, with a BrowserPeer
 * (libdatachannel) where a browser would have its RTCPeerConnection. It signals exactly as the web page
 * will (SIP.js's own transport, dialog and transaction code); only the media engine is a stand-in.
 * No registration: a web phone only places calls.
 */
export interface SipJsPhoneOptions {
  /** drachtio-server's SIP-over-WS address, e.g. `ws://127.0.0.1:8088`. */
  readonly server: string;
  /** The From identity. Nothing checks it (the call token identifies a web phone), so a placeholder. */
  readonly aor: string;
  /** Seconds SIP.js waits for the WebSocket to open. */
  readonly connectTimeoutS: number;
  /** Passed to each call's BrowserPeer. */
  readonly peer: Partial<BrowserPeerOptions>;
}

export const defaultSipJsPhoneOptions = {
  aor: 'sip:web-phone@callgate.invalid',
  /** 5 s: on loopback the socket opens in milliseconds; a failure should surface quickly. */
  connectTimeoutS: 5,
  peer: {},
} as const satisfies Omit<SipJsPhoneOptions, 'server'>;

/** A call the far end refused with a final response (403, 486, …). */
export class SipCallRefusedError extends Error {
  override readonly name = 'SipCallRefusedError';
  constructor(
    readonly status: number,
    readonly reason: string,
  ) {
    super(`call refused: ${status} ${reason}`);
  }
}

export interface SipJsCallOptions {
  /** Extra INVITE headers, e.g. `{ 'X-Call-Token': token }`. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Who ended a call: our BYE/CANCEL, or the far end's BYE (or a failure before it was set up). */
export type SipJsCallEnd = 'phone' | 'remote';

export interface SipJsCall {
  /** The INVITE's Call-ID: what the gateway's call record is keyed by. */
  readonly callId: string;
  readonly peer: BrowserPeer;
  /** performance.now() once the INVITE was handed to the WebSocket (after ICE gathering). */
  readonly sentAt: number;
  /** Resolves at the 2xx (SIP.js has ACKed it); rejects with SipCallRefusedError on a final refusal. */
  readonly established: Promise<void>;
  /** Resolves when the session is over, however it ended. */
  readonly ended: Promise<SipJsCallEnd>;
  /**
   * BYE when established, CANCEL before; resolves once the session has ended, which SIP.js decides as
   * the BYE goes out (not at its 200 OK): the far end may still be tearing down.
   */
  hangup(): Promise<SipJsCallEnd>;
}

/**
 * SIP.js's transport does `new WebSocket(server, 'sip')`, the browser global. Node 20 has none, so
 * `ws` fills it; where the runtime has its own (Node 22), that one is kept. SIP.js thus runs its own
 * transport unchanged, `sip` subprotocol included, as it would in a browser.
 */
function ensureWebSocketGlobal(): void {
  const g = globalThis as { WebSocket?: unknown };
  g.WebSocket ??= WsWebSocket;
}

const SDP = 'application/sdp';

/**
 * The SessionDescriptionHandler SIP.js asks for SDP: the peer's offer for the INVITE, the 200 OK's
 * answer back to the peer. One offer/answer per call: re-INVITEs are not something a test phone sends
 * or accepts, and refusing them loudly beats a half-applied renegotiation.
 */
class BrowserPeerSdh implements SessionDescriptionHandler {
  private offered = false;
  private answered = false;

  constructor(private readonly peer: BrowserPeer) {}

  async getDescription(): Promise<BodyAndContentType> {
    if (this.offered) throw new Error('SipJsPhone: renegotiation is not supported');
    this.offered = true;
    return { body: await this.peer.createOffer(), contentType: SDP };
  }

  hasDescription(contentType: string): boolean {
    return contentType.split(';')[0]?.trim().toLowerCase() === SDP;
  }

  async setDescription(sdp: string): Promise<void> {
    if (!this.offered || this.answered) throw new Error('SipJsPhone: renegotiation is not supported');
    this.answered = true;
    await this.peer.setAnswer(sdp);
  }

  /** No DTMF: returning false tells SIP.js it was not sent. */
  sendDtmf(): boolean {
    return false;
  }

  close(): void {
    this.peer.close();
  }
}

export class SipJsPhone {
  private readonly calls = new Set<SipJsCall>();
  private callCount = 0;

  private constructor(
    private readonly ua: UserAgent,
    /** Each call's peer, where the SDH factory finds it when SIP.js asks for the session's handler. */
    private readonly peers: WeakMap<Session, BrowserPeer>,
    private readonly peerOptions: Partial<BrowserPeerOptions>,
  ) {}

  /** Opens the WebSocket to drachtio; resolves once it is connected. */
  static async connect(options: Partial<SipJsPhoneOptions> & Pick<SipJsPhoneOptions, 'server'>): Promise<SipJsPhone> {
    const o: SipJsPhoneOptions = { ...defaultSipJsPhoneOptions, ...options };
    ensureWebSocketGlobal();
    const uri = UserAgent.makeURI(o.aor);
    if (!uri) throw new Error(`SipJsPhone: not a SIP URI: ${o.aor}`);
    const peers = new WeakMap<Session, BrowserPeer>();
    const ua = new UserAgent({
      uri,
      transportOptions: { server: o.server, connectionTimeout: o.connectTimeoutS },
      // A test sees failures through promises; SIP.js's chatter would only bury the test output.
      logLevel: 'error',
      // A dropped socket should fail the test, not be papered over by a reconnect.
      reconnectionAttempts: 0,
      sessionDescriptionHandlerFactory: (session) => {
        const peer = peers.get(session);
        if (!peer) throw new Error('SipJsPhone: no BrowserPeer for this session');
        return new BrowserPeerSdh(peer);
      },
    });
    await ua.start();
    return new SipJsPhone(ua, peers, o.peer);
  }

  /** Sends an INVITE to `target` (`sip:user@host`); resolves once it is sent. */
  async call(target: string, options: SipJsCallOptions = {}): Promise<SipJsCall> {
    const uri = UserAgent.makeURI(target);
    if (!uri) throw new Error(`SipJsPhone: not a SIP URI: ${target}`);
    const peer = new BrowserPeer({ name: `sipjs-${++this.callCount}`, ...this.peerOptions });
    const extraHeaders = Object.entries(options.headers ?? {}).map(([name, value]) => `${name}: ${value}`);
    const inviter = new Inviter(this.ua, uri, { extraHeaders });
    this.peers.set(inviter, peer);

    let endedBy: SipJsCallEnd = 'remote';
    let refuse: (err: SipCallRefusedError) => void = () => {};
    const established = new Promise<void>((resolve, reject) => {
      refuse = reject;
      inviter.stateChange.addListener((state) => {
        if (state === SessionState.Established) resolve();
        // SIP.js enters Terminated before it calls the request delegate's onReject: wait a microtask so
        // a refusal rejects with its status, and only an end without one with this.
        else if (state === SessionState.Terminated) queueMicrotask(() => reject(new Error('SipJsPhone: call ended before it was established')));
      });
    });
    // A test that hangs up before the answer never awaits `established`: no unhandled rejection then.
    established.catch(() => {});
    const ended = new Promise<SipJsCallEnd>((resolve) => {
      inviter.stateChange.addListener((state) => {
        if (state === SessionState.Terminated) resolve(endedBy);
      });
    });

    try {
      await inviter.invite({
        requestDelegate: {
          onReject: (response) => refuse(new SipCallRefusedError(response.message.statusCode ?? 0, response.message.reasonPhrase ?? '')),
        },
      });
    } catch (err) {
      peer.close();
      throw err;
    }
    const call: SipJsCall = {
      callId: inviter.request.callId,
      peer,
      sentAt: performance.now(),
      established,
      ended,
      hangup: async () => {
        const state = inviter.state;
        if (state === SessionState.Established || state === SessionState.Initial || state === SessionState.Establishing) endedBy = 'phone';
        if (state === SessionState.Established) await inviter.bye();
        else if (state === SessionState.Initial || state === SessionState.Establishing) await inviter.cancel();
        return ended;
      },
    };
    this.calls.add(call);
    // SIP.js closes the SDH (and so the peer) when it disposes the session; this covers a session that
    // ended without ever asking for one.
    void ended.then(() => {
      this.calls.delete(call);
      peer.close();
    });
    return call;
  }

  /** Hangs up what is still up (which closes the peers), then closes the WebSocket. */
  async stop(): Promise<void> {
    await Promise.allSettled([...this.calls].map((c) => c.hangup()));
    await this.ua.stop();
  }
}
