import { EventEmitter } from 'node:events';
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import { CallgateError } from '../../errors.js';
import { Resampler } from '../../media/Resampler.js';
import { base64FromPcm, pcmFromBase64 } from './pcm16.js';
import { rootLogger } from '../../log.js';
import type { ChatMessage, RealtimeEvents, RealtimeProvider, RealtimeSession, RealtimeSessionOptions, RealtimeUsage } from '../types.js';

/**
 * OpenAI's Realtime API through the official `openai` SDK's WebSocket client (`openai/realtime/ws`),
 * GA protocol: https://platform.openai.com/docs/api-reference/realtime-client-events. The endpoint
 * follows the client's `baseURL` (`OPENAI_BASE_URL`: `https://host/v1` → `wss://host/v1/realtime?model=…`),
 * so a local server speaking the protocol stands in for OpenAI in tests.
 * Audio is PCM16 at 24 kHz both ways (`audio/pcm`); ours is 16 kHz, resampled here, streamed as it comes.
 */
export interface OpenAiRealtimeOptions {
  readonly baseURL: string | undefined;
  /** Per tenant, else OPENAI_API_KEY. Never logged. */
  readonly apiKey: string;
  readonly model: string;
  /** No session.updated within this after connecting: CG_REALTIME_UNAVAILABLE. */
  readonly connectTimeoutMs: number;
  /** Certificates (PEM) to trust for the endpoint besides the system's: a private gateway's CA, or a test server. */
  readonly ca: string | undefined;
}

export const defaultOpenAiRealtimeOptions = {
  baseURL: undefined,
  model: 'gpt-realtime',
  ca: undefined,
  /** 3 s: the caller is hearing the greeting meanwhile (from our prompt cache); beyond this, the cascade. */
  connectTimeoutMs: 3000,
} as const satisfies Partial<OpenAiRealtimeOptions>;

const MODEL_RATE = 24000;
/** Audio sent per append: 100 ms (fewer, larger messages; the model reads audio in such steps anyway). */
const APPEND_SAMPLES_16K = 1600;

export class OpenAiRealtime implements RealtimeProvider {
  readonly name = 'openai';
  readonly options: OpenAiRealtimeOptions;

  constructor(options: Partial<OpenAiRealtimeOptions> & Pick<OpenAiRealtimeOptions, 'apiKey'>) {
    this.options = { ...defaultOpenAiRealtimeOptions, ...options };
  }

  async open(o: RealtimeSessionOptions): Promise<RealtimeSession> {
    const client = new OpenAI({ apiKey: this.options.apiKey, ...(this.options.baseURL ? { baseURL: this.options.baseURL } : {}) });
    let rt: OpenAIRealtimeWS;
    try {
      const { ca } = this.options;
      rt = await OpenAIRealtimeWS.create(client, { model: this.options.model, ...(ca ? { options: { ca } } : {}) });
    } catch (err) {
      throw new CallgateError('CG_REALTIME_UNAVAILABLE', String(err));
    }
    const session = new OpenAiRealtimeSession(rt, o);
    await session.ready(this.options.connectTimeoutMs);
    return session;
  }
}

class OpenAiRealtimeSession extends EventEmitter<RealtimeEvents> implements RealtimeSession {
  private readonly up = new Resampler(16000, MODEL_RATE);
  private readonly down = new Resampler(MODEL_RATE, 16000);
  private pending: Int16Array[] = [];
  private pendingSamples = 0;
  private closing = false;
  private readonly log;

  constructor(
    private readonly rt: OpenAIRealtimeWS,
    private readonly o: RealtimeSessionOptions,
  ) {
    super();
    this.log = (o.logger ?? rootLogger).child({ provider: 'openai-realtime' });
    rt.on('response.output_audio.delta', (e) => this.emit('audio', this.down.process(pcmFromBase64(e.delta)), e.item_id));
    rt.on('response.output_audio_transcript.delta', (e) => this.emit('agent-text', e.delta, e.item_id, false));
    rt.on('response.output_audio_transcript.done', (e) => this.emit('agent-text', e.transcript, e.item_id, true));
    rt.on('conversation.item.input_audio_transcription.delta', (e) => this.emit('caller-text', e.delta ?? '', false));
    rt.on('conversation.item.input_audio_transcription.completed', (e) => this.emit('caller-text', e.transcript, true));
    rt.on('response.function_call_arguments.done', (e) => this.emit('tool-call', { id: e.call_id, name: e.name, arguments: e.arguments }));
    rt.on('input_audio_buffer.speech_started', () => this.emit('speech-started'));
    rt.on('input_audio_buffer.speech_stopped', () => this.emit('speech-stopped'));
    rt.on('response.done', (e) => {
      const u = e.response.usage;
      const usage: RealtimeUsage | undefined = u
        ? { inputTokens: u.input_tokens ?? 0, outputTokens: u.output_tokens ?? 0, inputAudioTokens: u.input_token_details?.audio_tokens ?? 0, outputAudioTokens: u.output_token_details?.audio_tokens ?? 0 }
        : undefined;
      this.emit('response-done', { status: e.response.status ?? 'completed', ...(usage ? { usage } : {}) });
    });
    rt.on('error', (err) => {
      // The SDK reports both server `error` events and socket failures here; a cancel of a response
      // already done is routine, not a failure.
      const message = err.error?.message ?? err.message;
      if (/no active response|not found/i.test(message)) return this.log.debug({ message }, 'realtime: ignored');
      const failure = new CallgateError('CG_REALTIME_FAILED', message.slice(0, 300));
      // An 'error' event nobody listens to would throw out of the socket's handler and end the process;
      // before the session is handed over, ready() reports the failure instead.
      if (this.listenerCount('error') > 0) this.emit('error', failure);
      else this.log.debug({ err: failure.message }, 'realtime error before the session was taken');
    });
    rt.socket.on('close', () => {
      if (!this.closing) this.emit('closed');
    });
  }

