import { pino } from 'pino';
import { errorCatalogue } from '../../src/errors.js';
import { startAdminApp, type TestAdminApp } from '../../src/http/testing/testKit.js';
import { CallTokenStore } from '../../src/tenants/CallTokenStore.js';
import { connectRedis } from '../../src/tenants/redisClient.js';
import { parseBrowserOffer } from '../../src/webrtc/browserOffer.js';
import { check, describeText, InvariantViolation, type FuzzTarget } from '../engine.js';
import { mutateJson, mutateText, randomText, type Rng } from '../mutate.js';
import { sdpSeeds } from './sdp.js';

/**
 * The admin API's request bodies (src/http/adminApp.ts and its routes) through app.inject(), against
 * the real Redis at 127.0.0.1:6379 under a fresh test prefix (src/http/testing/testKit.ts). Every refusal must
 * be a 4xx in the one error shape with a catalogue code; a 5xx or no answer in time is a crash; an
 * accepted body must not come back with a secret it carried. Every key under the prefix is deleted
 * at the end, and the deletion is checked.
 */
export interface ApiCase {
  readonly route: string;
  readonly method: 'POST' | 'PATCH';
  readonly url: string;
  readonly contentType: string | undefined;
  /** Raw body text (invalid JSON included); undefined sends none. */
  readonly body: string | undefined;
  readonly auth: 'admin' | 'tenant' | 'bad';
  readonly origin: string | undefined;
}

/** Fixtures every case can address: created at open through the API itself. */
const TENANT = 'fuzz-tenant';
const TRUNK = 'fuzz-trunk';
const CALL_URL = 'fuzz-url';
const NUMBER = '+15005550100';

const SECRET = 'fuzz-secret-must-never-be-echoed';

/** Limits far above what the run sends: the fuzzer exercises bodies, not the rate limiter. */
const NO_LIMIT = 1e9;

interface Route {
  readonly name: string;
  readonly method: 'POST' | 'PATCH';
  /** `{}` is where the path parameter goes. */
  readonly path: string;
  readonly param: string;
  /** A valid body for this route (fresh ids, so creates are not all refused as duplicates). */
  readonly body: (rng: Rng) => unknown;
}

const tenantBody = (id: string): Record<string, unknown> => ({
  id,
  displayName: "Joe's Pizza",
  agentName: 'Ava',
  greeting: "Hi, I'm {{agentName}} from {{business}}, {{name|friend}}.",
  systemPrompt: 'You are Ava.',
  voice: 'slt',
  language: 'en-US',
  providers: { stt: 'pocketsphinx', llm: ['openai', 'scripted'], tts: 'flite', models: { llm: 'gpt-4o-mini' } },
  providerKeys: { openai: SECRET },
  turn: { endpointingMs: 500, bargeIn: true, noInputMs: 5000, maxReprompts: 2 },
  intents: [{ name: 'hours', phrases: ['when do you open'], reply: 'At eleven.', dtmf: '1' }],
  fallbackReply: 'Sorry?',
  goodbye: { phrases: ['goodbye'], reply: 'Bye!' },
  maxCallDurationMs: 600_000,
  maxConcurrentCalls: 5,
});

const callUrlBody = (slug: string | undefined): Record<string, unknown> => ({
  ...(slug ? { slug } : {}),
  variables: { name: 'Sam', 'order.id': '42' },
  expiresAt: '2031-05-01T12:00:00+02:00',
  maxUses: 100,
  allowedOrigins: ['https://shop.example', 'http://127.0.0.1:8080'],
  enabled: true,
});

const trunkBody = (name: string): Record<string, unknown> => ({
  name,
  sourceCidrs: ['203.0.113.0/24', '2001:db8::/48'],
  // The fixture number is pinned to the trunk and the call routes dial through it: both need the tenant listed.
  tenants: [TENANT],
  auth: { username: 'gateway', password: SECRET },
  outbound: { host: 'sip.carrier.example', port: 5060, transport: 'udp', callerId: '+14155550199' },
});

