import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CallgateError } from '../errors.js';
import { linearToMulaw, mulawToLinear } from '../media/codecs/g711.js';
import { defaultElevenLabsTtsOptions, ElevenLabsTts } from './elevenlabsTts.js';
import type { TtsChunk } from './types.js';

/**
 * The real `@elevenlabs/elevenlabs-js` SDK against a local server speaking the documented stream
 * protocol: POST /v1/text-to-speech/{voice_id}/stream?output_format=…, `xi-api-key`, JSON body,
 * chunked raw audio back.
 */
const KEY = 'sk_test_0123456789abcdef';
const RACHEL = defaultElevenLabsTtsOptions.defaultVoiceId;
const ADAM = 'pNInz6obpgDQGcFmaJgB';

interface Seen {
  readonly voice: string | undefined;
  readonly query: URLSearchParams;
  readonly body: Record<string, unknown>;
}

let server: Server;
let baseUrl: string;
let seen: Seen[] = [];
let handler: (req: IncomingMessage, res: ServerResponse, seen: Seen) => void = () => undefined;

beforeAll(async () => {
  server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d: Buffer) => (raw += d.toString()));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const voice = /^\/v1\/text-to-speech\/([^/]+)\/stream$/.exec(url.pathname)?.[1];
      if (req.method !== 'POST' || voice === undefined) {
        res.writeHead(404).end();
        return;
      }
      if (req.headers['xi-api-key'] !== KEY) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ detail: { status: 'invalid_api_key', message: 'Invalid API key' } }));
        return;
      }
      const s: Seen = { voice, query: url.searchParams, body: JSON.parse(raw || '{}') as Record<string, unknown> };
      seen.push(s);
      handler(req, res, s);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(() => {
  server.closeAllConnections();
  server.close();
});

beforeEach(() => {
  seen = [];
});

/** s16le samples that cross zero and use the full byte range, so sign and byte order are checked. */
function ramp(n: number): Int16Array {
  return Int16Array.from({ length: n }, (_, i) => ((i * 263) % 65536) - 32768);
}
function le(samples: Int16Array): Buffer {
  const b = Buffer.alloc(samples.length * 2);
  samples.forEach((s, i) => b.writeInt16LE(s, i * 2));
  return b;
}

function tts(o: Partial<ConstructorParameters<typeof ElevenLabsTts>[0]> = {}): ElevenLabsTts {
  return new ElevenLabsTts({ baseUrl, apiKey: KEY, ...o });
}

async function collect(t: ElevenLabsTts, voice = 'slt', signal = new AbortController().signal, text = 'We open at eight.'): Promise<TtsChunk[]> {
  const out: TtsChunk[] = [];
  for await (const c of t.synthesize({ text, voice, signal })) out.push(c);
  return out;
}

function joined(chunks: TtsChunk[]): Int16Array {
  return Int16Array.from(chunks.flatMap((c) => [...c.samples]));
}

