import { performance } from 'node:perf_hooks';
import { Resampler } from '../media/Resampler.js';
import { PIPELINE_RATE } from '../media/types.js';
import type { Logger } from 'pino';
import { rootLogger } from '../log.js';
import type { AgentProviders, ChatMessage } from '../providers/types.js';
import type { AgentSessionOptions } from './AgentSessionOptions.js';
import { AsyncQueue } from './AsyncQueue.js';
import type { CallPrompts } from './CallPrompts.js';
import type { CallTools } from './CallTools.js';
import type { CallSession } from './CallSession.js';
import { renderTemplate } from '../util/template.js';
import { toolLoop, type ReplyEvent } from './ToolLoop.js';
import { withTimeouts, yieldToEventLoop } from './deadlines.js';
import { frameLevels, type EchoGuard } from './EchoGuard.js';
import type { EndReason } from './events.js';
import { Reply, type ReplyPiece } from './Reply.js';
import { SentenceSplitter } from './SentenceSplitter.js';
import { withoutLeadIn } from './PromptCache.js';
import type { SessionEvents } from './SessionEvents.js';

type PromptKind = 'greeting' | 'apology' | 'reprompt' | 'goodbye';

export interface ReplyPipelineDeps {
  readonly call: CallSession;
  readonly providers: Pick<AgentProviders, 'llm' | 'tts'>;
  readonly prompts: CallPrompts;
  readonly opts: Pick<
    AgentSessionOptions,
    'splitter' | 'llmFirstTokenTimeoutMs' | 'llmStallTimeoutMs' | 'ttsFirstAudioTimeoutMs' | 'ttsStallTimeoutMs' | 'goodbyeMaxMs' | 'maxFailedTurns' | 'maxToolRounds' | 'toolFillerAfterMs'
  >;
  /** What the model may call besides end_call; none: the model can only talk and end the call. */
  readonly tools?: CallTools | undefined;
  readonly log?: Logger;
  /** Told what is played and what a barge-in dropped, so the agent does not hear itself. */
  readonly echo: EchoGuard;
  readonly events: SessionEvents;
  /** Settles when the session has ended (a goodbye's hang-up guard is dropped then). */
  readonly ended: Promise<unknown>;
  readonly host: ReplyHost;
}

/** What the pipeline needs of the session around it. */
export interface ReplyHost {
  /** The session is over: nothing more is queued. */
  isClosed(): boolean;
  /** The caller's latest turn. */
  latestTurn(): number;
  /** The agent started to speak (no-input stops counting). */
  replyStarted(): void;
  /** A reply played to its end and the call goes on. */
  replyPlayed(reply: Reply): void;
}

/**
 * What the agent says, and what the caller heard of it: model text → sentences → TTS → the leg, piece
 * by piece, or cached prompts (greeting, apology, goodbye). One reply is current at a time; when it is
 * cut off, the history (what the model sees next turn) keeps only the part that played. Provider
 * failures end the reply with the apology, or the call politely after `maxFailedTurns` in a row.
 */
export class ReplyPipeline {
  /** The conversation so far (system prompt excluded), as the model sees it. */
  readonly history: ChatMessage[] = [];
  private readonly call: CallSession;
  private readonly providers: ReplyPipelineDeps['providers'];
  /** The call's cached phrases (greeting, apology, goodbye). */
  readonly prompts: CallPrompts;
  private readonly opts: ReplyPipelineDeps['opts'];
  private readonly echo: EchoGuard;
  private readonly events: SessionEvents;
  private readonly host: ReplyHost;
  private readonly tools: CallTools | undefined;
  private readonly log: Logger;
  private readonly systemPrompt: string;
  private readonly ended: Promise<unknown>;
  private current: Reply | undefined;
  private currentAbort: AbortController | undefined;
  private speaking = false;
  /** Caller turns in a row that a provider failure left unanswered. */
  private failedTurns = 0;
  /** Why the agent is hanging up once its goodbye has played (no input, time limit, goodbye). */
  private hangupReason: EndReason | undefined;
  /** Replies whose audio is all queued: the leg's next drain ends them. */
  private readonly replyComplete = new WeakSet<Reply>();

