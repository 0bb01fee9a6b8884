import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { AgentSession, type AgentSessionOptions } from '../../src/agent/AgentSession.js';
import { resolveAgentConfig, type AgentConfig, type AgentConfigInput } from '../../src/agent/AgentConfig.js';
import { CallSession } from '../../src/agent/CallSession.js';
import type { CallTools } from '../../src/agent/CallTools.js';
import type { AgentEvent, AgentEventOf, AgentEventType, EndReason } from '../../src/agent/events.js';
import { PromptCache } from '../../src/agent/PromptCache.js';
import { createVad, type VadOptions } from '../../src/agent/vad/createVad.js';
import { openAudioLeg, type AudioLeg, type EncodedPrompt, type LegCodec } from '../../src/media/AudioLeg.js';
import { sharedMediaClock } from '../../src/media/MediaClock.js';
import { parseRtp } from '../../src/media/rtp/RtpPacket.js';
import type { AgentProviders } from '../../src/providers/types.js';
import { fixtureStream } from '../media/helpers.js';

export const PCMU: LegCodec = { name: 'PCMU', payloadType: 0, telephoneEvent: { payloadType: 101, clockRate: 8000 } };

/** One agent packet as the caller received it. */
export interface HeardPacket {
  readonly at: number;
  /** Carries sound (not the comfort-silence payload, not digital silence). */
  readonly speech: boolean;
}

export interface TestCallOptions {
  readonly config: AgentConfigInput;
  readonly providers: AgentProviders;
  readonly options?: Partial<AgentSessionOptions>;
  readonly prompts?: PromptCache;
  readonly codec?: LegCodec;
  /** Gain (dB) of an echo path that feeds the agent's audio back into the caller's microphone. */
  readonly echoDb?: number;
  /** The greeting's variables (default `{ caller: 'Sam' }`). */
  readonly variables?: Readonly<Record<string, string>>;
  /** VAD engine (default fvad). */
  readonly vad?: VadOptions['engine'];
  /** Do not start a caller leg (the test sends raw RTP to `agentLeg` itself). */
  readonly noCaller?: boolean;
  /** The tools the model may call. */
  readonly tools?: CallTools;
}

/**
 * A call over real UDP on loopback: the agent's AudioLeg, and a caller AudioLeg at the other end that
 * speaks (PCM or capture payloads) and hears (decoded agent audio, packet arrival times). The "door"
 * here is the test: it builds the CallSession and hangs up by closing the agent's leg.
 */
export class TestCall {
  readonly events: AgentEvent[] = [];
  readonly heardPackets: HeardPacket[] = [];
  readonly heardAudio: Int16Array[] = [];
  readonly config: AgentConfig;
  hangups: EndReason[] = [];

  private constructor(
    readonly call: CallSession,
    readonly session: AgentSession,
    readonly agentLeg: AudioLeg,
    readonly callerLeg: AudioLeg | undefined,
  ) {
    this.config = call.config;
    session.on('event', (e) => this.events.push(e));
  }

