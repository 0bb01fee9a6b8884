import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { CallgateError } from '../../errors.js';
import { dbfs } from '../../media/signal.js';
import type {
  LlmEvent,
  LlmProvider,
  LlmRequest,
  SttProvider,
  SttResult,
  SttStream,
  SttStreamEvents,
  SttStreamOptions,
  TtsChunk,
  TtsProvider,
  TtsRequest,
} from '../types.js';

/**
 * Providers with scripted answers and chosen latencies, for tests and benchmarks of the agent's own
 * orchestration (turn-taking, barge-in, streaming), with no engine or network in the way. Each one
 * still behaves like a streaming provider: it listens to audio, streams text, streams audio in chunks.
 */

// ─── STT ─────────────────────────────────────────────────────────────────────────────────────────

export interface FakeSttOptions {
  /** What the caller "said" in each turn that had speech, in order; '' once the script runs out. */
  readonly transcripts: readonly string[];
  /**
   * A streaming STT finalises on its own: its final result comes this long after the speech in the
   * audio ends (silence frames pushed), or this long after `finalize()` when that comes first.
   */
  readonly finalDelayMs: number;
  /** Audio louder than this counts as speech. */
  readonly speechDbfs: number;
  /** Speech needed before a turn gets a transcript (shorter bursts — a cough — give ''). */
  readonly minSpeechMs: number;
  /** Fail every stream at open (provider down). */
  readonly failOpen: boolean;
}

export const defaultFakeSttOptions = {
  transcripts: [],
  finalDelayMs: 0,
  speechDbfs: -40,
  /** 300 ms: longer than a cough, shorter than any word said on purpose. */
  minSpeechMs: 300,
  failOpen: false,
} as const satisfies FakeSttOptions;

export class FakeStt implements SttProvider {
  readonly name = 'fake-stt';
  private readonly opts: FakeSttOptions;
  private next = 0;
  readonly streams: FakeSttStream[] = [];

  constructor(options: Partial<FakeSttOptions> = {}) {
    this.opts = { ...defaultFakeSttOptions, ...options };
  }

  async open(_options: SttStreamOptions): Promise<SttStream> {
    if (this.opts.failOpen) throw new CallgateError('CG_STT_UNAVAILABLE', 'fake STT set to fail');
    const stream = new FakeSttStream(this.opts, () => this.opts.transcripts[this.next++] ?? '');
    this.streams.push(stream);
    return stream;
  }
}

export class FakeSttStream extends EventEmitter<SttStreamEvents> implements SttStream {
  /** It streams like Deepgram: a first interim word while the caller talks, a final on its own. */
  readonly interimResults = true;
  private speechMs = 0;
  private silenceMs = 0;
  private interimSent = false;
  /** The turn's final, once the stream produced it on its own; '' is a final with no words. */
  private turnFinal: string | undefined;
  pushedFrames = 0;
  closed = false;

  constructor(
    private readonly opts: FakeSttOptions,
    private readonly nextTranscript: () => string,
  ) {
    super();
  }

  push(frame: Int16Array): void {
    if (this.closed) return;
    this.pushedFrames++;
    const ms = (frame.length / 16000) * 1000;
    if (dbfs(frame) >= this.opts.speechDbfs) {
      this.speechMs += ms;
      this.silenceMs = 0;
    } else {
      this.silenceMs += ms;
    }
    // Like a streaming engine, a first interim word arrives while the caller is still talking.
    if (!this.interimSent && this.speechMs >= this.opts.minSpeechMs) {
      this.interimSent = true;
      this.emit('result', { text: '…', final: false } satisfies SttResult);
    }
    // One final per turn: the script has one transcript per turn, however many pauses the caller makes.
    if (this.turnFinal === undefined && this.speechMs >= this.opts.minSpeechMs && this.silenceMs >= this.opts.finalDelayMs) {
      this.turnFinal = this.nextTranscript();
      if (this.turnFinal) this.emit('result', { text: this.turnFinal, final: true });
    }
  }

  async finalize(): Promise<string> {
    const ready = this.turnFinal;
    const heard = this.speechMs >= this.opts.minSpeechMs;
    this.speechMs = this.silenceMs = 0;
    this.interimSent = false;
    this.turnFinal = undefined;
    if (ready !== undefined) return ready;
    if (this.opts.finalDelayMs > 0) await sleep(this.opts.finalDelayMs);
    if (this.closed) throw new CallgateError('CG_STT_FAILED', 'stream closed');
    const text = heard ? this.nextTranscript() : '';
    if (text) this.emit('result', { text, final: true });
    return text;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.removeAllListeners();
  }
}

// ─── LLM ─────────────────────────────────────────────────────────────────────────────────────────

export interface FakeLlmOptions {
  /** The answer to a conversation (its last message is the caller's). */
  readonly reply: (request: LlmRequest) => string | readonly LlmEvent[];
  readonly firstTokenMs: number;
  /** Between streamed words. */
  readonly tokenIntervalMs: number;
  /** Throw CG_LLM_FAILED after this many words (provider dies mid-reply); undefined: never. */
  readonly failAfterWords: number | undefined;
  /** Stop producing after this many words and hang until the request is aborted (a stalled stream); undefined: never. */
  readonly stallAfterWords: number | undefined;
}

export const defaultFakeLlmOptions = {
  reply: () => 'OK.',
  firstTokenMs: 0,
  tokenIntervalMs: 0,
  failAfterWords: undefined,
  stallAfterWords: undefined,
} as const satisfies FakeLlmOptions;

