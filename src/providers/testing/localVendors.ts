import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { WebSocketServer, type RawData } from 'ws';
import { linearToMulaw } from '../../media/codecs/g711.js';
import { resample } from '../../media/Resampler.js';
import { concatSamples } from '../../media/signal.js';
import { PIPELINE_RATE } from '../../media/types.js';
import { FliteTtsProvider } from '../flite/FliteTtsProvider.js';
import { PocketsphinxStt } from '../pocketsphinx/index.js';
import type { ChatMessage, SttStream, TtsProvider } from '../types.js';

/**
 * Loopback stand-ins for the three cloud vendors, for tests and demos without network or keys. Each
 * speaks the vendor's documented wire protocol (the same shapes the unit tests' inline servers use) so
 * the real SDKs talk to them unchanged, and each is backed by an offline engine so what goes over the
 * wire is real: flite synthesises the audio, pocketsphinx recognises the caller, and the "model"
 * answers with whatever `respond` says. Every route can be switched to a fault, to drive fallbacks.
 */

/** What a route does with the next requests: answer, accept and never send a byte, or fail with a status. */
export type HttpFault = 'ok' | 'stall' | { readonly status: number; readonly headers?: Readonly<Record<string, string>> };

/** One request as the server saw it: which key came with it and what it asked for. */
export interface SeenRequest {
  readonly route: string;
  readonly key: string | undefined;
  readonly path: string;
  readonly body: Record<string, unknown>;
}

interface CommonOptions {
  /** Keys accepted (401 for others); any non-empty key when undefined. */
  readonly keys?: readonly string[];
  /** Synthesises the audio; a flite provider owned (and closed) by the server when undefined. */
  readonly tts?: TtsProvider;
  /** The engine's voice for every request (vendor voices mean nothing to flite). */
  readonly voice?: string;
}

// ─── OpenAI-compatible ─────────────────────────────────────────────────────────────────────────────

export interface LocalLlmReply {
  readonly text: string;
  /** Ends the answer with an `end_call` tool call, as a model does after saying goodbye. */
  readonly hangup?: boolean;
  /** Tool calls after the text, streamed as OpenAI does: the name first, the arguments in pieces. */
  readonly toolCalls?: readonly { readonly name: string; readonly arguments: string }[];
}

export interface LocalOpenAiOptions extends CommonOptions {
  /** The "model": the reply to the conversation so far (system prompt first, caller's turn last), and the request's tools. */
  readonly respond: (messages: readonly ChatMessage[], request: { readonly tools: readonly { readonly name: string }[] }) => LocalLlmReply | Promise<LocalLlmReply>;
  /** Told when a streamed answer's last byte (`[DONE]`) is written: for timing the gateway's turnaround. */
  readonly onDone?: (at: number) => void;
  /** Words per SSE chunk and the pause between chunks, so the client really reads a stream. */
  readonly wordsPerChunk?: number;
  readonly chunkDelayMs?: number;
}

export interface LocalOpenAi {
  /** For the SDK's `baseURL` (ends in /v1). */
  readonly baseURL: string;
  /** Requests by route; `inFlight` counts those not yet answered or dropped (stalled ones included). */
  readonly requests: { chat: number; speech: number; inFlight: number };
  readonly seen: SeenRequest[];
  setFault(route: 'chat' | 'speech', fault: HttpFault): void;
  close(): Promise<void>;
}

