import { randomBytes } from 'node:crypto';
import { PromptCache } from '../../src/agent/PromptCache.js';
import { ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { createVad } from '../../src/agent/vad/createVad.js';
import { isCallgateError } from '../../src/errors.js';
import { rootLogger } from '../../src/log.js';
import { buildAdminApp, type AdminApp } from '../../src/http/adminApp.js';
import { sharedMediaClock } from '../../src/media/MediaClock.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/testing/FakeProviders.js';
import { CallLimiter } from '../../src/tenants/CallLimiter.js';
import { CallRecordStore } from '../../src/tenants/CallRecordStore.js';
import { CallTokenStore } from '../../src/tenants/CallTokenStore.js';
import { CallUrlStore } from '../../src/tenants/CallUrlStore.js';
import { connectRedis, deletePrefix, testPrefix, type Redis } from '../../src/tenants/redisClient.js';
import { SecretBox } from '../../src/tenants/secrets.js';
import { TenantCache } from '../../src/tenants/TenantCache.js';
import { TenantStore } from '../../src/tenants/TenantStore.js';
import { BrowserPeer } from '../../src/webrtc/testing/BrowserPeer.js';
import { WebRtcDoor } from '../../src/webrtc/WebRtcDoor.js';
import { check, describeText, InvariantViolation, type FuzzTarget } from '../engine.js';
import { mutateText, randomText, seedOrMutant, type Rng } from '../mutate.js';
import { CHROME_OFFER, FIREFOX_OFFER, LIBDATACHANNEL_OFFER } from './browserOffer.js';
import { SDP_DICTIONARY } from './sdp.js';
import { browserOfferCaptures } from '../seeds.js';
import { pollUntil, within } from '../../src/util/testing/wait.js';

/**
 * The live direct WebRTC door, not its parser: each case posts a mutated browser offer with a fresh,
 * valid call token to `POST /v1/webrtc/offer` on a real app and WebRtcDoor (real HTTP on loopback,
 * real Redis under its own prefix, real node-datachannel peers), so what libdatachannel refuses or
 * takes is exercised the way a caller would. A crash is a 5xx, a hang, or an escaped (unhandled)
 * rejection anywhere in the process; every 100 cases a call that was connected at the start must
 * still be receiving the agent's audio and the API must still answer.
 */
const ORIGIN = 'https://fuzz.example';
/** A real Chromium's offer (captured), plus hand-written Chrome and Firefox shapes and libdatachannel's. */
const SEEDS = [...browserOfferCaptures(), CHROME_OFFER, FIREFOX_OFFER, LIBDATACHANNEL_OFFER];
/** What the probe of issue 24 sent, and its neighbours: the lines libdatachannel is strictest about. */
const DICTIONARY = [
  ...SDP_DICTIONARY,
  'a=fingerprint:sha-999 ',
  'a=fingerprint:sha-1 ',
  'a=fingerprint:sha-512 ',
  'AB:CD:EF:01:23:45:67:89',
  ':'.repeat(64),
  'a=candidate:garbage',
  'a=candidate:1 1 UDP 2122317823 127.0.0.1 40000 typ host',
  'a=candidate:2 1 TCP 1518280447 127.0.0.1 9 typ host tcptype active',
  'a=candidate:3 1 UDP 1 127.0.0.1 0 typ relay raddr 127.0.0.1 rport 1',
  'a=end-of-candidates',
  'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
  'a=extmap:4096/sendrecv urn:x',
  'a=extmap-allow-mixed',
  'a=max-message-size:',
  'a=max-message-size:99999999999999999999999',
  'a=sctp-port:',
  'a=setup:active',
  'a=setup:passive',
  'a=setup:holdconn',
  'a=ice-lite',
  'a=ice-options:renomination',
  'a=msid:',
  'a=rid:',
  'a=simulcast:',
  'a=group:BUNDLE ',
  '\r',
];
/** Offers are kept under the route's 32 KiB cap mostly, sometimes over it. */
const MAX_LENGTH = 40 * 1024;
/** How often (in cases) the live call and the API are checked. */
const CHECK_EVERY = 100;

/**
 * Only loopback may ever be a destination: every candidate's address becomes 127.0.0.1 (mDNS names
 * and other hosts too), so ICE checks of a mutated offer cannot leave the machine.
 */
export function loopbackOnly(sdp: string): string {
  return sdp.replace(/^(a=candidate:\S*\s+\S+\s+\S+\s+\S+\s+)(\S+)/gim, (_m, head: string, address: string) =>
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address) ? `${head}${address}` : `${head}127.0.0.1`,
  );
}