  /** Resolves once the session is configured (the server's session.updated), or rejects. */
  async ready(timeoutMs: number): Promise<void> {
    const { rt, o } = this;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new CallgateError('CG_REALTIME_UNAVAILABLE', `no session within ${timeoutMs} ms`)), timeoutMs);
      const fail = (err: CallgateError): void => {
        clearTimeout(timer);
        void this.close();
        reject(err);
      };
      rt.socket.once('error', (err) => fail(new CallgateError('CG_REALTIME_UNAVAILABLE', err.message)));
      rt.socket.once('close', () => fail(new CallgateError('CG_REALTIME_UNAVAILABLE', 'the connection closed before the session started')));
      rt.once('session.updated', () => {
        clearTimeout(timer);
        resolve();
      });
      rt.socket.once('open', () => {
        rt.send({
          type: 'session.update',
          session: {
            type: 'realtime',
            instructions: o.instructions,
            output_modalities: ['audio'],
            audio: {
              input: {
                format: { type: 'audio/pcm', rate: MODEL_RATE },
                transcription: { model: 'gpt-4o-mini-transcribe', language: o.language.split('-')[0] },
                // The model's VAD: it answers each turn by itself and stops its answer when the caller
                // speaks over it; truncating what was not heard stays ours (the client knows what played).
                turn_detection: o.turnDetection === 'model' ? { type: 'server_vad', create_response: true, interrupt_response: true } : null,
              },
              output: { format: { type: 'audio/pcm', rate: MODEL_RATE }, ...(o.voice ? { voice: o.voice } : {}) },
            },
            tools: o.tools.map((t) => ({ type: 'function' as const, name: t.name, description: t.description, parameters: t.parameters })),
          },
        });
        for (const m of o.history) this.addHistory(m);
      });
    });
  }

  appendAudio(pcm16k: Int16Array): void {
    this.pending.push(pcm16k);
    this.pendingSamples += pcm16k.length;
    if (this.pendingSamples >= APPEND_SAMPLES_16K) this.flushAudio();
  }

  private flushAudio(): void {
    if (this.pendingSamples === 0 || this.closing) return;
    const all = new Int16Array(this.pendingSamples);
    let at = 0;
    for (const p of this.pending) {
      all.set(p, at);
      at += p.length;
    }
    this.pending = [];
    this.pendingSamples = 0;
    this.rt.send({ type: 'input_audio_buffer.append', audio: base64FromPcm(this.up.process(all)) });
  }

  commit(): void {
    this.flushAudio();
    this.rt.send({ type: 'input_audio_buffer.commit' });
  }

  respond(instructions?: string): void {
    this.rt.send({ type: 'response.create', ...(instructions ? { response: { instructions } } : {}) });
  }

  cancel(): void {
    this.rt.send({ type: 'response.cancel' });
  }

  truncate(itemId: string, audioEndMs: number): void {
    this.rt.send({ type: 'conversation.item.truncate', item_id: itemId, content_index: 0, audio_end_ms: Math.max(0, Math.round(audioEndMs)) });
  }

  toolResult(callId: string, output: string): void {
    this.rt.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: callId, output } });
  }

  addMessage(role: 'assistant' | 'user', text: string): void {
    this.addHistory({ role, content: text });
  }

  private addHistory(m: ChatMessage): void {
    if (m.role === 'user') this.rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: m.content ?? '' }] } });
    else if (m.role === 'assistant' && m.content) this.rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: m.content }] } });
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.rt.close();
  }
}
