import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenAiTts } from './openaiTts.js';
import type { TtsChunk } from './types.js';

/** The real `openai` SDK's speech call against a local server streaming raw PCM in chunks. */
let server: Server;
let baseURL: string;
let handler: (req: IncomingMessage, body: Record<string, unknown>, res: ServerResponse) => void = () => undefined;
let lastBody: Record<string, unknown> = {};

beforeAll(async () => {
  server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d: Buffer) => (raw += d.toString()));
    req.on('end', () => {
      lastBody = JSON.parse(raw || '{}') as Record<string, unknown>;
      handler(req, lastBody, res);
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

/** A 24 kHz ramp as s16le, so sample values check the byte handling. */
function pcm(samples: number, from = 0): Buffer {
  const b = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) b.writeInt16LE((from + i) % 30000, i * 2);
  return b;
}

async function collect(tts: OpenAiTts, text = 'We open at eight.', signal = new AbortController().signal): Promise<TtsChunk[]> {
  const out: TtsChunk[] = [];
  for await (const c of tts.synthesize({ text, voice: 'slt', signal })) out.push(c);
  return out;
}

describe('OpenAiTts (openai SDK) against a local speech server', () => {
  it('streams PCM as it arrives, keeping samples whole across odd chunk boundaries', async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'audio/pcm' });
      const all = pcm(4800);
      res.write(all.subarray(0, 1001)); // an odd cut: half a sample
      setTimeout(() => res.end(all.subarray(1001)), 20);
    };
    const chunks = await collect(new OpenAiTts({ baseURL, apiKey: 'k' }));
    expect(chunks.length).toBeGreaterThanOrEqual(2);
    expect(chunks.every((c) => c.sampleRate === 24000)).toBe(true);
    const joined = Int16Array.from(chunks.flatMap((c) => [...c.samples]));
    expect(joined.length).toBe(4800);
    expect([...joined.subarray(495, 505)]).toEqual([495, 496, 497, 498, 499, 500, 501, 502, 503, 504]);
    // A voice this vendor does not have (the tenant's flite voice) falls back to the default.
    expect(lastBody).toMatchObject({ model: 'gpt-4o-mini-tts', voice: 'alloy', input: 'We open at eight.', response_format: 'pcm' });
  });

  it('stops and closes the connection on abort; a stalled first byte is CG_TTS_TIMEOUT; 500 is CG_TTS_FAILED', async () => {
    let closed: () => void = () => undefined;
    const sawClose = new Promise<void>((r) => (closed = r));
    handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'audio/pcm' });
      const t = setInterval(() => res.write(pcm(480)), 20);
      res.on('close', () => {
        clearInterval(t);
        closed();
      });
    };
    const abort = new AbortController();
    let n = 0;
    for await (const _c of new OpenAiTts({ baseURL, apiKey: 'k' }).synthesize({ text: 'x', voice: 'nova', signal: abort.signal })) {
      if (++n === 2) abort.abort();
    }
    await sawClose;
    expect(n).toBe(2);

    handler = () => undefined;
    await expect(collect(new OpenAiTts({ baseURL, apiKey: 'k', firstByteTimeoutMs: 300, maxRetries: 0 }))).rejects.toMatchObject({ code: 'CG_TTS_TIMEOUT' });
    handler = (_req, _body, res) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'boom' } }));
    };
    await expect(collect(new OpenAiTts({ baseURL, apiKey: 'k', maxRetries: 0 }))).rejects.toMatchObject({ code: 'CG_TTS_FAILED', details: { status: 500 } });
  });

  it('audio that stops halfway is CG_TTS_TIMEOUT after the stall budget, with the audio so far delivered', async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'audio/pcm' });
      res.write(pcm(480)); // then nothing, connection held open
    };
    const got: TtsChunk[] = [];
    const tts = new OpenAiTts({ baseURL, apiKey: 'k', stallTimeoutMs: 300, maxRetries: 0 });
    await expect(
      (async () => {
        for await (const c of tts.synthesize({ text: 'x', voice: 'nova', signal: new AbortController().signal })) got.push(c);
      })(),
    ).rejects.toMatchObject({ code: 'CG_TTS_TIMEOUT', message: expect.stringContaining('stalled') });
    expect(got.reduce((n, c) => n + c.samples.length, 0)).toBe(480);
  });
});
