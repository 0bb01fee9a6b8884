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
import type { DeviceBindingStore } from '../tenants/DeviceBindingStore.js';
import type { DeviceStore } from '../tenants/DeviceStore.js';
import type { Tenant } from '../tenants/schema.js';
import { invalid } from '../tenants/storeUtil.js';
import { agentConfigFor } from '../tenants/TenantStore.js';
import { contained, runAnsweredCall, sendBye, type SipTransfers } from './answeredCall.js';
import type { SipGatewayDeps } from './SipGatewayDeps.js';

/** `POST /v1/calls`: the agent calls a number through a trunk, or one of the tenant's registered devices. */
export type DialRequest = TrunkDial | DeviceDial;

interface DialCommon {
  readonly tenantId: string;
  /** Greeting template variables for this call. */
  readonly variables?: Readonly<Record<string, string>>;
}

export interface TrunkDial extends DialCommon {
  /** E.164 number to call. */
  readonly to: string;
  /** The trunk to send it through; it must have `outbound` settings. */
  readonly trunk: string;
}

export interface DeviceDial extends DialCommon {
  /** A device of the tenant (its username): every contact it registered rings, the first to answer wins. */
  readonly device: string;
}

/** Where the deps name the tenant's devices and their registrations (both present for device calls). */
export interface DeviceCallDeps {
  readonly devices?: Pick<DeviceStore, 'get'>;
  readonly bindings?: Pick<DeviceBindingStore, 'bindings'>;
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
  deps: SipGatewayDeps & DeviceCallDeps & { readonly runner: CallRunner; readonly sessions: LiveSessions; readonly transfers?: SipTransfers },
  req: DialRequest,
  log: Logger,
  options: OutboundOptions = defaultOutboundOptions,
): Promise<DialStarted> {
  if ('to' in req && !E164.test(req.to)) throw invalid('call', 'to', 'must be an E.164 number (+ and 7–15 digits)');
  const tenant = await deps.tenants.get(req.tenantId);
  const route = 'device' in req ? await deviceRoute(deps, tenant, req.device) : await trunkRoute(deps, req);
  const callId = `out-${randomUUID()}`;
  const callLog = log.child({ callId, tenant: tenant.id, direction: 'outbound', ...route.logFields });
  const call = deps.runner.begin({ callId, tenantId: tenant.id, door: 'sip', from: route.from, to: route.to, log: callLog, sessions: deps.sessions });
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
  const done = dial({ srf, deps, options, call, route, ...prepared });
  return { callId, done };
}

/** One INVITE of a call: where it goes and what it carries. A device with several contacts gets one each. */
export interface DialTarget {
  readonly uri: string;
  /** Where the INVITE is sent when that is not the URI's host: a device's real source address, behind NAT. */
  readonly proxy?: string;
  readonly auth?: { readonly username: string; readonly password: string };
  readonly callingNumber?: string;
  readonly callingName?: string;
}

/** Where a call goes, resolved before anything rings. */
interface DialRoute {
  readonly targets: readonly DialTarget[];
  /** The call record's `from` and `to`. */
  readonly from: string;
  readonly to: string;
  readonly logFields: Readonly<Record<string, string>>;
}

async function trunkRoute(deps: SipGatewayDeps, req: TrunkDial): Promise<DialRoute> {
  const trunk = await deps.numbers.getTrunkWithSecrets(req.trunk);
  const outbound = trunk.outbound;
  if (!outbound) throw new CallgateError('CG_TRUNK_NO_OUTBOUND', `trunk ${trunk.name} has no outbound settings`, { details: { trunk: trunk.name } });
  const { host, port, transport, callerId } = outbound;
  const uri = `sip:${req.to}@${host}:${port}${transport === 'tcp' ? ';transport=tcp' : ''}`;
  return {
    targets: [{ uri, ...(callerId ? { callingNumber: callerId } : {}), ...(trunk.auth ? { auth: trunk.auth } : {}) }],
    from: callerId ?? `trunk:${trunk.name}`,
    to: req.to,
    logFields: { trunk: trunk.name },
  };
}