/** POST /v1/chat/completions (SSE when `stream: true`) and POST /v1/audio/speech (`response_format: pcm`). */
export async function startLocalOpenAi(options: LocalOpenAiOptions): Promise<LocalOpenAi> {
  const faults: Record<'chat' | 'speech', HttpFault> = { chat: 'ok', speech: 'ok' };
  const requests = { chat: 0, speech: 0, inFlight: 0 };
  const seen: SeenRequest[] = [];
  const engine = ownedTts(options);
  const wordsPerChunk = options.wordsPerChunk ?? 2;
  const chunkDelayMs = options.chunkDelayMs ?? 15;
  const openAiError = (status: number, message: string): unknown => ({ error: { message, type: status >= 500 ? 'server_error' : 'invalid_request_error', code: null } });

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => fail(res, 500, openAiError(500, String(err))));
  });
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req);
    const path = new URL(req.url ?? '/', 'http://local').pathname;
    const route = req.method === 'POST' && path === '/v1/chat/completions' ? 'chat' : req.method === 'POST' && path === '/v1/audio/speech' ? 'speech' : undefined;
    if (!route) return fail(res, 404, openAiError(404, `no route ${req.method} ${path}`));
    const key = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    seen.push({ route, key, path, body });
    requests[route]++;
    inFlight(requests, res);
    if (!keyAccepted(options.keys, key)) return fail(res, 401, { error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', code: 'invalid_api_key' } });
    if (applyFault(res, faults[route], openAiError)) return;
    if (route === 'chat') return chat(body, res);
    if (body['response_format'] !== 'pcm') return fail(res, 400, openAiError(400, 'only response_format "pcm" is served here'));
    // pcm is 24 kHz s16le mono; flite speaks at 16 kHz.
    const pcm = resample(await engine.speak(String(body['input'] ?? ''), options.voice), PIPELINE_RATE, 24_000);
    await streamAudio(res, le16(pcm), 'audio/pcm', 4800);
  }

  async function chat(body: Record<string, unknown>, res: ServerResponse): Promise<void> {
    const messages = (Array.isArray(body['messages']) ? body['messages'] : []).map(toChatMessage);
    const tools = (Array.isArray(body['tools']) ? body['tools'] : []).map((t) => ({ name: String((t as { function?: { name?: unknown } }).function?.name ?? '') }));
    const reply = await options.respond(messages, { tools });
    const model = String(body['model'] ?? 'local');
    const id = `chatcmpl-local-${requests.chat}`;
    const chunk = (delta: Record<string, unknown>, finish: string | null = null): Record<string, unknown> => ({
      id,
      object: 'chat.completion.chunk',
      created: Math.floor(Date.now() / 1000),
      model,
      choices: [{ index: 0, delta, finish_reason: finish }],
    });
    const toolCall = { index: 0, id: 'call_local_end', type: 'function', function: { name: 'end_call', arguments: '{}' } };
    if (body['stream'] !== true) {
      const message = { role: 'assistant', content: reply.text, ...(reply.hangup ? { tool_calls: [{ id: toolCall.id, type: 'function', function: toolCall.function }] } : {}) };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id, object: 'chat.completion', created: 0, model, choices: [{ index: 0, message, finish_reason: reply.hangup ? 'tool_calls' : 'stop' }] }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const send = (data: unknown): boolean => res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
    send(chunk({ role: 'assistant', content: '' }));
    const words = reply.text.split(/(?<=\s)/);
    for (let i = 0; i < words.length; i += wordsPerChunk) {
      // A barge-in closes the connection: stop writing, like a vendor cancelling the generation.
      if (res.destroyed) return;
      send(chunk({ content: words.slice(i, i + wordsPerChunk).join('') }));
      await delay(chunkDelayMs);
    }
    if (res.destroyed) return;
    const calls = reply.toolCalls ?? [];
    calls.forEach((call, i) => {
      const cut = Math.ceil(call.arguments.length / 2);
      send(chunk({ tool_calls: [{ index: i, id: `call_local_${requests.chat}_${i}`, type: 'function', function: { name: call.name, arguments: call.arguments.slice(0, cut) } }] }));
      send(chunk({ tool_calls: [{ index: i, function: { arguments: call.arguments.slice(cut) } }] }));
    });
    if (reply.hangup) send(chunk({ tool_calls: [{ ...toolCall, index: calls.length }] }));
    send(chunk({}, reply.hangup || calls.length > 0 ? 'tool_calls' : 'stop'));
    res.end('data: [DONE]\n\n');
    options.onDone?.(performance.now());
  }

  const baseURL = `${await listen(server)}/v1`;
  return {
    baseURL,
    requests,
    seen,
    setFault: (route, fault) => void (faults[route] = fault),
    close: closeOnce(async () => {
      await closeHttp(server);
      await engine.close();
    }),
  };
}