  constructor(deps: ReplyPipelineDeps) {
    ({ call: this.call, providers: this.providers, prompts: this.prompts, opts: this.opts, echo: this.echo, events: this.events, host: this.host, ended: this.ended } = deps);
    this.log = deps.log ?? rootLogger;
    this.tools = deps.tools;
    // The prompt, like the greeting, may use the call's variables ({{name|fallback}}): a callStart webhook's among them.
    this.systemPrompt = renderTemplate(this.call.config.systemPrompt, this.call.variables).text;
  }

  /** A reply is under way, or its audio is still queued. */
  get talking(): boolean {
    return this.speaking || this.call.media.queuedMs > 0;
  }

  /** Answers the caller's `text` with the model's reply. */
  async respond(text: string, turn: number): Promise<void> {
    this.history.push({ role: 'user', content: text });
    const abort = new AbortController();
    const reply = new Reply(turn);
    const events = toolLoop(
      {
        llm: this.providers.llm,
        tools: this.tools,
        systemPrompt: this.systemPrompt,
        history: this.history,
        opts: { maxToolRounds: this.opts.maxToolRounds, fillerAfterMs: this.opts.toolFillerAfterMs, llmFirstTokenTimeoutMs: this.opts.llmFirstTokenTimeoutMs, llmStallTimeoutMs: this.opts.llmStallTimeoutMs },
        events: this.events,
        turn,
        log: this.log,
        saidBeforeTools: (said) => (reply.historyHas = said),
      },
      abort.signal,
    );
    await this.speak(reply, events, abort);
  }

  /**
   * A provider failure left the caller's turn unanswered: apologise and listen again, or, when that keeps
   * happening, say so and end the call rather than apologise forever.
   */
  async failTurn(turn: number): Promise<void> {
    if (++this.failedTurns >= this.opts.maxFailedTurns) return this.goodbye(this.call.config.unavailableMessage, 'provider-failure');
    await this.speakPrompt(this.call.config.apology, turn, 'apology');
  }

  /** Says `text` and hangs up with `reason` once it has played (or could not be played). */
  async goodbye(text: string, reason: EndReason): Promise<void> {
    this.hangupReason = reason;
    const reply = new Reply(this.host.latestTurn());
    reply.hangupAfter = true;
    this.beginReply(reply, new AbortController());
    const ok = await this.appendPrompt(reply, text, 'goodbye');
    if (!ok) return void this.call.hangup(reason);
    this.completeReply(reply);
    // Hang up even if the drain never comes (a stalled leg).
    const guard = setTimeout(() => void this.call.hangup(reason), this.opts.goodbyeMaxMs);
    void this.ended.then(() => clearTimeout(guard));
  }

  /**
   * The caller interrupted: drops what is queued and stops the providers. Returns the reply that was cut
   * and how much of it played; the caller of this decides what to tell and then `finishCurrent`s it.
   */
  cut(now: number): { readonly reply: Reply | undefined; readonly playedMs: number } {
    const dropped = this.call.media.flush();
    this.echo.flushed(now);
    const reply = this.current;
    this.currentAbort?.abort();
    this.currentAbort = undefined;
    return { reply, playedMs: reply ? Math.max(0, reply.queuedMs - dropped) : 0 };
  }

  /** The cut reply is dealt with: the agent is silent until the next reply. */
  silenced(): void {
    this.speaking = false;
  }

  /** Silences the agent at once for a closing message (time limit, shutdown): nothing of it counts as heard. */
  stopAll(): void {
    this.currentAbort?.abort();
    this.call.media.flush();
    this.echo.reset();
    this.finishCurrent(true, 0);
  }