/**
 * Every contact the device registered, each sent to the address its REGISTER came from (a phone behind
 * NAT wrote a private address in its Contact). None: CG_DEVICE_NOT_REGISTERED, before anything rings.
 */
async function deviceRoute(deps: DeviceCallDeps, tenant: Tenant, username: string): Promise<DialRoute> {
  if (!deps.devices || !deps.bindings) throw new CallgateError('CG_DEVICE_NOT_FOUND', undefined, { details: { username } });
  const device = await deps.devices.get(tenant.id, username);
  const { bindings } = await deps.bindings.bindings(device.username);
  if (bindings.length === 0) throw new CallgateError('CG_DEVICE_NOT_REGISTERED', undefined, { details: { username: device.username } });
  const targets = bindings.map((b) => ({
    uri: b.contact,
    proxy: `sip:${b.source.address.includes(':') ? `[${b.source.address}]` : b.source.address}:${b.source.port};transport=${b.source.transport}`,
    callingNumber: 'callgate',
    callingName: tenant.agentName,
  }));
  return { targets, from: `agent:${tenant.agentName}`, to: `device:${device.username}`, logFields: { device: device.username } };
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
  options: OutboundOptions;
  call: RunningCall;
  route: DialRoute;
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
    dialog = await forkInvite(d.srf, d.route.targets, offered.sdp, d.options.ringTimeoutMs, log);
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
    log.info('outbound call answered');
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

/**
 * Sends the INVITE to every target at once (one target: a trunk call) and resolves with the first
 * dialog to be answered; the others are CANCELed, and one answered in the same instant gets a BYE.
 * Nothing answered within `ringTimeoutMs`: every INVITE is CANCELed. All refused: rejects with the
 * most telling failure (busy over the rest, anything over our own CANCELs' 487).
 */
export async function forkInvite(srf: Srf, targets: readonly DialTarget[], sdp: string, ringTimeoutMs: number, log: Logger): Promise<Srf.Dialog> {
  const sent: ({ cancel(): void } | undefined)[] = [];
  /** Forks with a final response already: nothing left to CANCEL (drachtio would answer "unable to find dialog"). */
  const finished = new Set<number>();
  let settled = false;
  const cancelAll = (except?: number): void => {
    sent.forEach((req, i) => {
      if (i !== except && !finished.has(i)) contained(log, 'CANCEL a fork', () => req?.cancel());
    });
  };
  const attempts = targets.map((t, i) =>
    srf
      .createUAC(
        t.uri,
        {
          localSdp: sdp,
          ...(t.proxy ? { proxy: t.proxy } : {}),
          ...(t.callingNumber ? { callingNumber: t.callingNumber } : {}),
          ...(t.callingName ? { callingName: t.callingName } : {}),
          ...(t.auth ? { auth: t.auth } : {}),
        } as Srf.CreateUACOptions,
        {
          cbRequest: (_err: unknown, req: { cancel(): void }) => {
            sent[i] = req;
            // Sent after another fork won, or after the ring timeout: it must not ring on.
            if (settled) contained(log, 'CANCEL a late fork', () => req?.cancel());
          },
        } as never,
      )
      .finally(() => finished.add(i))
      .then((dialog) => {
        if (settled) {
          // Answered as another won: hang it up at once.
          contained(log, 'BYE a fork answered second', () => dialog.destroy());
          throw Object.assign(new Error('another fork answered first'), { status: 487 });
        }
        settled = true;
        cancelAll(i);
        return dialog;
      }),
  );
  const ringTimer = setTimeout(() => {
    settled = true;
    contained(log, 'CANCEL at ring timeout', () => cancelAll());
  }, ringTimeoutMs);
  try {
    return await Promise.any(attempts);
  } catch (err) {
    const errors = err instanceof AggregateError ? err.errors : [err];
    const status = (e: unknown): number | undefined => (e as { status?: number }).status;
    throw errors.find((e) => status(e) === 486 || status(e) === 600) ?? errors.find((e) => status(e) !== 487) ?? errors[0];
  } finally {
    clearTimeout(ringTimer);
  }
}