// ─── ElevenLabs ────────────────────────────────────────────────────────────────────────────────────

export interface LocalElevenLabs {
  /** For the SDK's `baseUrl` (the host root, no /v1). */
  readonly baseUrl: string;
  /** `inFlight` counts requests not yet answered or dropped (stalled ones included). */
  readonly requests: { stream: number; inFlight: number };
  readonly seen: SeenRequest[];
  setFault(fault: HttpFault): void;
  close(): Promise<void>;
}

/** POST /v1/text-to-speech/{voice_id}/stream?output_format=pcm_16000|pcm_22050|pcm_24000|ulaw_8000, `xi-api-key`. */
export async function startLocalElevenLabs(options: CommonOptions = {}): Promise<LocalElevenLabs> {
  let fault: HttpFault = 'ok';
  const requests = { stream: 0, inFlight: 0 };
  const seen: SeenRequest[] = [];
  const engine = ownedTts(options);
  const elevenError = (status: number, message: string): unknown => ({ detail: { status: status >= 500 ? 'internal_error' : 'invalid_request', message } });

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => fail(res, 500, elevenError(500, String(err))));
  });
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req);
    const url = new URL(req.url ?? '/', 'http://local');
    const voice = /^\/v1\/text-to-speech\/([^/]+)\/stream$/.exec(url.pathname)?.[1];
    if (req.method !== 'POST' || voice === undefined) return fail(res, 404, { detail: 'Not Found' });
    const key = headerValue(req.headers['xi-api-key']);
    seen.push({ route: 'stream', key, path: url.pathname + url.search, body });
    requests.stream++;
    inFlight(requests, res);
    if (!keyAccepted(options.keys, key)) return fail(res, 401, { detail: { status: 'invalid_api_key', message: 'Invalid API key' } });
    if (applyFault(res, fault, elevenError)) return;
    const format = url.searchParams.get('output_format') ?? 'mp3_44100_128';
    const rate = Number(/^(?:pcm|ulaw)_(\d+)$/.exec(format)?.[1]);
    if (!['pcm_16000', 'pcm_22050', 'pcm_24000', 'ulaw_8000'].includes(format)) return fail(res, 422, elevenError(422, `output_format ${format} is not served here`));
    const pcm = resample(await engine.speak(String(body['text'] ?? ''), options.voice), PIPELINE_RATE, rate);
    const bytes = format === 'ulaw_8000' ? Buffer.from(Uint8Array.from(pcm, (s) => linearToMulaw(s))) : le16(pcm);
    // ~100 ms per chunk, as the vendor streams while it generates.
    const bytesPer100ms = (format === 'ulaw_8000' ? 1 : 2) * (rate / 10);
    await streamAudio(res, bytes, format === 'ulaw_8000' ? 'audio/basic' : 'audio/pcm', bytesPer100ms);
  }

  return {
    baseUrl: await listen(server),
    requests,
    seen,
    setFault: (f) => void (fault = f),
    close: closeOnce(async () => {
      await closeHttp(server);
      await engine.close();
    }),
  };
}

// ─── Deepgram live ─────────────────────────────────────────────────────────────────────────────────

/** 'refuse': 401 at the handshake. 'drop': the next audio message closes the socket with 1011 NET-0001. */
export type DeepgramFault = 'ok' | 'refuse' | 'drop';

