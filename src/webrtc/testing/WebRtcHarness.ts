import { randomBytes } from 'node:crypto';
import type { AgentSessionOptions } from '../../agent/AgentSession.js';
import { PromptCache } from '../../agent/PromptCache.js';
import type { ProviderRegistry } from '../../agent/ProviderRegistry.js';
import { createVad } from '../../agent/vad/createVad.js';
import { sharedMediaClock } from '../../media/MediaClock.js';
import type { PortRange } from '../../media/PortAllocator.js';
import { CallLimiter } from '../../tenants/CallLimiter.js';
import { CallRecordStore } from '../../tenants/CallRecordStore.js';
import { CallTokenStore } from '../../tenants/CallTokenStore.js';
import { CallUrlStore } from '../../tenants/CallUrlStore.js';
import { connectRedis, deletePrefix, testPrefix, type Redis } from '../../tenants/redisClient.js';
import { SecretBox } from '../../tenants/secrets.js';
import { TenantCache } from '../../tenants/TenantCache.js';
import { TenantStore } from '../../tenants/TenantStore.js';
import { within } from '../../util/testing/wait.js';
import { WebRtcDoor } from '../WebRtcDoor.js';
import { BrowserPeer, type BrowserPeerOptions } from './BrowserPeer.js';

/**
 * The direct WebRTC door on loopback for tests and benchmarks: stores under a fresh Redis prefix and
 * a WebRtcDoor on them; `call(slug)` is a node-datachannel "page" redeeming a token and connecting.
 * `stop()` closes the peers it made, drains the door and deletes the Redis keys.
 */
export interface WebRtcHarnessOptions {
  readonly providers: ProviderRegistry;
  /** The agent legs' RTP ports (keep test files apart when they run in parallel). */
  readonly agentPorts?: PortRange;
  readonly agent?: Partial<AgentSessionOptions>;
}

export interface WebRtcHarness {
  readonly redis: Redis;
  readonly tenants: TenantStore;
  readonly urls: CallUrlStore;
  readonly tokens: CallTokenStore;
  readonly records: CallRecordStore;
  readonly door: WebRtcDoor;
  /** A page calling the call URL `slug`: resolves once its media is connected (DTLS-SRTP done). */
  call(slug: string, peer?: Partial<BrowserPeerOptions>): Promise<{ peer: BrowserPeer; callId: string }>;
  stop(): Promise<void>;
}

/** How long a page's ICE and DTLS handshake may take on loopback. */
const CONNECT_TIMEOUT_MS = 5000;

export async function startWebRtcHarness(options: WebRtcHarnessOptions): Promise<WebRtcHarness> {
  const prefix = testPrefix();
  const redis = await connectRedis({ prefix });
  const tenants = new TenantStore(redis, new SecretBox(randomBytes(32)), { prefix });
  const urls = new CallUrlStore(redis, { prefix });
  const tokens = new CallTokenStore(redis, { prefix });
  const records = new CallRecordStore(redis, { prefix });
  const cache = new TenantCache(tenants, redis, { prefix });
  const door = new WebRtcDoor({
    tokens,
    tenants: cache,
    limiter: new CallLimiter(redis, { prefix }),
    records,
    providers: options.providers,
    prompts: new PromptCache(),
    createVad: () => createVad(),
    clock: sharedMediaClock(),
    ...(options.agentPorts ? { endpoint: { portRange: options.agentPorts } } : {}),
    ...(options.agent ? { agent: options.agent } : {}),
  });
  const peers = new Set<BrowserPeer>();
  return {
    redis,
    tenants,
    urls,
    tokens,
    records,
    door,
    async call(slug, peerOptions = {}) {
      const { token } = await tokens.issue(slug);
      const peer = new BrowserPeer({ name: 'page', dataChannel: true, sampleRate: 16000, ...peerOptions });
      peers.add(peer);
      const { callId, sdp } = await door.answer({ token, sdp: await peer.createOffer() });
      await peer.setAnswer(sdp);
      await within(peer.connected, CONNECT_TIMEOUT_MS, 'DTLS-SRTP to the gateway');
      return { peer, callId };
    },
    async stop() {
      for (const p of peers) p.close();
      await door.drain();
      await records.close(500);
      await cache.close();
      await deletePrefix(redis, prefix);
      await redis.quit();
    },
  };
}
