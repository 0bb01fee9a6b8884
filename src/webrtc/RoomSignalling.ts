import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import { CallgateError, errorCatalogue, errorCode, isCallgateError, type ErrorDefinition } from '../errors.js';
import type { MediaClock } from '../media/MediaClock.js';
import type { RtpEndpointOptions } from '../media/RtpEndpoint.js';
import type { RoomEvent } from '../rooms/LiveRoom.js';
import type { RoomHub } from '../rooms/RoomHub.js';
import { stripUndefined } from '../util/options.js';
import type { IceServer, NodeIceServers } from './iceServers.js';
import { RoomPeer } from './RoomPeer.js';

/**
 * A room page's signalling, one WebSocket per participant: join (name, PIN), the page's offer and our
 * answer, trickled ICE candidates both ways, mute, leave, and the room's events (who is here, who is
 * speaking, the transcript). A page whose socket drops has `resumeMs` to come back with its
 * participant id and resume token: it is the same participant (no duplicate in the list), and its new
 * offer replaces its old media. Never back: it leaves.
 */
export interface RoomSignallingOptions {
  readonly resumeMs: number;
  /** A page that has joined but connected no media this long after its offer is dropped. */
  readonly connectTimeoutMs: number;
  readonly iceAddress: string;
  readonly icePorts: { readonly min: number; readonly max: number } | undefined;
  /** Offers one participant may send per minute (each opens a peer, a port and codecs). */
  readonly offersPerMinute: number;
}

export const defaultRoomSignallingOptions = {
  /** 30 s: a phone switching from Wi-Fi to mobile data, or a laptop waking, reconnects well within it. */
  resumeMs: 30_000,
  /** 10 s: TURN allocation and ICE over a relay take longer than host pairs, but not this long. */
  connectTimeoutMs: 10_000,
  iceAddress: '127.0.0.1',
  icePorts: undefined,
  /** 10: a page offers once, and again after a network change or a new microphone; a loop is not a page. */
  offersPerMinute: 10,
} as const satisfies RoomSignallingOptions;

export interface RoomSignallingDeps {
  readonly hub: RoomHub;
  readonly clock: MediaClock;
  readonly endpoint?: Partial<RtpEndpointOptions>;
  /** The page's ICE servers (TURN credentials made for this participant). */
  readonly pageIceServers: (participantId: string) => IceServer[];
  /** The gateway peer's ICE servers, in node-datachannel's form. */
  readonly peerIceServers: (participantId: string) => NodeIceServers;
  readonly log: Logger;
}

/** What the signalling needs of a WebSocket. */
export interface SignalSocket {
  send(text: string): void;
  close(code?: number, reason?: string): void;
}

const MAX_MESSAGE = 64 * 1024;
const messageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('join'), name: z.string().trim().min(1).max(60), pin: z.string().max(16).optional() }),
  z.object({ type: z.literal('resume'), participantId: z.string().min(1).max(64), resumeToken: z.string().min(1).max(64) }),
  z.object({ type: z.literal('offer'), sdp: z.string().min(1).max(32 * 1024) }),
  z.object({ type: z.literal('candidate'), candidate: z.string().max(2048), mid: z.string().max(64).default('0') }),
  z.object({ type: z.literal('mute'), muted: z.boolean() }),
  z.object({ type: z.literal('leave') }),
]);
type Message = z.infer<typeof messageSchema>;

/** Names are shown to everyone in the room: no control or bidi characters. */
const UNSHOWABLE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u200e\u200f]/g;

interface Participant {
  readonly roomId: string;
  readonly participantId: string;
  readonly resumeToken: string;
  socket: SignalSocket | undefined;
  peer: RoomPeer | undefined;
  leaveTimer: NodeJS.Timeout | undefined;
  unsubscribe: () => void;
  gone: boolean;
  /** When this participant's recent offers came (the per-minute limit). */
  offers: number[];
}

export class RoomSignalling {
  private readonly options: RoomSignallingOptions;
  private readonly participants = new Map<string, Participant>();

  constructor(
    private readonly deps: RoomSignallingDeps,
    options: Partial<RoomSignallingOptions> = {},
  ) {
    this.options = { ...defaultRoomSignallingOptions, ...stripUndefined(options) };
  }

  get size(): number {
    return this.participants.size;
  }