  static async open(opts: TestCallOptions): Promise<TestCall> {
    const codec = opts.codec ?? PCMU;
    const config = resolveAgentConfig(opts.config);
    const callId = `test-${Math.random().toString(36).slice(2, 10)}`;
    const agentLeg = await openAudioLeg({ callId, legId: 'agent', codec, clock: sharedMediaClock(), env: {} });
    let callerLeg: AudioLeg | undefined;
    if (!opts.noCaller) {
      callerLeg = await openAudioLeg({
        callId,
        legId: 'caller',
        codec,
        clock: sharedMediaClock(),
        env: {},
        endpoint: { remote: agentLeg.endpoint.localAddress },
      });
      agentLeg.endpoint.setRemote(callerLeg.endpoint.localAddress);
    }
    const holder: { t?: TestCall } = {};
    const call = new CallSession({
      callId,
      config,
      media: agentLeg,
      variables: opts.variables ?? { caller: 'Sam' },
      hangup: async (reason) => {
        holder.t?.hangups.push(reason);
        await agentLeg.close();
      },
    });
    const vad = await createVad({ engine: opts.vad ?? 'fvad' });
    const session = new AgentSession({ call, providers: opts.providers, vad, prompts: opts.prompts ?? new PromptCache(), options: opts.options ?? {}, ...(opts.tools ? { tools: opts.tools } : {}) });
    const t = new TestCall(call, session, agentLeg, callerLeg);
    holder.t = t;
    if (callerLeg) {
      const silence = codec.name === 'PCMU' ? 0xff : codec.name === 'PCMA' ? 0xd5 : -1;
      callerLeg.endpoint.on('packet', (p) => {
        const speech = silence < 0 ? p.payload.length > 3 : p.payload.some((b) => b !== silence && b !== (silence ^ 0x80));
        t.heardPackets.push({ at: performance.now(), speech });
      });
      const gain = opts.echoDb === undefined ? undefined : 10 ** (opts.echoDb / 20);
      callerLeg.on('audio', (frame) => {
        t.heardAudio.push(frame.slice());
        if (gain !== undefined) callerLeg!.play(Int16Array.from(frame, (s) => Math.round(s * gain)));
      });
    }
    return t;
  }

  /** The caller speaks 16 kHz PCM (queued after anything it is already saying). */
  say(pcm: Int16Array): void {
    this.callerLeg!.play(pcm);
  }

  /** The caller plays payloads from a capture (same codec as the call). */
  playCapture(prompt: EncodedPrompt): void {
    this.callerLeg!.playEncoded(prompt);
  }

  /** Resolves with the first event of `type` (after `from` events), or rejects after `timeoutMs`. */
  async next<T extends AgentEventType>(type: T, timeoutMs = 5000, predicate: (e: AgentEventOf<T>) => boolean = () => true): Promise<AgentEventOf<T>> {
    const match = (e: AgentEvent): e is AgentEventOf<T> => e.type === type && predicate(e as AgentEventOf<T>);
    const seen = this.events.find(match);
    if (seen) return seen;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.session.off('event', on);
        reject(new Error(`no ${type} event within ${timeoutMs} ms; saw: ${this.events.map((e) => e.type).join(', ')}`));
      }, timeoutMs);
      const on = (e: AgentEvent): void => {
        if (!match(e)) return;
        clearTimeout(timer);
        this.session.off('event', on);
        resolve(e);
      };
      this.session.on('event', on);
    });
  }

  of<T extends AgentEventType>(type: T): AgentEventOf<T>[] {
    return this.events.filter((e): e is AgentEventOf<T> => e.type === type);
  }

  /** Time of the last agent packet with sound, or undefined. */
  lastSpeechPacketAt(): number | undefined {
    for (let i = this.heardPackets.length - 1; i >= 0; i--) if (this.heardPackets[i]!.speech) return this.heardPackets[i]!.at;
    return undefined;
  }

  /** Hangs up from the caller's side (if still up) and closes both legs; resolves when the session has ended. */
  async close(): Promise<EndReason> {
    this.call.remoteHangup();
    const reason = await this.session.ended;
    await this.agentLeg.close();
    await this.callerLeg?.close();
    return reason;
  }
}

/** Handles Node keeps open (timers, sockets, child processes), to prove a test left nothing behind. */
export function activeHandles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A capture's RTP payloads, to be played by the caller's leg (re-stamped onto its own stream). */
export async function capture(name: string): Promise<EncodedPrompt> {
  const stream = await fixtureStream(name);
  const payloads = stream.packets.map((p) => {
    const rtp = parseRtp(p.bytes);
    if (!rtp.ok) throw new Error(`${name}: not RTP (${rtp.code})`);
    return rtp.value.payload;
  });
  return { codec: 'PCMU', payloads, durationMs: payloads.length * 20 };
}

/** This process's child processes by command name (a leaked decoder shows up here). */
export function childProcesses(): string[] {
  try {
    return execFileSync('ps', ['-o', 'comm=', '--ppid', String(process.pid)], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && l !== 'ps');
  } catch {
    return []; // ps exits 1 when there are none
  }
}
