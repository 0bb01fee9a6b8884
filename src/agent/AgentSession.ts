import { RealtimeLink } from './realtime/RealtimeLink.js';
import { RealtimeTurnStt } from './realtime/RealtimeTurnStt.js';
import { ModelTurns } from './realtime/ModelTurns.js';
import { END_CALL_TOOL, type SttStream } from '../providers/types.js';
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { callLogger } from '../log.js';
import type { DtmfEvent } from '../media/types.js';
import { dtmfUserText, type AgentProviders, type ChatMessage } from '../providers/types.js';
import { defaultAgentSessionOptions, type AgentSessionOptions } from './AgentSessionOptions.js';
import { BackchannelLexicon, backchannelsFor } from './backchannels.js';
import { BargeIn } from './BargeIn.js';
import { FixedSilence, TextEndOfTurn, type EndOfTurn } from './EndOfTurn.js';
import { defaultInterruptionJudgeOptions, InterruptionJudge } from './InterruptionJudge.js';
import { CallerInput } from './CallerInput.js';
import { CallPrompts } from './CallPrompts.js';
import type { CallTools } from './CallTools.js';
import type { CallSession } from './CallSession.js';
import { CallTimers } from './CallTimers.js';
import { yieldToEventLoop } from './deadlines.js';
import type { AgentEvent, EndReason } from './events.js';
import { fixedPhrases } from './fixedPhrases.js';
import { Keypad } from './Keypad.js';
import type { PromptCache } from './PromptCache.js';
import { ReplyPipeline } from './ReplyPipeline.js';
import { SessionEvents } from './SessionEvents.js';
import { renderTemplate } from '../util/template.js';
import { TurnTaking } from './TurnTaking.js';
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
  /** What the model may do besides talk (src/tools builds it from the tenant); none: end_call only. */
  readonly tools?: CallTools;
  /**
   * In a room (src/rooms): what the model is given for the caller's words ("Ana: what time is it?"),
   * or undefined when this agent should stay silent (not addressed); the words join its history either way.
   */
  readonly turnGate?: (text: string) => Promise<string | undefined>;
}

/**
 * The conversation on one call: greets, listens, answers and can be interrupted. Owns its STT stream,
 * VAD, timers and in-flight provider requests, and releases them all when the call ends. Knows nothing
 * of the door the call came through: audio in and out is the CallSession's media.
 */
export class AgentSession extends EventEmitter<AgentSessionEvents> {
  readonly call: CallSession;
  private readonly providers: AgentProviders;
  private readonly turnGate: AgentSessionDeps['turnGate'];
  /** The tenant's speech-to-speech model, while the call uses it. */
  private readonly realtime: RealtimeLink | undefined;
  /** The model's own voice detection takes the turns (`realtimeTurnDetection: model`). */
  private readonly modelTurns: ModelTurns | undefined;
  private readonly opts: AgentSessionOptions;
  private readonly log: Logger;
  private readonly input: CallerInput;
  private readonly events: SessionEvents;
  private readonly keypad: Keypad;
  private readonly timers: CallTimers;
  private readonly replies: ReplyPipeline;
  private readonly bargeIn: BargeIn;
  private readonly turnTaking: TurnTaking;

  private reprompts = 0;
  /** Serialises work that must not overlap: turn ends, replies, prompts. */
  private work: Promise<void> = Promise.resolve();
  private endedPromise: Promise<EndReason>;
  private resolveEnded!: (reason: EndReason) => void;
  private closed = false;
  /** Stops the echo canceller's reference (what the caller's phone plays). */
  private stopReference: (() => void) | undefined;
  /** Aborted by close(): ends waits that would otherwise outlive the session. */
  private readonly lifetime = new AbortController();

  private readonly onAudio = (frame: Int16Array): void => this.handleFrame(frame);
  private readonly onDtmf = (event: DtmfEvent): void => this.handleDtmf(event);
  private readonly onTalkspurt = (): void => this.events.mark('firstPacketOut');
  private readonly onDrain = (): void => this.replies.drained();
  private readonly onCallEnded = (reason: EndReason): void => void this.close(reason);

