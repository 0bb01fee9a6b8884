import { randomBytes, randomUUID } from 'node:crypto';
import type Srf from 'drachtio-srf';
import type { Logger } from 'pino';
import type { AgentConfig } from '../agent/AgentConfig.js';
import type { VoiceActivityDetector } from '../agent/vad/VoiceActivityDetector.js';
import type { AgentProviders } from '../providers/types.js';
import { CallgateError, errorCode } from '../errors.js';
import { audioLegOn, legCodecFrom, openLegEndpoint, type AudioLeg } from '../media/AudioLeg.js';
import type { RtpEndpoint } from '../media/RtpEndpoint.js';
import { buildSdp, offerCodecs } from '../media/sdp.js';
import type { LiveSessions } from '../agent/LiveSessions.js';
import type { CallRunner, RunningCall } from '../call/CallRunner.js';
import type { Tenant, Trunk } from '../tenants/schema.js';
import { invalid } from '../tenants/storeUtil.js';
import { agentConfigFor } from '../tenants/TenantStore.js';
import { contained, runAnsweredCall, sendBye, type SipTransfers } from './answeredCall.js';
import type { SipGatewayDeps } from './SipGatewayDeps.js';

/** `POST /v1/calls`: the agent calls someone through a trunk. */
export interface DialRequest {
  readonly tenantId: string;
  /** E.164 number to call. */
  readonly to: string;
  /** The trunk to send it through; it must have `outbound` settings. */
  readonly trunk: string;
  /** Greeting template variables for this call. */
  readonly variables?: Readonly<Record<string, string>>;
}

export interface DialStarted {
  readonly callId: string;
  /** Settles when the call is over (answered and ended, or not answered); the record is written by then. */
  readonly done: Promise<void>;
}

export interface OutboundOptions {
  /** Ringing longer than this is given up (CANCEL). */
  readonly ringTimeoutMs: number;
}

export const defaultOutboundOptions = {
  /** 45 s: about nine rings, after which carriers and voicemail take over anyway. */
  ringTimeoutMs: 45_000,
} as const satisfies OutboundOptions;

const E164 = /^\+[1-9]\d{6,14}$/;

/**
 * Checks what can be checked before anything rings (tenant, trunk, a line under the tenant's limit,
 * providers and VAD), then dials in the background: our leg's offer goes through rtpengine to the
 * carrier, the carrier's answer back through rtpengine to our leg, and the agent runs on the dialog.
 * A refusal here is a typed error (the API answers 4xx); what happens after is in the call record.
 */
export async function startOutboundCall(
  srf: Srf,
  deps: SipGatewayDeps & { readonly runner: CallRunner; readonly sessions: LiveSessions; readonly transfers?: SipTransfers },
  req: DialRequest,
  log: Logger,
  options: OutboundOptions = defaultOutboundOptions,
): Promise<DialStarted> {
  if (!E164.test(req.to)) throw invalid('call', 'to', 'must be an E.164 number (+ and 7–15 digits)');
  const tenant = await deps.tenants.get(req.tenantId);
  const trunk = await deps.numbers.getTrunkWithSecrets(req.trunk);
  const outbound = trunk.outbound;
  if (!outbound) throw new CallgateError('CG_TRUNK_NO_OUTBOUND', `trunk ${trunk.name} has no outbound settings`, { details: { trunk: trunk.name } });
  const callId = `out-${randomUUID()}`;
  const callLog = log.child({ callId, tenant: tenant.id, direction: 'outbound' });
  const call = deps.runner.begin({ callId, tenantId: tenant.id, door: 'sip', from: outbound.callerId ?? `trunk:${trunk.name}`, to: req.to, log: callLog, sessions: deps.sessions });
  let prepared: Prepared;
  try {
    await call.takeLine(tenant.maxConcurrentCalls);
    const { config, variables } = agentConfigFor(tenant, req.variables ?? {});
    const providers = deps.providers.forCall(config, tenant.providerKeys, callLog);
    const vad = await deps.createVad();
    call.scope.defer('VAD close', () => vad.close());
    const endpoint = await openLegEndpoint({ callId, legId: 'agent', clockRate: 8000, ...(deps.endpoint ? { endpoint: deps.endpoint } : {}) });
    prepared = { vad, endpoint, config, variables, providers, tenant };
  } catch (err) {
    // Refused to the API before anything rang: the requester gets the error, and no call record is kept.
    call.end({ outcome: 'rejected', error: { code: errorCode(err) } });
    await call.close({ record: false });
    throw err;
  }
  const done = dial({ srf, deps, req, options, call, trunkName: trunk.name, outbound, auth: trunk.auth, ...prepared });
  return { callId, done };
}

