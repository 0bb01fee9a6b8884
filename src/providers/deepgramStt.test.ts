import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { CallgateError } from '../errors.js';
import { DeepgramStt } from './deepgramStt.js';
import type { SttResult, SttStream } from './types.js';
import { until } from '../util/testing/wait.js';

/**
 * The real `@deepgram/sdk` against a local WebSocket server speaking Deepgram's live protocol
 * (https://developers.deepgram.com/reference/speech-to-text/listen-streaming): binary audio and JSON
 * control messages up, Results / UtteranceEnd / Metadata JSON down, errors as close frames.
 */

const API_KEY = 'dg-test-key-0123456789';
const FRAME_BYTES = 640; // 20 ms of 16 kHz s16

/** What the server saw on one connection. */
interface Session {
  readonly url: URL;
  readonly headers: IncomingMessage['headers'];
  readonly ws: WebSocket;
  readonly audio: Buffer[];
  readonly controls: string[];
  closed: boolean;
  /** Seconds of audio received (at the session's sample rate and encoding). */
  seconds(): number;
}

type Behaviour = (session: Session, event: { kind: 'audio'; data: Buffer } | { kind: 'control'; type: string } | { kind: 'open' }) => void;

let wss: WebSocketServer;
let baseUrl: string;
let behaviour: Behaviour = () => undefined;
let sessions: Session[] = [];
let handshakes = 0;
let streams: SttStream[] = [];

beforeAll(async () => {
  wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    // Deepgram refuses a bad key at the handshake, before the upgrade.
    verifyClient: (info, cb) => {
      handshakes++;
      if (info.req.headers.authorization === `Token ${API_KEY}`) cb(true);
      else cb(false, 401, 'Unauthorized');
    },
  });
  wss.on('connection', (ws, req) => {
    const url = new URL(req.url ?? '/', 'ws://localhost');
    const bytesPerSecond = url.searchParams.get('encoding') === 'mulaw' ? 8000 : 32000;
    const session: Session = {
      url,
      headers: req.headers,
      ws,
      audio: [],
      controls: [],
      closed: false,
      seconds: () => session.audio.reduce((n, b) => n + b.length, 0) / bytesPerSecond,
    };
    sessions.push(session);
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const buf = Buffer.isBuffer(data) ? data : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]);
      if (isBinary) {
        session.audio.push(buf);
        behaviour(session, { kind: 'audio', data: buf });
      } else {
        const type = (JSON.parse(buf.toString()) as { type: string }).type;
        session.controls.push(type);
        behaviour(session, { kind: 'control', type });
      }
    });
    ws.on('close', () => (session.closed = true));
    behaviour(session, { kind: 'open' });
  });
  await once(wss, 'listening');
  baseUrl = `ws://127.0.0.1:${(wss.address() as { port: number }).port}`;
});

afterEach(async () => {
  await Promise.all(streams.map((s) => s.close()));
  streams = [];
  sessions = [];
  behaviour = () => undefined;
});

afterAll(async () => {
  for (const c of wss.clients) c.terminate();
  wss.close();
});

/** A Results message shaped as Deepgram documents it. */
function results(o: { transcript: string; start: number; duration: number; isFinal: boolean; speechFinal?: boolean; fromFinalize?: boolean }): string {
  const words = o.transcript === '' ? [] : o.transcript.split(' ');
  const step = o.duration / Math.max(1, words.length);
  return JSON.stringify({
    type: 'Results',
    channel_index: [0, 1],
    duration: o.duration,
    start: o.start,
    is_final: o.isFinal,
    speech_final: o.speechFinal ?? false,
    from_finalize: o.fromFinalize ?? false,
    channel: {
      alternatives: [
        {
          transcript: o.transcript,
          confidence: 0.97,
          words: words.map((w, i) => ({ word: w.toLowerCase(), start: o.start + i * step, end: o.start + (i + 1) * step, confidence: 0.97, punctuated_word: w })),
        },
      ],
    },
    metadata: {
      request_id: 'req-1234',
      model_info: { name: '2-general-nova', version: '2024-01-09.29447', arch: 'nova-3' },
      model_uuid: 'c0d1a568-ce81-4fea-97e7-bd45cb1fdf3c',
    },
  });
}

