import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { AgentConfig } from '../agent/AgentConfig.js';
import { AgentSession, type AgentSessionOptions } from '../agent/AgentSession.js';
import { CallSession } from '../agent/CallSession.js';
import type { AgentEvent, EndReason } from '../agent/events.js';
import type { LiveSessions } from '../agent/LiveSessions.js';
import type { PromptCache } from '../agent/PromptCache.js';
import type { VoiceActivityDetector } from '../agent/vad/VoiceActivityDetector.js';
import { CallgateError, type ErrorCode } from '../errors.js';
import type { AudioLeg } from '../media/AudioLeg.js';
import type { AgentProviders } from '../providers/types.js';
import type { CallLimiter } from '../tenants/CallLimiter.js';
import { CallRecorder, type CallEnd, type CallRecordSink } from '../tenants/CallRecorder.js';
import type { CallDoor as DoorKind, CallOutcome, CallRecord, TransferRecord } from '../tenants/CallRecordStore.js';
import type { CallTools } from '../agent/CallTools.js';
import type { ChatMessage } from '../providers/types.js';
import type { Tenant } from '../tenants/schema.js';
import type { CallControls, TransferResult } from '../tools/controls.js';
import type { ToolBoxFactory } from '../tools/ToolBox.js';
import { CallScope } from './CallScope.js';

/**
 * What the runner needs of a front door once its call is up: the call's audio and a way to end it. SIP
 * inbound, SIP outbound and the direct WebRTC door each implement it; none of them builds an agent
 * session, a call record or a line lease itself. Later in-call features (transfer, DTMF out) add
 * optional members here, so a door that cannot do one simply leaves it out.
 */
export interface Door {
  /** The call's audio, already connected to the remote party. */
  readonly leg: AudioLeg;
  /** Ends the call from our side (a BYE, closing the peer connection). Called at most once. */
  hangup(reason: EndReason): Promise<void> | void;
  /** `fn` is called once the remote party has hung up or vanished. */
  onRemoteHangup(fn: () => void): void;
  /** Resolves when the agent may start talking (the ACK of an inbound INVITE); undefined: at once. */
  readonly ready?: Promise<void>;
  /** The agent's events as they happen, for a door that shows them to its caller (the web page's transcript). */
  agentEvent?(event: AgentEvent): void;
  /** Hands the caller to a person (the `transfer_call` tool); see TransferResult for what each outcome means. */
  transfer?: CallControls['transfer'];
  /** Sends keypad tones to the remote party (the `send_dtmf` tool). */
  sendDtmf?: CallControls['sendDtmf'];
}

/** The agent a running call gets: the tenant's resolved config and the providers and VAD made for it. */
export interface CallAgent {
  readonly config: AgentConfig;
  readonly variables: Readonly<Record<string, string>>;
  readonly providers: AgentProviders;
  /** The session closes it when it ends; the door also closes it at teardown (close is idempotent). */
  readonly vad: VoiceActivityDetector;
  /** The tenant as stored, secrets readable: its tools, call webhooks and transfer targets. */
  readonly tenant?: Tenant;
}

/** What a door knows when it takes a call for a tenant. */
export interface CallStart {
  readonly callId: string;
  readonly tenantId: string;
  readonly door: DoorKind;
  readonly from: string;
  readonly to: string;
  /** The door's logger for this call (call id, tenant). */
  readonly log: Logger;
  /** The door's running sessions, for a goodbye when it shuts down. */
  readonly sessions?: LiveSessions;
}

/** Typed call events, for metrics, webhooks and rooms to subscribe to. */
export type CallEvent =
  | { readonly type: 'call.started'; readonly callId: string; readonly tenantId: string; readonly door: DoorKind; readonly from: string; readonly to: string }
  | { readonly type: 'call.answered'; readonly callId: string; readonly tenantId: string; readonly door: DoorKind }
  | {
      readonly type: 'call.ended';
      readonly callId: string;
      readonly tenantId: string;
      readonly door: DoorKind;
      readonly outcome: CallOutcome;
      readonly error?: { readonly code: ErrorCode };
      /** The call's record as written (transcript, times, transfer). */
      readonly record: CallRecord;
    }
  /** A hand-over to a person ended with `result` (metrics count them). */
  | { readonly type: 'call.transferred'; readonly callId: string; readonly tenantId: string; readonly door: DoorKind; readonly result: TransferResult['result'] };

/** What a call-start hook (the tenant's callStart webhook) is told when a call is answered. */
export interface AnsweredCall {
  readonly callId: string;
  readonly tenant: Tenant;
  readonly door: DoorKind;
  readonly from: string;
  readonly to: string;
  readonly variables: Readonly<Record<string, string>>;
  readonly log: Logger;
}

export interface CallRunnerDeps {
  readonly records: CallRecordSink;
  readonly limiter: CallLimiter;
  readonly prompts: PromptCache;
  readonly agent?: Partial<AgentSessionOptions>;
  /** Builds each call's tools from its tenant (webhooks, MCP, built-ins); none: the model can only end the call. */
  readonly tools?: ToolBoxFactory;
  /**
   * Told when a call is answered, before the greeting; may return variables for the greeting and prompt
   * (the callStart webhook). Its own deadline keeps the caller from waiting; a failure is logged and ignored.
   */
  readonly callAnswered?: (call: AnsweredCall) => Promise<Readonly<Record<string, string>> | undefined>;
}