  constructor(deps: AgentSessionDeps) {
    super();
    this.call = deps.call;
    this.providers = deps.providers;
    this.turnGate = deps.turnGate;
    this.opts = { ...defaultAgentSessionOptions, ...deps.options };
    this.log = callLogger({ callId: deps.call.callId, tenant: deps.call.config.tenantId }, deps.logger);
    const { turn, echo, prerollMs, sttFinalTimeoutMs, lookAtPauseMs, voicing, echoCanceller } = this.opts;
    const turnConfig = deps.call.config.turn;
    const endpointing = { ...turn, endpointingMs: turnConfig.endpointingMs };
    // Looking at a pause serves adaptive endpointing only: with a fixed window it would split the STT's work.
    const lookAt = turnConfig.endpointing === 'adaptive' ? lookAtPauseMs : 0;
    const inputOptions = { turn: endpointing, echo, prerollMs, sttFinalTimeoutMs, lookAtPauseMs: lookAt, voicing, echoCanceller, endOfTurn: this.endOfTurn(), log: this.log };
    this.input = new CallerInput(deps.vad, inputOptions, {
      speechStarted: (onsetAt, now) => this.turnTaking.speechStarted(onsetAt, now),
      speechEnded: (speechEndAt, now, forced, speechMs) => this.turnTaking.speechEnded(speechEndAt, now, forced, speechMs),
      turnFrame: (speech, voice, now) => this.turnTaking.turnFrame(speech, voice, now),
      sttResult: (r) => {
        this.bargeIn.heard(r.text);
        this.turnTaking.heard(r.text, performance.now());
        if (!r.final) this.events.emit({ type: 'transcript', turn: this.turnTaking.turn, text: r.text, final: false });
      },
      sttError: (err, code) => this.events.error(err, 'stt', code),
    });
    const backchannels = new BackchannelLexicon(turnConfig.backchannels ?? backchannelsFor(deps.call.config.language));
    const judging = { ...defaultInterruptionJudgeOptions, ...this.opts.interruption };
    this.endedPromise = new Promise((resolve) => (this.resolveEnded = resolve));
    this.events = new SessionEvents((event) => this.emit('event', event), this.log, () => this.turnTaking.turn);
    this.keypad = new Keypad(this.opts.dtmfInterDigitMs, (digits) => this.submitDigits(digits));
    this.timers = new CallTimers(
      () => this.enqueueWork(() => this.noInput()),
      () => this.enqueueWork(() => this.timeLimit()),
    );
    // A speech-to-speech model, when the tenant chose one: it opens now, while the greeting plays.
    const realtime = deps.providers.realtime;
    if (realtime) {
      const greeting = renderTemplate(deps.call.config.greeting, deps.call.variables).text;
      this.realtime = new RealtimeLink(
        realtime,
        {
          instructions: renderTemplate(deps.call.config.systemPrompt, deps.call.variables).text,
          voice: deps.call.config.providers.realtimeVoice,
          language: deps.call.config.language,
          tools: deps.tools?.specs ?? [END_CALL_TOOL],
          turnDetection: deps.call.config.providers.realtimeTurnDetection ?? 'ours',
          logger: this.log,
        },
        // The greeting is ours (the prompt cache): the model is told it said it.
        () => (this.replies.history.length > 0 ? this.replies.history : [{ role: 'assistant', content: greeting }]),
        this.log,
      );
    }
    this.replies = new ReplyPipeline({
      realtime: this.realtime,
      call: this.call,
      providers: this.providers,
      prompts: new CallPrompts(deps.prompts, this.call, this.providers.tts, this.opts.splitter),
      opts: this.opts,
      tools: deps.tools,
      log: this.log,
      echo: this.input.echo,
      events: this.events,
      ended: this.endedPromise,
      host: {
        isClosed: () => this.closed,
        latestTurn: () => this.turnTaking.turn,
        replyStarted: () => this.timers.clearNoInput(),
        replyPlayed: () => {
          if (!this.input.turns.speaking) this.armNoInput();
        },
      },
    });
    this.bargeIn = new BargeIn(this.replies, this.events, this.opts.falseInterruptionMs, {
      callerTurnOpen: () => this.input.turns.speaking || this.input.turns.hearingSpeech,
      latestTurn: () => this.turnTaking.turn,
      listen: () => this.armNoInput(),
      enqueue: (task) => this.enqueueWork(task),
    });
    this.turnTaking = new TurnTaking(this.input, this.bargeIn, this.events, this.lifetime.signal, this.log, {
      isClosed: () => this.closed,
      agentTalking: () => this.replies.talking,
      bargeInMode: () => this.call.config.turn.bargeIn,
      judge: (onsetFramesAgo, carried) => new InterruptionJudge(judging, backchannels, onsetFramesAgo, carried),
      duck: (on) => {
        this.call.media.duck(on ? judging.duckDb : 0);
        this.input.echo.ducked(on ? judging.duckDb : 0, performance.now());
      },
      hold: (on) => {
        this.call.media.hold(on);
        if (on) this.input.echo.held(performance.now());
        else this.input.echo.resumed(performance.now());
      },
      didNotCatch: (turn) => this.didNotCatch(turn),
      respond: (text, turn) => this.respondTo(text, turn),
      failTurn: (turn) => this.replies.failTurn(turn),
      listen: () => this.armNoInput(),
      quiet: () => this.timers.clearNoInput(),
      enqueue: (task) => this.enqueueWork(task),
    }, this.opts.didNotCatchMinSpeechMs);
    if (this.realtime && deps.call.config.providers.realtimeTurnDetection === 'model') {
      this.modelTurns = new ModelTurns(this.realtime, this.events, {
        speechStarted: (now) => this.turnTaking.modelHeardSpeech(now),
        answer: (turn) => this.enqueueWork(() => this.replies.respondUnasked(turn)),
        callerSaid: (text) => {
          this.events.emit({ type: 'transcript', turn: this.turnTaking.turn, text, final: true });
          this.replies.callerSaid(text);
        },
        ourTurnOpen: () => this.input.turns.speaking,
      });
    }
  }