  /** A page's socket opened for `roomId`: returns what to call with each message and at close. */
  connect(roomId: string, socket: SignalSocket): { message(text: string): void; closed(): void } {
    let me: Participant | undefined;
    let queue = Promise.resolve();
    const send = (m: Record<string, unknown>): void => {
      try {
        socket.send(JSON.stringify(m));
      } catch {
        // The socket is closing; its close handler cleans up.
      }
    };
    const fail = (err: unknown): void => {
      const code = errorCode(err);
      const def: ErrorDefinition = errorCatalogue[code];
      // A room held by another gateway: the page goes there (RoomHub puts its page URL in details).
      const url = isCallgateError(err) && code === 'CG_ROOM_ELSEWHERE' ? (err.details as { url?: unknown } | undefined)?.url : undefined;
      send({ type: 'error', code, message: isCallgateError(err) ? err.message : def.message, ...(def.hint ? { hint: def.hint } : {}), ...(typeof url === 'string' ? { url } : {}) });
    };
    const handle = async (msg: Message): Promise<void> => {
      if (msg.type === 'join' || msg.type === 'resume') {
        if (me) return fail(new CallgateError('CG_HTTP_BAD_REQUEST', 'already joined'));
        me = msg.type === 'join' ? await this.join(roomId, msg.name, msg.pin, socket) : this.resume(roomId, msg.participantId, msg.resumeToken, socket);
        const live = await this.deps.hub.liveRoom(await this.deps.hub.store.get(roomId));
        send({
          type: 'joined',
          participantId: me.participantId,
          resumeToken: me.resumeToken,
          resumed: msg.type === 'resume',
          roomName: live.room.name ?? null,
          iceServers: this.deps.pageIceServers(me.participantId),
          participants: live.view(),
        });
        return;
      }
      if (!me || me.gone) return fail(new CallgateError('CG_HTTP_BAD_REQUEST', 'join first'));
      if (msg.type === 'offer') return this.offer(me, msg.sdp, send);
      if (msg.type === 'candidate') {
        me.peer?.addRemoteCandidate(msg.candidate, msg.mid);
        return;
      }
      if (msg.type === 'mute') {
        const live = await this.deps.hub.liveRoom(await this.deps.hub.store.get(roomId));
        live.setMuted(me.participantId, msg.muted);
        return;
      }
      await this.leave(me, 'left');
      socket.close(1000, 'left');
    };
    return {
      message: (text: string) => {
        if (text.length > MAX_MESSAGE) return fail(new CallgateError('CG_HTTP_BODY_TOO_LARGE', 'message too large'));
        let parsed: Message;
        try {
          const r = messageSchema.safeParse(JSON.parse(text));
          if (!r.success) return send({ type: 'error', code: 'CG_HTTP_BAD_REQUEST', message: `bad message: ${r.error.issues[0]?.message ?? 'invalid'}` });
          parsed = r.data;
        } catch {
          return send({ type: 'error', code: 'CG_HTTP_BAD_REQUEST', message: 'messages are JSON objects' });
        }
        // One at a time: an offer's candidates must not overtake the offer.
        queue = queue.then(() => handle(parsed)).catch(fail);
      },
      closed: () => {
        const p = me;
        if (!p || p.gone || p.socket !== socket) return;
        p.socket = undefined;
        // The page may be back: it keeps its place (and its media, if that still flows) for resumeMs.
        p.leaveTimer = setTimeout(() => void this.leave(p, 'gone'), this.options.resumeMs);
        p.leaveTimer.unref();
      },
    };
  }

