import { EventEmitter } from 'node:events';
import type { EncodedPrompt } from '../media/AudioLeg.js';
import type { CodecName } from '../media/codecs/AudioCodec.js';
import type { DtmfEvent } from '../media/types.js';
import type { AgentConfig } from './AgentConfig.js';
import type { EndReason } from './events.js';

/** Events of a call's media as the agent consumes them (an AudioLeg has exactly these). */
export interface CallMediaEvents {
  /** 20 ms of caller audio, 16 kHz mono (320 samples). */
  audio: [frame: Int16Array];
  dtmf: [event: DtmfEvent];
  /** Everything queued for the caller has been sent. */
  drain: [];
  /** The first packet of a prompt or reply has just been sent. */
  talkspurt: [];
}

/**
 * The audio of one call, whatever door it came through: SIP via rtpengine, direct WebRTC, or a test.
 * `AudioLeg` (src/media) implements it.
 */
export interface CallMedia {
  // One overload per event rather than a generic signature: a typed EventEmitter with more events
  // (AudioLeg's) is then assignable without casts.
  on(event: 'audio', listener: (frame: Int16Array) => void): unknown;
  on(event: 'dtmf', listener: (event: DtmfEvent) => void): unknown;
  on(event: 'drain' | 'talkspurt', listener: () => void): unknown;
  off(event: 'audio', listener: (frame: Int16Array) => void): unknown;
  off(event: 'dtmf', listener: (event: DtmfEvent) => void): unknown;
  off(event: 'drain' | 'talkspurt', listener: () => void): unknown;
  readonly codec: { readonly name: CodecName };
  /** Queues 16 kHz mono PCM for the caller. */
  play(pcm: Int16Array): boolean;
  /** Queues a prompt encoded once for this codec (greeting, apology). */
  playEncoded(prompt: EncodedPrompt): boolean;
  /** Drops everything queued at once; returns the milliseconds dropped. */
  flush(): number;
  readonly queuedMs: number;
  /** Lowers what the caller hears by `gainDb` (negative) from the next packet on; 0 restores it. */
  duck(gainDb: number): void;
  /** Pauses (true) or resumes (false) what is queued for the caller; nothing queued is lost. */
  hold(on: boolean): void;
  /**
   * What the caller's phone plays, 20 ms at a time at 16 kHz (zeros for silence), one frame per slot as
   * sent: the echo canceller's reference. Absent: no echo cancellation. Returns the way to stop.
   */
  sentAudio?(listener: (frame: Int16Array) => void): () => void;
}

export interface CallMetadata {
  /** Who called, as the door knows it (SIP From user, or the call URL's visitor id). */
  readonly from?: string;
  /** What was called (the dialled number, or the call URL slug). */
  readonly to?: string;
}

export interface CallSessionEvents {
  /** The call is over, from either side. Emitted once. */
  ended: [reason: EndReason];
}

export interface CallSessionInit {
  readonly callId: string;
  readonly config: AgentConfig;
  readonly media: CallMedia;
  /** Values for the greeting template (the call URL's variables, caller number, …). */
  readonly variables?: Readonly<Record<string, string>>;
  readonly metadata?: CallMetadata;
  /**
   * How the door ends the call when the agent decides to (BYE, closing the peer connection). Called at
   * most once; not called when the caller hung up.
   */
  readonly hangup: (reason: EndReason) => Promise<void> | void;
}

/**
 * What a front door hands the agent: the call's audio, its tenant's resolved agent config, variables
 * and metadata, and a way to hang up. The door calls `remoteHangup()` when the caller hangs up.
 */
export class CallSession extends EventEmitter<CallSessionEvents> {
  readonly callId: string;
  readonly config: AgentConfig;
  readonly media: CallMedia;
  readonly variables: Readonly<Record<string, string>>;
  readonly metadata: CallMetadata;
  private readonly doHangup: CallSessionInit['hangup'];
  private endReason: EndReason | undefined;

  constructor(init: CallSessionInit) {
    super();
    this.callId = init.callId;
    this.config = init.config;
    this.media = init.media;
    this.variables = init.variables ?? {};
    this.metadata = init.metadata ?? {};
    this.doHangup = init.hangup;
  }

  get ended(): EndReason | undefined {
    return this.endReason;
  }

  /** The agent ends the call: the door hangs up. Idempotent; a no-op once the call has ended. */
  async hangup(reason: EndReason): Promise<void> {
    if (this.endReason) return;
    this.endReason = reason;
    try {
      await this.doHangup(reason);
    } finally {
      this.emit('ended', reason);
    }
  }

  /** The door reports that the caller hung up (BYE, peer closed). Idempotent. */
  remoteHangup(): void {
    if (this.endReason) return;
    this.endReason = 'caller-hangup';
    this.emit('ended', 'caller-hangup');
  }
}