  /** How this call's turns end: the tenant's fixed silence, or adaptive (the words decide). */
  private endOfTurn(): EndOfTurn {
    const { endpointing, endpointingMs, maxEndpointingMs } = this.call.config.turn;
    if (endpointing === 'fixed') return new FixedSilence(endpointingMs);
    const { finishedMs, noWordsMs } = this.opts.endOfTurn;
    return new TextEndOfTurn({
      finishedMs: Math.min(finishedMs, endpointingMs),
      unknownMs: endpointingMs,
      noWordsMs: Math.min(Math.max(noWordsMs, endpointingMs), maxEndpointingMs),
      unfinishedMs: Math.max(maxEndpointingMs, endpointingMs),
    });
  }

  /** Resolves with the reason once the session has ended and released everything. */
  get ended(): Promise<EndReason> {
    return this.endedPromise;
  }

  /** Ms since the session started, on its events' clock. */
  get elapsedMs(): number {
    return performance.now() - this.events.startedAt;
  }

  /** The conversation so far (system prompt excluded), as the model sees it. */
  get transcript(): readonly ChatMessage[] {
    return this.replies.history;
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
    if (this.opts.echoCanceller !== false) this.stopReference = media.sentAudio?.((frame) => this.input.reference(frame));
    call.on('ended', this.onCallEnded);
    if (call.ended) return void this.close(call.ended);
    this.events.emit({ type: 'session-started' });
    // The model connects while the greeting plays; a failure leaves the cascade answering (logged).
    void this.realtime?.start();
    this.timers.startTimeLimit(call.config.maxCallDurationMs);

    const greeting = renderTemplate(call.config.greeting, call.variables);
    if (greeting.missing.length > 0) {
      this.log.warn({ code: 'CG_AGENT_TEMPLATE_VARIABLE', missing: greeting.missing }, 'greeting names variables the call does not have');
    }
    const sttOpening = this.openStt();
    this.enqueueWork(async () => {
      const cached = this.replies.prompts.cached(greeting.text);
      this.events.emit({ type: 'greeting', text: greeting.text, cached });
      await this.replies.speakPrompt(greeting.text, 0, 'greeting');
    });
    // Warm the fixed phrases so an apology still plays when the TTS provider is what failed; after the
    // greeting's first packet has left, since a cache miss means synthesis and encoding.
    this.enqueueWork(async () => {
      await yieldToEventLoop();
      for (const text of fixedPhrases(call.config)) this.replies.prompts.warm(text);
    });
    await sttOpening;
  }

