import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { EnergyVad } from './EnergyVad.js';
import type { ConversationItem, ScriptedAnswer } from './OpenAiRealtimeServer.js';

/**
 * A local server speaking enough of Gemini's Live API (BidiGenerateContent JSON messages) to drive
 * sessions through the official `@google/genai` SDK in tests: setup, realtimeInput audio framed by
 * activityStart/activityEnd (manual activity detection) with a scripted input transcription, answers
 * as 24 kHz audio with output transcription, function calls and tool responses, clientContent turns,
 * interruption by an activityStart while it speaks; or, when the setup leaves automatic activity
 * detection on, turns framed by its own (level) detection; drops and refusals on demand.
 */
export interface GeminiServerOptions {
  readonly transcribe: (audioMs: number, index: number) => string;
  readonly answer: (conversation: readonly ConversationItem[]) => ScriptedAnswer;
  readonly chunkMs: number;
  readonly chunkIntervalMs: number;
}

interface SessionState {
  setup: Record<string, unknown> | undefined;
  model: string;
  conversation: ConversationItem[];
  interrupts: number;
  appendedMs: number;
  activityStarts: number;
  /** Speech its own activity detection heard start. */
  speechStarts: number;
  socket: WebSocket;
}

const RATE_OUT = 24000;

export class GeminiLiveServer {
  readonly sessions: SessionState[] = [];
  refusing = false;
  private readonly options: GeminiServerOptions;
  private nextId = 0;

  private constructor(
    private readonly wss: WebSocketServer,
    options: Partial<GeminiServerOptions>,
  ) {
    this.options = { transcribe: () => 'hello', answer: () => ({ text: 'Hello there.' }), chunkMs: 100, chunkIntervalMs: 0, ...options };
    wss.on('connection', (socket) => this.accept(socket));
  }