const utteranceEnd = (lastWordEnd: number): string => JSON.stringify({ type: 'UtteranceEnd', channel: [0, 1], last_word_end: lastWordEnd });
const metadata = (duration: number): string =>
  JSON.stringify({ type: 'Metadata', transaction_key: 'deprecated', request_id: 'req-1234', sha256: '00', created: new Date().toISOString(), duration, channels: 1 });

function tone(frameIndex: number): Int16Array {
  const f = new Int16Array(320);
  for (let i = 0; i < f.length; i++) f[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * (frameIndex * 320 + i)) / 16000));
  return f;
}

async function open(options: ConstructorParameters<typeof DeepgramStt>[0] = { apiKey: API_KEY }, phrases: string[] = []): Promise<SttStream> {
  const stt = new DeepgramStt({ baseUrl, ...options });
  const stream = await stt.open({ language: 'en-US', phrases });
  streams.push(stream);
  return stream;
}

function rejection(p: Promise<unknown>): Promise<CallgateError> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => {
      expect(err).toBeInstanceOf(CallgateError);
      return err as CallgateError;
    },
  );
}

describe('DeepgramStt (@deepgram/sdk) against a local live-transcription server', () => {
  it('connects with the key and query Deepgram expects and streams every frame as little-endian s16', async () => {
    const stream = await open({ apiKey: API_KEY }, ['book a table', ' Book a table ', 'opening hours']);
    const s = sessions[0]!;
    expect(s.url.pathname).toBe('/v1/listen');
    expect(s.headers.authorization).toBe(`Token ${API_KEY}`);
    const q = s.url.searchParams;
    expect(Object.fromEntries(['model', 'language', 'encoding', 'sample_rate', 'channels', 'interim_results', 'endpointing', 'utterance_end_ms', 'smart_format', 'punctuate'].map((k) => [k, q.get(k)]))).toEqual({
      model: 'nova-3',
      language: 'en-US',
      encoding: 'linear16',
      sample_rate: '16000',
      channels: '1',
      interim_results: 'true',
      endpointing: '300',
      utterance_end_ms: '1000',
      smart_format: 'true',
      punctuate: 'true',
    });
    expect(q.getAll('keyterm')).toEqual(['book a table', 'Book a table', 'opening hours']);
    expect(q.has('keywords')).toBe(false);

    const N = 25;
    const frames = Array.from({ length: N }, (_, i) => tone(i));
    for (const f of frames) stream.push(f);
    await until(() => s.audio.length === N);
    expect(s.audio.map((b) => b.length)).toEqual(Array(N).fill(FRAME_BYTES));
    expect(s.audio[3]!.readInt16LE(2)).toBe(frames[3]![1]);
    expect(s.controls).toEqual([]);
  });

  it('emits interim then final results, and finalize() returns the turn from the from_finalize reply', async () => {
    behaviour = (s, e) => {
      if (e.kind === 'audio' && s.audio.length === 10) s.ws.send(results({ transcript: 'I would like', start: 0, duration: 0.2, isFinal: false }));
      if (e.kind === 'audio' && s.audio.length === 20) {
        s.ws.send(results({ transcript: 'I would like to book', start: 0, duration: 0.4, isFinal: true }));
        s.ws.send(results({ transcript: 'a table', start: 0.4, duration: 0, isFinal: false }));
      }
      if (e.kind === 'control' && e.type === 'Finalize') {
        s.ws.send(results({ transcript: 'a table for two.', start: 0.4, duration: s.seconds() - 0.4, isFinal: true, fromFinalize: true }));
        s.ws.send(metadata(s.seconds()));
      }
    };
    const stream = await open();
    const seen: SttResult[] = [];
    stream.on('result', (r) => seen.push(r));
    for (let i = 0; i < 30; i++) stream.push(tone(i));
    await until(() => seen.length === 3);
    const text = await stream.finalize();
    expect(text).toBe('I would like to book a table for two.');
    expect(seen).toEqual([
      { text: 'I would like', final: false, confidence: 0.97 },
      { text: 'I would like to book', final: true, confidence: 0.97 },
      { text: 'a table', final: false, confidence: 0.97 },
      { text: 'a table for two.', final: true, confidence: 0.97 },
    ]);
    // Nothing pushed since: no round trip.
    expect(await stream.finalize()).toBe('');
    expect(sessions[0]!.controls.filter((t) => t === 'Finalize')).toHaveLength(1);
  });

  it('keeps turns apart: a second finalize() gets only what was said after the first', async () => {
    behaviour = (s, e) => {
      if (e.kind === 'control' && e.type === 'Finalize') {
        const n = s.controls.filter((t) => t === 'Finalize').length;
        const start = n === 1 ? 0 : 0.4;
        s.ws.send(results({ transcript: n === 1 ? 'Hello.' : 'Goodbye.', start, duration: s.seconds() - start, isFinal: true, fromFinalize: true }));
      }
    };
    const stream = await open();
    for (let i = 0; i < 20; i++) stream.push(tone(i));
    expect(await stream.finalize()).toBe('Hello.');
    for (let i = 0; i < 20; i++) stream.push(tone(i));
    expect(await stream.finalize()).toBe('Goodbye.');
  });

  it('waits for a slow Finalize reply when no result has covered the turn yet (a short "yes" gets no interim)', async () => {
    // Deepgram sends nothing during the turn and answers Finalize late: the grace path must not take the
    // stream's starting quiet for "nothing said", or each turn would get the previous turn's words.
    behaviour = (s, e) => {
      if (e.kind === 'control' && e.type === 'Finalize') {
        const n = s.controls.filter((t) => t === 'Finalize').length;
        const start = n === 1 ? 0 : 0.4;
        const end = s.seconds();
        setTimeout(() => s.ws.send(results({ transcript: n === 1 ? 'Yes.' : 'A table for two.', start, duration: end - start, isFinal: true, speechFinal: true, fromFinalize: true })), 300);
      }
    };
    const stream = await open({ apiKey: API_KEY, finalizeGraceMs: 60, finalizeTimeoutMs: 1500 });
    for (let i = 0; i < 20; i++) stream.push(tone(i));
    expect(await stream.finalize()).toBe('Yes.');
    for (let i = 0; i < 20; i++) stream.push(tone(i));
    expect(await stream.finalize()).toBe('A table for two.');
  });

  it('drops a final that arrives for a turn already answered, instead of adding it to the next turn', async () => {
    behaviour = (s, e) => {
      if (e.kind === 'control' && e.type === 'Finalize' && s.controls.filter((t) => t === 'Finalize').length === 1) {
        // Turn 1 times out; its words arrive later, then turn 2's reply.
        setTimeout(() => s.ws.send(results({ transcript: 'Late words.', start: 0, duration: 0.4, isFinal: true, speechFinal: true })), 250);
      } else if (e.kind === 'control' && e.type === 'Finalize') {
        s.ws.send(results({ transcript: 'Second turn.', start: 0.4, duration: s.seconds() - 0.4, isFinal: true, speechFinal: true, fromFinalize: true }));
      }
    };
    const stream = await open({ apiKey: API_KEY, finalizeGraceMs: 60, finalizeTimeoutMs: 150 });
    for (let i = 0; i < 20; i++) stream.push(tone(i));
    expect((await rejection(stream.finalize())).code).toBe('CG_STT_TIMEOUT');
    await delay(200);
    for (let i = 0; i < 20; i++) stream.push(tone(i));
    expect(await stream.finalize()).toBe('Second turn.');
  });

  it('resolves an unanswered Finalize once Deepgram had already ended the utterance (speech_final, UtteranceEnd)', async () => {
    behaviour = (s, e) => {
      if (e.kind === 'audio' && s.audio.length === 15) {
        s.ws.send(results({ transcript: 'yes', start: 0, duration: 0.3, isFinal: false }));
        s.ws.send(results({ transcript: 'Yes.', start: 0, duration: 0.3, isFinal: true, speechFinal: true }));
        s.ws.send(utteranceEnd(0.25));
      }
      // Finalize: nothing significant left to flush, so no from_finalize reply (as the docs allow).
    };
    const stream = await open({ apiKey: API_KEY, finalizeGraceMs: 60, finalizeTimeoutMs: 1500 });
    for (let i = 0; i < 25; i++) stream.push(tone(i));
    await until(() => sessions[0]!.audio.length === 25);
    await delay(20);
    const t0 = performance.now();
    expect(await stream.finalize()).toBe('Yes.');
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it('ends a turn when final segments cover its audio, even without a from_finalize reply', async () => {
    behaviour = (s, e) => {
      if (e.kind === 'audio' && s.audio.length === 5) s.ws.send(results({ transcript: 'a table', start: 0, duration: 0.1, isFinal: false }));
      if (e.kind === 'control' && e.type === 'Finalize') s.ws.send(results({ transcript: 'A table for two.', start: 0, duration: s.seconds(), isFinal: true }));
    };
    // A grace longer than the test's patience: only the covering final segment can end the turn.
    const stream = await open({ apiKey: API_KEY, finalizeGraceMs: 5000, finalizeTimeoutMs: 5000 });
    for (let i = 0; i < 10; i++) stream.push(tone(i));
    await until(() => sessions[0]!.audio.length === 10);
    const t0 = performance.now();
    expect(await stream.finalize()).toBe('A table for two.');
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it('does not take a late reply to the previous Finalize as the answer to this one', async () => {
    let firstTurnEnd = 0;
    behaviour = (s, e) => {
      if (e.kind === 'audio' && s.audio.length === 10) s.ws.send(results({ transcript: 'Yes.', start: 0, duration: 0.2, isFinal: true, speechFinal: true }));
      if (e.kind === 'control' && e.type === 'Finalize') {
        const n = s.controls.filter((t) => t === 'Finalize').length;
        if (n === 1) {
          firstTurnEnd = s.seconds(); // left unanswered: the utterance had ended already
          return;
        }
        // The first Finalize's reply arrives only now, then this one's.
        s.ws.send(results({ transcript: '', start: 0.2, duration: firstTurnEnd - 0.2, isFinal: true, fromFinalize: true }));
        setTimeout(() => s.ws.send(results({ transcript: 'No, thanks.', start: firstTurnEnd, duration: s.seconds() - firstTurnEnd, isFinal: true, fromFinalize: true })), 30);
      }
    };
    const stream = await open({ apiKey: API_KEY, finalizeGraceMs: 100 });
    for (let i = 0; i < 15; i++) stream.push(tone(i));
    await until(() => sessions[0]!.audio.length === 15);
    expect(await stream.finalize()).toBe('Yes.');
    for (let i = 0; i < 20; i++) stream.push(tone(i));
    expect(await stream.finalize()).toBe('No, thanks.');
  });

  it('rejects finalize() with CG_STT_TIMEOUT when words are pending and Deepgram never answers', async () => {
    behaviour = (s, e) => {
      if (e.kind === 'audio' && s.audio.length === 5) s.ws.send(results({ transcript: 'I want', start: 0, duration: 0.1, isFinal: false }));
    };
    const stream = await open({ apiKey: API_KEY, finalizeTimeoutMs: 150, finalizeGraceMs: 20 });
    const seen: SttResult[] = [];
    stream.on('result', (r) => seen.push(r));
    for (let i = 0; i < 10; i++) stream.push(tone(i));
    await until(() => seen.length === 1);
    const t0 = performance.now();
    const err = await rejection(stream.finalize());
    expect(err.code).toBe('CG_STT_TIMEOUT');
    expect(err.details).toEqual({ timeoutMs: 150 });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
  });

  it('sends KeepAlive text messages only while no audio goes out', async () => {
    const keepAliveMs = 60;
    // The stream's clock is faked (its timers and performance.now; the socket's I/O stays real), so
    // whether a KeepAlive is due depends only on the audio pushed and the time advanced, never on how
    // loaded the machine is. The server's view of the socket, in order: K = KeepAlive, A = audio.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      // The SDK's connect waits on a zero-delay timer of its own: run due timers until it is open.
      let opened = false;
      const opening = open({ apiKey: API_KEY, keepAliveMs }).finally(() => (opened = true));
      await until(() => {
        vi.advanceTimersByTime(0);
        return opened;
      });
      const stream = await opening;
      const s = sessions[0]!;
      const order: string[] = [];
      s.ws.on('message', (_data: RawData, isBinary: boolean) => order.push(isBinary ? 'A' : 'K'));
      // Silence: one KeepAlive per keepAliveMs.
      for (let n = 1; n <= 3; n++) {
        await vi.advanceTimersByTimeAsync(keepAliveMs);
        await until(() => s.controls.length === n);
      }
      // Audio every half keepAliveMs, for 7.5 keepAliveMs: none is due.
      for (let i = 0; i < 15; i++) {
        stream.push(tone(i));
        await vi.advanceTimersByTimeAsync(keepAliveMs / 2);
      }
      // Audio stops: the next one is due keepAliveMs after the last frame (half of it has passed).
      await vi.advanceTimersByTimeAsync(keepAliveMs / 2);
      await until(() => s.audio.length === 15 && s.controls.length >= 4);
      expect(s.controls).toEqual(['KeepAlive', 'KeepAlive', 'KeepAlive', 'KeepAlive']);
      expect(order.join('')).toBe(`KKK${'A'.repeat(15)}K`);
    } finally {
      vi.useRealTimers();
    }
  });

  it('close() sends CloseStream, closes the socket, is idempotent and fails later finalize()', async () => {
    const stream = await open();
    stream.push(tone(0));
    await Promise.all([stream.close(), stream.close()]);
    const s = sessions[0]!;
    await until(() => s.closed);
    expect(s.controls).toEqual(['CloseStream']);
    await stream.close();
    expect((await rejection(stream.finalize())).code).toBe('CG_STT_FAILED');
    stream.push(tone(1)); // dropped, not thrown
  });

  it('rejects open() with CG_STT_UNAVAILABLE, permanent, when the key is refused at the handshake (no retries)', async () => {
    const before = handshakes;
    const stt = new DeepgramStt({ apiKey: 'wrong-key-secret', baseUrl });
    const err = await rejection(stt.open({ language: 'en-US', phrases: [] }));
    expect(err.code).toBe('CG_STT_UNAVAILABLE');
    expect(err.details).toEqual({ status: 401, permanent: true });
    expect(err.message).not.toContain('wrong-key-secret');
    await delay(50);
    expect(handshakes - before).toBe(1);
  });

  it('a 429 or 500 at the handshake is CG_STT_UNAVAILABLE, not permanent (the chain moves on; the circuit does not open for long)', async () => {
    let status = 429;
    const http = createHttpServer();
    http.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
      const reason = status === 429 ? 'Too Many Requests' : 'Internal Server Error';
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nRetry-After: 5\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    });
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    try {
      const stt = new DeepgramStt({ apiKey: API_KEY, baseUrl: `ws://127.0.0.1:${(http.address() as { port: number }).port}` });
      expect((await rejection(stt.open({ language: 'en-US', phrases: [] }))).details).toEqual({ status: 429 });
      status = 500;
      const err = await rejection(stt.open({ language: 'en-US', phrases: [] }));
      expect(err.code).toBe('CG_STT_UNAVAILABLE');
      expect(err.details).toEqual({ status: 500 });
    } finally {
      http.closeAllConnections();
      http.close();
    }
  });

  it('rejects open() with CG_STT_UNAVAILABLE when the upgrade never completes', async () => {
    const held: Socket[] = [];
    const tcp: TcpServer = createTcpServer((sock) => held.push(sock));
    tcp.listen(0, '127.0.0.1');
    await once(tcp, 'listening');
    try {
      const stt = new DeepgramStt({ apiKey: API_KEY, baseUrl: `ws://127.0.0.1:${(tcp.address() as { port: number }).port}`, connectTimeoutMs: 150 });
      const t0 = performance.now();
      const err = await rejection(stt.open({ language: 'en-US', phrases: [] }));
      expect(err.code).toBe('CG_STT_UNAVAILABLE');
      expect(err.details).toEqual({ timeoutMs: 150 });
      expect(performance.now() - t0).toBeLessThan(1000);
    } finally {
      for (const s of held) s.destroy();
      tcp.close();
    }
  });

  it("emits 'error' CG_STT_FAILED when Deepgram closes the stream mid-call, and finalize() rejects after", async () => {
    behaviour = (s, e) => {
      if (e.kind === 'audio' && s.audio.length === 5) {
        s.ws.send(results({ transcript: 'hello', start: 0, duration: 0.1, isFinal: false }));
        s.ws.close(1011, 'NET-0001');
      }
    };
    const stream = await open();
    const errors: CallgateError[] = [];
    stream.on('error', (e) => errors.push(e));
    for (let i = 0; i < 5; i++) stream.push(tone(i));
    await until(() => errors.length > 0);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toBe('CG_STT_FAILED');
    expect(errors[0]!.details).toMatchObject({ closeCode: 1011, closeReason: 'NET-0001', requestId: 'req-1234' });
    expect(await rejection(stream.finalize())).toBe(errors[0]);
    stream.push(tone(6)); // dropped, not thrown
  });

  it("fails a pending finalize() and emits 'error' when the socket drops, and on an Error message", async () => {
    behaviour = (s, e) => {
      if (e.kind === 'control' && e.type === 'Finalize') s.ws.terminate();
    };
    const dropped = await open();
    const errors: CallgateError[] = [];
    dropped.on('error', (e) => errors.push(e));
    dropped.push(tone(0));
    const err = await rejection(dropped.finalize());
    expect(err.code).toBe('CG_STT_FAILED');
    expect(errors).toEqual([err]);

    behaviour = (s, e) => {
      if (e.kind === 'audio') s.ws.send(JSON.stringify({ type: 'Error', description: 'Failed to process audio', variant: 'DATA-0000' }));
    };
    const refused = await open();
    const errors2: CallgateError[] = [];
    refused.on('error', (e) => errors2.push(e));
    refused.push(tone(0));
    await until(() => errors2.length > 0);
    expect(errors2[0]!.code).toBe('CG_STT_FAILED');
    expect(errors2[0]!.message).toContain('Failed to process audio');
  });

  it('mulaw mode sends 160 bytes of 8 kHz µ-law per 20 ms frame', async () => {
    behaviour = (s, e) => {
      if (e.kind === 'control' && e.type === 'Finalize') s.ws.send(results({ transcript: 'Hi.', start: 0, duration: s.seconds(), isFinal: true, fromFinalize: true }));
    };
    const stream = await open({ apiKey: API_KEY, encoding: 'mulaw', model: 'nova-2' }, ['reservation']);
    const s = sessions[0]!;
    expect(s.url.searchParams.get('encoding')).toBe('mulaw');
    expect(s.url.searchParams.get('sample_rate')).toBe('8000');
    // Older models take keywords; nova-3 alone takes keyterm.
    expect(s.url.searchParams.getAll('keywords')).toEqual(['reservation']);
    expect(s.url.searchParams.has('keyterm')).toBe(false);
    for (let i = 0; i < 10; i++) stream.push(new Int16Array(320));
    for (let i = 0; i < 10; i++) stream.push(tone(i));
    await until(() => s.audio.length === 20);
    expect(s.audio.map((b) => b.length)).toEqual(Array(20).fill(160));
    // Digital silence is 0xFF in µ-law; the tone is not.
    expect([...s.audio[5]!].every((b) => b === 0xff)).toBe(true);
    expect(new Set(s.audio[15]!).size).toBeGreaterThan(10);
    expect(await stream.finalize()).toBe('Hi.');
  });
});