async function rejection(p: Promise<unknown>): Promise<CallgateError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CallgateError);
  return err as CallgateError;
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('ElevenLabsTts (elevenlabs SDK) against a local stream server', () => {
  it('yields the first chunk while the server still holds the rest, and reassembles odd cuts exactly', async () => {
    const all = le(ramp(3000));
    let release: () => void = () => undefined;
    const released = new Promise<void>((r) => (release = r));
    let ended = false;
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'audio/pcm' });
      res.write(all.subarray(0, 1001)); // half a sample at the end
      void released.then(async () => {
        res.write(all.subarray(1001, 1002)); // a lone byte: completes sample 500, yields nothing by itself
        await pause(10);
        res.write(all.subarray(1002, 3333));
        await pause(10);
        res.end(all.subarray(3333), () => (ended = true));
      });
    };
    const iter = tts().synthesize({ text: 'We open at eight.', voice: 'slt', signal: new AbortController().signal })[Symbol.asyncIterator]();
    const first = await iter.next();
    expect(first.done).toBe(false);
    expect(ended).toBe(false);
    const chunks = [first.value as TtsChunk];
    release();
    for (let r = await iter.next(); !r.done; r = await iter.next()) chunks.push(r.value);

    expect(chunks[0]?.samples.length).toBe(500);
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    expect(chunks.every((c) => c.sampleRate === 16000)).toBe(true);
    expect(joined(chunks)).toEqual(ramp(3000));

    // The wire request: a flite voice name maps to the default voice id.
    expect(seen).toHaveLength(1);
    const s = seen[0] as Seen;
    expect(s.voice).toBe(RACHEL);
    expect(s.query.get('output_format')).toBe('pcm_16000');
    expect(s.query.has('optimize_streaming_latency')).toBe(false);
    expect(s.body).toMatchObject({ text: 'We open at eight.', model_id: 'eleven_flash_v2_5' });
  });

  it('passes an ElevenLabs voice id through and maps anything else to defaultVoiceId', async () => {
    handler = (_req, res) => res.writeHead(200, { 'content-type': 'audio/pcm' }).end(le(ramp(10)));
    const t = tts({ defaultVoiceId: ADAM, modelId: 'eleven_turbo_v2_5', optimizeStreamingLatency: 2 });
    expect(joined(await collect(t, RACHEL))).toEqual(ramp(10));
    await collect(t, 'kal16');
    await collect(t, 'pNInz6obpgDQGcFmaJgB-'); // 21 characters: not an id
    expect(seen.map((s) => s.voice)).toEqual([RACHEL, ADAM, ADAM]);
    expect(seen[0]?.body).toMatchObject({ model_id: 'eleven_turbo_v2_5' });
    expect(seen[0]?.query.get('optimize_streaming_latency')).toBe('2');
  });

  it('empty or whitespace text yields nothing and sends no request', async () => {
    handler = (_req, res) => res.writeHead(200).end(le(ramp(10)));
    expect(await collect(tts(), 'slt', new AbortController().signal, '  \n\t ')).toEqual([]);
    expect(await collect(tts(), 'slt', new AbortController().signal, '')).toEqual([]);
    expect(seen).toHaveLength(0);
  });

  it('abort mid-stream returns quietly and the server sees the connection close', async () => {
    let closed: () => void = () => undefined;
    const sawClose = new Promise<void>((r) => (closed = r));
    handler = (req, res) => {
      res.writeHead(200, { 'content-type': 'audio/pcm' });
      const t = setInterval(() => res.write(le(ramp(320))), 20);
      req.socket.on('close', () => {
        clearInterval(t);
        closed();
      });
    };
    const abort = new AbortController();
    let n = 0;
    for await (const _c of tts().synthesize({ text: 'A long answer.', voice: 'slt', signal: abort.signal })) {
      if (++n === 2) abort.abort();
    }
    expect(n).toBe(2);
    await sawClose;
  });

  it('401 is CG_TTS_FAILED, permanent, and the key appears nowhere in the error', async () => {
    const err = await rejection(collect(new ElevenLabsTts({ baseUrl, apiKey: 'sk_wrong_key_do_not_log', maxRetries: 0 })));
    expect(err.code).toBe('CG_TTS_FAILED');
    expect(err.details).toEqual({ status: 401, permanent: true });
    expect(err.message).toContain('Invalid API key');
    expect(JSON.stringify(err.toJSON()) + err.message).not.toContain('sk_wrong_key_do_not_log');
  });

  it('429 carries Retry-After; 500 is CG_TTS_FAILED, not permanent', async () => {
    handler = (_req, res) => res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '7' }).end(JSON.stringify({ detail: { status: 'too_many_concurrent_requests', message: 'busy' } }));
    const limited = await rejection(collect(tts({ maxRetries: 0 })));
    expect(limited.code).toBe('CG_TTS_FAILED');
    expect(limited.details).toEqual({ status: 429, retryAfter: 7, permanent: false });

    handler = (_req, res) => res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ detail: 'boom' }));
    const broken = await rejection(collect(tts({ maxRetries: 0 })));
    expect(broken.code).toBe('CG_TTS_FAILED');
    expect(broken.details).toEqual({ status: 500, permanent: false });
    expect(seen).toHaveLength(2); // maxRetries 0 reached the SDK: no retry
  });

  it('maxRetries lets the SDK retry a 503 before the first byte', async () => {
    handler = (_req, res) => {
      if (seen.length === 1) res.writeHead(503, { 'content-type': 'application/json' }).end('{}');
      else res.writeHead(200, { 'content-type': 'audio/pcm' }).end(le(ramp(100)));
    };
    expect(joined(await collect(tts({ maxRetries: 1 })))).toEqual(ramp(100));
    expect(seen).toHaveLength(2);
  });

  it('no first byte within firstByteTimeoutMs is CG_TTS_TIMEOUT, whether headers came or not', async () => {
    for (const sendHeaders of [false, true]) {
      handler = (_req, res) => {
        if (sendHeaders) res.writeHead(200, { 'content-type': 'audio/pcm' }).flushHeaders();
      };
      const started = Date.now();
      const err = await rejection(collect(tts({ firstByteTimeoutMs: 300, maxRetries: 0 })));
      const took = Date.now() - started;
      expect(err.code).toBe('CG_TTS_TIMEOUT');
      expect(took).toBeGreaterThanOrEqual(280);
      expect(took).toBeLessThan(900);
    }
  });

  it('a long Retry-After backoff inside the SDK neither outlives the deadline nor delays an abort', async () => {
    handler = (_req, res) => res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '30' }).end('{}');
    let started = Date.now();
    const err = await rejection(collect(tts({ firstByteTimeoutMs: 300, maxRetries: 1 })));
    expect(err.code).toBe('CG_TTS_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(900);

    const abort = new AbortController();
    setTimeout(() => abort.abort(), 100);
    started = Date.now();
    expect(await collect(tts({ maxRetries: 1 }), 'slt', abort.signal)).toEqual([]);
    expect(Date.now() - started).toBeLessThan(600);
  });

  it('ulaw_8000 is requested and expanded to 8 kHz PCM', async () => {
    const source = ramp(801);
    const codes = Uint8Array.from(source, (s) => linearToMulaw(s));
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'audio/basic' });
      res.write(codes.subarray(0, 333));
      setTimeout(() => res.end(codes.subarray(333)), 10);
    };
    const chunks = await collect(tts({ outputFormat: 'ulaw_8000' }));
    expect(seen[0]?.query.get('output_format')).toBe('ulaw_8000');
    expect(chunks.every((c) => c.sampleRate === 8000)).toBe(true);
    expect(chunks.length).toBeGreaterThanOrEqual(2);
    expect(joined(chunks)).toEqual(Int16Array.from(codes, (c) => mulawToLinear(c)));
  });
});