  /** Everyone here is told the gateway is going and disconnected. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.participants.values()].map((p) => this.leave(p, 'shutdown')));
  }

  private async join(roomId: string, rawName: string, pin: string | undefined, socket: SignalSocket): Promise<Participant> {
    const name = rawName.replace(UNSHOWABLE, '').trim() || 'Guest';
    let participant: Participant | undefined;
    const joined = await this.deps.hub.join(roomId, {
      name,
      door: 'web',
      ...(pin !== undefined ? { pin } : {}),
      kicked: (reason) => {
        if (participant) void this.kicked(participant, reason);
      },
    });
    participant = {
      roomId,
      participantId: joined.participantId,
      resumeToken: randomBytes(16).toString('base64url'),
      socket,
      peer: undefined,
      leaveTimer: undefined,
      unsubscribe: () => undefined,
      gone: false,
      offers: [],
    };
    const p = participant;
    const forward = (e: RoomEvent): void => {
      if (p.socket) {
        try {
          p.socket.send(JSON.stringify(e));
        } catch {
          // Closing.
        }
      }
    };
    joined.live.on('event', forward);
    p.unsubscribe = () => joined.live.off('event', forward);
    this.participants.set(p.participantId, p);
    return p;
  }

  private resume(roomId: string, participantId: string, token: string, socket: SignalSocket): Participant {
    const p = this.participants.get(participantId);
    const a = Buffer.from(token);
    const ok = p !== undefined && !p.gone && p.roomId === roomId && a.length === Buffer.byteLength(p.resumeToken) && timingSafeEqual(a, Buffer.from(p.resumeToken));
    if (!ok) throw new CallgateError('CG_ROOM_PARTICIPANT_NOT_FOUND', 'no participant to resume; join again');
    clearTimeout(p.leaveTimer);
    p.leaveTimer = undefined;
    const old = p.socket;
    p.socket = socket;
    if (old && old !== socket) old.close(4000, 'resumed elsewhere');
    return p;
  }

  private async offer(p: Participant, sdp: string, send: (m: Record<string, unknown>) => void): Promise<void> {
    const now = Date.now();
    p.offers = p.offers.filter((t) => now - t < 60_000);
    if (p.offers.length >= this.options.offersPerMinute) throw new CallgateError('CG_HTTP_RATE_LIMITED', `more than ${this.options.offersPerMinute} offers a minute`);
    p.offers.push(now);
    const live = await this.deps.hub.liveRoom(await this.deps.hub.store.get(p.roomId));
    // A new offer (a reconnect, a new microphone) replaces the old media.
    const old = p.peer;
    p.peer = undefined;
    if (old) {
      live.detachAudio(p.participantId, old.leg);
      await old.close();
    }
    const { peer, answer } = await RoomPeer.open({
      id: `${p.roomId}:${p.participantId}`,
      offerSdp: sdp,
      clock: this.deps.clock,
      ...(this.deps.endpoint ? { endpoint: this.deps.endpoint } : {}),
      iceAddress: this.options.iceAddress,
      icePorts: this.options.icePorts,
      iceServers: this.deps.peerIceServers(p.participantId),
      onCandidate: (candidate, mid) => send({ type: 'candidate', candidate, mid }),
      log: this.deps.log,
    });
    if (p.gone) {
      await peer.close();
      return;
    }
    p.peer = peer;
    send({ type: 'answer', sdp: answer });
    const timer = setTimeout(() => {
      if (p.peer === peer) {
        send({ type: 'error', code: 'CG_WEBRTC_NOT_CONNECTED', message: `no media connection within ${this.options.connectTimeoutMs} ms`, hint: 'check the network; behind a strict firewall the gateway needs a TURN server (TURN_URLS)' });
      }
    }, this.options.connectTimeoutMs);
    timer.unref();
    void peer.connected.then(() => {
      clearTimeout(timer);
      if (p.peer !== peer) return;
      live.attachAudio(p.participantId, peer.leg);
      this.deps.log.info({ roomId: p.roomId, participantId: p.participantId, pair: peer.selectedPair() }, 'room participant media connected');
    });
    peer.onGone(() => live.detachAudio(p.participantId, peer.leg));
  }

  private async kicked(p: Participant, reason: string): Promise<void> {
    if (p.gone) return;
    p.socket?.send(JSON.stringify({ type: 'ended', reason }));
    await this.release(p);
    p.socket?.close(1000, reason);
  }

  private async leave(p: Participant, reason: string): Promise<void> {
    if (p.gone) return;
    if (reason === 'shutdown') p.socket?.send(JSON.stringify({ type: 'ended', reason }));
    await this.release(p);
    await this.deps.hub.leave(p.roomId, p.participantId);
    this.deps.log.info({ roomId: p.roomId, participantId: p.participantId, reason }, 'room participant left');
  }

  private async release(p: Participant): Promise<void> {
    p.gone = true;
    clearTimeout(p.leaveTimer);
    p.unsubscribe();
    this.participants.delete(p.participantId);
    const peer = p.peer;
    p.peer = undefined;
    await peer?.close();
  }
}