interface Live {
  readonly redis: Redis;
  readonly prefix: string;
  readonly app: AdminApp;
  readonly door: WebRtcDoor;
  readonly base: string;
  readonly records: CallRecordStore;
  readonly cache: TenantCache;
  readonly admin: string;
}

/** Warnings and errors only: ten thousand calls' info lines would bury a finding. */
const quiet = rootLogger.child({}, { level: process.env['LOG_LEVEL'] ?? 'warn' });

async function openLive(): Promise<Live> {
  const prefix = testPrefix();
  const redis = await connectRedis({ prefix });
  const secrets = new SecretBox(randomBytes(32));
  const tenants = new TenantStore(redis, secrets, { prefix });
  // The live call's caller says nothing for the whole run: its agent must not hang up for no input
  // (reprompts every minute, ten of them) or for length.
  await tenants.create({
    id: 'fuzz',
    displayName: 'Fuzz Shop',
    greeting: 'Hello, this is the fuzz shop.',
    maxConcurrentCalls: 50,
    turn: { noInputMs: 60_000, maxReprompts: 10 },
    maxCallDurationMs: 4 * 3600_000,
  });
  await new CallUrlStore(redis, { prefix }).create({ slug: 'fuzz-door', tenantId: 'fuzz', allowedOrigins: [ORIGIN] });
  const records = new CallRecordStore(redis, { prefix });
  const cache = new TenantCache(tenants, redis, { prefix });
  const door = new WebRtcDoor({
    tokens: new CallTokenStore(redis, { prefix }),
    tenants: cache,
    limiter: new CallLimiter(redis, { prefix }),
    records,
    providers: new ProviderRegistry({
      stt: { pocketsphinx: () => new FakeStt({ transcripts: [] }) },
      llm: { scripted: () => new FakeLlm({ reply: () => 'Fine.' }) },
      tts: { flite: () => new FakeTts({ msPerChar: 20 }) },
    }),
    prompts: new PromptCache(),
    createVad: () => createVad(),
    clock: sharedMediaClock(),
    endpoint: { portRange: { min: 46000, max: 46999 } },
    logger: quiet,
  });
  const admin = randomBytes(24).toString('base64url');
  // Per-IP budgets far above the case count: every case comes from 127.0.0.1 with its own token.
  const roomy = { perIp: 1_000_000 };
  const app = await buildAdminApp({ redis, prefix, secrets, adminToken: admin, webrtc: door, callTokens: roomy, webrtcRoute: roomy, rateLimit: { perIp: 1_000_000, perKey: 1_000_000 }, logger: quiet });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return { redis, prefix, app, door, base: `http://127.0.0.1:${address.port}`, records, cache, admin };
}

async function post(url: string, body: string | undefined): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { origin: ORIGIN, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { unparsed: text.slice(0, 200) };
  }
  return { status: res.status, json };
}

async function token(live: Live): Promise<string> {
  const issued = await post(`${live.base}/v1/call-urls/fuzz-door/token`, undefined);
  if (issued.status !== 201) throw new InvariantViolation(`token route answered ${issued.status} ${JSON.stringify(issued.json)}`);
  return issued.json['token'] as string;
}

