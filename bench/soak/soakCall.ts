import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { AgentConfig } from '../../src/agent/AgentConfig.js';
import { AgentSession } from '../../src/agent/AgentSession.js';
import { CallSession } from '../../src/agent/CallSession.js';
import type { EndReason } from '../../src/agent/events.js';
import type { PromptCache } from '../../src/agent/PromptCache.js';
import { createVad } from '../../src/agent/vad/createVad.js';
import { isCallgateError } from '../../src/errors.js';
import { openAudioLeg, type AudioLeg, type LegCodec } from '../../src/media/AudioLeg.js';
import { replayStream, type ReplayPacket } from '../../src/media/capture/replay.js';
import { sharedMediaClock } from '../../src/media/MediaClock.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/testing/FakeProviders.js';
import type { AgentProviders } from '../../src/providers/types.js';
import type { CallLimiter } from '../../src/tenants/CallLimiter.js';
import { CallRecorder } from '../../src/tenants/CallRecorder.js';
import type { CallRecordStore } from '../../src/tenants/CallRecordStore.js';

/**
 * One soak call, set up and torn down the way a door does it (src/sip/answeredCall.ts and
 * outboundCall.ts): call-limit lease → agent leg on the port range → CallSession → AgentSession with
 * the fvad VAD and the shared prompt cache → call record → lease released. The caller is a plain UDP
 * socket that replays a real RTP capture at its captured pace and listens to what the agent sends.
 */

export const PCMU: LegCodec = { name: 'PCMU', payloadType: 0 };

export interface SoakCallOptions {
  /** The tenant's concurrent-call limit for the lease. */
  readonly callLimit: number;
  /** A call not over by then is hung up from the caller's side (and shows up as `caller-hangup`). */
  readonly callTimeoutMs: number;
  /** What the fake STT "hears" in the capture. */
  readonly callerText: string;
  /** The scripted model's answer; it then ends the call (an LLM's end_call). */
  readonly reply: string;
}

export interface SoakCallDeps {
  readonly tenantId: string;
  readonly config: AgentConfig;
  readonly prompts: PromptCache;
  readonly limiter: CallLimiter;
  readonly records: CallRecordStore;
  /** The caller's side: the datagrams of one RTP stream, with their capture times. */
  readonly capture: readonly ReplayPacket[];
  readonly logger: Logger;
  readonly options: SoakCallOptions;
}

export interface SoakCallResult {
  readonly callId: string;
  /** The session's end reason, or how the door saw a call that never ran. */
  readonly outcome: EndReason | 'rejected' | 'failed';
  readonly durationMs: number;
  /** Agent packets with sound that reached the caller (greeting and reply). */
  readonly agentSpeechPackets: number;
  readonly replayedPackets: number;
  readonly error?: string;
}

/**
 * Fresh fake providers per call, as ProviderRegistry.forCall hands out: the fakes remember their
 * requests, which must go with the call rather than pile up in the bench.
 */
export function soakProviders(o: SoakCallOptions): AgentProviders {
  return {
    stt: new FakeStt({ transcripts: [o.callerText] }),
    llm: new FakeLlm({ reply: () => [{ type: 'text', text: o.reply }, { type: 'hangup' }] }),
    tts: new FakeTts(),
  };
}

export async function runSoakCall(deps: SoakCallDeps, callId: string): Promise<SoakCallResult> {
  const started = performance.now();
  const { tenantId, options: o } = deps;
  const recorder = new CallRecorder(deps.records, { callId, tenantId, door: 'test', from: 'soak-caller', to: 'soak' });
  const result = (outcome: SoakCallResult['outcome'], extra: Partial<SoakCallResult> = {}): SoakCallResult => ({
    callId,
    outcome,
    durationMs: performance.now() - started,
    agentSpeechPackets: 0,
    replayedPackets: 0,
    ...extra,
  });

  let lease;
  try {
    lease = await deps.limiter.lease(tenantId, callId, { limit: o.callLimit });
  } catch (err) {
    // A refused call still gets its record, as at a door (SIP 486/503).
    const code = isCallgateError(err) ? err.code : 'CG_INTERNAL';
    await recorder.finish({ outcome: 'rejected', error: { code } });
    return result('rejected', { error: String(err) });
  }

  const caller = new SoakCaller();
  let leg: AudioLeg | undefined;
  try {
    await caller.open();
    const agentLeg = await openAudioLeg({
      callId,
      legId: 'agent',
      codec: PCMU,
      clock: sharedMediaClock(),
      env: {},
      endpoint: { remote: { address: '127.0.0.1', port: caller.port } },
      logger: deps.logger,
    });
    leg = agentLeg;
    const call = new CallSession({ callId, config: deps.config, media: agentLeg, metadata: { from: 'soak-caller', to: 'soak' }, hangup: () => agentLeg.close() });
    const session = new AgentSession({
      call,
      providers: soakProviders(o),
      vad: await createVad({ engine: 'fvad' }),
      prompts: deps.prompts,
      logger: deps.logger,
    });
    recorder.attach(session);
    recorder.answered();
    await session.start();
    // The caller starts at once: the capture opens with ~200 ms of silence, as long as the greeting.
    const stopReplay = new AbortController();
    const replaying = caller.replay(deps.capture, agentLeg.endpoint.localAddress, stopReplay.signal);
    const timeout = setTimeout(() => call.remoteHangup(), o.callTimeoutMs);
    const reason = await session.ended;
    clearTimeout(timeout);
    stopReplay.abort();
    await replaying;
    await recorder.finish();
    return result(reason, { agentSpeechPackets: caller.speechPackets, replayedPackets: caller.replayedPackets });
  } catch (err) {
    await recorder.finish({ outcome: 'failed', error: { code: isCallgateError(err) ? err.code : 'CG_INTERNAL', message: String(err).slice(0, 200) } });
    return result('failed', { agentSpeechPackets: caller.speechPackets, replayedPackets: caller.replayedPackets, error: String(err) });
  } finally {
    await leg?.close();
    await caller.close();
    await lease.release();
  }
}

/**
 * The far end of a soak leg: a plain UDP socket on loopback that replays an RTP capture at its captured
 * pace and counts the packets with sound it gets back (a phone, as far as the leg can tell).
 */
export class SoakCaller {
  private readonly socket = dgram.createSocket('udp4');
  /** Packets with sound received (PCMU payload bytes other than the two silence codes). */
  speechPackets = 0;
  /** performance.now() of the first packet with sound. */
  firstSpeechAt: number | undefined;
  replayedPackets = 0;
  private bound = false;

  async open(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', () => resolve()));
    this.bound = true;
    this.socket.on('message', (msg) => {
      // PCMU silence is 0xff/0x7f; anything else in the payload (after the 12-byte header) is sound.
      for (let i = 12; i < msg.length; i++) {
        if (msg[i] !== 0xff && msg[i] !== 0x7f) {
          this.speechPackets++;
          this.firstSpeechAt ??= performance.now();
          return;
        }
      }
    });
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** Sends the capture to `target` at its pace; resolves when done or aborted. */
  async replay(capture: readonly ReplayPacket[], target: { address: string; port: number }, signal?: AbortSignal): Promise<void> {
    this.replayedPackets += (await replayStream(capture, { target, socket: this.socket, ...(signal ? { signal } : {}) })).packets;
  }

  async close(): Promise<void> {
    // A socket that never bound closes at once (and has no callback to wait for).
    if (!this.bound) return void this.socket.close();
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}
