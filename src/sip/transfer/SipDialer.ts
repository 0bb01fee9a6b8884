import { randomBytes } from 'node:crypto';
import type Srf from 'drachtio-srf';
import type { DialedParty, DialRequest, TransferDialer } from '../../call/transfer.js';
import { DialRefused } from '../../call/transfer.js';
import { audioLegOn, legCodecFrom, openLegEndpoint, type AudioLeg } from '../../media/AudioLeg.js';
import type { MediaClock } from '../../media/MediaClock.js';
import type { RtpEndpointOptions } from '../../media/RtpEndpoint.js';
import { buildSdp, offerCodecs } from '../../media/sdp.js';
import type { NumberStore } from '../../tenants/NumberStore.js';
import { trunkAllows } from '../../tenants/schema.js';
import { contained, sendBye } from '../answeredCall.js';
import type { MediaAnchor } from '../rtpengine/MediaAnchor.js';

export interface SipDialerDeps {
  readonly srf: Srf;
  readonly anchor: MediaAnchor;
  readonly numbers: NumberStore;
  readonly clock: MediaClock;
  readonly endpoint?: Partial<RtpEndpointOptions>;
}

/**
 * Dials a transfer target over SIP, anchored in rtpengine like every leg: a `sip:` URI directly, a
 * `tel:` number through the tenant's transfer trunk (with its digest credentials and caller id).
 */
export class SipDialer implements TransferDialer {
  constructor(private readonly deps: SipDialerDeps) {}

  async dial(r: DialRequest): Promise<DialedParty> {
    const { deps } = this;
    const route = await this.route(r);
    const legCallId = `${r.callId}-xfer-${randomBytes(3).toString('hex')}`;
    const fromTag = randomBytes(6).toString('hex');
    const endpoint = await openLegEndpoint({ callId: legCallId, legId: 'transfer', clockRate: 8000, ...(deps.endpoint ? { endpoint: deps.endpoint } : {}) });
    let anchored = false;
    const release = async (): Promise<void> => {
      await endpoint.close();
      if (anchored) await deps.anchor.delete({ callId: legCallId, fromTag }).catch(() => undefined);
    };
    let dialog: Srf.Dialog;
    try {
      const ours = buildSdp({ address: endpoint.localAddress.address, port: endpoint.localAddress.port, ...offerCodecs(['PCMU', 'PCMA']) });
      const offered = await deps.anchor.offer({ callId: legCallId, fromTag, sdp: ours, profile: 'trunk' });
      anchored = true;
      let sent: { cancel(): void } | undefined;
      let cancelled = false;
      const ringTimer = setTimeout(() => {
        cancelled = true;
        contained(r.log, 'CANCEL at transfer timeout', () => sent?.cancel());
      }, r.timeoutMs);
      try {
        dialog = await deps.srf.createUAC(
          route.uri,
          { localSdp: offered.sdp, ...(route.callerId ? { callingNumber: route.callerId } : {}), ...(route.auth ? { auth: route.auth } : {}) } as Srf.CreateUACOptions,
          { cbRequest: (_err: unknown, req: { cancel(): void }) => (sent = req) } as never,
        );
      } catch (err) {
        const status = (err as { status?: number }).status;
        if (cancelled) throw new DialRefused('no-answer', `no answer within ${Math.round(r.timeoutMs / 1000)} s`);
        if (status === 486 || status === 600) throw new DialRefused('busy', `SIP ${status} busy`);
        if (status === 603) throw new DialRefused('declined', 'SIP 603 declined');
        if (status === 408 || status === 480) throw new DialRefused('no-answer', `SIP ${status}`);
        throw new DialRefused('failed', status ? `SIP ${status}` : String(err).slice(0, 200));
      } finally {
        clearTimeout(ringTimer);
      }
    } catch (err) {
      await release();
      throw err;
    }
    let open = true;
    const ended = new Promise<void>((resolve) => {
      dialog.on('destroy', () => {
        open = false;
        resolve();
      });
    });
    let leg: AudioLeg | undefined;
    const hangup = async (): Promise<void> => {
      if (open) {
        open = false;
        await sendBye(dialog);
      }
      await (leg ? leg.close() : Promise.resolve());
      await release();
    };
    try {
      const remoteTag = (dialog as unknown as { sip: { remoteTag: string } }).sip.remoteTag;
      const answered = await deps.anchor.answer({ callId: legCallId, fromTag, toTag: remoteTag, sdp: dialog.remote.sdp, profile: 'trunk' });
      leg = audioLegOn(endpoint, { callId: legCallId, legId: 'transfer', codec: legCodecFrom(answered.media), clock: deps.clock, logger: r.log });
      endpoint.setRemote({ address: answered.media.remote.address, port: answered.media.remote.port });
      // The person's side is heard at once: rtpengine learns where to send their audio from ours.
      leg.play(new Int16Array(320));
    } catch (err) {
      await hangup();
      throw new DialRefused('failed', `the answer could not be anchored (${String(err).slice(0, 120)})`);
    }
    const up = leg;
    r.log.info({ target: r.target.name }, 'transfer target answered');
    return { leg: up, hangup, ended };
  }

  /** Where to send the INVITE, with the trunk's credentials and caller id for a number. */
  private async route(r: DialRequest): Promise<{ uri: string; auth?: { username: string; password: string }; callerId?: string }> {
    const uri = r.target.uri;
    if (!uri.startsWith('tel:')) return { uri };
    if (!r.trunk) throw new DialRefused('failed', 'a tel: target needs transfer.trunk');
    const trunk = await this.deps.numbers.getTrunkWithSecrets(r.trunk).catch(() => undefined);
    if (!trunk?.outbound || !trunkAllows(trunk, r.tenantId)) throw new DialRefused('failed', `trunk ${r.trunk} cannot dial out for this tenant`);
    const { host, port, transport, callerId } = trunk.outbound;
    return {
      uri: `sip:${uri.slice(4)}@${host}:${port}${transport === 'tcp' ? ';transport=tcp' : ''}`,
      ...(trunk.auth ? { auth: trunk.auth } : {}),
      ...(callerId ? { callerId } : {}),
    };
  }
}