  static async start(options: Partial<GeminiServerOptions> = {}): Promise<GeminiLiveServer> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    return new GeminiLiveServer(wss, options);
  }

  /** For GEMINI_BASE_URL: the SDK turns http into ws and adds /ws/google.ai.generativelanguage…. */
  get baseUrl(): string {
    return `http://127.0.0.1:${(this.wss.address() as AddressInfo).port}`;
  }

  dropAll(): void {
    for (const s of this.sessions) s.socket.terminate();
  }

  async stop(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private accept(socket: WebSocket): void {
    if (this.refusing) return void socket.close(1011, 'refused');
    const state: SessionState = { setup: undefined, model: '', conversation: [], interrupts: 0, appendedMs: 0, activityStarts: 0, speechStarts: 0, socket };
    let vad: EnergyVad | undefined;
    this.sessions.push(state);
    let audioMs = 0;
    let turns = 0;
    let speaking: { cancelled: boolean } | undefined;
    const send = (m: Record<string, unknown>): void => {
      if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(m));
    };
    const answer = (): void => {
      const r = { cancelled: false };
      speaking = r;
      void this.speak(state, send, r).finally(() => {
        if (speaking === r) speaking = undefined;
      });
    };
    socket.on('message', (data) => {
      let m: Record<string, unknown>;
      try {
        m = JSON.parse(data.toString()) as Record<string, unknown>;
      } catch {
        return socket.close(1007, 'not JSON');
      }
      if (m['setup']) {
        state.setup = m['setup'] as Record<string, unknown>;
        state.model = String(state.setup['model'] ?? '');
        return send({ setupComplete: {} });
      }
      const input = m['realtimeInput'] as { audio?: { data: string }; activityStart?: object; activityEnd?: object } | undefined;
      const interrupt = (): void => {
        if (!speaking) return;
        speaking.cancelled = true;
        state.interrupts++;
        send({ serverContent: { interrupted: true } });
      };
      const endTurn = (): void => {
        const text = this.options.transcribe(audioMs, turns++);
        audioMs = 0;
        state.conversation.push({ id: `item_${++this.nextId}`, type: 'message', role: 'user', text });
        send({ serverContent: { inputTranscription: { text, finished: true } } });
        answer();
      };
      if (input?.activityStart) {
        state.activityStarts++;
        audioMs = 0;
        interrupt();
      }
      if (input?.audio) {
        const bytes = Buffer.from(input.audio.data, 'base64');
        const ms = (bytes.length / 2 / 16000) * 1000;
        audioMs += ms;
        state.appendedMs += ms;
        if (automaticActivity(state.setup)) {
          vad ??= new EnergyVad();
          const signal = vad.feed(new Int16Array(new Uint8Array(bytes).buffer, 0, bytes.length >> 1), 16000);
          if (signal?.type === 'start') {
            state.speechStarts++;
            interrupt();
          } else if (signal?.type === 'stop') endTurn();
        }
      }
      if (input?.activityEnd) endTurn();
      const client = m['clientContent'] as { turns?: { role: string; parts: { text?: string }[] }[]; turnComplete?: boolean } | undefined;
      if (client) {
        for (const t of client.turns ?? []) {
          state.conversation.push({ id: `item_${++this.nextId}`, type: 'message', role: t.role === 'model' ? 'assistant' : 'user', text: t.parts.map((p) => p.text ?? '').join('') });
        }
        if (client.turnComplete) answer();
      }
      const tool = m['toolResponse'] as { functionResponses?: { id: string; response: unknown }[] } | undefined;
      if (tool) {
        for (const r of tool.functionResponses ?? []) state.conversation.push({ id: `item_${++this.nextId}`, type: 'function_call_output', text: JSON.stringify(r.response), callId: r.id });
        answer();
      }
    });
  }

  private async speak(state: SessionState, send: (m: Record<string, unknown>) => void, r: { cancelled: boolean }): Promise<void> {
    const a = this.options.answer(state.conversation);
    if (a.tool) {
      const id = `call_${++this.nextId}`;
      state.conversation.push({ id, type: 'function_call', text: a.tool.arguments, callId: id, name: a.tool.name });
      return send({ toolCall: { functionCalls: [{ id, name: a.tool.name, args: JSON.parse(a.tool.arguments) as unknown }] } });
    }
    const text = a.text ?? '';
    const audio = a.audio ?? sine(440, Math.max(300, text.length * 60));
    state.conversation.push({ id: `item_${++this.nextId}`, type: 'message', role: 'assistant', text });
    const chunk = Math.round((RATE_OUT * this.options.chunkMs) / 1000);
    const chunks = Math.ceil(audio.length / chunk);
    const words = text.split(' ');
    for (let i = 0; i < chunks; i++) {
      if (r.cancelled || state.socket.readyState !== state.socket.OPEN) return;
      const part = audio.subarray(i * chunk, (i + 1) * chunk);
      const bytes = Buffer.alloc(part.length * 2);
      for (let s = 0; s < part.length; s++) bytes.writeInt16LE(part[s]!, s * 2);
      send({ serverContent: { modelTurn: { parts: [{ inlineData: { mimeType: 'audio/pcm;rate=24000', data: bytes.toString('base64') } }] } } });
      const upTo = Math.ceil(((i + 1) / chunks) * words.length);
      const from = Math.ceil((i / chunks) * words.length);
      if (upTo > from) send({ serverContent: { outputTranscription: { text: `${from > 0 ? ' ' : ''}${words.slice(from, upTo).join(' ')}` } } });
      if (this.options.chunkIntervalMs > 0) await new Promise((res) => setTimeout(res, this.options.chunkIntervalMs));
      else await new Promise((res) => setImmediate(res));
    }
    if (r.cancelled) return;
    send({ serverContent: { generationComplete: true } });
    send({ serverContent: { turnComplete: true }, usageMetadata: { promptTokenCount: 10, responseTokenCount: 20, totalTokenCount: 30 } });
  }
}

function sine(hz: number, ms: number): Int16Array {
  const n = Math.round((RATE_OUT * ms) / 1000);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(8000 * Math.sin((2 * Math.PI * hz * i) / RATE_OUT));
  return out;
}

/** The setup left the model's own activity detection on (the API's default). */
function automaticActivity(setup: Record<string, unknown> | undefined): boolean {
  const config = setup?.['realtimeInputConfig'] as { automaticActivityDetection?: { disabled?: boolean } } | undefined;
  return config?.automaticActivityDetection?.disabled !== true;
}