/** A random subset of an object's fields (PATCH bodies), never empty. */
function some(rng: Rng, full: Record<string, unknown>): Record<string, unknown> {
  const entries = Object.entries(full).filter(() => rng.bool(0.3));
  return Object.fromEntries(entries.length > 0 ? entries : [rng.pick(Object.entries(full))]);
}

const uniq = (rng: Rng, prefix: string): string => `${prefix}-${rng.int(2 ** 31).toString(36)}`;
const e164 = (rng: Rng): string => `+1${rng.range(200, 999)}${rng.range(1_000_000, 9_999_999)}`;

function routes(offers: readonly string[]): Route[] {
  return [
    { name: 'tenant-create', method: 'POST', path: '/v1/tenants', param: '', body: (rng) => (rng.bool() ? tenantBody(uniq(rng, 'fz')) : { id: uniq(rng, 'fz'), displayName: 'X' }) },
    { name: 'tenant-patch', method: 'PATCH', path: '/v1/tenants/{}', param: TENANT, body: (rng) => some(rng, { ...tenantBody(TENANT), providerKeys: { openai: SECRET, deepgram: null } }) },
    { name: 'call-url-create', method: 'POST', path: '/v1/tenants/{}/call-urls', param: TENANT, body: (rng) => callUrlBody(rng.bool(0.8) ? uniq(rng, 'u') : undefined) },
    { name: 'call-url-patch', method: 'PATCH', path: `/v1/tenants/${TENANT}/call-urls/{}`, param: CALL_URL, body: (rng) => some(rng, { ...callUrlBody(undefined), maxUses: null }) },
    { name: 'number-create', method: 'POST', path: '/v1/tenants/{}/numbers', param: TENANT, body: (rng) => (rng.bool() ? { number: e164(rng), trunk: TRUNK } : { number: `sip:${uniq(rng, 'n')}@Example.COM;transport=tcp` }) },
    { name: 'number-patch', method: 'PATCH', path: `/v1/tenants/${TENANT}/numbers/{}`, param: NUMBER, body: (rng) => some(rng, { trunk: rng.bool() ? TRUNK : null, tenantId: TENANT, number: NUMBER }) },
    { name: 'trunk-create', method: 'POST', path: '/v1/trunks', param: '', body: (rng) => trunkBody(uniq(rng, 'tr')) },
    { name: 'trunk-patch', method: 'PATCH', path: '/v1/trunks/{}', param: TRUNK, body: (rng) => some(rng, { ...trunkBody(TRUNK), auth: rng.bool() ? { username: 'other' } : { password: SECRET } }) },
    { name: 'key-create', method: 'POST', path: '/v1/tenants/{}/keys', param: TENANT, body: (rng) => (rng.bool() ? { name: 'billing export' } : {}) },
    { name: 'call-token', method: 'POST', path: '/v1/call-urls/{}/token', param: CALL_URL, body: () => ({}) },
    { name: 'webrtc-offer', method: 'POST', path: '/v1/webrtc/offer', param: '', body: (rng) => ({ token: 'x'.repeat(22), sdp: rng.pick(offers) }) },
    { name: 'call-admin', method: 'POST', path: '/v1/calls', param: '', body: () => ({ tenant: TENANT, to: '+14155550123', trunk: TRUNK, variables: { name: 'Sam' } }) },
    { name: 'call-tenant', method: 'POST', path: '/v1/tenants/{}/calls', param: TENANT, body: () => ({ to: '+14155550123', trunk: TRUNK }) },
  ];
}

const JSON_KEYS = ['id', 'displayName', 'greeting', 'providerKeys', 'providers', 'intents', 'turn', 'variables', 'allowedOrigins', 'maxUses', 'expiresAt', 'auth', 'password', 'sourceCidrs', 'tenants', 'outbound', 'trunk', 'tenantId', 'number', 'slug', 'sdp', 'token', 'name'];
const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'application/merge-patch+json', ''];
const ORIGINS = ['https://shop.example', 'https://SHOP.example:443/', 'null', 'http://127.0.0.1:8080', 'not a url', 'https://evil.example', 'javascript:alert(1)', '\u0000'];

