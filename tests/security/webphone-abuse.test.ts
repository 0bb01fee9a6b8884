import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PromptCache } from '../../src/agent/PromptCache.js';
import { ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { createVad } from '../../src/agent/vad/createVad.js';
import { buildAdminApp, type AdminApp, type AdminAppOptions } from '../../src/http/adminApp.js';
import { sharedMediaClock } from '../../src/media/MediaClock.js';
import { dbfs } from '../../src/media/signal.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/testing/FakeProviders.js';
import { CallLimiter } from '../../src/tenants/CallLimiter.js';
import { CallRecordStore, type CallRecord } from '../../src/tenants/CallRecordStore.js';
import { CallTokenStore } from '../../src/tenants/CallTokenStore.js';
import { CallUrlStore } from '../../src/tenants/CallUrlStore.js';
import { connectRedis, deletePrefix, testPrefix, type Redis } from '../../src/tenants/redisClient.js';
import { SecretBox } from '../../src/tenants/secrets.js';
import { TenantCache } from '../../src/tenants/TenantCache.js';
import { TenantStore } from '../../src/tenants/TenantStore.js';
import { BrowserPeer } from '../../src/webrtc/testing/BrowserPeer.js';
import { WebRtcDoor, type WebPhoneEvent } from '../../src/webrtc/WebRtcDoor.js';
import { pollUntil, within } from '../../src/util/testing/wait.js';

/**
 * Issue 9, web phone abuse and the HTTP part of floods: the public routes a call-URL page uses
 * (POST /v1/call-urls/:slug/token, POST /v1/webrtc/offer) over real HTTP on 127.0.0.1, answered by the
 * real direct WebRTC door. Each abuse is refused with its status and code, and nothing is lost: a
 * refused offer holds no line (door and tenant counters), and a caller from another address still
 * gets through. fetch sends from 127.0.0.1 (the abuser); the honest caller's socket is bound to 127.0.0.2.
 */
const ORIGIN = 'https://shop.example';
const OTHER_ORIGIN = 'https://evil.example';
const CALLER = '127.0.0.2';
const GREETING = 'Hello Dana, this is Ava at Demo Bakery.';
/** Per-IP budgets the tests that are not about them never reach. */
const ROOMY = { callTokens: { perIp: 1000 }, webrtcRoute: { perIp: 1000 } } as const;

interface Reply {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly retryAfter: string | undefined;
}

interface Send {
  /** Source address the client socket binds to; absent: fetch from 127.0.0.1. */
  readonly from?: string;
  readonly origin?: string;
  /** Sent as JSON; `raw` is sent as it is, with `contentType`. */
  readonly json?: unknown;
  readonly raw?: string;
  readonly contentType?: string;
}

function parsed(text: string): Record<string, unknown> {
  if (!text) return {};
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { unparsed: text.slice(0, 200) };
  }
}

