import dgram from 'node:dgram';
import { once } from 'node:events';
import type { Track } from 'node-datachannel';
import { isRtcpPacket } from '../media/rtp/RtpPacket.js';

/**
 * Carries RTP between a node-datachannel track (DTLS-SRTP already removed) and an AudioLeg's UDP
 * endpoint, over one loopback socket. The media layer's one path for a leg is a validated, jitter-
 * buffered, captured UDP endpoint (RtpEndpoint); rather than teach it a second transport, the
 * in-process peer is given a UDP face. Measured cost: one loopback send per packet each way.
 */
export class TrackBridge {
  private closed = false;
  private constructor(
    private readonly socket: dgram.Socket,
    private readonly track: Track,
    /** Where the leg's endpoint listens. */
    private readonly leg: { readonly address: string; readonly port: number },
    /** The SSRC our answer announced: what the browser matches the stream by. */
    ssrc: number,
  ) {
    socket.on('message', (msg, rinfo) => {
      // Only what our own leg sends goes to the browser.
      if (rinfo.port !== leg.port || rinfo.address !== leg.address || this.closed) return;
      // The leg picks its own SSRC; the browser was told another in the SDP.
      if (msg.length >= 12 && !isRtcpPacket(msg)) msg.writeUInt32BE(ssrc, 8);
      if (track.isOpen()) track.sendMessageBinary(msg);
    });
    socket.on('error', () => undefined);
    track.onMessage((msg) => {
      if (!this.closed) socket.send(msg, leg.port, leg.address);
    });
  }

  /** Binds the bridge's socket on the leg's address; give `address` to the leg as its remote. */
  static async open(track: Track, leg: { address: string; port: number }, ssrc: number): Promise<TrackBridge> {
    const socket = dgram.createSocket('udp4');
    socket.bind(0, leg.address);
    await once(socket, 'listening');
    return new TrackBridge(socket, track, leg, ssrc);
  }

  get address(): { address: string; port: number } {
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
  }
}
