import { EventEmitter } from 'node:events';
import { GoogleGenAI, Modality, type LiveServerMessage, type Session } from '@google/genai';
import { CallgateError } from '../../errors.js';
import { rootLogger } from '../../log.js';
import { Resampler } from '../../media/Resampler.js';
import { base64FromPcm, pcmFromBase64 } from './pcm16.js';
import type { ChatMessage, RealtimeEvents, RealtimeProvider, RealtimeSession, RealtimeSessionOptions } from '../types.js';

/**
 * Google's Gemini Live API through the official `@google/genai` SDK (`ai.live.connect`), protocol:
 * https://ai.google.dev/api/live. The endpoint follows `baseUrl` (`GEMINI_BASE_URL`: `http://host` →
 * `ws://host/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent`), so a local
 * server speaking the protocol stands in for Google in tests.
 *
 * Our turn-taking drives it with manual activity detection: a turn's audio (16 kHz PCM, the model's
 * own input rate) is framed by activityStart/activityEnd, and the model answers each activityEnd. Its
 * audio is 24 kHz PCM, resampled here. Barge-in: an activityStart while it speaks interrupts it; Gemini
 * has no truncate, so the model is told in its context how much of the answer the caller heard.
 */
export interface GeminiLiveOptions {
  readonly baseUrl: string | undefined;
  /** Per tenant (`providerKeys.gemini`), else GEMINI_API_KEY. Never logged. */
  readonly apiKey: string;
  readonly model: string;
  /** No setupComplete within this: CG_REALTIME_UNAVAILABLE. */
  readonly connectTimeoutMs: number;
}

export const defaultGeminiLiveOptions = {
  baseUrl: undefined,
  model: 'gemini-live-2.5-flash-preview',
  /** 3 s, as for OpenAI: the greeting plays meanwhile; beyond it the cascade answers. */
  connectTimeoutMs: 3000,
} as const satisfies Partial<GeminiLiveOptions>;

const OUTPUT_RATE = 24000;
/** Audio sent per message: 100 ms. */
const SEND_SAMPLES = 1600;

export class GeminiLive implements RealtimeProvider {
  readonly name = 'gemini';
  readonly options: GeminiLiveOptions;

  constructor(options: Partial<GeminiLiveOptions> & Pick<GeminiLiveOptions, 'apiKey'>) {
    this.options = { ...defaultGeminiLiveOptions, ...options };
  }

