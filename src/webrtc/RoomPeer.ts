import { randomInt } from 'node:crypto';
import { Audio, PeerConnection, type Track } from 'node-datachannel';
import type { Logger } from 'pino';
import { CallgateError } from '../errors.js';
import { openAudioLeg, type AudioLeg } from '../media/AudioLeg.js';
import type { MediaClock } from '../media/MediaClock.js';
import type { RtpEndpointOptions } from '../media/RtpEndpoint.js';
import { parseBrowserOffer } from './browserOffer.js';
import type { NodeIceServers } from './iceServers.js';
import { applyRemoteDescription } from './remoteDescription.js';
import { TrackBridge } from './TrackBridge.js';

/**
 * One room participant's browser, answered by a node-datachannel peer in this process: the same media
 * path as the web phone (ICE, DTLS-SRTP, Opus into an AudioLeg) but with trickle ICE over the room's
 * WebSocket, so the answer goes back at once and relay candidates (TURN) follow as they come.
 */
export interface RoomPeerInit {
  readonly id: string;
  readonly offerSdp: string;
  readonly clock: MediaClock;
  readonly endpoint?: Partial<RtpEndpointOptions>;
  readonly iceAddress: string;
  readonly icePorts?: { readonly min: number; readonly max: number } | undefined;
  readonly iceServers: NodeIceServers;
  /** Each local candidate as gathered (empty `candidate`: gathering is complete). */
  readonly onCandidate: (candidate: string, mid: string) => void;
  readonly log: Logger;
}

export class RoomPeer {
  private closed = false;
  private goneListeners: (() => void)[] = [];

  private constructor(
    readonly leg: AudioLeg,
    private readonly pc: PeerConnection,
    private readonly track: Track,
    private readonly bridge: TrackBridge,
    /** Resolves when media flows (the track opened). */
    readonly connected: Promise<void>,
  ) {
    const gone = (): void => {
      for (const fn of this.goneListeners.splice(0)) fn();
    };
    pc.onStateChange((state) => {
      if (state === 'closed' || state === 'failed' || state === 'disconnected') gone();
    });
    track.onClosed(gone);
  }

  /** Answers the page's offer. Throws CG_SDP_* for an offer that is not a WebRTC audio offer. */
  static async open(init: RoomPeerInit): Promise<{ peer: RoomPeer; answer: string }> {
    const parsed = parseBrowserOffer(init.offerSdp);
    const leg = await openAudioLeg({
      callId: init.id,
      legId: 'room',
      codec: { name: 'opus', payloadType: parsed.opusPayloadType },
      clock: init.clock,
      endpoint: { ...init.endpoint, bindAddress: '127.0.0.1' },
      logger: init.log,
    });
    let pc: PeerConnection | undefined;
    let bridge: TrackBridge | undefined;
    try {
      pc = new PeerConnection(init.id, {
        iceServers: [...init.iceServers],
        bindAddress: init.iceAddress,
        ...(init.icePorts ? { portRangeBegin: init.icePorts.min, portRangeEnd: init.icePorts.max } : {}),
      });
      const audio = new Audio(parsed.audioMid, 'SendRecv');
      audio.addOpusCodec(parsed.opusPayloadType);
      const ssrc = randomInt(1, 2 ** 32 - 1);
      audio.addSSRC(ssrc, 'callgate', 'callgate-room', 'mix');
      const track = pc.addTrack(audio);
      bridge = await TrackBridge.open(track, leg.endpoint.localAddress, ssrc);
      leg.endpoint.setRemote(bridge.address);
      pc.onLocalCandidate((candidate, mid) => init.onCandidate(candidate, mid));
      pc.onGatheringStateChange((state) => {
        if (state === 'complete') init.onCandidate('', parsed.audioMid);
      });
      const connected = new Promise<void>((resolve) => track.onOpen(() => resolve()));
      try {
        await applyRemoteDescription(pc, init.offerSdp, 'offer');
      } catch (err) {
        throw new CallgateError('CG_SDP_MALFORMED', `the offer was refused: ${String(err)}`.slice(0, 300));
      }
      const local = pc.localDescription();
      if (!local || local.type !== 'answer') throw new CallgateError('CG_SDP_MALFORMED', 'the offer could not be answered');
      return { peer: new RoomPeer(leg, pc, track, bridge, connected), answer: local.sdp };
    } catch (err) {
      bridge?.close();
      pc?.close();
      await leg.close();
      throw err;
    }
  }

  /** A candidate the page trickled; a malformed one is dropped (the page's others may still work). */
  addRemoteCandidate(candidate: string, mid: string): boolean {
    if (this.closed || candidate === '') return false;
    try {
      this.pc.addRemoteCandidate(candidate, mid);
      return true;
    } catch {
      return false;
    }
  }

  /** `fn` runs once the page's connection fails or closes. */
  onGone(fn: () => void): void {
    this.goneListeners.push(fn);
  }

  /** How the page's media connected: the selected pair's local candidate types (host, srflx, relay). */
  selectedPair(): { local: string; remote: string } | undefined {
    try {
      const pair = this.pc.getSelectedCandidatePair();
      return pair ? { local: pair.local.type, remote: pair.remote.type } : undefined;
    } catch {
      return undefined;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.goneListeners = [];
    this.bridge.close();
    try {
      this.track.close();
    } catch {
      // Already closed with its peer.
    }
    this.pc.close();
    await this.leg.close();
  }
}