  /** Ends the session (the call is over or the door is closing): releases STT, VAD, timers and requests. */
  async close(reason: EndReason = 'closed'): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.lifetime.abort();
    const media = this.call.media;
    media.off('audio', this.onAudio);
    media.off('dtmf', this.onDtmf);
    media.off('talkspurt', this.onTalkspurt);
    media.off('drain', this.onDrain);
    this.stopReference?.();
    this.call.off('ended', this.onCallEnded);
    this.replies.close();
    this.bargeIn.clear();
    this.turnTaking.close();
    this.timers.close();
    this.keypad.close();
    await this.input.close();
    this.modelTurns?.close();
    const link = this.realtime;
    if (link) {
      await link.close();
      const { provider, audioInMs, audioOutMs, inputTokens, outputTokens, responses, reconnects } = link.totals;
      this.events.emit({ type: 'realtime-usage', provider, audioInMs: Math.round(audioInMs), audioOutMs: Math.round(audioOutMs), inputTokens, outputTokens, responses, reconnects, fellBack: link.state === 'down' });
    }
    this.events.emit({ type: 'session-ended', reason });
    this.log.info({ reason, turns: this.turnTaking.turn }, 'agent session ended');
    this.resolveEnded(reason);
  }

  // ─── Caller audio ──────────────────────────────────────────────────────────────────────────────

  private handleFrame(frame: Int16Array): void {
    if (this.closed) return;
    if (this.modelTurns?.listening) this.realtime?.appendAudio(this.input.cleaned(frame));
    else this.input.frame(frame);
  }

  // ─── DTMF ──────────────────────────────────────────────────────────────────────────────────────

  private handleDtmf(event: DtmfEvent): void {
    if (this.closed) return;
    this.events.emit({ type: 'dtmf', digit: event.digit });
    this.clearNoInput();
    if (this.replies.talking && this.call.config.turn.bargeIn !== 'off') {
      this.turnTaking.keyedTurn();
      this.bargeIn.interrupt('dtmf', performance.now());
    }
    this.keypad.press(event.digit);
  }

  private submitDigits(digits: string): void {
    if (this.closed) return;
    this.bargeIn.clear();
    const turn = this.turnTaking.turn;
    this.events.expectMarks(performance.now(), ['llmFirstToken', 'ttsFirstAudio', 'firstPacketOut']);
    this.enqueueWork(() => this.turnTaking.answer(dtmfUserText(digits), turn));
  }

  // ─── Speaking ──────────────────────────────────────────────────────────────────────────────────

  private async respondTo(text: string, turn: number): Promise<void> {
    this.bargeIn.clear();
    this.reprompts = 0;
    if (this.turnGate) {
      const said = await this.turnGate(text);
      if (said === undefined) {
        this.note(text);
        this.armNoInput();
        return;
      }
      text = said;
    }
    await this.replies.respond(text, turn);
  }

  /** Words the agent heard but does not answer (in a room: another participant's), kept for the model. */
  note(text: string): void {
    if (!this.closed && text.trim() !== '') this.replies.history.push({ role: 'user', content: text });
  }

  // ─── No input, time limit, goodbye ─────────────────────────────────────────────────────────────

  private armNoInput(): void {
    this.timers.armNoInput(this.call.config.turn.noInputMs);
  }

  private clearNoInput(): void {
    this.timers.clearNoInput();
  }

  private async noInput(): Promise<void> {
    if (this.closed || this.input.turns.speaking || this.replies.talking) return;
    if (this.reprompts >= this.call.config.turn.maxReprompts) {
      return this.replies.goodbye(this.call.config.goodbye.reply, 'no-input');
    }
    this.reprompts++;
    this.events.emit({ type: 'reprompt', count: this.reprompts });
    await this.replies.speakPrompt(this.call.config.reprompt, this.turnTaking.turn, 'reprompt');
  }

  /**
   * The gateway is shutting down: whatever is being said is cut, the tenant's shutdown message is said
   * and the agent hangs up (reason `shutdown`). Returns at once; `ended` settles when it is over.
   */
  shutdown(): void {
    if (this.closed) return;
    this.enqueueWork(async () => {
      this.replies.stopAll();
      await this.replies.goodbye(this.call.config.shutdownMessage, 'shutdown');
    });
  }

  /** The caller spoke and no words could be made out: ask again (a reprompt, and counted as one). */
  private async didNotCatch(turn: number): Promise<void> {
    if (this.closed || this.input.turns.speaking) return;
    if (this.reprompts >= this.call.config.turn.maxReprompts) {
      return this.replies.goodbye(this.call.config.goodbye.reply, 'no-input');
    }
    this.reprompts++;
    this.events.emit({ type: 'reprompt', count: this.reprompts });
    await this.replies.speakPrompt(this.call.config.didNotCatch, turn, 'reprompt');
  }

  private async timeLimit(): Promise<void> {
    if (this.closed) return;
    this.replies.stopAll();
    await this.replies.goodbye(this.call.config.timeLimitMessage, 'max-duration');
  }

  // ─── Helpers ───────────────────────────────────────────────────────────────────────────────────

  private openStt(): Promise<void> {
    const config = this.call.config;
    const phrases = [...config.intents.flatMap((i) => i.phrases), ...config.goodbye.phrases];
    const cascade = (): Promise<SttStream> => this.providers.stt.open({ language: config.language, phrases, logger: this.log });
    const link = this.realtime;
    // With a speech-to-speech model the turns go to it; its recogniser stands in only when it is down.
    if (link) return this.input.open(async () => new RealtimeTurnStt(link, cascade, this.log));
    return this.input.open(cascade);
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
