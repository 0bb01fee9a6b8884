import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { callLogger } from '../log.js';
import { Resampler } from '../media/Resampler.js';
import { PIPELINE_RATE, type DtmfEvent } from '../media/types.js';
import { dtmfUserText, type AgentProviders, type ChatMessage, type LlmEvent } from '../providers/types.js';
import { AsyncQueue } from './AsyncQueue.js';
import type { CallSession } from './CallSession.js';
import { defaultAgentSessionOptions, type AgentSessionOptions } from './AgentSessionOptions.js';
import { textEvents, withTimeouts, yieldToEventLoop } from './deadlines.js';
import { CallerInput } from './CallerInput.js';
import { frameLevels } from './EchoGuard.js';
import { fixedPhrases, promptPieces } from './fixedPhrases.js';
import type { AgentEvent, EndReason } from './events.js';
import type { PromptCache } from './PromptCache.js';
import { Reply, joinText, type ReplyPiece } from './Reply.js';
import { SentenceSplitter } from './SentenceSplitter.js';
import { renderTemplate } from './template.js';
import { CallTimers } from './CallTimers.js';
import { Keypad } from './Keypad.js';
import { SessionEvents } from './SessionEvents.js';
import type { VoiceActivityDetector } from './vad/VoiceActivityDetector.js';

// Where the doors and tests have always found them.
export { defaultAgentSessionOptions, type AgentSessionOptions } from './AgentSessionOptions.js';

export interface AgentSessionEvents {
  event: [event: AgentEvent];
}

export interface AgentSessionDeps {
  readonly call: CallSession;
  readonly providers: AgentProviders;
  /** The frame classifier for this call; the session closes it. */
  readonly vad: VoiceActivityDetector;
  /** Shared across calls: encoded greetings and fixed phrases. */
  readonly prompts: PromptCache;
  readonly options?: Partial<AgentSessionOptions>;
  readonly logger?: Logger;
}

type SessionState = 'idle' | 'speaking' | 'ended';

interface PendingResume {
  readonly reply: Reply;
  readonly playedMs: number;
  readonly timer: NodeJS.Timeout;
  wordsHeard: boolean;
}

/**
 * The conversation on one call: greets, listens, answers and can be interrupted. Owns its STT stream,
 * VAD, timers and in-flight provider requests, and releases them all when the call ends. Knows nothing
 * of the door the call came through: audio in and out is the CallSession's media.
 */
export class AgentSession extends EventEmitter<AgentSessionEvents> {
  readonly call: CallSession;
  private readonly providers: AgentProviders;
  private readonly prompts: PromptCache;
  private readonly opts: AgentSessionOptions;
  private readonly log: Logger;
  private readonly input: CallerInput;
  private readonly events: SessionEvents;
  private readonly keypad: Keypad;
  private readonly timers: CallTimers;

  private state: SessionState = 'idle';
  private readonly history: ChatMessage[] = [];
  private turnIndex = 0;

  private current: Reply | undefined;
  private currentAbort: AbortController | undefined;
  private resume: PendingResume | undefined;
  /** A turn's text that was not answered because the caller kept talking; joins the next turn's. */
  private carriedText = '';
  /** The caller's speech while barge-in is off: heard, not answered. */
  private ignoringTurn = false;

  private reprompts = 0;
  /** Caller turns in a row that a provider failure left unanswered. */
  private failedTurns = 0;
  /** Serialises work that must not overlap: turn ends, replies, prompts. */
  private work: Promise<void> = Promise.resolve();
  private endedPromise: Promise<EndReason>;
  private resolveEnded!: (reason: EndReason) => void;
  private closed = false;
  /** Aborted by close(): ends waits that would otherwise outlive the session. */
  private readonly lifetime = new AbortController();
  /** Why the agent is hanging up once its goodbye has played (no input, time limit, goodbye). */
  private hangupReason: EndReason | undefined;
  /** Replies whose audio is all queued: the leg's next drain ends them. */
  private readonly replyComplete = new WeakSet<Reply>();

