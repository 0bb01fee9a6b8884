/**
 * A SIP phone for the benchmarks: a drachtio-srf UAC on a drachtio-server of its own (one will not send
 * a request to itself), dialling with a PCMU RtpCaller (src/media/testing/RtpCaller.ts) as its media.
 * bench:bargein and bench:turns call through the SIP door with it.
 */
import Srf from 'drachtio-srf';
import type { PortRange } from '../../src/media/PortAllocator.js';
import { MediaClock } from '../../src/media/MediaClock.js';
import { buildSdp, negotiate, offerCodecs, parseRemoteSdp } from '../../src/media/sdp.js';
import { RtpCaller } from '../../src/media/testing/RtpCaller.js';
import { startDrachtio } from '../../src/sip/testing/DrachtioProcess.js';

export interface DialledCall {
  readonly caller: RtpCaller;
  /** The SIP Call-ID: the gateway's call id for the record. */
  readonly callId: string;
  /** BYE, then the caller's socket closed. */
  hangup(): Promise<void>;
}

export interface SipPhone {
  /** Calls `target` (a sip: URI), media from `portRange`; resolves once answered and sending. */
  dial(target: string, portRange: PortRange): Promise<DialledCall>;
  stop(): Promise<void>;
}

export async function startSipPhone(): Promise<SipPhone> {
  const drachtio = await startDrachtio();
  const srf = new Srf();
  try {
    await new Promise<void>((resolve, reject) => {
      srf.once('connect', (err: Error) => (err ? reject(err) : resolve()));
      srf.connect({ host: '127.0.0.1', port: drachtio.adminPort, secret: drachtio.secret });
    });
  } catch (err) {
    srf.disconnect();
    await drachtio.stop();
    throw err;
  }
  return {
    async dial(target, portRange) {
      // Not the agent's clock: in step with it, every caller packet would arrive just as the agent's
      // tick sends, the one phase where the reaction reads longest (a whole tick), in every trial.
      const caller = await RtpCaller.open({ portRange, clock: new MediaClock({ spinMs: 0 }) });
      try {
        const sdp = buildSdp({ address: '127.0.0.1', port: caller.port, ...offerCodecs(['PCMU']) });
        const dialog = await srf.createUAC(target, { localSdp: sdp });
        const answer = negotiate(parseRemoteSdp(dialog.remote.sdp));
        caller.start({ address: answer.remote.address, port: answer.remote.port });
        return {
          caller,
          callId: dialog.sip.callId,
          async hangup() {
            await new Promise<void>((resolve) => dialog.destroy(undefined, () => resolve()));
            caller.close();
          },
        };
      } catch (err) {
        caller.close();
        throw err;
      }
    },
    async stop() {
      srf.disconnect();
      await drachtio.stop();
    },
  };
}