/** A call that stays up through the whole run: its audio must keep coming. */
async function liveCall(live: Live): Promise<BrowserPeer> {
  const peer = new BrowserPeer({ name: 'fuzz-live', dataChannel: true, sampleRate: 16000 });
  const answer = await post(`${live.base}/v1/webrtc/offer`, JSON.stringify({ token: await token(live), sdp: await peer.createOffer() }));
  if (answer.status !== 201) throw new Error(`the live call was refused: ${answer.status} ${JSON.stringify(answer.json)}`);
  await peer.setAnswer(answer.json['sdp'] as string);
  await within(peer.connected, 10_000, 'the live call connecting');
  return peer;
}

export const webrtcDoorTarget: FuzzTarget<string> = {
  name: 'webrtc-door',
  about: 'POST /v1/webrtc/offer on a live app and WebRtcDoor: mutated Chrome, Firefox and libdatachannel offers with fresh tokens, while a call stays up',
  // Each case is an HTTP round trip and, when libdatachannel takes the offer, a peer connection: ~5–15 ms.
  caseLimit: { full: 10_000, quick: 1000 },
  async open() {
    const live = await openLive();
    const escaped: unknown[] = [];
    const onEscape = (reason: unknown): void => void escaped.push(reason);
    process.on('unhandledRejection', onEscape);
    const caller = await liveCall(live);
    let cases = 0;
    let packetsAtCheck = caller.stats().packetsReceived;
    let playedUntil = 0;
    // The caller sends (silent) audio like a browser does, so the door's media watchdog keeps the call.
    const keepTalking = (): void => {
      if (performance.now() < playedUntil - 5000) return;
      caller.play(new Int16Array(16000 * 10));
      playedUntil = Math.max(playedUntil, performance.now()) + 10_000;
    };
    keepTalking();
    const checkAlive = async (): Promise<void> => {
      keepTalking();
      check(escaped.length === 0, `a promise escaped its call: ${String(escaped[0])}`);
      const health = await fetch(`${live.base}/v1/tenants/fuzz/active-calls`, { headers: { authorization: `Bearer ${live.admin}` } });
      check(health.status === 200, `the API answered ${health.status}`);
      // 20 ms packets: a live call shows new ones within a few hundred ms, however fast the cases ran.
      const packets = await pollUntil(() => caller.stats().packetsReceived, (n) => n > packetsAtCheck, 2000, 20);
      check(packets > packetsAtCheck, 'the live call stopped receiving audio');
      packetsAtCheck = packets;
    };
    return {
      generate: (rng: Rng) =>
        loopbackOnly(
          seedOrMutant(
            rng,
            SEEDS,
            (seed) => mutateText(rng, seed, { others: SEEDS, dictionary: DICTIONARY, maxLength: MAX_LENGTH }),
            () => 'v=0\r\n' + randomText(rng, rng.length(4000), DICTIONARY),
          ),
        ),
      async run(sdp: string) {
        if (++cases % CHECK_EVERY === 0) await checkAlive();
        const reply = await post(`${live.base}/v1/webrtc/offer`, JSON.stringify({ token: await token(live), sdp }));
        check(reply.status < 500, `offer answered ${reply.status} ${JSON.stringify(reply.json)}`);
        check(escaped.length === 0, `a promise escaped its call: ${String(escaped[0])}`);
        if (reply.status === 201) {
          check(typeof reply.json['sdp'] === 'string' && reply.json['type'] === 'answer', 'a 201 without an answer');
          return 'accepted';
        }
        const code = reply.json['code'];
        check(typeof code === 'string' && code.startsWith('CG_'), `a ${reply.status} without a code: ${JSON.stringify(reply.json)}`);
        return 'rejected';
      },
      // Refusals come back as answers, not throws: anything thrown here is the harness's own failure.
      isTyped: (err: unknown) => isCallgateError(err),
      describe: (sdp: string) => describeText(sdp),
      async close() {
        try {
          await checkAlive();
        } finally {
          process.off('unhandledRejection', onEscape);
          caller.close();
          await live.door.drain();
          await live.app.close();
          await live.records.close(500);
          await live.cache.close();
          await deletePrefix(live.redis, live.prefix);
          await live.redis.quit();
        }
      },
    };
  },
};