export const apiTarget: FuzzTarget<ApiCase> = {
  name: 'api',
  about: 'admin API POST/PATCH bodies (tenants, call URLs, numbers, trunks, keys, call tokens, calls, webrtc offer) via app.inject on real Redis; 5xx or no answer in 1 s is a crash',
  async open() {
    let tokens: CallTokenStore | undefined;
    const t: TestAdminApp = await startAdminApp({
      logger: pino({ level: 'silent' }),
      rateLimit: { perIp: NO_LIMIT, perKey: NO_LIMIT, previewPerKey: NO_LIMIT },
      callTokens: { perIp: NO_LIMIT },
      webrtcRoute: { perIp: NO_LIMIT },
      // The door's own checks without its media: the offer as parseBrowserOffer sees it, the token as the store redeems it.
      webrtc: {
        async answer(offer) {
          parseBrowserOffer(offer.sdp);
          await tokens!.redeem(offer.token, offer.origin === undefined ? {} : { origin: offer.origin });
          return { callId: 'web-fuzz', sdp: 'v=0\r\n' };
        },
      },
      dialer: { dial: async () => ({ callId: 'out-fuzz' }) },
    });
    tokens = new CallTokenStore(t.redis, { prefix: t.prefix });
    const tenantKey = await createFixtures(t);
    const table = routes(sdpSeeds().slice(0, 2).concat(parseableOffers()));

    return {
      generate(rng: Rng): ApiCase {
        const route = rng.pick(table);
        const param = route.param && rng.bool(0.1) ? mutateText(rng, route.param, { maxLength: 300, maxRounds: 2 }) : route.param;
        // Lone surrogates cannot be percent-encoded; a client could not send them either.
        const url = route.path.replace('{}', encodeURIComponent(param.replace(/[\ud800-\udfff]/g, '\ufffd')));
        const seed = route.body(rng);
        const r = rng.float();
        const body =
          r < 0.05
            ? undefined
            : r < 0.12
              ? JSON.stringify(seed)
              : r < 0.8
                ? mutateJson(rng, seed, { keys: JSON_KEYS })
                : r < 0.95
                  ? mutateText(rng, JSON.stringify(seed), { maxLength: 64 * 1024, dictionary: ['{', '}', '[', ']', '"', ':', ',', 'null', '"__proto__":', '\\u0000'] })
                  : randomText(rng, rng.length(2000));
        return {
          route: route.name,
          method: route.method,
          url,
          contentType: body === undefined ? undefined : rng.bool(0.9) ? 'application/json' : rng.pick(CONTENT_TYPES),
          body,
          auth: rng.bool(0.9) ? 'admin' : rng.bool(0.8) ? 'tenant' : 'bad',
          origin: route.name === 'call-token' || route.name === 'webrtc-offer' ? (rng.bool(0.3) ? undefined : rng.pick(ORIGINS)) : undefined,
        };
      },
      async run(c: ApiCase) {
        const headers: Record<string, string> = { authorization: `Bearer ${c.auth === 'admin' ? t.token : c.auth === 'tenant' ? tenantKey : 'cgk_000000000000_nope'}` };
        if (c.contentType) headers['content-type'] = c.contentType;
        if (c.origin !== undefined) headers['origin'] = c.origin;
        const res = await t.app.inject({ method: c.method, url: c.url, headers, ...(c.body === undefined ? {} : { payload: c.body }) });
        if (res.statusCode >= 500) throw new InvariantViolation(`HTTP ${res.statusCode} from ${c.route}: ${res.body.slice(0, 200)}`);
        if (res.statusCode >= 200 && res.statusCode < 300) {
          // A secret goes in; only {set, last4} may come out (unless a mutation moved it into a field that is echoed).
          if (secretOnlyWhereSecretsGo(c.body)) check(!res.body.includes(SECRET), `${c.route} echoed a provider key or trunk password`);
          return 'accepted';
        }
        let code: unknown;
        try {
          code = (JSON.parse(res.body) as { code?: unknown }).code;
        } catch {
          throw new InvariantViolation(`HTTP ${res.statusCode} from ${c.route} without a JSON error body: ${res.body.slice(0, 120)}`);
        }
        check(typeof code === 'string' && Object.hasOwn(errorCatalogue, code), `HTTP ${res.statusCode} from ${c.route} with code ${String(code)}`);
        return 'rejected';
      },
      isTyped: () => false,
      describe: (c: ApiCase) => `${c.method} ${c.url} (${c.auth}, ${c.contentType ?? 'no content-type'}${c.origin === undefined ? '' : `, origin ${JSON.stringify(c.origin)}`}) ${c.body === undefined ? 'no body' : describeText(c.body)}`,
      async close() {
        const prefix = t.prefix;
        await t.close();
        await assertPrefixEmpty(prefix);
      },
    };
  },
};

