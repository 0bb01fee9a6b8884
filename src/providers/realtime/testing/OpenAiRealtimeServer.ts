import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { EnergyVad } from './EnergyVad.js';

/**
 * The official SDK always connects with wss:// (it rewrites the base URL's scheme), so the server
 * speaks TLS with a certificate made here for 127.0.0.1 (openssl, once per process); clients trust it
 * through the provider's `ca` option.
 */
let certificate: { key: string; cert: string } | undefined;
function selfSigned(): { key: string; cert: string } {
  if (certificate) return certificate;
  const dir = mkdtempSync(join(tmpdir(), 'callgate-realtime-tls-'));
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  certificate = { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
  return certificate;
}

/**
 * A local server speaking enough of OpenAI's Realtime protocol (GA events) to drive sessions through
 * the official SDK in tests: session.update, audio appends and commits (with a scripted transcription),
 * response.create streaming a scripted answer as audio deltas (24 kHz PCM16) with its transcript, or a
 * function call; response.cancel; conversation.item.truncate (recorded). Failures on demand: refuse new
 * sessions, drop the connection mid-call.
 */
export interface ScriptedAnswer {
  readonly text?: string;
  /** 24 kHz PCM16 to speak; a 440 Hz tone as long as the text would take when absent. */
  readonly audio?: Int16Array;
  /** A function call instead of speech. */
  readonly tool?: { readonly name: string; readonly arguments: string };
}

export interface RealtimeServerOptions {
  /** What the caller said, for each commit (by the number of commits so far). */
  readonly transcribe: (audioMs: number, index: number) => string;
  /** The answer to a response.create, given the conversation so far. */
  readonly answer: (conversation: readonly ConversationItem[]) => ScriptedAnswer;
  /** Audio per delta message. */
  readonly chunkMs: number;
  /** Pause between audio deltas (0: as fast as the socket takes them, a zero-latency model). */
  readonly chunkIntervalMs: number;
}

export interface ConversationItem {
  readonly id: string;
  readonly type: 'message' | 'function_call' | 'function_call_output';
  readonly role?: 'user' | 'assistant' | 'system';
  text: string;
  readonly callId?: string;
  readonly name?: string;
}

const RATE = 24000;

export class OpenAiRealtimeServer {
  readonly sessions: { model: string; session: Record<string, unknown> | undefined; conversation: ConversationItem[]; truncations: { itemId: string; audioEndMs: number }[]; cancels: number; appendedMs: number; speechStarts: number; socket: WebSocket }[] = [];
  /** Refuse the next sessions (the socket is closed at once). */
  refusing = false;
  private readonly options: RealtimeServerOptions;
  private nextId = 0;

  private constructor(
    private readonly https: Server,
    private readonly wss: WebSocketServer,
    /** The certificate to trust (the provider's `ca`). */
    readonly ca: string,
    options: Partial<RealtimeServerOptions>,
  ) {
    this.options = {
      transcribe: () => 'hello',
      answer: () => ({ text: 'Hello there.' }),
      chunkMs: 100,
      chunkIntervalMs: 0,
      ...options,
    };
    wss.on('connection', (socket, req) => this.accept(socket, new URL(req.url ?? '/', 'http://x').searchParams.get('model') ?? ''));
  }

  static async start(options: Partial<RealtimeServerOptions> = {}): Promise<OpenAiRealtimeServer> {
    const tls = selfSigned();
    const https = createServer(tls);
    const wss = new WebSocketServer({ server: https, path: '/v1/realtime' });
    https.listen(0, '127.0.0.1');
    await once(https, 'listening');
    return new OpenAiRealtimeServer(https, wss, tls.cert, options);
  }

  /** For OPENAI_BASE_URL: the SDK connects to wss://<host>/v1/realtime?model=…. */
  get baseURL(): string {
    return `https://127.0.0.1:${(this.https.address() as AddressInfo).port}/v1`;
  }

  /** Drops every open connection, as a network failure would. */
  dropAll(): void {
    for (const s of this.sessions) s.socket.terminate();
  }

  async stop(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.https.closeAllConnections();
    await new Promise<void>((resolve) => this.https.close(() => resolve()));
  }

  private id(prefix: string): string {
    return `${prefix}_${++this.nextId}`;
  }

  private accept(socket: WebSocket, model: string): void {
    if (this.refusing) return void socket.close(1011, 'refused');
    const state = { model, session: undefined as Record<string, unknown> | undefined, conversation: [] as ConversationItem[], truncations: [] as { itemId: string; audioEndMs: number }[], cancels: 0, appendedMs: 0, speechStarts: 0, socket };
    this.sessions.push(state);
    let audioMs = 0;
    let commits = 0;
    let responding: { cancelled: boolean } | undefined;
    const send = (e: Record<string, unknown>): void => {
      if (socket.readyState === socket.OPEN) socket.send(JSON.stringify({ event_id: this.id('event'), ...e }));
    };
    let vad: EnergyVad | undefined;
    let speechItem = '';
    const commit = (id: string): void => {
      const text = this.options.transcribe(audioMs, commits++);
      audioMs = 0;
      state.conversation.push({ id, type: 'message', role: 'user', text });
      send({ type: 'input_audio_buffer.committed', item_id: id, previous_item_id: null });
      send({ type: 'conversation.item.input_audio_transcription.completed', item_id: id, content_index: 0, transcript: text });
    };
    const startResponse = (): void => {
      const r = { cancelled: false };
      responding = r;
      void this.respond(state, send, r).finally(() => {
        if (responding === r) responding = undefined;
      });
    };
    send({ type: 'session.created', session: { type: 'realtime', model } });
    socket.on('message', (data) => {
      let e: Record<string, unknown>;
      try {
        e = JSON.parse(data.toString()) as Record<string, unknown>;
      } catch {
        return send({ type: 'error', error: { type: 'invalid_request_error', message: 'not JSON' } });
      }
      switch (e['type']) {
        case 'session.update':
          state.session = e['session'] as Record<string, unknown>;
          return send({ type: 'session.updated', session: state.session });
        case 'input_audio_buffer.append': {
          const bytes = Buffer.from(String(e['audio']), 'base64');
          const ms = (bytes.length / 2 / RATE) * 1000;
          audioMs += ms;
          state.appendedMs += ms;
          const vadConfig = serverVad(state.session);
          if (!vadConfig) return;
          vad ??= new EnergyVad();
          const signal = vad.feed(new Int16Array(new Uint8Array(bytes).buffer, 0, bytes.length >> 1), RATE);
          if (signal?.type === 'start') {
            state.speechStarts++;
            speechItem = this.id('item');
            send({ type: 'input_audio_buffer.speech_started', audio_start_ms: signal.atMs, item_id: speechItem });
            // interrupt_response: the model stops talking over the caller by itself.
            if (responding && vadConfig.interrupt_response !== false) responding.cancelled = true;
          } else if (signal?.type === 'stop') {
            send({ type: 'input_audio_buffer.speech_stopped', audio_end_ms: signal.atMs, item_id: speechItem });
            commit(speechItem);
            if (vadConfig.create_response !== false) startResponse();
          }
          return;
        }
        case 'input_audio_buffer.commit':
          return commit(this.id('item'));
        case 'conversation.item.create': {
          const item = e['item'] as { type: string; role?: 'user' | 'assistant'; content?: { text?: string }[]; call_id?: string; output?: string };
          const id = this.id('item');
          if (item.type === 'function_call_output') state.conversation.push({ id, type: 'function_call_output', text: item.output ?? '', ...(item.call_id ? { callId: item.call_id } : {}) });
          else state.conversation.push({ id, type: 'message', ...(item.role ? { role: item.role } : {}), text: (item.content ?? []).map((c) => c.text ?? '').join('') });
          return send({ type: 'conversation.item.added', item: { id, ...item } });
        }
        case 'response.create':
          return startResponse();
        case 'response.cancel':
          state.cancels++;
          if (!responding) return send({ type: 'error', error: { type: 'invalid_request_error', code: 'response_cancel_not_active', message: 'Cancellation failed: no active response found' } });
          responding.cancelled = true;
          return;
        case 'conversation.item.truncate': {
          const itemId = String(e['item_id']);
          const audioEndMs = Number(e['audio_end_ms']);
          state.truncations.push({ itemId, audioEndMs });
          const item = state.conversation.find((i) => i.id === itemId);
          // The model's memory of what it said is cut to what was heard (roughly: by time).
          if (item) item.text = `${item.text.slice(0, Math.round((audioEndMs / 1000) * 15))}…`;
          return send({ type: 'conversation.item.truncated', item_id: itemId, content_index: 0, audio_end_ms: audioEndMs });
        }
        default:
          return send({ type: 'error', error: { type: 'invalid_request_error', message: `unknown event ${String(e['type'])}` } });
      }
    });
  }

  private async respond(state: (typeof this.sessions)[number], send: (e: Record<string, unknown>) => void, r: { cancelled: boolean }): Promise<void> {
    const responseId = this.id('resp');
    const answer = this.options.answer(state.conversation);
    send({ type: 'response.created', response: { id: responseId, status: 'in_progress' } });
    const usage = { input_tokens: 10, output_tokens: 20, input_token_details: { audio_tokens: 5 }, output_token_details: { audio_tokens: 15 } };
    if (answer.tool) {
      const id = this.id('item');
      const callId = this.id('call');
      state.conversation.push({ id, type: 'function_call', text: answer.tool.arguments, callId, name: answer.tool.name });
      send({ type: 'response.output_item.added', response_id: responseId, output_index: 0, item: { id, type: 'function_call', call_id: callId, name: answer.tool.name } });
      send({ type: 'response.function_call_arguments.done', response_id: responseId, item_id: id, output_index: 0, call_id: callId, name: answer.tool.name, arguments: answer.tool.arguments });
      return send({ type: 'response.done', response: { id: responseId, status: 'completed', usage } });
    }
    const text = answer.text ?? '';
    const audio = answer.audio ?? sine(440, Math.max(300, text.length * 60));
    const itemId = this.id('item');
    const item: ConversationItem = { id: itemId, type: 'message', role: 'assistant', text };
    state.conversation.push(item);
    send({ type: 'response.output_item.added', response_id: responseId, output_index: 0, item: { id: itemId, type: 'message', role: 'assistant' } });
    const chunk = Math.round((RATE * this.options.chunkMs) / 1000);
    const words = text.split(' ');
    const chunks = Math.ceil(audio.length / chunk);
    for (let i = 0; i < chunks; i++) {
      if (r.cancelled || state.socket.readyState !== state.socket.OPEN) break;
      const part = audio.subarray(i * chunk, (i + 1) * chunk);
      const bytes = Buffer.alloc(part.length * 2);
      for (let s = 0; s < part.length; s++) bytes.writeInt16LE(part[s]!, s * 2);
      send({ type: 'response.output_audio.delta', response_id: responseId, item_id: itemId, output_index: 0, content_index: 0, delta: bytes.toString('base64') });
      // The words spread over the audio, as the model's transcript deltas come.
      const upTo = Math.ceil(((i + 1) / chunks) * words.length);
      const from = Math.ceil((i / chunks) * words.length);
      if (upTo > from) send({ type: 'response.output_audio_transcript.delta', response_id: responseId, item_id: itemId, output_index: 0, content_index: 0, delta: `${from > 0 ? ' ' : ''}${words.slice(from, upTo).join(' ')}` });
      if (this.options.chunkIntervalMs > 0) await new Promise((res) => setTimeout(res, this.options.chunkIntervalMs));
      else await new Promise((res) => setImmediate(res));
    }
    if (r.cancelled) return send({ type: 'response.done', response: { id: responseId, status: 'cancelled', usage } });
    send({ type: 'response.output_audio.done', response_id: responseId, item_id: itemId, output_index: 0, content_index: 0 });
    send({ type: 'response.output_audio_transcript.done', response_id: responseId, item_id: itemId, output_index: 0, content_index: 0, transcript: text });
    send({ type: 'response.done', response: { id: responseId, status: 'completed', usage } });
  }
}

function sine(hz: number, ms: number): Int16Array {
  const n = Math.round((RATE * ms) / 1000);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(8000 * Math.sin((2 * Math.PI * hz * i) / RATE));
  return out;
}

/** The session's `server_vad` settings, when it asked for the model's own turn detection. */
function serverVad(session: Record<string, unknown> | undefined): { interrupt_response?: boolean; create_response?: boolean } | undefined {
  const audio = session?.['audio'] as { input?: { turn_detection?: { type?: string; interrupt_response?: boolean; create_response?: boolean } | null } } | undefined;
  const td = audio?.input?.turn_detection;
  return td?.type === 'server_vad' ? td : undefined;
}
