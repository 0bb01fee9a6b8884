import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { AgentSession, type AgentSessionOptions } from '../agent/AgentSession.js';
import { CallSession } from '../agent/CallSession.js';
import type { AgentEvent } from '../agent/events.js';
import type { CallTools } from '../agent/CallTools.js';
import type { AgentProviders, ChatMessage } from '../providers/types.js';
import type { ToolBoxFactory } from '../tools/ToolBox.js';
import type { PromptCache } from '../agent/PromptCache.js';
import type { ProviderRegistry } from '../agent/ProviderRegistry.js';
import type { VoiceActivityDetector } from '../agent/vad/VoiceActivityDetector.js';
import { errorCode } from '../errors.js';
import type { MediaClock } from '../media/MediaClock.js';
import { Mixer, type MixerMember, type MixerOptions } from '../media/Mixer.js';
import type { Room, RoomAgent } from '../tenants/RoomStore.js';
import type { Tenant } from '../tenants/schema.js';
import { AgentPort } from './AgentPort.js';
import { PersonTranscriber } from './PersonTranscriber.js';
import { agentConfigFor } from '../tenants/TenantStore.js';
import { decideTurn, roomAgentConfig } from './persona.js';

/**
 * One room's conversation on the gateway that holds its audio: a mixer with a member per participant,
 * an AgentSession per AI participant (each hears the people's mix, minus nobody: agents never hear
 * themselves or each other's audio, they get each other's words as text), and the room's events for
 * the pages (who is here, who is speaking, who said what).
 */
export interface LiveRoomDeps {
  readonly clock: MediaClock;
  readonly prompts: PromptCache;
  readonly providers: ProviderRegistry;
  readonly createVad: () => Promise<VoiceActivityDetector>;
  readonly agentOptions?: Partial<AgentSessionOptions>;
  readonly mixer?: Partial<MixerOptions>;
  /** The tenant's tools (webhooks, MCP): an agent gets those its `tools` names. None: agents only talk. */
  readonly tools?: ToolBoxFactory;
  readonly logger: Logger;
}

export interface LiveRoomOptions {
  /** With `respond: "addressed"`, a question nobody answers within this long is taken by the first agent. */
  readonly unclaimedQuestionMs: number;
  /** Each person's own STT stream for the transcript (who said what, even over each other). */
  readonly transcribePeople: boolean;
}

export const defaultLiveRoomOptions = {
  /** 1.2 s: longer than a person's pause before answering someone else (~200–700 ms), short enough to feel attentive. */
  unclaimedQuestionMs: 1200,
  /** On: a room's transcript is only worth reading when it says who spoke; the cost is in bench:rooms. */
  transcribePeople: true,
} as const satisfies LiveRoomOptions;

export type ParticipantKind = 'person' | 'agent';

export interface ParticipantView {
  readonly participantId: string;
  readonly name: string;
  readonly kind: ParticipantKind;
  readonly door: 'web' | 'sip' | 'agent';
  readonly speaking: boolean;
  readonly muted: boolean;
}

export type RoomEvent =
  | { readonly type: 'participants'; readonly participants: readonly ParticipantView[] }
  | { readonly type: 'speaking'; readonly participantId: string; readonly speaking: boolean }
  | { readonly type: 'transcript'; readonly participantId: string; readonly name: string; readonly kind: ParticipantKind; readonly text: string; readonly final: boolean }
  | { readonly type: 'ended'; readonly reason: string };

/** A person's audio in the room: 20 ms frames of 16 kHz in, the mix for them out. */
export interface PersonAudio {
  on(event: 'audio', listener: (frame: Int16Array) => void): unknown;
  off(event: 'audio', listener: (frame: Int16Array) => void): unknown;
  play(pcm: Int16Array): boolean;
  readonly queuedMs: number;
}

interface Person {
  readonly participantId: string;
  readonly name: string;
  readonly door: 'web' | 'sip';
  readonly member: MixerMember;
  audio: PersonAudio | undefined;
  onAudio: ((frame: Int16Array) => void) | undefined;
  transcriber: PersonTranscriber | undefined;
}

interface Agent {
  readonly record: RoomAgent;
  readonly port: AgentPort;
  readonly member: MixerMember;
  session: AgentSession | undefined;
  /** People's energy when the agent's current turn started: who spoke most since is who it heard. */
  energyAtTurn: Map<string, number>;
  readonly call: CallSession;
}