  /** The session ended: whatever is under way stops, and history keeps what was heard of it. */
  close(): void {
    this.speaking = false;
    this.currentAbort?.abort();
    if (this.current) this.finishCurrent(true, Math.max(0, this.current.queuedMs - this.call.media.queuedMs));
  }

  private played(reply: Reply): void {
    this.speaking = false;
    if (reply.hangupAfter) return void this.call.hangup(this.hangupReason ?? 'agent-goodbye');
    this.host.replyPlayed(reply);
  }

  /**
   * Streams a reply: model text → pieces → TTS → the leg, piece by piece, so the first sentence plays
   * while the model is still writing the rest. Returns when everything is queued (not played).
   */
  async speak(reply: Reply, events: AsyncIterable<ReplyEvent>, abort = new AbortController()): Promise<void> {
    if (this.host.isClosed()) return;
    this.beginReply(reply, abort);
    const pieces = new AsyncQueue<string>();
    const splitter = new SentenceSplitter(this.opts.splitter);
    let failure: { err: unknown; during: 'llm' | 'tts' } | undefined;

    const reading = (async () => {
      try {
        for await (const ev of events) {
          if (abort.signal.aborted) break;
          if (ev.type === 'hangup') {
            reply.hangupAfter = true;
            continue;
          }
          if (ev.type !== 'text') continue;
          this.events.mark('llmFirstToken');
          for (const p of splitter.push(ev.text)) pieces.push(p);
        }
        if (!abort.signal.aborted) for (const p of splitter.flush()) pieces.push(p);
      } catch (err) {
        if (!abort.signal.aborted) failure ??= { err, during: 'llm' };
      } finally {
        pieces.end();
      }
    })();

    let piece: ReplyPiece | undefined;
    try {
      for await (const text of pieces) {
        if (abort.signal.aborted) break;
        piece = reply.addPiece(text);
        this.events.emit({ type: 'agent-text', turn: reply.turn, text });
        await this.synthesizeInto(reply, piece, abort.signal);
      }
    } catch (err) {
      if (!abort.signal.aborted) failure ??= { err, during: 'tts' };
      // The record and the model's history say only what the caller heard of that sentence.
      if (piece) reply.cutShort(piece);
      abort.abort();
    }
    await reading;
    // Release the failed request: a stalled stream would otherwise hold its connection (the TTS one is aborted above).
    if (failure) abort.abort();
    if (failure && !this.host.isClosed()) {
      this.events.error(failure.err, failure.during, failure.during === 'llm' ? 'CG_LLM_FAILED' : 'CG_TTS_FAILED');
      // What was already queued plays on; the apology (or the polite ending) follows it, from the cache.
      const giveUp = ++this.failedTurns >= this.opts.maxFailedTurns;
      await this.appendPrompt(reply, giveUp ? this.call.config.unavailableMessage : this.call.config.apology, giveUp ? 'goodbye' : 'apology');
      reply.hangupAfter = giveUp;
      if (giveUp) this.hangupReason = 'provider-failure';
    } else if (!abort.signal.aborted) {
      this.failedTurns = 0;
    }
    this.completeReply(reply);
  }

  /** Everything of `reply` is queued: it ends at the leg's next drain, or now if all of it has played. */
  private completeReply(reply: Reply): void {
    this.replyComplete.add(reply);
    if (this.current === reply && this.call.media.queuedMs === 0) {
      this.finishCurrent(false);
      this.played(reply);
    }
  }