  async open(o: RealtimeSessionOptions): Promise<RealtimeSession> {
    const ai = new GoogleGenAI({ apiKey: this.options.apiKey, ...(this.options.baseUrl ? { httpOptions: { baseUrl: this.options.baseUrl } } : {}) });
    const session = new GeminiLiveSession(o);
    let timer: NodeJS.Timeout | undefined;
    try {
      const live = await Promise.race([
        ai.live.connect({
          model: this.options.model,
          config: {
            responseModalities: [Modality.AUDIO],
            systemInstruction: o.instructions,
            ...(o.voice ? { speechConfig: { voiceConfig: { prebuiltVoiceConfig: { voiceName: o.voice } } } } : {}),
            tools: o.tools.length > 0 ? [{ functionDeclarations: o.tools.map((t) => ({ name: t.name, description: t.description, parametersJsonSchema: t.parameters })) }] : [],
            inputAudioTranscription: {},
            outputAudioTranscription: {},
            // Our VAD decides turns (docs/realtime.md); 'server' leaves it to the model's.
            realtimeInputConfig: { automaticActivityDetection: { disabled: o.turnDetection === 'ours' } },
          },
          callbacks: {
            onmessage: (m) => session.onMessage(m),
            onerror: (e) => session.onError(e),
            onclose: () => session.onClose(),
          },
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no session within ${this.options.connectTimeoutMs} ms`)), this.options.connectTimeoutMs);
        }),
      ]);
      session.attach(live);
    } catch (err) {
      await session.close();
      throw new CallgateError('CG_REALTIME_UNAVAILABLE', err instanceof Error ? err.message : String(err));
    } finally {
      clearTimeout(timer);
    }
    return session;
  }
}

class GeminiLiveSession extends EventEmitter<RealtimeEvents> implements RealtimeSession {
  private live: Session | undefined;
  private readonly down = new Resampler(OUTPUT_RATE, 16000);
  private pending: Int16Array[] = [];
  private pendingSamples = 0;
  /** An activity (a caller turn) is open: its audio is being sent. */
  private inActivity = false;
  /** The model's current answer: an id of ours (Gemini has none) and its words so far. */
  private turn: { id: string; text: string } | undefined;
  private turns = 0;
  private callerText = '';
  /** `speech-started` was said for the caller's current turn. */
  private callerHeard = false;
  private readonly toolNames = new Map<string, string>();
  /** The model owes an answer (an activity ended, or a tool result went in): respond() need not ask. */
  private answerOwed = false;
  private closing = false;
  private readonly log;

  constructor(private readonly o: RealtimeSessionOptions) {
    super();
    this.log = (o.logger ?? rootLogger).child({ provider: 'gemini-live' });
  }

  attach(live: Session): void {
    this.live = live;
    const turns = this.o.history.flatMap((m) => contentOf(m));
    if (turns.length > 0) live.sendClientContent({ turns, turnComplete: false });
  }

  onMessage(m: LiveServerMessage): void {
    const content = m.serverContent;
    if (m.toolCall?.functionCalls) {
      this.finishCallerText();
      for (const call of m.toolCall.functionCalls) {
        const id = call.id ?? `call_${++this.turns}`;
        this.toolNames.set(id, call.name ?? '');
        this.emit('tool-call', { id, name: call.name ?? '', arguments: JSON.stringify(call.args ?? {}) });
      }
      this.emit('response-done', { status: 'completed' });
    }
    if (content?.inputTranscription?.text) {
      // Its own detection says nothing when speech starts unless it is still generating; its words of
      // the caller are the first sign then (audio it already sent may still be playing here).
      this.callerSpeaking();
      this.callerText += content.inputTranscription.text;
      this.emit('caller-text', this.callerText, false);
    }
    if (content?.inputTranscription?.finished) this.finishCallerText();
    for (const part of content?.modelTurn?.parts ?? []) {
      const data = part.inlineData?.data;
      if (!data) continue;
      this.finishCallerText();
      this.turn ??= { id: `turn_${++this.turns}`, text: '' };
      this.emit('audio', this.down.process(pcmFromBase64(data)), this.turn.id);
    }
    if (content?.outputTranscription?.text) {
      this.turn ??= { id: `turn_${++this.turns}`, text: '' };
      this.turn.text += content.outputTranscription.text;
      this.emit('agent-text', content.outputTranscription.text, this.turn.id, false);
    }
    if (content?.interrupted) {
      this.turn = undefined;
      // With its own activity detection, an interruption is the model hearing the caller over itself.
      this.callerSpeaking();
      this.emit('response-done', { status: 'cancelled' });
    }
    if (content?.turnComplete) {
      const turn = this.turn;
      this.turn = undefined;
      if (turn) this.emit('agent-text', turn.text.trim(), turn.id, true);
      const u = m.usageMetadata;
      this.emit('response-done', { status: 'completed', ...(u ? { usage: { inputTokens: u.promptTokenCount ?? 0, outputTokens: u.responseTokenCount ?? 0, inputAudioTokens: 0, outputAudioTokens: 0 } } : {}) });
    }
  }

  onError(e: unknown): void {
    const failure = new CallgateError('CG_REALTIME_FAILED', String((e as { message?: unknown }).message ?? e).slice(0, 300));
    if (this.listenerCount('error') > 0) this.emit('error', failure);
    else this.log.debug({ err: failure.message }, 'realtime error before the session was taken');
  }

  onClose(): void {
    if (!this.closing && this.live) this.emit('closed');
  }

  appendAudio(pcm16k: Int16Array): void {
    // With the model's own activity detection the audio streams as it comes; it frames the turns.
    if (!this.inActivity && this.o.turnDetection === 'ours') {
      this.inActivity = true;
      this.callerText = '';
      this.live?.sendRealtimeInput({ activityStart: {} });
    }
    this.pending.push(pcm16k);
    this.pendingSamples += pcm16k.length;
    if (this.pendingSamples >= SEND_SAMPLES) this.flushAudio();
  }

  private flushAudio(): void {
    if (this.pendingSamples === 0 || !this.live) return;
    const all = new Int16Array(this.pendingSamples);
    let at = 0;
    for (const p of this.pending) {
      all.set(p, at);
      at += p.length;
    }
    this.pending = [];
    this.pendingSamples = 0;
    this.live.sendRealtimeInput({ audio: { data: base64FromPcm(all), mimeType: 'audio/pcm;rate=16000' } });
  }

  commit(): void {
    this.flushAudio();
    if (!this.inActivity) return;
    this.inActivity = false;
    this.answerOwed = true;
    this.live?.sendRealtimeInput({ activityEnd: {} });
  }

  /** The model answers each activityEnd and tool result by itself; otherwise a completed client turn asks it. */
  respond(instructions?: string): void {
    if (instructions) this.live?.sendClientContent({ turns: [{ role: 'user', parts: [{ text: instructions }] }], turnComplete: true });
    else if (!this.answerOwed) this.live?.sendClientContent({ turns: [], turnComplete: true });
    this.answerOwed = false;
  }

  /** An activity starting while it speaks interrupts it (the caller's turn follows). */
  cancel(): void {
    // The model's own detection already interrupted it (an activityStart would be refused then).
    if (this.inActivity || this.o.turnDetection === 'model') return;
    this.inActivity = true;
    this.callerText = '';
    this.live?.sendRealtimeInput({ activityStart: {} });
  }

  /** Gemini keeps no item to cut: it is told in its context what the caller heard. */
  truncate(_itemId: string, audioEndMs: number): void {
    const seconds = (Math.max(0, audioEndMs) / 1000).toFixed(1);
    this.live?.sendClientContent({ turns: [{ role: 'user', parts: [{ text: `(I interrupted you: I heard only the first ${seconds} s of your last answer.)` }] }], turnComplete: false });
  }

  toolResult(callId: string, output: string): void {
    let response: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(output);
      response = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : { output: parsed };
    } catch {
      response = { output };
    }
    this.answerOwed = true;
    this.live?.sendToolResponse({ functionResponses: [{ id: callId, name: this.toolNames.get(callId) ?? '', response }] });
  }

  addMessage(role: 'assistant' | 'user', text: string): void {
    this.live?.sendClientContent({ turns: contentOf({ role, content: text }), turnComplete: false });
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.live?.close();
  }

  /** The model's own detection heard the caller (once per caller turn): `speech-started`. */
  private callerSpeaking(): void {
    if (this.o.turnDetection !== 'model' || this.callerHeard) return;
    this.callerHeard = true;
    this.emit('speech-started');
  }

  private finishCallerText(): void {
    this.callerHeard = false;
    if (!this.callerText) return;
    const text = this.callerText.trim();
    this.callerText = '';
    this.emit('caller-text', text, true);
  }
}

function contentOf(m: ChatMessage): { role: string; parts: { text: string }[] }[] {
  if ((m.role !== 'user' && m.role !== 'assistant') || !m.content) return [];
  return [{ role: m.role === 'assistant' ? 'model' : 'user', parts: [{ text: m.content }] }];
}