export interface LocalDeepgramOptions {
  readonly keys?: readonly string[];
  /** Phrases to recognise against when a connection sends no keyterm/keywords; the general model when none. */
  readonly phrases?: readonly string[];
}

export interface LocalDeepgram {
  /** For the SDK's `baseUrl` (ws://127.0.0.1:PORT; the SDK appends /v1/listen). */
  readonly baseUrl: string;
  readonly requests: { handshakes: number; refused: number; connections: number; audioBytes: number; finalizes: number; keepAlives: number; closeStreams: number };
  /** Key and query of every accepted connection. */
  readonly connections: { readonly key: string | undefined; readonly query: URLSearchParams }[];
  /** Each Finalize's transcript, in order. */
  readonly transcripts: string[];
  setFault(fault: DeepgramFault): void;
  close(): Promise<void>;
}

/**
 * `/v1/listen` live transcription: binary linear16 16 kHz audio and JSON control messages up
 * (Finalize, KeepAlive, CloseStream), JSON Results / Metadata down. Each connection streams into its
 * own pocketsphinx decoder; its utterances come back as interim results, and a Finalize is answered
 * with one `from_finalize` Results holding the turn's text and spanning exactly the audio since the
 * previous Finalize, which is what ends a DeepgramStt turn.
 */
export async function startLocalDeepgram(options: LocalDeepgramOptions = {}): Promise<LocalDeepgram> {
  let fault: DeepgramFault = 'ok';
  const requests = { handshakes: 0, refused: 0, connections: 0, audioBytes: 0, finalizes: 0, keepAlives: 0, closeStreams: 0 };
  const connections: LocalDeepgram['connections'] = [];
  const transcripts: string[] = [];
  const recognizers = new Set<Promise<SttStream>>();
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    // Deepgram refuses a bad key or bad parameters before the upgrade, with an HTTP status.
    verifyClient: (info, cb) => {
      requests.handshakes++;
      const url = new URL(info.req.url ?? '/', 'ws://local');
      const key = /^Token (.+)$/.exec(info.req.headers.authorization ?? '')?.[1];
      const refuse = (status: number, why: string): void => {
        requests.refused++;
        cb(false, status, why);
      };
      if (fault === 'refuse' || !keyAccepted(options.keys, key)) return refuse(401, 'Unauthorized');
      if (url.pathname !== '/v1/listen') return refuse(404, 'Not Found');
      // Only what the pipeline sends by default; pocketsphinx wants 16 kHz anyway.
      if ((url.searchParams.get('encoding') ?? 'linear16') !== 'linear16' || (url.searchParams.get('sample_rate') ?? '16000') !== '16000') return refuse(400, 'Bad Request');
      cb(true);
    },
  });
  wss.on('connection', (ws, req) => {
    const query = new URL(req.url ?? '/', 'ws://local').searchParams;
    requests.connections++;
    connections.push({ key: /^Token (.+)$/.exec(req.headers.authorization ?? '')?.[1], query });
    const requestId = `local-${requests.connections}`;
    // Keyterms arrive as given; keywords may carry an intensifier (`phrase:2`).
    const fromQuery = [...query.getAll('keyterm'), ...query.getAll('keywords').map((k) => k.replace(/:[-\d.]+$/, ''))];
    const phrases = fromQuery.length > 0 ? fromQuery : (options.phrases ?? []);
    // Recognition runs as the audio arrives, as the service's does: a Finalize then only flushes the
    // tail, and its reply comes in tens of milliseconds rather than after decoding the whole turn.
    const recognizer = new PocketsphinxStt().open({ language: query.get('language') ?? 'en-US', phrases });
    recognizers.add(recognizer);
    let heard: string[] = [];
    let received = 0;
    let turnStart = 0;
    // Finalizes are answered in order, however long each flush takes.
    let answering: Promise<void> = Promise.resolve();
    const send = (msg: unknown): void => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
    };
    // Audio that arrives while the decoder starts waits for it.
    let decoder: SttStream | undefined;
    let queued: Int16Array[] = [];
    void recognizer.then(
      (stream) => {
        decoder = stream;
        for (const frame of queued) stream.push(frame);
        queued = [];
        // Interim results, when asked for: what the decoder has heard of the turn so far.
        stream.on('result', (r) => {
          heard = [...heard, r.text].filter(Boolean);
          if (query.get('interim_results') === 'true' && heard.length > 0) send(results(heard.join(' '), turnStart, received / PIPELINE_RATE - turnStart, requestId, false));
        });
      },
      () => void ws.close(1011, 'NET-0000'),
    );
    ws.on('close', () => void closeRecognizer(recognizer));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const buf = toBuffer(data);
      if (isBinary) {
        if (fault === 'drop') return void ws.close(1011, 'NET-0001');
        requests.audioBytes += buf.length;
        const frame = new Int16Array(buf.length >> 1);
        for (let i = 0; i < frame.length; i++) frame[i] = buf.readInt16LE(i * 2);
        received += frame.length;
        if (decoder) decoder.push(frame);
        else queued.push(frame);
        return;
      }
      let type: unknown;
      try {
        type = (JSON.parse(buf.toString()) as { type?: unknown }).type;
      } catch {
        return void ws.close(1008, 'invalid control message');
      }
      if (type === 'KeepAlive') requests.keepAlives++;
      else if (type === 'CloseStream') {
        requests.closeStreams++;
        void answering.then(() => {
          send({ type: 'Metadata', transaction_key: 'deprecated', request_id: requestId, sha256: '', created: new Date().toISOString(), duration: received / PIPELINE_RATE, channels: 1 });
          ws.close(1000);
        });
      } else if (type === 'Finalize') {
        requests.finalizes++;
        // The reply spans exactly the audio since the previous Finalize: that is how the client tells turns apart.
        const start = turnStart;
        turnStart = received / PIPELINE_RATE;
        const duration = turnStart - start;
        answering = answering.then(async () => {
          let transcript: string;
          try {
            transcript = await (await recognizer).finalize();
          } catch {
            return void ws.close(1011, 'NET-0000');
          }
          heard = [];
          transcripts.push(transcript);
          send(results(transcript, start, duration, requestId, true));
        });
      }
    });
  });
  await once(wss, 'listening');
  return {
    baseUrl: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`,
    requests,
    connections,
    transcripts,
    setFault: (f) => void (fault = f),
    close: closeOnce(async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      // The decoders are child processes: they must be gone when close() resolves.
      await Promise.all([...recognizers].map(closeRecognizer));
    }),
  };
}

/** Stops a connection's decoder (idempotent: a stream's close() is). */
async function closeRecognizer(recognizer: Promise<SttStream>): Promise<void> {
  await recognizer.then((s) => s.close()).catch(() => undefined);
}

/** A Results message as Deepgram documents it: an interim one, or the final one answering a Finalize. */
function results(transcript: string, start: number, duration: number, requestId: string, final: boolean): Record<string, unknown> {
  const words = transcript === '' ? [] : transcript.split(' ');
  const step = duration / Math.max(1, words.length);
  return {
    type: 'Results',
    channel_index: [0, 1],
    duration,
    start,
    is_final: final,
    speech_final: final,
    from_finalize: final,
    channel: {
      alternatives: [
        {
          transcript,
          confidence: transcript === '' ? 0 : 0.9,
          words: words.map((word, i) => ({ word, start: start + i * step, end: start + (i + 1) * step, confidence: 0.9, punctuated_word: word })),
        },
      ],
    },
    metadata: { request_id: requestId, model_info: { name: 'local-pocketsphinx', version: '0', arch: 'local' }, model_uuid: '00000000-0000-0000-0000-000000000000' },
  };
}

// ─── Shared plumbing ───────────────────────────────────────────────────────────────────────────────

interface Engine {
  speak(text: string, voice: string | undefined): Promise<Int16Array>;
  close(): Promise<void>;
}

/** The TTS the server speaks with: the one given, or its own flite (closed with the server). */
function ownedTts(options: CommonOptions): Engine {
  const owned = options.tts ? undefined : new FliteTtsProvider();
  const tts = options.tts ?? (owned as FliteTtsProvider);
  return {
    async speak(text, voice) {
      const parts: Int16Array[] = [];
      for await (const chunk of tts.synthesize({ text, voice: voice ?? 'slt', signal: new AbortController().signal })) {
        parts.push(chunk.sampleRate === PIPELINE_RATE ? chunk.samples : resample(chunk.samples, chunk.sampleRate, PIPELINE_RATE));
      }
      return concatSamples(parts);
    },
    close: async () => owned?.close(),
  };
}

function inFlight(counters: { inFlight: number }, res: ServerResponse): void {
  counters.inFlight++;
  res.once('close', () => counters.inFlight--);
}

function keyAccepted(keys: readonly string[] | undefined, key: string | undefined): boolean {
  return key !== undefined && key !== '' && (keys === undefined || keys.includes(key));
}

/** True when the fault answered (or deliberately left hanging) the request. */
function applyFault(res: ServerResponse, fault: HttpFault, errorBody: (status: number, message: string) => unknown): boolean {
  if (fault === 'ok') return false;
  // Stalled: headers and body never come; the client's own deadline must end the request.
  if (fault === 'stall') return true;
  fail(res, fault.status, errorBody(fault.status, `local fault ${fault.status}`), fault.headers);
  return true;
}

function fail(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

/** Writes `bytes` in chunks, yielding between them so the client reads a stream; stops if the client left. */
async function streamAudio(res: ServerResponse, bytes: Buffer, contentType: string, chunkBytes: number): Promise<void> {
  res.writeHead(200, { 'content-type': contentType });
  for (let at = 0; at < bytes.length; at += chunkBytes) {
    if (res.destroyed) return;
    res.write(bytes.subarray(at, at + chunkBytes));
    await delay(2);
  }
  res.end();
}

/** s16le, whatever the host's byte order. */
function le16(samples: Int16Array): Buffer {
  const out = Buffer.alloc(samples.length * 2);
  for (let i = 0; i < samples.length; i++) out.writeInt16LE(samples[i] as number, i * 2);
  return out;
}

function toChatMessage(m: unknown): ChatMessage {
  const { role, content, tool_call_id, tool_calls } = (m ?? {}) as { role?: unknown; content?: unknown; tool_call_id?: unknown; tool_calls?: unknown };
  // Content may be a string or an array of parts; only text parts matter here.
  const text = typeof content === 'string' ? content : Array.isArray(content) ? content.map((p) => String((p as { text?: unknown }).text ?? '')).join('') : '';
  if (role === 'tool') return { role: 'tool', toolCallId: String(tool_call_id ?? ''), content: text };
  if (role === 'assistant' && Array.isArray(tool_calls)) {
    const toolCalls = tool_calls.map((c) => {
      const call = c as { id?: unknown; function?: { name?: unknown; arguments?: unknown } };
      return { id: String(call.id ?? ''), name: String(call.function?.name ?? ''), arguments: String(call.function?.arguments ?? '') };
    });
    return { role: 'assistant', content: text, toolCalls };
  }
  return { role: role === 'system' || role === 'assistant' ? role : 'user', content: text };
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  const raw = Buffer.concat(parts).toString();
  try {
    const parsed: unknown = raw ? JSON.parse(raw) : {};
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function toBuffer(data: RawData): Buffer {
  return Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

/** `close()` may be called by a test and again by its cleanup: the second call waits for the first. */
function closeOnce(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= fn());
}

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

/** Drops every connection, stalled ones included, and waits for the listener to close. */
function closeHttp(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    server.closeAllConnections();
  });
}