/** True when every occurrence of SECRET in the body is a provider key value or an auth password. */
function secretOnlyWhereSecretsGo(body: string | undefined): boolean {
  if (body === undefined || !body.includes(SECRET)) return true;
  let root: unknown;
  try {
    root = JSON.parse(body);
  } catch {
    return false;
  }
  // Iterative: bodies may be nested 100 000 deep.
  const stack: { value: unknown; key: string; parent: string }[] = [{ value: root, key: '', parent: '' }];
  while (stack.length > 0) {
    const { value, key, parent } = stack.pop()!;
    if (typeof value === 'string') {
      if (value.includes(SECRET) && !(parent === 'providerKeys' || (parent === 'auth' && key === 'password'))) return false;
    } else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        if (k.includes(SECRET)) return false;
        stack.push({ value: v, key: k, parent: key });
      }
    }
  }
  return true;
}

/** The tenant, trunk, call URL and number every case addresses, and a key of the tenant. */
async function createFixtures(t: TestAdminApp): Promise<string> {
  const steps: [string, string, unknown][] = [
    ['POST', '/v1/tenants', tenantBody(TENANT)],
    ['POST', '/v1/trunks', trunkBody(TRUNK)],
    ['POST', `/v1/tenants/${TENANT}/call-urls`, { ...callUrlBody(CALL_URL), allowedOrigins: [] }],
    ['POST', `/v1/tenants/${TENANT}/numbers`, { number: NUMBER, trunk: TRUNK }],
    ['POST', `/v1/tenants/${TENANT}/keys`, { name: 'fuzz' }],
  ];
  let key = '';
  for (const [method, url, body] of steps) {
    const res = await t.app.inject({ method: method as 'POST', url, headers: { authorization: `Bearer ${t.token}` }, payload: body as object });
    if (res.statusCode !== 201) throw new Error(`fuzz fixture ${method} ${url}: HTTP ${res.statusCode} ${res.body}`);
    key = (JSON.parse(res.body) as { key?: string }).key ?? key;
  }
  return key;
}

/** Browser offers that pass parseBrowserOffer, so the token check behind it is reached too. */
function parseableOffers(): string[] {
  return [
    [
      'v=0',
      'o=- 1 2 IN IP4 127.0.0.1',
      's=-',
      't=0 0',
      'a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4C:2A:CA:FB:0E:F4:FD:47:DD:5B:5A:2E',
      'a=ice-ufrag:Zk3o',
      'a=ice-pwd:3QnMH0w6kPeRyq7yAyWqjq4A',
      'm=audio 9 UDP/TLS/RTP/SAVPF 111',
      'c=IN IP4 0.0.0.0',
      'a=mid:0',
      'a=rtpmap:111 opus/48000/2',
      '',
    ].join('\r\n'),
  ];
}

/** Checks, on a connection of its own, that nothing is left under the run's prefix. */
async function assertPrefixEmpty(prefix: string): Promise<void> {
  const redis = await connectRedis({ prefix });
  try {
    let left = 0;
    for await (const batch of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) left += Array.isArray(batch) ? batch.length : 1;
    if (left > 0) throw new Error(`fuzz api: ${left} Redis keys left under ${prefix}`);
  } finally {
    await redis.quit();
  }
}