/** At most this much of the mix may wait in a person's sender (more is a stalled leg: frames are dropped). */
const MAX_QUEUED_MS = 60;

/** Someone came or went (room webhooks). */
export interface MemberChange {
  readonly change: 'joined' | 'left';
  readonly participant: ParticipantView;
}

export class LiveRoom extends EventEmitter<{ event: [RoomEvent]; empty: []; member: [MemberChange] }> {
  private readonly mixer: Mixer;
  private readonly people = new Map<string, Person>();
  private readonly agents = new Map<string, Agent>();
  /** The agent whose audio is playing; the others' wait (two agents never talk over each other). */
  private floor: string | undefined;
  /** Released at close (the agents' tool boxes: MCP connections). */
  private readonly closers: (() => Promise<void> | void)[] = [];
  private closed = false;
  private readonly options: LiveRoomOptions;
  readonly log: Logger;

  constructor(
    readonly room: Room,
    private readonly tenant: Tenant,
    private readonly deps: LiveRoomDeps,
    options: Partial<LiveRoomOptions> = {},
  ) {
    super();
    this.options = { ...defaultLiveRoomOptions, ...options };
    this.log = deps.logger.child({ roomId: room.roomId, tenant: tenant.id });
    this.mixer = new Mixer(deps.clock, deps.mixer, (id, speaking) => this.publish({ type: 'speaking', participantId: id, speaking }));
  }

  get size(): number {
    return this.people.size + this.agents.size;
  }

  get peopleCount(): number {
    return this.people.size;
  }

  has(participantId: string): boolean {
    return this.people.has(participantId) || this.agents.has(participantId);
  }

  view(): ParticipantView[] {
    const people = [...this.people.values()].map((p): ParticipantView => ({ participantId: p.participantId, name: p.name, kind: 'person', door: p.door, speaking: p.member.speaking, muted: p.member.muted }));
    const agents = [...this.agents.values()].map((a): ParticipantView => ({ participantId: a.record.agentId, name: a.record.name, kind: 'agent', door: 'agent', speaking: a.member.speaking, muted: false }));
    return [...people, ...agents];
  }

  mixerStats(): ReturnType<Mixer['stats']> {
    return this.mixer.stats();
  }

  /** A person joins (or comes back under the same id after a reconnect: no duplicate). */
  addPerson(p: { participantId: string; name: string; door: 'web' | 'sip' }): void {
    if (this.closed) return;
    if (this.people.has(p.participantId)) return;
    const person: Person = {
      ...p,
      audio: undefined,
      onAudio: undefined,
      transcriber: undefined,
      member: this.mixer.add({
        id: p.participantId,
        human: true,
        hears: 'everyone',
        deliver: (frame) => {
          const audio = person.audio;
          if (frame && audio && audio.queuedMs <= MAX_QUEUED_MS) audio.play(frame);
        },
      }),
    };
    this.people.set(p.participantId, person);
    if (this.options.transcribePeople) void this.transcribe(person);
    this.log.info({ participantId: p.participantId, door: p.door }, 'person joined the room');
    this.memberChanged('joined', p.participantId);
    this.publishParticipants();
  }

  /** Connects (or replaces, after a reconnect) a person's audio. */
  attachAudio(participantId: string, audio: PersonAudio): void {
    const person = this.people.get(participantId);
    if (!person) return;
    this.detachAudio(participantId);
    const onAudio = (frame: Int16Array): void => {
      person.member.push(frame);
      if (!person.member.muted) person.transcriber?.frame(frame);
    };
    audio.on('audio', onAudio);
    person.audio = audio;
    person.onAudio = onAudio;
  }

  detachAudio(participantId: string, audio?: PersonAudio): void {
    const person = this.people.get(participantId);
    if (!person?.audio || (audio && person.audio !== audio)) return;
    if (person.onAudio) person.audio.off('audio', person.onAudio);
    person.audio = undefined;
    person.onAudio = undefined;
  }

  setMuted(participantId: string, muted: boolean): void {
    const person = this.people.get(participantId);
    if (!person || person.member.muted === muted) return;
    person.member.muted = muted;
    this.publishParticipants();
  }

  removePerson(participantId: string): boolean {
    const person = this.people.get(participantId);
    if (!person) return false;
    this.memberChanged('left', participantId);
    this.detachAudio(participantId);
    this.mixer.remove(participantId);
    this.people.delete(participantId);
    void person.transcriber?.close();
    person.transcriber = undefined;
    this.log.info({ participantId }, 'person left the room');
    this.publishParticipants();
    if (this.people.size === 0) this.emit('empty');
    return true;
  }

