import type { RealtimeLink, RealtimeResponseEvent } from './realtime/RealtimeLink.js';
import { END_CALL_TOOL, type ToolCall } from '../providers/types.js';
import { UNTRANSCRIBED } from './realtime/RealtimeTurnStt.js';
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
  /** A speech-to-speech model answers while it is up; the cascade (llm → tts) otherwise. */
  readonly realtime?: RealtimeLink | undefined;
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
  private readonly realtime: RealtimeLink | undefined;
  /** The model's items a realtime reply played, and where each started in it: a barge-in truncates the one heard last. */
  private readonly realtimeItems = new WeakMap<Reply, { readonly itemId: string; readonly startMs: number }[]>();
  /** A caller turn the model answered before its words were known: its history entry, to fill in. */
  private wordsOwed: ChatMessage | undefined;
  /** The model's words for the caller's turn, come before its answer began. */
  private callerWords: string | undefined;

  constructor(deps: ReplyPipelineDeps) {
    ({ call: this.call, providers: this.providers, prompts: this.prompts, opts: this.opts, echo: this.echo, events: this.events, host: this.host, ended: this.ended } = deps);
    this.log = deps.log ?? rootLogger;
    this.tools = deps.tools;
    this.realtime = deps.realtime;
    // The prompt, like the greeting, may use the call's variables ({{name|fallback}}): a callStart webhook's among them.
    this.systemPrompt = renderTemplate(this.call.config.systemPrompt, this.call.variables).text;
  }

  /** A reply is under way, or its audio is still queued. */
  get talking(): boolean {
    return this.speaking || this.call.media.queuedMs > 0;
  }

  /** Answers the caller's `text` with the model's reply. */
  async respond(text: string, turn: number): Promise<void> {
    if (this.realtime && this.realtime.state !== 'down') {
      if (this.realtime.state !== 'up') await this.realtime.ready();
      if (this.realtime.up) return this.respondRealtime(this.realtime, text, turn);
    }
    this.history.push({ role: 'user', content: text });
    await this.respondCascade(turn);
  }

  /**
   * The model's own turn detection ended the caller's turn and it began answering by itself
   * (`realtimeTurnDetection: model`): the answer plays as an asked one does. The caller's words are the
   * model's transcription, which may come after the answer began: `callerSaid` puts them in history.
   */
  async respondUnasked(turn: number): Promise<void> {
    const link = this.realtime;
    if (!link?.up) return;
    const events = link.takeUnasked();
    if (!events) return;
    const text = this.callerWords ?? UNTRANSCRIBED;
    this.callerWords = undefined;
    return this.respondRealtime(link, text, turn, true, events);
  }

  /** The model's transcription of a caller turn it answers by itself. */
  callerSaid(text: string): void {
    const owed = this.wordsOwed;
    this.wordsOwed = undefined;
    const at = owed ? this.history.indexOf(owed) : -1;
    if (at >= 0) this.history[at] = { role: 'user', content: text };
    else this.callerWords = text;
  }

  /**
   * The speech-to-speech model answers: it heard the turn's audio (committed at the turn's end), its
   * audio goes to the leg as it comes, its words to the events and the record, its tool calls to the
   * tenant's tools. A connection lost mid-answer is reopened once and asked again; lost for good, the
   * cascade answers this turn (when its words are known) and every turn after.
   */
  private async respondRealtime(link: RealtimeLink, text: string, turn: number, retry = true, unasked?: AsyncQueue<RealtimeResponseEvent>): Promise<void> {
    if (retry) {
      const said: ChatMessage = { role: 'user', content: text };
      this.history.push(said);
      if (unasked && text === UNTRANSCRIBED) this.wordsOwed = said;
    }
    const reply = new Reply(turn);
    const abort = new AbortController();
    this.beginReply(reply, abort);
    const items: { itemId: string; startMs: number }[] = [];
    this.realtimeItems.set(reply, items);
    const piece = reply.addPiece('');
    const splitter = new SentenceSplitter(this.opts.splitter);
    const say = (sentences: string[]): void => {
      for (const s of sentences) this.events.emit({ type: 'agent-text', turn, text: s });
    };
    // Responses asked for and not done yet: a tool's result asks for another.
    let open = 1;
    // Released however the loop ends: the model's next response (one it starts by itself) gets a new queue.
    const events = unasked ?? link.respond();
    try {
  for await (const ev of events) {
        if (abort.signal.aborted) break;
        if (ev.type === 'audio') {
          if (items.at(-1)?.itemId !== ev.itemId) items.push({ itemId: ev.itemId, startMs: reply.queuedMs });
          this.events.mark('llmFirstToken');
          this.events.mark('ttsFirstAudio');
          this.queueAudio(reply, piece, ev.pcm);
          // As for TTS chunks: let the packet just queued leave before the rest of a burst of deltas is
          // queued (bench:realtime: a burst of 180 took the first packet's overhead p95 from 2.5 to 7.7 ms).
          await yieldToEventLoop();
        } else if (ev.type === 'text') {
          if (ev.final) {
            // The item's whole transcript replaces the pieces that came.
            piece.text = ev.text;
            say(splitter.flush());
          } else {
            piece.text += ev.text;
            say(splitter.push(ev.text));
          }
        } else if (ev.type === 'tool') {
          const outcome = await this.runRealtimeTool(reply, ev.call, turn, abort.signal);
          if (abort.signal.aborted) break;
          link.toolResult(ev.call.id, outcome);
          open++;
        } else if (--open === 0) break;
      }
    } finally {
      link.release(events);
    }
    say(splitter.flush());
    if (abort.signal.aborted) return;
    if (open > 0) {
      // The connection dropped before the answer was done: what played stays heard.
      this.finishCurrent(true, reply.queuedMs - this.call.media.queuedMs);
      this.speaking = false;
      if (retry && (await link.ready())) {
        link.addMessage('user', text);
        return this.respondRealtime(link, text, turn, false);
      }
      this.events.error(new Error('the speech-to-speech model is gone'), 'llm', 'CG_REALTIME_FAILED');
      // The cascade answers from here on; this turn too when its words are known, else the apology asks again.
      if (text !== UNTRANSCRIBED) {
        if (this.history.at(-1)?.role !== 'user') this.history.push({ role: 'user', content: text });
        return this.respondCascade(turn);
      }
      return this.speakPrompt(this.call.config.apology, turn, 'apology');
    }
    this.failedTurns = 0;
    this.completeReply(reply);
  }

  /** A tool the realtime model called: end_call ends the call after this reply; others go to the tenant's tools. */
  private async runRealtimeTool(reply: Reply, call: ToolCall, turn: number, signal: AbortSignal): Promise<string> {
    if (call.name === END_CALL_TOOL.name) {
      reply.hangupAfter = true;
      return JSON.stringify({ ok: true });
    }
    if (!this.tools) return JSON.stringify({ error: `no tool named ${call.name}` });
    const started = performance.now();
    const filler = setTimeout(() => {
      const say = this.tools?.filler(call.name);
      if (say && !signal.aborted) void this.appendPrompt(reply, say, 'apology');
    }, this.opts.toolFillerAfterMs);
    try {
      const outcome = await this.tools.run(call);
      this.events.emit({ type: 'tool', turn, name: call.name, ok: outcome.ok, durationMs: Math.round(performance.now() - started) });
      return outcome.content;
    } finally {
      clearTimeout(filler);
    }
  }

  /** The cascade's answer to the history's last user turn: the model's text → sentences → TTS. */
  private async respondCascade(turn: number): Promise<void> {
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

  /** A false interruption resumes a reply by re-saying it; a model's reply cannot be (its context was truncated). */
  resumable(reply: Reply): boolean {
    return !this.realtimeItems.has(reply);
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
    const playedMs = reply ? Math.max(0, reply.queuedMs - dropped) : 0;
    // The model stops, and forgets what the caller did not hear of the item it was saying.
    const items = reply ? this.realtimeItems.get(reply) : undefined;
    if (items && this.realtime) {
      const heard = items.filter((i) => i.startMs <= playedMs).at(-1);
      this.realtime.interrupt(heard?.itemId, heard ? playedMs - heard.startMs : 0);
    }
    return { reply, playedMs };
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