  private readonly onAudio = (frame: Int16Array): void => this.handleFrame(frame);
  private readonly onDtmf = (event: DtmfEvent): void => this.handleDtmf(event);
  private readonly onTalkspurt = (): void => this.events.mark('firstPacketOut');
  private readonly onDrain = (): void => this.handleDrain();
  private readonly onCallEnded = (reason: EndReason): void => void this.close(reason);

  constructor(deps: AgentSessionDeps) {
    super();
    this.call = deps.call;
    this.providers = deps.providers;
    this.prompts = deps.prompts;
    this.opts = { ...defaultAgentSessionOptions, ...deps.options };
    this.log = callLogger({ callId: deps.call.callId, tenant: deps.call.config.tenantId }, deps.logger);
    const { turn, echo, prerollMs, sttFinalTimeoutMs } = this.opts;
    this.input = new CallerInput(deps.vad, { turn: { ...turn, endpointingMs: deps.call.config.turn.endpointingMs }, echo, prerollMs, sttFinalTimeoutMs, log: this.log }, {
      speechStarted: (onsetAt, now) => this.speechStarted(onsetAt, now),
      speechEnded: (speechEndAt, now, forced) => this.speechEnded(speechEndAt, now, forced),
      sttResult: (r) => {
        if (r.text.trim() && this.resume) this.resume.wordsHeard = true;
        if (!r.final) this.events.emit({ type: 'transcript', turn: this.turnIndex, text: r.text, final: false });
      },
      sttError: (err, code) => this.events.error(err, 'stt', code),
    });
    this.endedPromise = new Promise((resolve) => (this.resolveEnded = resolve));
    this.events = new SessionEvents((event) => this.emit('event', event), this.log, () => this.turnIndex);
    this.keypad = new Keypad(this.opts.dtmfInterDigitMs, (digits) => this.submitDigits(digits));
    this.timers = new CallTimers(
      () => this.enqueueWork(() => this.noInput()),
      () => this.enqueueWork(() => this.timeLimit()),
    );
  }

  /** Resolves with the reason once the session has ended and released everything. */
  get ended(): Promise<EndReason> {
    return this.endedPromise;
  }

  /** The conversation so far (system prompt excluded), as the model sees it. */
  get transcript(): readonly ChatMessage[] {
    return this.history;
  }

  /**
   * Starts listening and plays the greeting. Resolves once the greeting is queued (its first packet
   * is then already on the wire when the greeting was cached).
   */
  async start(): Promise<void> {
    const { call } = this;
    const media = call.media;
    media.on('audio', this.onAudio);
    media.on('dtmf', this.onDtmf);
    media.on('talkspurt', this.onTalkspurt);
    media.on('drain', this.onDrain);
    call.on('ended', this.onCallEnded);
    if (call.ended) return void this.close(call.ended);
    this.events.emit({ type: 'session-started' });
    this.timers.startTimeLimit(call.config.maxCallDurationMs);

    const greeting = renderTemplate(call.config.greeting, call.variables);
    if (greeting.missing.length > 0) {
      this.log.warn({ code: 'CG_AGENT_TEMPLATE_VARIABLE', missing: greeting.missing }, 'greeting names variables the call does not have');
    }
    const sttOpening = this.openStt();
    this.enqueueWork(async () => {
      const cached = this.promptCached(greeting.text);
      this.events.emit({ type: 'greeting', text: greeting.text, cached });
      await this.speakPrompt(greeting.text, 0, 'greeting');
    });
    // Warm the fixed phrases so an apology still plays when the TTS provider is what failed; after the
    // greeting's first packet has left, since a cache miss means synthesis and encoding.
    this.enqueueWork(async () => {
      await yieldToEventLoop();
      for (const text of fixedPhrases(call.config)) {
        for (const piece of this.splitText(text)) this.promptFor(piece).catch(() => undefined);
      }
    });
    await sttOpening;
  }