  /** An AI participant joins: its session starts and greets the room. */
  async addAgent(record: RoomAgent): Promise<void> {
    if (this.closed || this.agents.has(record.agentId)) return;
    const { config, variables } = roomAgentConfig(this.tenant, this.room, record);
    const log = this.log.child({ agentId: record.agentId });
    const port = new AgentPort(() => this.takeFloor(record.agentId));
    const call = new CallSession({
      callId: `${this.room.roomId}:${record.agentId}`,
      config,
      media: port,
      variables,
      metadata: { from: `room:${this.room.roomId}`, to: `agent:${record.agentId}` },
      // The agent said goodbye (or ran out of time): it leaves the room.
      hangup: () => void this.removeAgent(record.agentId),
    });
    const agent: Agent = {
      record,
      port,
      call,
      session: undefined,
      energyAtTurn: new Map(),
      member: this.mixer.add({ id: record.agentId, human: false, hears: 'humans', pull: () => port.next(), deliver: (frame) => port.hear(frame) }),
    };
    this.agents.set(record.agentId, agent);
    this.memberChanged('joined', record.agentId);
    this.publishParticipants();
    try {
      const vad = await this.deps.createVad();
      const providers = this.deps.providers.forCall(config, this.tenant.providerKeys, log);
      const tools = await this.toolsFor(record, providers, config.voice, variables, () => session.transcript, log);
      const session: AgentSession = new AgentSession({
        call,
        providers,
        vad,
        ...(tools ? { tools } : {}),
        prompts: this.deps.prompts,
        // Nobody hears the agent's own audio back in a room (mix-minus): the echo guard would only keep quiet people out.
        options: { ...this.deps.agentOptions, echo: { marginDb: 200 }, didNotCatchMinSpeechMs: Number.POSITIVE_INFINITY },
        logger: log,
        turnGate: (text) => this.gate(agent, text),
      });
      agent.session = session;
      session.on('event', (e) => this.agentEvent(agent, e));
      if (this.closed || !this.agents.has(record.agentId)) {
        await session.close('closed');
        return;
      }
      await session.start();
      log.info({ name: record.name }, 'agent joined the room');
    } catch (err) {
      log.error({ err: String(err), code: errorCode(err) }, 'agent could not join the room');
      await this.removeAgent(record.agentId);
    }
  }

  /**
   * The tools an agent's record names, from the tenant's (no transfer or keypad: a room has no one line
   * to hand over). Another name the model tries is refused like an unknown tool.
   */
  private async toolsFor(
    record: RoomAgent,
    providers: AgentProviders,
    voice: string,
    variables: Readonly<Record<string, string>>,
    transcript: () => readonly ChatMessage[],
    log: Logger,
  ): Promise<CallTools | undefined> {
    const names = new Set(record.tools ?? []);
    if (names.size === 0 || !this.deps.tools) return undefined;
    try {
      const box = await this.deps.tools.forCall({
        tenant: this.tenant,
        call: { callId: `${this.room.roomId}:${record.agentId}`, door: 'room', from: `room:${this.room.roomId}`, to: `agent:${record.agentId}`, variables },
        controls: {},
        providers,
        voice,
        transcript,
        log,
      });
      this.closers.push(() => box.close());
      return {
        specs: box.specs.filter((s) => names.has(s.name)),
        filler: (name) => box.filler(name),
        run: (call) => (names.has(call.name) ? box.run(call) : Promise.resolve({ ok: false, content: `no tool named ${call.name}` })),
      };
    } catch (err) {
      log.warn({ err: String(err) }, 'tools unavailable for this agent; it can only talk');
      return undefined;
    }
  }

  async removeAgent(agentId: string): Promise<boolean> {
    const agent = this.agents.get(agentId);
    if (!agent) return false;
    this.memberChanged('left', agentId);
    this.agents.delete(agentId);
    this.mixer.remove(agentId);
    if (this.floor === agentId) this.floor = undefined;
    agent.port.close();
    await agent.session?.close('closed').catch(() => undefined);
    if (!this.closed) this.publishParticipants();
    return true;
  }