export class FakeLlm implements LlmProvider {
  readonly name = 'fake-llm';
  readonly opts: FakeLlmOptions;
  readonly requests: LlmRequest[] = [];
  /** Requests whose signal was aborted while streaming. */
  aborted = 0;

  constructor(options: Partial<FakeLlmOptions> = {}) {
    this.opts = { ...defaultFakeLlmOptions, ...options };
  }

  async *stream(request: LlmRequest): AsyncIterable<LlmEvent> {
    this.requests.push(request);
    const answer = this.opts.reply(request);
    const events: readonly LlmEvent[] =
      typeof answer === 'string' ? answer.split(/(?<=\s)/).map((text) => ({ type: 'text' as const, text })) : answer;
    try {
      if (this.opts.firstTokenMs > 0) await sleep(this.opts.firstTokenMs, undefined, { signal: request.signal });
      let words = 0;
      for (const ev of events) {
        if (request.signal.aborted) return;
        if (this.opts.failAfterWords !== undefined && words >= this.opts.failAfterWords) {
          throw new CallgateError('CG_LLM_FAILED', 'fake LLM set to fail mid-reply');
        }
        if (this.opts.stallAfterWords !== undefined && words >= this.opts.stallAfterWords) {
          await untilAborted(request.signal);
          return;
        }
        if (words > 0 && this.opts.tokenIntervalMs > 0) await sleep(this.opts.tokenIntervalMs, undefined, { signal: request.signal });
        yield ev;
        if (ev.type === 'text') words++;
      }
    } catch (err) {
      if (request.signal.aborted) return;
      throw err;
    } finally {
      if (request.signal.aborted) this.aborted++;
    }
  }
}

// ─── TTS ─────────────────────────────────────────────────────────────────────────────────────────

export interface FakeTtsOptions {
  readonly firstAudioMs: number;
  /** Speech duration per character of text (~14 characters per second is a natural rate). */
  readonly msPerChar: number;
  readonly chunkMs: number;
  /** Level of the generated voice. */
  readonly levelDbfs: number;
  /** Texts for which synthesis fails (CG_TTS_FAILED). */
  readonly failWhen: (text: string) => boolean;
  /** Texts whose audio stops after the first chunk: the stream hangs until the request is aborted. */
  readonly stallWhen: (text: string) => boolean;
}

export const defaultFakeTtsOptions = {
  firstAudioMs: 0,
  msPerChar: 70,
  chunkMs: 200,
  levelDbfs: -20,
  failWhen: () => false,
  stallWhen: () => false,
} as const satisfies FakeTtsOptions;

/**
 * Speaks any text as a voice-like signal: a 140 Hz harmonic buzz shaped into 4 syllables a second, as
 * long as the text would take to say. Loud enough to echo, rhythmic enough for a VAD to call speech.
 */
export class FakeTts implements TtsProvider {
  readonly name = 'fake-tts';
  readonly opts: FakeTtsOptions;
  readonly requests: string[] = [];
  aborted = 0;

  constructor(options: Partial<FakeTtsOptions> = {}) {
    this.opts = { ...defaultFakeTtsOptions, ...options };
  }

  async *synthesize(request: TtsRequest): AsyncIterable<TtsChunk> {
    this.requests.push(request.text);
    if (this.opts.failWhen(request.text)) throw new CallgateError('CG_TTS_FAILED', 'fake TTS set to fail');
    try {
      if (this.opts.firstAudioMs > 0) await sleep(this.opts.firstAudioMs, undefined, { signal: request.signal });
    } catch {
      this.aborted++;
      return;
    }
    const totalMs = Math.max(200, request.text.length * this.opts.msPerChar);
    // Chunk by chunk, as a streaming TTS produces it: the first chunk costs one chunk's work.
    for (let at = 0; at < totalMs; at += this.opts.chunkMs) {
      if (at > 0 && this.opts.stallWhen(request.text)) await untilAborted(request.signal);
      if (request.signal.aborted) {
        this.aborted++;
        return;
      }
      yield { samples: voiceLike(Math.min(this.opts.chunkMs, totalMs - at), this.opts.levelDbfs, at), sampleRate: 16000 };
    }
  }
}

/** Resolves when `signal` aborts (at once if it already has): a stream that has stopped producing. */
function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** `durationMs` of the voice-like signal, starting `startMs` into it (so chunks join seamlessly). */
export function voiceLike(durationMs: number, levelDbfs: number, startMs = 0): Int16Array {
  const n = Math.round((16000 * durationMs) / 1000);
  const first = Math.round((16000 * startMs) / 1000);
  const out = new Int16Array(n);
  // Harmonics of 140 Hz with falling weights; peak scaled so the RMS lands near levelDbfs.
  const amp = 32768 * 10 ** (levelDbfs / 20) * 2.2;
  for (let i = 0; i < n; i++) {
    const t = (first + i) / 16000;
    const syllable = Math.max(0, Math.sin(Math.PI * 4 * t)) ** 0.5;
    let v = 0;
    for (let h = 1; h <= 6; h++) v += Math.sin(2 * Math.PI * 140 * h * t) / h;
    // A faint noise floor (about -75 dBFS), as real TTS output has: pauses are quiet, not digital zero,
    // so every packet of an utterance is told apart from the comfort silence sent between utterances.
    const floor = (((first + i) * 2654435761) >>> 28) - 7.5;
    out[i] = Math.round(Math.max(-32767, Math.min(32767, amp * 0.45 * syllable * v + floor)));
  }
  return out;
}
