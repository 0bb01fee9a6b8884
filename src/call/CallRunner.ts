import { EventEmitter } from 'node:events';
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
import type { CallDoor as DoorKind, CallOutcome } from '../tenants/CallRecordStore.js';
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
}

/** The agent a running call gets: the tenant's resolved config and the providers and VAD made for it. */
export interface CallAgent {
  readonly config: AgentConfig;
  readonly variables: Readonly<Record<string, string>>;
  readonly providers: AgentProviders;
  /** The session closes it when it ends; the door also closes it at teardown (close is idempotent). */
  readonly vad: VoiceActivityDetector;
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
    };

export interface CallRunnerDeps {
  readonly records: CallRecordSink;
  readonly limiter: CallLimiter;
  readonly prompts: PromptCache;
  readonly agent?: Partial<AgentSessionOptions>;
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
  private ending: CallEnd | undefined;
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
    if (this.session) throw new CallgateError('CG_INTERNAL', 'a call runs its agent once');
    // CallSession ends once, from either side: a remote hang-up after ours (or ours after it) is a no-op.
    const call = new CallSession({
      callId: this.start.callId,
      config: agent.config,
      media: door.leg,
      variables: agent.variables,
      metadata: { from: this.start.from, to: this.start.to },
      hangup: (reason) => door.hangup(reason),
    });
    this.session = call;
    door.onRemoteHangup(() => call.remoteHangup());
    const { deps } = this.runner;
    const session = new AgentSession({ call, providers: agent.providers, vad: agent.vad, prompts: deps.prompts, options: deps.agent ?? {}, logger: this.log });
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
    this.recorder.answered();
    this.runner.publish({ type: 'call.answered', callId: this.start.callId, tenantId: this.start.tenantId, door: this.start.door }, this.log);
    await door.ready;
    await session.start();
    return session.ended;
  }

  /** Ends a running call from our side (a media timeout, a shutdown). Before `run()`, nothing to end. */
  hangup(reason: EndReason): void {
    void this.scope.guard(Promise.resolve(this.session?.hangup(reason)));
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
        },
        this.log,
      );
      await this.scope.close();
    })();
    return this.closing;
  }
}