  private async synthesizeInto(reply: Reply, piece: ReplyPiece, signal: AbortSignal): Promise<void> {
    const voice = this.call.config.voice;
    let resampler: Resampler | undefined;
    const chunks = withTimeouts(this.providers.tts.synthesize({ text: piece.text, voice, signal }), this.opts.ttsFirstAudioTimeoutMs, this.opts.ttsStallTimeoutMs, 'CG_TTS_TIMEOUT');
    for await (const chunk of chunks) {
      if (signal.aborted || this.current !== reply) return;
      this.events.mark('ttsFirstAudio');
      let pcm = chunk.samples;
      if (chunk.sampleRate !== PIPELINE_RATE) {
        resampler ??= new Resampler(chunk.sampleRate, PIPELINE_RATE);
        pcm = resampler.process(pcm);
      }
      this.queueAudio(reply, piece, pcm);
      // Let the packet just queued (and other calls' ticks) go out before more synthesis or resampling:
      // a provider that yields chunks without waiting would otherwise run the whole reply in one
      // stretch of microtasks, and the first packet's send (deferred by dgram) would wait for all of it.
      await yieldToEventLoop();
    }
  }

  private queueAudio(reply: Reply, piece: ReplyPiece, pcm: Int16Array): void {
    const startAt = performance.now() + this.call.media.queuedMs;
    if (!this.call.media.play(pcm)) return;
    this.echo.queued(frameLevels(pcm), startAt);
    reply.addAudio(piece, (pcm.length / PIPELINE_RATE) * 1000);
  }

  /** Speaks a fixed phrase from the prompt cache, sentence by sentence (so it can resume by sentence). */
  async speakPrompt(text: string, turn: number, kind: PromptKind): Promise<void> {
    if (this.host.isClosed()) return;
    const reply = new Reply(turn);
    this.beginReply(reply, new AbortController());
    await this.appendPrompt(reply, text, kind);
    this.completeReply(reply);
  }

  /** Queues a cached phrase after what `reply` already queued; false when nothing could be queued. */
  private async appendPrompt(reply: Reply, text: string, kind: PromptKind = 'apology'): Promise<boolean> {
    let queued = false;
    for (const pieceText of this.prompts.pieces(text)) {
      let prompt;
      try {
        prompt = await this.prompts.get(pieceText);
      } catch (err) {
        this.events.error(err, kind === 'greeting' ? 'greeting' : 'tts', 'CG_TTS_FAILED');
        return queued;
      }
      if (this.host.isClosed() || this.current !== reply) return queued;
      const piece = reply.addPiece(pieceText);
      this.events.emit({ type: 'agent-text', turn: reply.turn, text: pieceText });
      const startAt = performance.now() + this.call.media.queuedMs;
      // The greeting's first piece is the call's first sound: it starts without the TTS's lead-in.
      const { encoded, levels } = kind === 'greeting' && !queued ? withoutLeadIn(prompt) : prompt;
      if (this.call.media.playEncoded(encoded)) {
        this.echo.queued(levels, startAt);
        reply.addAudio(piece, encoded.durationMs);
        queued = true;
      }
    }
    return queued;
  }

  private beginReply(reply: Reply, abort: AbortController): void {
    if (this.current) this.finishCurrent(true, Math.max(0, this.current.queuedMs - this.call.media.queuedMs));
    this.current = reply;
    this.currentAbort = abort;
    this.speaking = true;
    this.host.replyStarted();
  }

  /** The reply is over (played out, or cut off after `playedMs`): history keeps what the caller heard. */
  finishCurrent(interrupted: boolean, playedMs?: number): void {
    const reply = this.current;
    if (!reply) return;
    this.current = undefined;
    this.currentAbort = undefined;
    const spokenText = interrupted ? reply.spokenText(playedMs ?? 0) : reply.fullText;
    const unrecorded = reply.notInHistory(spokenText);
    if (unrecorded) this.history.push({ role: 'assistant', content: unrecorded });
    this.events.emit({ type: 'agent-done', turn: reply.turn, spokenText, interrupted });
  }

  /** The leg sent everything queued. */
  drained(): void {
    const reply = this.current;
    if (!reply || this.host.isClosed()) return;
    // The leg drained, but text may still be in synthesis: only a reply whose audio is all queued is done.
    if (!this.replyComplete.has(reply)) return;
    this.finishCurrent(false);
    this.played(reply);
  }
}