  async close(reason = 'closed'): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [id, p] of this.people) {
      this.detachAudio(id);
      void p.transcriber?.close();
      p.transcriber = undefined;
    }
    await Promise.all([...this.agents.keys()].map((id) => this.removeAgent(id)));
    this.mixer.close();
    this.people.clear();
    await Promise.all(this.closers.splice(0).map((close) => Promise.resolve(close()).catch(() => undefined)));
    this.publish({ type: 'ended', reason });
    this.removeAllListeners('event');
  }

  // ─── Group turn-taking ─────────────────────────────────────────────────────────────────────────

  /** The floor is the first agent's with audio to play; it passes on when that agent has nothing left. */
  private takeFloor(agentId: string): boolean {
    const holder = this.floor === undefined ? undefined : this.agents.get(this.floor);
    if (!holder || !holder.port.wantsFloor) this.floor = agentId;
    return this.floor === agentId;
  }

  /** Whether (and with what words) an agent answers a turn it heard. */
  private async gate(agent: Agent, text: string): Promise<string | undefined> {
    const speaker = this.speakerFor(agent);
    const said = speaker ? `${speaker.name}: ${text}` : text;
    const agents = [...this.agents.values()];
    const decision = decideTurn({ policy: this.room.respond, agent: agent.record.name, agents: agents.map((a) => a.record.name), isHost: agents[0] === agent, text });
    if (decision === 'silent') return undefined;
    if (decision === 'answer') return said;
    // A question to the room: a person may take it; if nobody does in time, the host agent answers.
    const before = this.peopleEnergy();
    await new Promise((resolve) => setTimeout(resolve, this.options.unclaimedQuestionMs));
    if (this.closed) return undefined;
    const after = this.peopleEnergy();
    const someoneSpoke = [...after].some(([id, e]) => id !== speaker?.participantId && e > (before.get(id) ?? 0));
    return someoneSpoke ? undefined : said;
  }

  /** The person who spoke most since the agent's turn began. */
  private speakerFor(agent: Agent): { participantId: string; name: string } | undefined {
    let best: Person | undefined;
    let most = 0;
    for (const p of this.people.values()) {
      const spoke = p.member.energy - (agent.energyAtTurn.get(p.participantId) ?? 0);
      if (spoke > most) {
        most = spoke;
        best = p;
      }
    }
    return best;
  }

  private peopleEnergy(): Map<string, number> {
    return new Map([...this.people.values()].map((p) => [p.participantId, p.member.energy]));
  }

  private agentEvent(agent: Agent, e: AgentEvent): void {
    const id = agent.record.agentId;
    if (e.type === 'turn-started') agent.energyAtTurn = this.peopleEnergy();
    else if (e.type === 'agent-text') this.publish({ type: 'transcript', participantId: id, name: agent.record.name, kind: 'agent', text: e.text, final: true });
    else if (e.type === 'agent-done' && e.spokenText) {
      for (const other of this.agents.values()) if (other !== agent) other.session?.note(`${agent.record.name}: ${e.spokenText}`);
    }
  }

  /** The person's own recogniser (their audio before the mix): the transcript's lines with their name. */
  private async transcribe(person: Person): Promise<void> {
    try {
      const { config } = agentConfigFor(this.tenant);
      const log = this.log.child({ participantId: person.participantId });
      const stt = this.deps.providers.forCall(config, this.tenant.providerKeys, log).stt;
      const phrases = [...config.intents.flatMap((i) => i.phrases), ...[...this.agents.values()].map((a) => a.record.name)];
      const vad = await this.deps.createVad();
      if (this.closed || !this.people.has(person.participantId)) return vad.close();
      person.transcriber = new PersonTranscriber(
        vad,
        () => stt.open({ language: config.language, phrases, logger: log }),
        (text, final) => this.publish({ type: 'transcript', participantId: person.participantId, name: person.name, kind: 'person', text, final }),
        log,
      );
    } catch (err) {
      this.log.warn({ err: String(err), participantId: person.participantId }, 'no transcript for this person');
    }
  }

  private memberChanged(change: MemberChange['change'], participantId: string): void {
    const participant = this.view().find((p) => p.participantId === participantId);
    if (!participant) return;
    try {
      this.emit('member', { change, participant });
    } catch (err) {
      this.log.warn({ err: String(err) }, 'room member listener failed');
    }
  }

  private publishParticipants(): void {
    this.publish({ type: 'participants', participants: this.view() });
  }

  private publish(event: RoomEvent): void {
    try {
      this.emit('event', event);
    } catch (err) {
      this.log.warn({ err: String(err) }, 'room event listener failed');
    }
  }
}