async function post(url: string, s: Send = {}): Promise<Reply> {
  const payload = s.json === undefined ? s.raw : JSON.stringify(s.json);
  const headers: Record<string, string> = {
    ...(s.origin === undefined ? {} : { origin: s.origin }),
    ...(payload === undefined ? {} : { 'content-type': s.contentType ?? 'application/json' }),
  };
  if (s.from === undefined) {
    const res = await fetch(url, { method: 'POST', headers, body: payload });
    return { status: res.status, body: parsed(await res.text()), retryAfter: res.headers.get('retry-after') ?? undefined };
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers, localAddress: s.from }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const retryAfter = res.headers['retry-after'];
        resolve({ status: res.statusCode ?? 0, body: parsed(Buffer.concat(chunks).toString()), retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What the tests measured, printed as one JSON line at the end (copied to the notes by hand). */
const figures: Record<string, unknown> = {};

describe('web phone abuse over HTTP and the direct WebRTC door', () => {
  const prefix = testPrefix();
  let redis: Redis;
  let door: WebRtcDoor;
  let urls: CallUrlStore;
  let records: CallRecordStore;
  let limiter: CallLimiter;
  let cache: TenantCache;
  const peers: BrowserPeer[] = [];
  const apps: AdminApp[] = [];

  beforeAll(async () => {
    redis = await connectRedis({ prefix });
    const tenants = new TenantStore(redis, new SecretBox(randomBytes(32)), { prefix });
    const greeting = 'Hello {{visitor|there}}, this is {{agentName}} at {{business}}.';
    await tenants.create({ id: 'bakery', displayName: 'Demo Bakery', greeting, maxConcurrentCalls: 6 });
    await tenants.create({ id: 'tiny', displayName: 'Tiny Shop', greeting, maxConcurrentCalls: 1 });
    urls = new CallUrlStore(redis, { prefix });
    const dana = { visitor: 'Dana' };
    await urls.create({ slug: 'shop', tenantId: 'bakery', variables: dana, allowedOrigins: [ORIGIN] });
    await urls.create({ slug: 'open', tenantId: 'bakery', variables: dana });
    await urls.create({ slug: 'twice', tenantId: 'bakery', maxUses: 2 });
    await urls.create({ slug: 'old', tenantId: 'bakery', expiresAt: '2020-01-01T00:00:00Z' });
    await urls.create({ slug: 'off', tenantId: 'bakery', enabled: false });
    await urls.create({ slug: 'later', tenantId: 'bakery' });
    await urls.create({ slug: 'tiny', tenantId: 'tiny' });
    await urls.create({ slug: 'tiny-once', tenantId: 'tiny', maxUses: 1 });
    records = new CallRecordStore(redis, { prefix });
    limiter = new CallLimiter(redis, { prefix });
    cache = new TenantCache(tenants, redis, { prefix });
    door = new WebRtcDoor({
      tokens: new CallTokenStore(redis, { prefix }),
      tenants: cache,
      limiter,
      records,
      providers: new ProviderRegistry({
        stt: { pocketsphinx: () => new FakeStt({ transcripts: [] }) },
        llm: { scripted: () => new FakeLlm({ reply: () => 'We open at eight.' }) },
        tts: { flite: () => new FakeTts({ msPerChar: 30 }) },
      }),
      prompts: new PromptCache(),
      createVad: () => createVad(),
      clock: sharedMediaClock(),
      endpoint: { portRange: { min: 47000, max: 47999 } },
    });
  });

  afterAll(async () => {
    for (const p of peers) p.close();
    await door?.drain();
    for (const app of apps) await app.close();
    await records?.close(500);
    await cache?.close();
    if (redis) {
      await deletePrefix(redis, prefix);
      await redis.quit();
    }
    console.info(JSON.stringify({ webphoneAbuseFigures: figures }));
  });

  /** The public API with the door, listening on 127.0.0.1, over this file's Redis prefix. */
  async function startApi(options: Pick<AdminAppOptions, 'callTokens' | 'webrtcRoute'>): Promise<string> {
    const app = await buildAdminApp({ redis, prefix, secrets: new SecretBox(randomBytes(32)), adminToken: randomBytes(24).toString('base64url'), webrtc: door, ...options });
    apps.push(app);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    if (!address || typeof address === 'string') throw new Error('no address');
    return `http://127.0.0.1:${address.port}`;
  }

  const askToken = (base: string, slug: string, s: Send = { origin: ORIGIN }): Promise<Reply> => post(`${base}/v1/call-urls/${slug}/token`, s);

  function tokenOf(reply: Reply): string {
    expect(reply).toMatchObject({ status: 201, body: { token: expect.any(String) } });
    return reply.body['token'] as string;
  }

  function page(name: string): BrowserPeer {
    const peer = new BrowserPeer({ name, dataChannel: true, sampleRate: 16000 });
    peers.push(peer);
    return peer;
  }

  /** An offer SDP a browser would send, for requests that must get past the SDP check to the token. */
  async function realOfferSdp(): Promise<string> {
    const peer = page('sdp-only');
    const sdp = await peer.createOffer();
    peer.close();
    return sdp;
  }


  /** A fresh page posts its offer with `token`; when answered, it connects and waits for the greeting's first audio. */
  async function offer(base: string, token: string, s: Omit<Send, 'json' | 'raw'> = { origin: ORIGIN }): Promise<{ reply: Reply; peer: BrowserPeer; answerMs: number }> {
    const peer = page('page');
    const sdp = await peer.createOffer();
    const posted = performance.now();
    const reply = await post(`${base}/v1/webrtc/offer`, { ...s, json: { token, sdp } });
    const answerMs = performance.now() - posted;
    if (reply.status === 201) {
      await peer.setAnswer(reply.body['sdp'] as string);
      await within(peer.connected, 5000, 'DTLS-SRTP to the gateway');
      // Hang up only once the greeting plays, as a person would (the page's channel is up by then).
      await pollUntil(() => peer.receivedAudio().length, (n) => n >= 3200, 3000, 20);
    }
    return { reply, peer, answerMs };
  }

  const rejected = async (tenantId: string): Promise<CallRecord[]> => (await records.list(tenantId, { limit: 500 })).records.filter((r) => r.outcome === 'rejected');

  /** Door and tenant counters once released calls have given their lines back. */
  async function linesAfterRelease(): Promise<{ door: number; bakery: number; tiny: number }> {
    const read = async () => ({ door: door.activeCalls, bakery: await limiter.active('bakery'), tiny: await limiter.active('tiny') });
    return pollUntil(read, (n) => n.door === 0 && n.bakery === 0 && n.tiny === 0, 5000);
  }

  const idle = { door: 0, bakery: 0, tiny: 0 };

  // A test that fails midway must not leave calls up for the next one to count.
  afterEach(async () => {
    for (const p of peers.splice(0)) p.close();
    await linesAfterRelease();
  });

  it('a token starts one call: replayed, or raced by two pages, it is refused with 401 and holds no line', async () => {
    const base = await startApi(ROOMY);
    const before = (await rejected('bakery')).length;
    const token = tokenOf(await askToken(base, 'shop'));
    const first = await offer(base, token);
    expect(first.reply.status).toBe(201);
    const replay = await offer(base, token);
    expect(replay.reply).toMatchObject({ status: 401, body: { code: 'CG_CALL_TOKEN_INVALID' } });

    // Two pages presenting one token at once: exactly one call.
    const raced = tokenOf(await askToken(base, 'shop'));
    const both = await Promise.all([offer(base, raced), offer(base, raced)]);
    expect(both.map((b) => b.reply.status).sort()).toEqual([201, 401]);
    expect(door.activeCalls).toBe(2);
    expect(await limiter.active('bakery')).toBe(2);
    expect((await urls.get('shop')).uses).toBe(2);

    for (const p of [first.peer, ...both.map((b) => b.peer)]) p.close();
    expect(await linesAfterRelease()).toEqual(idle);
    // A spent token names no tenant to the door: no record.
    expect((await rejected('bakery')).length).toBe(before);
  }, 20_000);

  it('an expired token (a 150 ms TTL) is refused with 401 and starts nothing', async () => {
    const base = await startApi({ ...ROOMY, callTokens: { perIp: 1000, ttlMs: 150 } });
    const issued = await askToken(base, 'shop');
    const token = tokenOf(issued);
    expect(Date.parse(issued.body['expiresAt'] as string) - Date.now()).toBeLessThanOrEqual(150);
    await sleep(400);
    const late = await offer(base, token);
    expect(late.reply).toMatchObject({ status: 401, body: { code: 'CG_CALL_TOKEN_INVALID' } });
    expect(await linesAfterRelease()).toEqual(idle);
  });

  it('origins: a page from another origin gets no token, and a token is refused from another origin or without one', async () => {
    const base = await startApi(ROOMY);
    expect(await askToken(base, 'shop', { origin: OTHER_ORIGIN })).toMatchObject({ status: 403, body: { code: 'CG_CALL_URL_ORIGIN' } });
    expect(await askToken(base, 'shop', {})).toMatchObject({ status: 403, body: { code: 'CG_CALL_URL_ORIGIN' } });

    // Bound to ORIGIN, offered from another: refused, and spent by the attempt (single use means once).
    const stolen = tokenOf(await askToken(base, 'shop'));
    expect((await offer(base, stolen, { origin: OTHER_ORIGIN })).reply).toMatchObject({ status: 401, body: { code: 'CG_CALL_TOKEN_INVALID' } });
    expect((await offer(base, stolen)).reply).toMatchObject({ status: 401, body: { code: 'CG_CALL_TOKEN_INVALID' } });
    // No Origin header is no origin, not any: a token bound to one is refused (browsers always send it on POST).
    const bound = tokenOf(await askToken(base, 'shop'));
    expect((await offer(base, bound, {})).reply).toMatchObject({ status: 401, body: { code: 'CG_CALL_TOKEN_INVALID' } });
    // A URL open to any page binds the token to the page's origin all the same.
    const anyPage = tokenOf(await askToken(base, 'open'));
    expect((await offer(base, anyPage, {})).reply).toMatchObject({ status: 401, body: { code: 'CG_CALL_TOKEN_INVALID' } });
    // A client that sends no Origin at all, either time, still calls.
    const noOrigin = await offer(base, tokenOf(await askToken(base, 'open', {})), {});
    expect(noOrigin.reply.status).toBe(201);
    noOrigin.peer.close();
    expect(await linesAfterRelease()).toEqual(idle);
  }, 20_000);

  it("a call URL's rules: used up 410, expired 410, disabled 403, at the token route and when a held token is offered", async () => {
    const base = await startApi(ROOMY);
    const before = (await rejected('bakery')).length;
    expect(await askToken(base, 'no-such-slug')).toMatchObject({ status: 404, body: { code: 'CG_CALL_URL_NOT_FOUND' } });
    expect(await askToken(base, 'old')).toMatchObject({ status: 410, body: { code: 'CG_CALL_URL_EXPIRED' } });
    expect(await askToken(base, 'off')).toMatchObject({ status: 403, body: { code: 'CG_CALL_URL_DISABLED' } });

    // maxUses 2: tokens are free (a page load counts no use), calls count.
    const held = [tokenOf(await askToken(base, 'twice')), tokenOf(await askToken(base, 'twice')), tokenOf(await askToken(base, 'twice'))];
    const calls = [await offer(base, held[0]!), await offer(base, held[1]!)];
    expect(calls.map((c) => c.reply.status)).toEqual([201, 201]);
    expect(await askToken(base, 'twice')).toMatchObject({ status: 410, body: { code: 'CG_CALL_URL_EXHAUSTED' } });
    expect((await offer(base, held[2]!)).reply).toMatchObject({ status: 410, body: { code: 'CG_CALL_URL_EXHAUSTED' } });
    expect((await urls.get('twice')).uses).toBe(2);

    // Disabled, or expired, after the page got its token.
    const beforeOff = tokenOf(await askToken(base, 'later'));
    await urls.update('later', { enabled: false });
    expect((await offer(base, beforeOff)).reply).toMatchObject({ status: 403, body: { code: 'CG_CALL_URL_DISABLED' } });
    await urls.create({ slug: 'soon', tenantId: 'bakery', expiresAt: new Date(Date.now() + 300).toISOString() });
    const beforeExpiry = tokenOf(await askToken(base, 'soon'));
    await sleep(400);
    expect(await askToken(base, 'soon')).toMatchObject({ status: 410, body: { code: 'CG_CALL_URL_EXPIRED' } });
    expect((await offer(base, beforeExpiry)).reply).toMatchObject({ status: 410, body: { code: 'CG_CALL_URL_EXPIRED' } });

    expect(door.activeCalls).toBe(2);
    expect(await limiter.active('bakery')).toBe(2);
    for (const c of calls) c.peer.close();
    expect(await linesAfterRelease()).toEqual(idle);
    // These three tokens were real and named the tenant: each refused offer has a 'rejected' record.
    const refusedNow = (await rejected('bakery')).slice(0, (await rejected('bakery')).length - before);
    expect(refusedNow.map((r) => `${r.from} ${r.error?.code}`).sort()).toEqual(['web:later CG_CALL_URL_DISABLED', 'web:soon CG_CALL_URL_EXPIRED', 'web:twice CG_CALL_URL_EXHAUSTED']);
  }, 20_000);

  it("a tenant at its call limit: 429 CG_CALL_LIMIT_REACHED, a 'rejected' record, and the line count stays at the limit", async () => {
    const base = await startApi(ROOMY);
    const busy = await offer(base, tokenOf(await askToken(base, 'tiny')));
    expect(busy.reply.status).toBe(201);
    const refused = await offer(base, tokenOf(await askToken(base, 'tiny-once')));
    expect(refused.reply).toMatchObject({ status: 429, body: { code: 'CG_CALL_LIMIT_REACHED' } });
    expect(await rejected('tiny')).toEqual([
      expect.objectContaining({ door: 'webrtc', outcome: 'rejected', from: 'web:tiny-once', error: expect.objectContaining({ code: 'CG_CALL_LIMIT_REACHED' }) }),
    ]);
    expect(door.activeCalls).toBe(1);
    expect(await limiter.active('tiny')).toBe(1);
    // GAP (reported): the refused call spent the URL's only use (redeem counts it before the door asks for a line).
    expect((await urls.get('tiny-once')).uses).toBe(1);
    expect(await askToken(base, 'tiny-once')).toMatchObject({ status: 410, body: { code: 'CG_CALL_URL_EXHAUSTED' } });
    busy.peer.close();
    expect(await linesAfterRelease()).toEqual(idle);
  }, 20_000);

  /** The honest caller: token and offer from 127.0.0.2; answered, connected, and the greeting heard and shown on the page. */
  async function honestCall(base: string): Promise<{ answerMs: number; greetingMs: number; peer: BrowserPeer }> {
    const token = tokenOf(await askToken(base, 'shop', { from: CALLER, origin: ORIGIN }));
    const started = performance.now();
    const call = await offer(base, token, { from: CALLER, origin: ORIGIN });
    expect(call.reply.status).toBe(201);
    const greeting = (): string =>
      call.peer.messages
        .map((m) => JSON.parse(m) as WebPhoneEvent)
        .flatMap((e) => (e.type === 'transcript' && e.role === 'agent' && e.turn === 0 ? [e.text] : []))
        .join(' ');
    expect(await pollUntil(greeting, (g) => g === GREETING, 5000)).toBe(GREETING);
    expect(dbfs(call.peer.receivedAudio())).toBeGreaterThan(-40);
    return { answerMs: call.answerMs, greetingMs: performance.now() - started, peer: call.peer };
  }

  it('token guessing from one address: 401 each, then 429 with Retry-After past the per-IP limit; another address still calls', async () => {
    const base = await startApi({ callTokens: { perIp: 10 }, webrtcRoute: { perIp: 20 } });
    const sdp = await realOfferSdp();
    const guesses: Reply[] = [];
    const started = performance.now();
    let toFirst429Ms: number | undefined;
    for (let i = 0; i < 40; i++) {
      const reply = await post(`${base}/v1/webrtc/offer`, { origin: ORIGIN, json: { token: randomBytes(16).toString('base64url'), sdp } });
      if (reply.status === 429 && toFirst429Ms === undefined) toFirst429Ms = performance.now() - started;
      guesses.push(reply);
    }
    expect(guesses.slice(0, 20).map((g) => [g.status, g.body['code']])).toEqual(Array(20).fill([401, 'CG_CALL_TOKEN_INVALID']));
    for (const g of guesses.slice(20)) {
      expect(g).toMatchObject({ status: 429, body: { code: 'CG_HTTP_RATE_LIMITED', details: { limit: 20 } } });
      expect(Number(g.retryAfter)).toBeGreaterThan(0);
      expect(Number(g.retryAfter)).toBeLessThanOrEqual(60);
    }
    // Probing slugs on the token route from the same address is cut off the same way.
    const probes: number[] = [];
    for (let i = 0; i < 12; i++) probes.push((await askToken(base, `guess-${randomBytes(6).toString('hex')}`)).status);
    expect(probes).toEqual([...Array(10).fill(404), 429, 429]);
    expect(await linesAfterRelease()).toEqual(idle);

    const honest = await honestCall(base);
    expect(door.activeCalls).toBe(1);
    honest.peer.close();
    expect(await linesAfterRelease()).toEqual(idle);
    Object.assign(figures, {
      guessing: {
        guesses: guesses.length,
        refused401: guesses.filter((g) => g.status === 401).length,
        limited429: guesses.filter((g) => g.status === 429).length,
        toFirst429Ms: Math.round(toFirst429Ms ?? -1),
        retryAfterS: Number(guesses.at(-1)?.retryAfter),
        slugProbes404: probes.filter((s) => s === 404).length,
        honestAnswerMs: Math.round(honest.answerMs),
        honestGreetingMs: Math.round(honest.greetingMs),
      },
    });
  }, 20_000);

  it('an offer flood from one address: 429 past the limit, no call started, while a caller from another address completes its call', async () => {
    const base = await startApi({ webrtcRoute: { perIp: 20 } });
    const sdp = await realOfferSdp();
    const flood: { status: number; code: unknown; at: number }[] = [];
    let answeredAt: number | undefined;
    const started = performance.now();
    // Eight at a time; at least 200, and on until the honest call is answered (bounded at 2000).
    const worker = async (): Promise<void> => {
      while (flood.length < 2000 && (flood.length < 200 || answeredAt === undefined)) {
        const slot = flood.length;
        flood.push({ status: 0, code: undefined, at: 0 });
        const reply = await post(`${base}/v1/webrtc/offer`, { origin: ORIGIN, json: { token: randomBytes(16).toString('base64url'), sdp } });
        flood[slot] = { status: reply.status, code: reply.body['code'], at: performance.now() };
      }
    };
    let honestPostedAt = Infinity;
    const honestDuringFlood = async (): Promise<Awaited<ReturnType<typeof honestCall>>> => {
      // The flood is under way (its first refusals are back) before the honest caller posts.
      await pollUntil(() => flood.some((f) => f.at > 0), (seen) => seen, 2000, 5);
      honestPostedAt = performance.now();
      const honest = await honestCall(base);
      answeredAt = performance.now();
      return honest;
    };
    const [, honest] = await Promise.all([Promise.all(Array.from({ length: 8 }, worker)), honestDuringFlood()]);
    const floodEndedAt = performance.now();

    expect(flood.length).toBeGreaterThanOrEqual(200);
    expect(flood.filter((f) => f.status === 401 && f.code === 'CG_CALL_TOKEN_INVALID')).toHaveLength(20);
    expect(flood.filter((f) => f.status === 429 && f.code === 'CG_HTTP_RATE_LIMITED')).toHaveLength(flood.length - 20);
    // The flood was refused before the honest caller started and still came after its call was up.
    expect(flood.some((f) => f.at > 0 && f.at < honestPostedAt)).toBe(true);
    expect(flood.some((f) => f.at > answeredAt!)).toBe(true);
    // Only the honest call holds a line.
    expect(door.activeCalls).toBe(1);
    expect(await limiter.active('bakery')).toBe(1);
    honest.peer.close();
    expect(await linesAfterRelease()).toEqual(idle);
    Object.assign(figures, {
      flood: {
        offers: flood.length,
        refused401: flood.filter((f) => f.status === 401).length,
        limited429: flood.filter((f) => f.status === 429).length,
        durationMs: Math.round(floodEndedAt - started),
        offersPerS: Math.round(flood.length / ((floodEndedAt - started) / 1000)),
        honestAnswerMs: Math.round(honest.answerMs),
        honestGreetingMs: Math.round(honest.greetingMs),
      },
    });
  }, 20_000);

  it('oversize and garbage bodies: refused in the one error shape, never 500, and nothing started', async () => {
    const base = await startApi(ROOMY);
    const usesBefore = (await urls.get('open')).uses;
    const tokenUrl = `${base}/v1/call-urls/open/token`;
    const offerUrl = `${base}/v1/webrtc/offer`;
    // Over the routes' body limits (1 KiB for the token route, which takes no body; 64 KiB for an offer):
    // fastify's own 413/415 refusals keep their status, in the one error shape with fastify's code as details.reason.
    const overMiB = JSON.stringify({ token: 'x', sdp: 'v'.repeat(1024 * 1024 + 1) });
    const tooLarge = { status: 413, code: 'CG_HTTP_BODY_TOO_LARGE', reason: 'FST_ERR_CTP_BODY_TOO_LARGE' };
    const badJson = { status: 400, code: 'CG_HTTP_BAD_REQUEST', reason: 'FST_ERR_CTP_INVALID_JSON_BODY' };
    const mediaType = { status: 415, code: 'CG_HTTP_UNSUPPORTED_MEDIA_TYPE', reason: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' };
    const notObject = { status: 400, code: 'CG_HTTP_BAD_REQUEST' };
    // The offer's own schema.
    const badOffer = { status: 400, code: 'CG_HTTP_BAD_REQUEST' };
    const cases: [string, string, Send, { status: number; code: string; reason?: string }][] = [
      ['token, 1 MiB + JSON', tokenUrl, { raw: overMiB }, tooLarge],
      ['offer, 1 MiB + JSON', offerUrl, { raw: overMiB }, tooLarge],
      ['offer, 1 MB SDP', offerUrl, { json: { token: 'x', sdp: 'v'.repeat(1_000_000) } }, tooLarge],
      ['token, a 2 KB body', tokenUrl, { json: { pad: 'v'.repeat(2048) } }, tooLarge],
      ['offer, a 40 KB SDP (under the route limit, over the schema)', offerUrl, { json: { token: 'x', sdp: 'v'.repeat(40 * 1024) } }, badOffer],
      ['token, broken JSON', tokenUrl, { raw: '{"a":' }, badJson],
      ['offer, broken JSON', offerUrl, { raw: '{"token":' }, badJson],
      ['offer, __proto__ key', offerUrl, { raw: '{"token":"x","sdp":"v","__proto__":{"x":1}}' }, badJson],
      ['token, octet-stream', tokenUrl, { raw: 'v'.repeat(1000), contentType: 'application/octet-stream' }, mediaType],
      ['offer, octet-stream', offerUrl, { raw: 'v=0', contentType: 'application/octet-stream' }, mediaType],
      ['offer, text/plain', offerUrl, { raw: 'v=0\r\n', contentType: 'text/plain' }, notObject],
      ['offer, JSON array', offerUrl, { raw: '[1,2]' }, notObject],
      ['offer, JSON string', offerUrl, { raw: '"v=0"' }, notObject],
      ['offer, JSON null', offerUrl, { raw: 'null' }, badOffer],
      ['offer, unknown field', offerUrl, { json: { token: 'x', sdp: 'v', admin: true } }, badOffer],
      ['offer, token not a string', offerUrl, { json: { token: 42, sdp: 'v' } }, badOffer],
      ['offer, no body', offerUrl, {}, badOffer],
    ];
    for (const [name, url, send, want] of cases) {
      const reply = await post(url, { origin: ORIGIN, ...send });
      const got = { status: reply.status, code: reply.body['code'], ...(want.reason ? { reason: (reply.body['details'] as { reason?: unknown } | undefined)?.reason } : {}) };
      expect({ name, ...got }).toEqual({ name, ...want });
      expect(reply.body['message'], name).toEqual(expect.any(String));
    }
    expect(await linesAfterRelease()).toEqual(idle);
    expect((await urls.get('open')).uses).toBe(usesBefore);
  }, 20_000);

  it("a SIP phone's plain-RTP offer: 422 CG_SDP_NOT_WEBRTC with the reason (not SIP's 488), and the token still calls", async () => {
    const base = await startApi(ROOMY);
    const token = tokenOf(await askToken(base, 'open'));
    // What a desk phone or a carrier offers: plain RTP/AVP, no ICE, no DTLS fingerprint.
    const plainRtp = [
      'v=0', 'o=- 1 1 IN IP4 192.0.2.10', 's=-', 'c=IN IP4 192.0.2.10', 't=0 0',
      'm=audio 4000 RTP/AVP 0 8 101', 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:8 PCMA/8000', 'a=rtpmap:101 telephone-event/8000', 'a=sendrecv', '',
    ].join('\r\n');
    const refused = await post(`${base}/v1/webrtc/offer`, { origin: ORIGIN, json: { token, sdp: plainRtp } });
    expect(refused).toMatchObject({ status: 422, body: { code: 'CG_SDP_NOT_WEBRTC', details: { missing: ['UDP/TLS/RTP/SAVPF', 'a=fingerprint', 'a=ice-ufrag/ice-pwd'] } } });
    // The reason, for the page's developer: what the offer lacks.
    expect(refused.body['message']).toMatch(/without ICE and DTLS-SRTP: the offer is not WebRTC: no UDP\/TLS\/RTP\/SAVPF, a=fingerprint, a=ice-ufrag\/ice-pwd$/);
    expect(door.activeCalls).toBe(0);
    // Refused before the token was redeemed: the page can retry with a real browser offer.
    const call = await offer(base, token);
    expect(call.reply.status).toBe(201);
    call.peer.close();
    expect(await linesAfterRelease()).toEqual(idle);
  }, 20_000);
});