/**
 * The one place that turns an accepted call into a running one and back, for every door: the call
 * record, the tenant's line, the agent session and the teardown. A door calls `begin()` once the tenant
 * is known, pushes what it acquires onto the call's teardown stack, and hands its `Door` to `run()`.
 */
export class CallRunner extends EventEmitter<{ call: [CallEvent] }> {
  constructor(readonly deps: CallRunnerDeps) {
    super();
  }

  begin(start: CallStart): RunningCall {
    const call = new RunningCall(this, start);
    this.publish({ type: 'call.started', callId: start.callId, tenantId: start.tenantId, door: start.door, from: start.from, to: start.to }, start.log);
    return call;
  }

  /** @internal A listener's exception is that listener's bug: logged, never the call's end. */
  publish(event: CallEvent, log: Logger): void {
    try {
      this.emit('call', event);
    } catch (err) {
      log.error({ err: err instanceof Error ? err.stack : String(err), event: event.type }, 'call event listener failed');
    }
  }
}

/** One call from the moment its tenant is known until its teardown has run. */
export class RunningCall {
  /** The teardown stack: each resource the call acquires is pushed with its release. */
  readonly scope: CallScope;
  readonly recorder: CallRecorder;
  private session: CallSession | undefined;
  private agentSession: AgentSession | undefined;
  private running = false;
  /** Settles when a call the agent bridged to a person has ended. */
  private bridge: Promise<void> | undefined;
  private ending: CallEnd | undefined;
  /** How an attended call (a room) is hung up from our side. */
  private attending: ((reason: EndReason) => Promise<void> | void) | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly runner: CallRunner,
    readonly start: CallStart,
  ) {
    this.scope = new CallScope(start.log);
    this.recorder = new CallRecorder(runner.deps.records, { callId: start.callId, tenantId: start.tenantId, door: start.door, from: start.from, to: start.to });
  }

  get callId(): string {
    return this.start.callId;
  }

  get log(): Logger {
    return this.start.log;
  }

  /** Takes one of the tenant's `limit` lines (CG_CALL_LIMIT_REACHED when none is free); given back at teardown. */
  async takeLine(limit: number): Promise<void> {
    const lease = await this.runner.deps.limiter.lease(this.start.tenantId, this.start.callId, { limit });
    this.scope.defer('line lease', () => lease.release());
  }

  /**
   * Runs the tenant's agent on the door's audio until the call ends, from either side; resolves with
   * why it ended. The only place a production AgentSession is made. The record is written at `close()`.
   */
  async run(door: Door, agent: CallAgent): Promise<EndReason> {
    if (this.running) throw new CallgateError('CG_INTERNAL', 'a call runs its agent once');
    this.running = true;
    const { deps } = this.runner;
    let goneEarly = false;
    door.onRemoteHangup(() => {
      if (this.session) this.session.remoteHangup();
      else goneEarly = true;
    });
    this.recorder.answered();
    this.runner.publish({ type: 'call.answered', callId: this.start.callId, tenantId: this.start.tenantId, door: this.start.door }, this.log);
    // The tenant's call-start hook and tool listing (MCP) run while the caller's side sends its ACK.
    const [extra, tools] = await Promise.all([this.callStartVariables(agent), this.tools(door, agent), door.ready]);
    // The tenant's own names win over anything a call brings, as they do over a call URL's variables.
    const variables: Record<string, string> = { ...agent.variables, ...extra };
    for (const own of ['agentName', 'business']) {
      const value = agent.variables[own];
      if (value !== undefined) variables[own] = value;
    }
    // CallSession ends once, from either side: a remote hang-up after ours (or ours after it) is a no-op.
    const call = new CallSession({
      callId: this.start.callId,
      config: agent.config,
      media: door.leg,
      variables,
      metadata: { from: this.start.from, to: this.start.to },
      // Bridged to a person, the legs stay up after the agent leaves: the bridge's end hangs up.
      hangup: (reason) => (this.bridge ? undefined : door.hangup(reason)),
    });
    this.session = call;
    const session = new AgentSession({ call, providers: agent.providers, vad: agent.vad, prompts: deps.prompts, options: deps.agent ?? {}, logger: this.log, ...(tools ? { tools } : {}) });
    this.agentSession = session;
    this.scope.defer('agent session', () => session.close());
    if (door.agentEvent) {
      const show = door.agentEvent.bind(door);
      session.on('event', (e) => {
        try {
          show(e);
        } catch (err) {
          this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'door could not show an agent event');
        }
      });
    }
    this.recorder.attach(session);
    this.start.sessions?.add(session);
    if (goneEarly) call.remoteHangup();
    await session.start();
    const reason = await session.ended;
    // The agent left a bridged call: it runs until one of the two people hangs up.
    if (this.bridge) await this.bridge.catch((err: unknown) => this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'bridged call failed'));
    return reason;
  }

  /**
   * Runs a call that joins something other than this tenant's agent (a room): the record, the line and
   * the teardown as for any call, no agent session. `join` gets the door and a promise of the remote
   * hang-up, and resolves when the caller's part is over.
   */
  async attend(door: Door, join: (door: Door, remoteGone: Promise<void>) => Promise<void>): Promise<void> {
    if (this.running) throw new CallgateError('CG_INTERNAL', 'a call runs once');
    this.running = true;
    const remoteGone = new Promise<void>((resolve) => door.onRemoteHangup(resolve));
    this.attending = (reason) => door.hangup(reason);
    this.recorder.answered();
    this.runner.publish({ type: 'call.answered', callId: this.start.callId, tenantId: this.start.tenantId, door: this.start.door }, this.log);
    await door.ready;
    await join(door, remoteGone);
  }

  /** The conversation so far, as the model saw it (a warm transfer's summary is made from it). */
  get transcript(): readonly ChatMessage[] {
    return this.agentSession?.transcript ?? [];
  }

  private async callStartVariables(agent: CallAgent): Promise<Readonly<Record<string, string>> | undefined> {
    const hook = this.runner.deps.callAnswered;
    if (!hook || !agent.tenant) return undefined;
    const { callId, door, from, to } = this.start;
    try {
      return await hook({ callId, tenant: agent.tenant, door, from, to, variables: agent.variables, log: this.log });
    } catch (err) {
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'call-start hook failed; the call goes on without it');
      return undefined;
    }
  }

  private async tools(door: Door, agent: CallAgent): Promise<CallTools | undefined> {
    const factory = this.runner.deps.tools;
    if (!factory || !agent.tenant) return undefined;
    try {
      const box = await factory.forCall({
        tenant: agent.tenant,
        call: { callId: this.start.callId, door: this.start.door, from: this.start.from, to: this.start.to, variables: agent.variables },
        controls: this.controls(door),
        providers: agent.providers,
        voice: agent.config.voice,
        transcript: () => this.transcript,
        log: this.log,
      });
      this.scope.defer('tools', () => box.close());
      return box;
    } catch (err) {
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'tools unavailable for this call; the agent can only talk');
      return undefined;
    }
  }

  /** The door's in-call abilities as the built-in tools see them, with what follows a hand-over. */
  private controls(door: Door): CallControls {
    const transfer = door.transfer?.bind(door);
    return {
      ...(door.sendDtmf ? { sendDtmf: door.sendDtmf.bind(door) } : {}),
      ...(transfer
        ? {
            transfer: async (request) => {
              const atMs = this.agentSession?.elapsedMs ?? 0;
              const started = performance.now();
              const result = await transfer(request);
              const transferred: TransferRecord = {
                target: request.target.name,
                mode: request.target.mode,
                method: result.method,
                result: result.result,
                ...('detail' in result ? { detail: result.detail.slice(0, 300) } : {}),
                atMs,
                setupMs: Math.round(performance.now() - started),
              };
              this.recorder.transferred(transferred);
              this.runner.publish({ type: 'call.transferred', callId: this.start.callId, tenantId: this.start.tenantId, door: this.start.door, result: result.result }, this.log);
              if (result.result === 'bridged') {
                const bridgedAt = performance.now();
                this.bridge = result.bridge.finally(() => this.recorder.transferred({ ...transferred, bridgedMs: Math.round(performance.now() - bridgedAt) }));
                void this.session?.hangup('transferred');
              } else if (result.result === 'transferred') {
                void this.session?.hangup('transferred');
              }
              return result;
            },
          }
        : {}),
    };
  }

  /** Ends a running call from our side (a media timeout, a shutdown). Before `run()`, nothing to end. */
  hangup(reason: EndReason): void {
    void this.scope.guard(Promise.resolve(this.session ? this.session.hangup(reason) : this.attending?.(reason)));
  }

  /**
   * How the door saw the end when it was not the agent's (refused before the answer, failed, the caller
   * gone first); the first one said counts. Written at `close()`.
   */
  end(end: CallEnd): void {
    this.ending ??= end;
  }

  /**
   * Writes the record, emits `call.ended`, and releases everything the call acquired, newest first,
   * once. A failure to write the record is logged with the call's id and tenant, never thrown.
   * `record: false` is for a call refused straight to whoever asked for it (an API dial request
   * answered with an error), which keeps no record.
   */
  close(options: { readonly record?: boolean } = {}): Promise<void> {
    this.closing ??= (async () => {
      const end = this.ending ?? {};
      const record = this.recorder.build(end);
      try {
        if (options.record !== false) await this.recorder.finish(end);
      } catch (err) {
        this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'call record not written');
      }
      this.runner.publish(
        {
          type: 'call.ended',
          callId: this.start.callId,
          tenantId: this.start.tenantId,
          door: this.start.door,
          outcome: record.outcome,
          ...(record.error ? { error: { code: record.error.code } } : {}),
          record,
        },
        this.log,
      );
      await this.scope.close();
    })();
    return this.closing;
  }
}
