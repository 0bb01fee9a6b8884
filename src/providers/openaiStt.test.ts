import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeWav } from '../media/wav.js';
import { OpenAiStt } from './openaiStt.js';
import type { SttResult } from './types.js';

/**
 * The real `openai` SDK against a local server speaking the transcription endpoint's wire protocol
 * (multipart/form-data upload, JSON `{ text }` back), since the vendor is unreachable here.
 */
type Handler = (req: IncomingMessage, form: FormData, res: ServerResponse) => void;

let server: Server;
let baseURL: string;
let handler: Handler = () => undefined;
const uploads: { auth?: string; form: FormData }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      // The WHATWG Request parses multipart exactly as a server framework would.
      void new Request('http://local/', { method: 'POST', headers: req.headers as Record<string, string>, body: Buffer.concat(parts) }).formData().then((form) => {
        uploads.push({ auth: req.headers.authorization, form });
        handler(req, form, res);
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  baseURL = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1`;
});

afterAll(() => {
  server.closeAllConnections();
  server.close();
});

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

/** 20 ms frames of a 440 Hz tone at 16 kHz. */
function frames(n: number): Int16Array[] {
  return Array.from({ length: n }, (_, k) => Int16Array.from({ length: 320 }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * 440 * (k * 320 + i)) / 16000))));
}

describe('OpenAiStt (openai SDK) against a local transcription server', () => {
  it("uploads one turn's audio as a 16 kHz WAV with model, language and phrases, and returns the text", async () => {
    handler = (_req, _form, res) => json(res, 200, { text: ' What time do you open today? ' });
    const stt = new OpenAiStt({ baseURL, apiKey: 'sk-stt', model: 'whisper-local' });
    const stream = await stt.open({ language: 'en-US', phrases: ['opening hours', 'book a table'] });
    const results: SttResult[] = [];
    stream.on('result', (r) => results.push(r));
    const sent = frames(50);
    for (const f of sent) stream.push(f);
    expect(await stream.finalize()).toBe('What time do you open today?');
    expect(results).toEqual([{ text: 'What time do you open today?', final: true }]);

    const up = uploads.at(-1)!;
    expect(up.auth).toBe('Bearer sk-stt');
    expect(up.form.get('model')).toBe('whisper-local');
    expect(up.form.get('language')).toBe('en');
    expect(up.form.get('prompt')).toBe('opening hours, book a table');
    const file = up.form.get('file') as File;
    const wav = decodeWav(new Uint8Array(await file.arrayBuffer()));
    expect(wav.sampleRate).toBe(16000);
    expect(wav.samples.length).toBe(50 * 320);
    expect(wav.samples[321]).toBe(sent[1]![1]);

    // The next turn starts empty: nothing pushed, nothing sent.
    const before = uploads.length;
    expect(await stream.finalize()).toBe('');
    expect(uploads.length).toBe(before);
    await stream.close();
  });

  it('maps 401 (permanent), 429 with retry-after and 500 to CG_STT_FAILED, without the key', async () => {
    const stt = new OpenAiStt({ baseURL, apiKey: 'sk-secret-stt', maxRetries: 0 });
    const stream = await stt.open({ language: 'en-US', phrases: [] });
    const attempt = async (): Promise<unknown> => {
      for (const f of frames(5)) stream.push(f);
      return stream.finalize().catch((e: unknown) => e);
    };
    handler = (_req, _form, res) => json(res, 401, { error: { message: 'bad key' } });
    expect(await attempt()).toMatchObject({ code: 'CG_STT_FAILED', details: { status: 401, permanent: true } });
    handler = (_req, _form, res) => json(res, 429, { error: { message: 'slow down' } }, { 'retry-after': '3' });
    expect(await attempt()).toMatchObject({ code: 'CG_STT_FAILED', details: { status: 429, retryAfter: '3' } });
    handler = (_req, _form, res) => json(res, 500, { error: { message: 'boom' } });
    const err = await attempt();
    expect(err).toMatchObject({ code: 'CG_STT_FAILED', details: { status: 500 } });
    expect(JSON.stringify(err)).not.toContain('sk-secret-stt');
    await stream.close();
  });

  it('a stalled answer is CG_STT_TIMEOUT; close() during a request ends it quietly and the server sees the connection close', async () => {
    handler = () => undefined; // never answers
    const stt = new OpenAiStt({ baseURL, apiKey: 'k', timeoutMs: 300, maxRetries: 0 });
    const stream = await stt.open({ language: 'en-US', phrases: [] });
    for (const f of frames(5)) stream.push(f);
    const t0 = performance.now();
    await expect(stream.finalize()).rejects.toMatchObject({ code: 'CG_STT_TIMEOUT' });
    expect(performance.now() - t0).toBeLessThan(2000);

    let closedByClient!: () => void;
    const sawClose = new Promise<void>((r) => (closedByClient = r));
    handler = (req) => req.socket.once('close', closedByClient);
    const stream2 = await new OpenAiStt({ baseURL, apiKey: 'k', timeoutMs: 10_000, maxRetries: 0 }).open({ language: 'en-US', phrases: [] });
    for (const f of frames(5)) stream2.push(f);
    const pending = stream2.finalize();
    await new Promise((r) => setTimeout(r, 100));
    await stream2.close();
    expect(await pending).toBe('');
    await sawClose;
  });
});