/** What is made before dialling, so a failure is an API error and not a ringing phone with no agent. */
interface Prepared {
  vad: VoiceActivityDetector;
  endpoint: RtpEndpoint;
  config: AgentConfig;
  variables: Record<string, string>;
  providers: AgentProviders;
  tenant: Tenant;
}

interface Dialling extends Prepared {
  srf: Srf;
  deps: SipGatewayDeps & { readonly transfers?: SipTransfers };
  req: DialRequest;
  options: OutboundOptions;
  call: RunningCall;
  trunkName: string;
  outbound: NonNullable<Trunk['outbound']>;
  auth: Trunk['auth'];
}

async function dial(d: Dialling): Promise<void> {
  const { deps, call, endpoint } = d;
  const { callId, log, scope } = call;
  const fromTag = randomBytes(6).toString('hex');
  let leg: AudioLeg | undefined;
  let dialog: Srf.Dialog | undefined;
  const state = { open: false };
  scope.defer('leg close', () => (leg ? leg.close() : endpoint.close()));
  try {
    // G.711 both ways: what every carrier takes. rtpengine offers it to the carrier from its own port.
    const ours = buildSdp({ address: endpoint.localAddress.address, port: endpoint.localAddress.port, ...offerCodecs(['PCMU', 'PCMA']) });
    const offered = await deps.anchor.offer({ callId, fromTag, sdp: ours, profile: 'trunk' });
    scope.defer('rtpengine delete', () => deps.anchor.delete({ callId, fromTag }));
    const { host, port, transport, callerId } = d.outbound;
    const uri = `sip:${d.req.to}@${host}:${port}${transport === 'tcp' ? ';transport=tcp' : ''}`;
    let sent: { cancel(): void } | undefined;
    // A timer: what the CANCEL throws (the drachtio link gone meanwhile) must not end the process.
    const ringTimer = setTimeout(() => contained(log, 'CANCEL at ring timeout', () => sent?.cancel()), d.options.ringTimeoutMs);
    try {
      dialog = await d.srf.createUAC(
        uri,
        { localSdp: offered.sdp, ...(callerId ? { callingNumber: callerId } : {}), ...(d.auth ? { auth: d.auth } : {}) } as Srf.CreateUACOptions,
        { cbRequest: (_err: unknown, req: { cancel(): void }) => (sent = req) } as never,
      );
    } finally {
      clearTimeout(ringTimer);
    }
    const up = dialog;
    state.open = true;
    scope.defer('BYE', async () => {
      if (state.open) {
        state.open = false;
        await sendBye(up);
      }
    });
    const remoteTag = (up as unknown as { sip: { remoteTag: string } }).sip.remoteTag;
    const answered = await deps.anchor.answer({ callId, fromTag, toTag: remoteTag, sdp: up.remote.sdp, profile: 'trunk' });
    leg = audioLegOn(endpoint, { callId, legId: 'agent', codec: legCodecFrom(answered.media), clock: deps.clock, logger: log });
    leg.once('closing', (stats) => contained(log, 'leg statistics hook', () => deps.legStats?.(stats)));
    endpoint.setRemote({ address: answered.media.remote.address, port: answered.media.remote.port });
    log.info({ trunk: d.trunkName }, 'outbound call answered');
    await runAnsweredCall(
      {
        call,
        dialog: up,
        leg,
        agent: { config: d.config, variables: d.variables, providers: d.providers, vad: d.vad, tenant: d.tenant },
        anchor: deps.anchor,
        profile: 'trunk',
        remoteTag,
        localTag: fromTag,
        ...(deps.transfers ? { transfers: deps.transfers } : {}),
        ...(deps.mediaWatchdog ? { mediaWatchdog: deps.mediaWatchdog } : {}),
      },
      state,
    );
  } catch (err) {
    // Not answered (busy, no answer, refused) or failed once up: the record says which.
    const status = (err as { status?: number }).status;
    log.info({ status, err: status ? undefined : String(err) }, dialog ? 'outbound call failed' : 'outbound call not answered');
    call.end({ outcome: 'failed', error: { code: dialog ? 'CG_INTERNAL' : 'CG_DIAL_FAILED', message: status ? `SIP ${status}` : String(err).slice(0, 200) } });
  } finally {
    await call.close();
  }
}