  /** Ends the session (the call is over or the door is closing): releases STT, VAD, timers and requests. */
  async close(reason: EndReason = 'closed'): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.lifetime.abort();
    this.state = 'ended';
    const media = this.call.media;
    media.off('audio', this.onAudio);
    media.off('dtmf', this.onDtmf);
    media.off('talkspurt', this.onTalkspurt);
    media.off('drain', this.onDrain);
    this.call.off('ended', this.onCallEnded);
    this.currentAbort?.abort();
    if (this.current) this.finishCurrent(true, Math.max(0, this.current.queuedMs - media.queuedMs));
    this.clearResume();
    this.timers.close();
    this.keypad.close();
    await this.input.close();
    this.events.emit({ type: 'session-ended', reason });
    this.log.info({ reason, turns: this.turnIndex }, 'agent session ended');
    this.resolveEnded(reason);
  }

  // ─── Caller audio ──────────────────────────────────────────────────────────────────────────────

  private handleFrame(frame: Int16Array): void {
    if (!this.closed) this.input.frame(frame);
  }

  private speechStarted(onsetAt: number, now: number): void {
    this.clearNoInput();
    const agentTalking = this.isAgentTalking();
    if (agentTalking && !this.call.config.turn.bargeIn) {
      this.ignoringTurn = true;
      return;
    }
    this.turnIndex++;
    this.events.emit({ type: 'turn-started', turn: this.turnIndex, onsetAtMs: this.events.rel(onsetAt) }, now);
    this.input.streamTurn();
    if (agentTalking) this.bargeIn('speech', now);
  }

  private speechEnded(speechEndAt: number, now: number, forced: boolean): void {
    if (this.ignoringTurn) {
      this.ignoringTurn = false;
      // The words are dropped, but the engine must start the next turn clean.
      if (this.input.unfinalized) void this.finalizeStt();
      // The agent finished while the caller talked over it, and its end armed nothing (the caller was
      // talking): the silence after this turn must be counted, or the call sits mute until its limit.
      if (!this.isAgentTalking()) this.armNoInput();
      return;
    }
    const turn = this.turnIndex;
    this.events.emit({ type: 'turn-ended', turn, speechEndAtMs: this.events.rel(speechEndAt) }, now);
    this.events.expectMarks(speechEndAt, ['sttFinal', 'llmFirstToken', 'ttsFirstAudio', 'firstPacketOut']);
    this.events.emit({ type: 'latency', turn, mark: 'endOfTurn', sinceSpeechEndMs: now - speechEndAt }, now);
    if (forced) this.log.debug({ turn }, 'turn ended without its endpointing silence (maximum utterance, or the audio stopped)');
    const finalizing = this.finalizeStt();
    this.enqueueWork(async () => {
      const text = await finalizing;
      if (text === undefined || this.closed) return;
      this.events.mark('sttFinal');
      this.events.emit({ type: 'transcript', turn, text, final: true });
      if (text === '' && this.resume) {
        this.events.clearMarks();
        return this.resumeInterrupted();
      }
      const full = joinText([this.carriedText, text]);
      if (this.input.turns.speaking) {
        // The caller went on talking while the STT finished ("I'd like… a table for four"): answer
        // both parts together when this new turn ends, not the first half over their voice.
        this.carriedText = full;
        return;
      }
      if (full === '') {
        this.events.clearMarks();
        return this.armNoInput();
      }
      await this.respondTo(full, turn);
    });
  }

  /** The STT's final text for the turn; undefined after an STT failure (already reported and apologised for). */
  private async finalizeStt(): Promise<string | undefined> {
    try {
      return await this.input.finalize(this.lifetime.signal);
    } catch (err) {
      if (this.closed) return undefined;
      this.events.error(err, 'stt', 'CG_STT_FAILED');
      const turn = this.turnIndex;
      this.enqueueWork(() => this.turnFailed(turn));
      return undefined;
    }
  }

  // ─── DTMF ──────────────────────────────────────────────────────────────────────────────────────

  private handleDtmf(event: DtmfEvent): void {
    if (this.closed) return;
    this.events.emit({ type: 'dtmf', digit: event.digit });
    this.clearNoInput();
    if (this.isAgentTalking() && this.call.config.turn.bargeIn) {
      this.turnIndex++;
      this.bargeIn('dtmf', performance.now());
    }
    this.keypad.press(event.digit);
  }

  private submitDigits(digits: string): void {
    if (this.closed) return;
    this.clearResume();
    const turn = this.turnIndex;
    this.events.expectMarks(performance.now(), ['llmFirstToken', 'ttsFirstAudio', 'firstPacketOut']);
    this.enqueueWork(() => this.respondTo(dtmfUserText(digits), turn));
  }

  // ─── Barge-in ──────────────────────────────────────────────────────────────────────────────────

  private isAgentTalking(): boolean {
    return this.state === 'speaking' || this.call.media.queuedMs > 0;
  }

  /** The caller interrupted: silence the agent now, stop its providers, remember where it was. */
  private bargeIn(by: 'speech' | 'dtmf', now: number): void {
    const dropped = this.call.media.flush();
    this.input.echo.flushed(now);
    const reply = this.current;
    this.currentAbort?.abort();
    this.currentAbort = undefined;
    const playedMs = reply ? Math.max(0, reply.queuedMs - dropped) : 0;
    this.events.emit({ type: 'barge-in', turn: this.turnIndex, playedMs, by }, now);
    this.clearResume();
    if (reply) {
      this.finishCurrent(true, playedMs);
      if (by === 'speech') {
        const timer = setTimeout(() => this.falseInterruptionTimeout(), this.opts.falseInterruptionMs);
        this.resume = { reply, playedMs, timer, wordsHeard: false };
      }
    }
    this.state = 'idle';
  }

  private falseInterruptionTimeout(): void {
    const resume = this.resume;
    if (!resume || resume.wordsHeard) return;
    // The caller's turn is still open (talking, or pausing for less than the endpointing window), or
    // speech is starting: the turn's end decides (no words resumes, words are answered). An STT with no
    // interim words (pocketsphinx, OpenAI) has none to give before then, and a gap between syllables is
    // not the end of an interruption: resuming there talked over the caller and dropped their words.
    if (this.input.turns.speaking || this.input.turns.hearingSpeech) return;
    this.resumeInterrupted();
  }

  /** No words came of the interruption (a cough, a door): say the interrupted sentence again, and the rest. */
  private resumeInterrupted(): void {
    const resume = this.resume;
    if (!resume) return;
    this.clearResume();
    const point = resume.reply.resumePoint(resume.playedMs);
    if (point.remaining.length === 0) return this.armNoInput();
    // The interrupted reply went into history as cut off (unless nothing of it was heard); the resumed
    // one replaces that entry.
    const last = this.history.at(-1);
    if (last?.role === 'assistant' && last.content === resume.reply.spokenText(resume.playedMs)) this.history.pop();
    this.events.emit({ type: 'barge-in-resumed', turn: resume.reply.turn, fromText: point.remaining[0]! });
    const reply = new Reply(resume.reply.turn, point.before);
    reply.hangupAfter = resume.reply.hangupAfter;
    this.enqueueWork(() => this.speak(reply, textEvents(point.remaining)));
  }

  private clearResume(): void {
    if (this.resume) clearTimeout(this.resume.timer);
    this.resume = undefined;
  }

  // ─── Speaking ──────────────────────────────────────────────────────────────────────────────────

  private async respondTo(text: string, turn: number): Promise<void> {
    this.carriedText = '';
    this.clearResume();
    this.reprompts = 0;
    this.history.push({ role: 'user', content: text });
    const abort = new AbortController();
    const messages: ChatMessage[] = [{ role: 'system', content: this.call.config.systemPrompt }, ...this.history];
    let events: AsyncIterable<LlmEvent>;
    try {
      events = this.providers.llm.stream({ messages, signal: abort.signal });
    } catch (err) {
      this.events.error(err, 'llm', 'CG_LLM_FAILED');
      return this.turnFailed(turn);
    }
    await this.speak(new Reply(turn), withTimeouts(events, this.opts.llmFirstTokenTimeoutMs, this.opts.llmStallTimeoutMs, 'CG_LLM_TIMEOUT'), abort);
  }

  /**
   * Streams a reply: model text → pieces → TTS → the leg, piece by piece, so the first sentence plays
   * while the model is still writing the rest. Returns when everything is queued (not played).
   */
  private async speak(reply: Reply, events: AsyncIterable<LlmEvent>, abort = new AbortController()): Promise<void> {
    if (this.closed) return;
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
    if (failure && !this.closed) {
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
      this.afterReply(reply);
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
    this.input.echo.queued(frameLevels(pcm), startAt);
    reply.addAudio(piece, (pcm.length / PIPELINE_RATE) * 1000);
  }

  /** Speaks a fixed phrase from the prompt cache, sentence by sentence (so it can resume by sentence). */
  private async speakPrompt(text: string, turn: number, kind: 'greeting' | 'apology' | 'reprompt' | 'goodbye'): Promise<void> {
    if (this.closed) return;
    const reply = new Reply(turn);
    this.beginReply(reply, new AbortController());
    await this.appendPrompt(reply, text, kind);
    this.completeReply(reply);
  }

  /** Queues a cached phrase after what `reply` already queued; false when nothing could be queued. */
  private async appendPrompt(reply: Reply, text: string, kind: 'greeting' | 'apology' | 'reprompt' | 'goodbye' = 'apology'): Promise<boolean> {
    let queued = false;
    for (const pieceText of this.splitText(text)) {
      let prompt;
      try {
        prompt = await this.promptFor(pieceText);
      } catch (err) {
        this.events.error(err, kind === 'greeting' ? 'greeting' : 'tts', 'CG_TTS_FAILED');
        return queued;
      }
      if (this.closed || this.current !== reply) return queued;
      const piece = reply.addPiece(pieceText);
      this.events.emit({ type: 'agent-text', turn: reply.turn, text: pieceText });
      const startAt = performance.now() + this.call.media.queuedMs;
      if (this.call.media.playEncoded(prompt.encoded)) {
        this.input.echo.queued(prompt.levels, startAt);
        reply.addAudio(piece, prompt.encoded.durationMs);
        queued = true;
      }
    }
    return queued;
  }

  private beginReply(reply: Reply, abort: AbortController): void {
    if (this.current) this.finishCurrent(true, Math.max(0, this.current.queuedMs - this.call.media.queuedMs));
    this.current = reply;
    this.currentAbort = abort;
    this.state = 'speaking';
    this.clearNoInput();
  }

  /** The reply is over (played out, or cut off after `playedMs`): history keeps what the caller heard. */
  private finishCurrent(interrupted: boolean, playedMs?: number): void {
    const reply = this.current;
    if (!reply) return;
    this.current = undefined;
    this.currentAbort = undefined;
    const spokenText = interrupted ? reply.spokenText(playedMs ?? 0) : reply.fullText;
    if (spokenText) this.history.push({ role: 'assistant', content: spokenText });
    this.events.emit({ type: 'agent-done', turn: reply.turn, spokenText, interrupted });
  }

  private handleDrain(): void {
    const reply = this.current;
    if (!reply || this.closed) return;
    // The leg drained, but text may still be in synthesis: only a reply whose audio is all queued is done.
    if (!this.replyComplete.has(reply)) return;
    this.finishCurrent(false);
    this.afterReply(reply);
  }

  private afterReply(reply: Reply): void {
    this.state = 'idle';
    if (reply.hangupAfter) {
      void this.call.hangup(this.hangupReason ?? 'agent-goodbye');
      return;
    }
    if (!this.input.turns.speaking) this.armNoInput();
  }

  // ─── No input, time limit, goodbye ─────────────────────────────────────────────────────────────

  private armNoInput(): void {
    this.timers.armNoInput(this.call.config.turn.noInputMs);
  }

  private clearNoInput(): void {
    this.timers.clearNoInput();
  }

  private async noInput(): Promise<void> {
    if (this.closed || this.input.turns.speaking || this.isAgentTalking()) return;
    if (this.reprompts >= this.call.config.turn.maxReprompts) {
      return this.sayGoodbye(this.call.config.goodbye.reply, 'no-input');
    }
    this.reprompts++;
    this.events.emit({ type: 'reprompt', count: this.reprompts });
    await this.speakPrompt(this.call.config.reprompt, this.turnIndex, 'reprompt');
  }

  /**
   * The gateway is shutting down: whatever is being said is cut, the tenant's shutdown message is said
   * and the agent hangs up (reason `shutdown`). Returns at once; `ended` settles when it is over.
   */
  shutdown(): void {
    if (this.closed) return;
    this.enqueueWork(async () => {
      this.currentAbort?.abort();
      this.call.media.flush();
      this.input.echo.reset();
      this.finishCurrent(true, 0);
      await this.sayGoodbye(this.call.config.shutdownMessage, 'shutdown');
    });
  }

  private async timeLimit(): Promise<void> {
    if (this.closed) return;
    this.currentAbort?.abort();
    this.call.media.flush();
    this.input.echo.reset();
    this.finishCurrent(true, 0);
    await this.sayGoodbye(this.call.config.timeLimitMessage, 'max-duration');
  }

  /**
   * A provider failure left the caller's turn unanswered: apologise and listen again, or, when that keeps
   * happening, say so and end the call rather than apologise forever.
   */
  private async turnFailed(turn: number): Promise<void> {
    if (++this.failedTurns >= this.opts.maxFailedTurns) return this.sayGoodbye(this.call.config.unavailableMessage, 'provider-failure');
    await this.speakPrompt(this.call.config.apology, turn, 'apology');
  }

  private async sayGoodbye(text: string, reason: EndReason): Promise<void> {
    this.hangupReason = reason;
    const reply = new Reply(this.turnIndex);
    reply.hangupAfter = true;
    this.beginReply(reply, new AbortController());
    const ok = await this.appendPrompt(reply, text, 'goodbye');
    if (!ok) return void this.call.hangup(reason);
    this.completeReply(reply);
    // Hang up even if the drain never comes (a stalled leg).
    const guard = setTimeout(() => void this.call.hangup(reason), this.opts.goodbyeMaxMs);
    void this.endedPromise.then(() => clearTimeout(guard));
  }

  // ─── Helpers ───────────────────────────────────────────────────────────────────────────────────

  private openStt(): Promise<void> {
    const config = this.call.config;
    const phrases = [...config.intents.flatMap((i) => i.phrases), ...config.goodbye.phrases];
    return this.input.open(() => this.providers.stt.open({ language: config.language, phrases, logger: this.log }));
  }

  private splitText(text: string): string[] {
    return promptPieces(text, this.opts.splitter);
  }

  private promptCached(text: string): boolean {
    return this.splitText(text).every((t) => this.prompts.has(this.promptKey(t)));
  }

  private promptFor(text: string) {
    return this.prompts.get(this.promptKey(text), this.providers.tts);
  }

  private promptKey(text: string) {
    const c = this.call.config;
    return { tenantId: c.tenantId, text, voice: c.voice, codec: this.call.media.codec.name };
  }

  /** Runs `task` after the work before it; a failure is logged, never left unhandled. */
  private enqueueWork(task: () => Promise<void> | void): void {
    this.work = this.work
      .then(async () => {
        if (!this.closed) await task();
      })
      .catch((err: unknown) => this.events.error(err, 'session', 'CG_INTERNAL'));
  }
}
