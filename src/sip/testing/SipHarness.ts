import { RoomHub } from '../../rooms/RoomHub.js';
import { RoomStore } from '../../tenants/RoomStore.js';
import { rootLogger } from '../../log.js';
import type { Logger } from 'pino';
import type { SourceLimiterOptions } from '../invite/SourceLimiter.js';
import type { SourceIgnoreOptions } from '../invite/SourceIgnoreList.js';
import { SipAuthFailureStore, type SipAuthFailureOptions } from '../../tenants/SipAuthFailureStore.js';
import { randomBytes } from 'node:crypto';
import type { AgentSessionOptions } from '../../agent/AgentSession.js';
import { PromptCache } from '../../agent/PromptCache.js';
import type { ProviderRegistry } from '../../agent/ProviderRegistry.js';
import { createVad } from '../../agent/vad/createVad.js';
import type { VoiceActivityDetector } from '../../agent/vad/VoiceActivityDetector.js';
import { sharedMediaClock } from '../../media/MediaClock.js';
import type { PortRange } from '../../media/PortAllocator.js';
import { CallLimiter } from '../../tenants/CallLimiter.js';
import { CallRecordStore } from '../../tenants/CallRecordStore.js';
import { CallTokenStore } from '../../tenants/CallTokenStore.js';
import { CallUrlStore } from '../../tenants/CallUrlStore.js';
import { NumberStore } from '../../tenants/NumberStore.js';
import { DeviceBindingStore } from '../../tenants/DeviceBindingStore.js';
import { DeviceStore } from '../../tenants/DeviceStore.js';
import { connectRedis, deletePrefix, testPrefix, type Redis } from '../../tenants/redisClient.js';
import { SecretBox } from '../../tenants/secrets.js';
import { TenantCache } from '../../tenants/TenantCache.js';
import { TenantStore } from '../../tenants/TenantStore.js';
import { MediaAnchor } from '../rtpengine/MediaAnchor.js';
import { RtpengineProcess, type RtpengineProcessOptions } from '../rtpengine/RtpengineProcess.js';
import { SipGateway, type SipGatewayDeps } from '../SipGateway.js';
import { startDrachtio, type RunningDrachtio, type StartDrachtioOptions } from './DrachtioProcess.js';
import { pollUntil } from '../../util/testing/wait.js';

/**
 * The whole SIP door on loopback for tests and benchmarks: a drachtio-server, Debian's rtpengine,
 * stores under a fresh Redis prefix, and a SipGateway connected to them. Needs the drachtio binary
 * (callers check DRACHTIO_BIN first). `stop()` undoes all of it, Redis keys included.
 */
export interface SipHarnessOptions {
  readonly providers: ProviderRegistry;
  readonly drachtio?: StartDrachtioOptions;
  readonly agent?: Partial<AgentSessionOptions>;
  /** Where the agent legs' RTP ports come from (keep test files apart when they run in parallel). */
  readonly agentPorts?: PortRange;
  /**
   * rtpengine's options, e.g. its own port range: rtpengines on one host share ports (it binds with
   * address reuse), so two on the same range take each other's packets.
   */
  readonly rtpengine?: Partial<RtpengineProcessOptions>;
  /** Held before each call's VAD is made: lets a test stop setup at a known point. */
  readonly beforeSetup?: () => Promise<void>;
  /** The per-source INVITE limit (a load generator sends every call from one address). */
  readonly sourceLimit?: Partial<SourceLimiterOptions>;
  /** Digest lockout settings (the store's defaults otherwise). */
  readonly authFailures?: Partial<Omit<SipAuthFailureOptions, 'prefix'>>;
  /** When a source that keeps sending refused INVITEs is ignored. */
  readonly ignore?: Partial<SourceIgnoreOptions>;
  /** The gateway's logger (the project's silent-under-tests root logger otherwise). */
  readonly logger?: Logger;
  /** Told each call's media statistics as its leg closes (as the Gateway's metrics are). */
  readonly legStats?: SipGatewayDeps['legStats'];
  /** Each call's tools (as the Gateway's ToolBoxes); none: the agent can only talk. */
  readonly tools?: SipGatewayDeps['tools'];
  /** A transfer's REFER without a final NOTIFY for this long is bridged instead. */
  readonly transferNotifyTimeoutMs?: number;
}

export interface SipHarness {
  readonly prefix: string;
  readonly redis: Redis;
  readonly drachtio: RunningDrachtio;
  readonly rtpengine: RtpengineProcess;
  readonly anchor: MediaAnchor;
  readonly tenants: TenantStore;
  readonly numbers: NumberStore;
  /** The tenants' devices and their registrations (the door is a registrar with them). */
  readonly devices: DeviceStore;
  readonly bindings: DeviceBindingStore;
  readonly callUrls: CallUrlStore;
  readonly tokens: CallTokenStore;
  readonly records: CallRecordStore;
  readonly limiter: CallLimiter;
  readonly authFailures: SipAuthFailureStore;
  readonly gateway: SipGateway;
  /** The rooms numbers can be routed to. */
  readonly rooms: RoomHub;
  /** `sip:<user>@127.0.0.1:<drachtio SIP port>` */
  target(user: string): string;
  /** Resolves with rtpengine's session count once it is 0, or what it is after ~2 s. */
  sessionsDrained(): Promise<number>;
  stop(): Promise<void>;
}

export async function startSipHarness(options: SipHarnessOptions): Promise<SipHarness> {
  const prefix = testPrefix();
  const started: { stop(): unknown }[] = [];
  try {
    const drachtio = await startDrachtio(options.drachtio);
    started.push(drachtio);
    const rtpengine = await RtpengineProcess.start(options.rtpengine);
    started.push(rtpengine);
    const anchor = await MediaAnchor.open({ port: rtpengine.ngPort });
    started.push({ stop: () => anchor.close() });
    const redis = await connectRedis({ prefix });
    started.push({
      stop: async () => {
        await deletePrefix(redis, prefix);
        await redis.quit();
      },
    });
    const secrets = new SecretBox(randomBytes(32));
    const tenants = new TenantStore(redis, secrets, { prefix });
    const numbers = new NumberStore(redis, secrets, { prefix });
    const devices = new DeviceStore(redis, secrets, { prefix });
    const bindings = new DeviceBindingStore(redis, { prefix });
    const callUrls = new CallUrlStore(redis, { prefix });
    const tokens = new CallTokenStore(redis, { prefix });
    const records = new CallRecordStore(redis, { prefix });
    started.push({ stop: () => records.close(500) });
    const limiter = new CallLimiter(redis, { prefix });
    const authFailures = new SipAuthFailureStore(redis, { ...options.authFailures, prefix });
    const cache = new TenantCache(tenants, redis, { prefix });
    started.push({ stop: () => cache.close() });
    const prompts = new PromptCache();
    const rooms = new RoomHub(
      { store: new RoomStore(redis, { prefix }), tenants: cache, clock: sharedMediaClock(), prompts, providers: options.providers, createVad: () => createVad(), logger: options.logger ?? rootLogger },
      { url: () => 'http://127.0.0.1' },
    );
    started.push({ stop: () => rooms.closeAll() });
    const gateway = new SipGateway({
      numbers,
      rooms,
      tenants: cache,
      limiter,
      records,
      anchor,
      providers: options.providers,
      prompts,
      createVad: async (): Promise<VoiceActivityDetector> => {
        await options.beforeSetup?.();
        return createVad();
      },
      clock: sharedMediaClock(),
      tokens,
      authFailures,
      devices,
      bindings,
      ...(options.ignore ? { ignore: options.ignore } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.legStats ? { legStats: options.legStats } : {}),
      ...(options.agentPorts ? { endpoint: { portRange: options.agentPorts } } : {}),
      ...(options.agent ? { agent: options.agent } : {}),
      ...(options.sourceLimit ? { sourceLimit: options.sourceLimit } : {}),
      ...(options.tools ? { tools: options.tools } : {}),
      ...(options.transferNotifyTimeoutMs === undefined ? {} : { transferNotifyTimeoutMs: options.transferNotifyTimeoutMs }),
    });
    await gateway.connect({ host: '127.0.0.1', port: drachtio.adminPort, secret: drachtio.secret });
    started.push({
      stop: async () => {
        gateway.disconnect();
        await gateway.drain();
      },
    });
    const sessionsDrained = (): Promise<number> => pollUntil(() => anchor.sessionCount(), (n) => n === 0);
    return {
      prefix,
      redis,
      drachtio,
      rtpengine,
      anchor,
      tenants,
      numbers,
      devices,
      bindings,
      callUrls,
      tokens,
      records,
      limiter,
      authFailures,
      gateway,
      rooms,
      target: (user) => `sip:${user}@127.0.0.1:${drachtio.sipPort}`,
      sessionsDrained,
      stop: () => stopAll(started),
    };
  } catch (err) {
    await stopAll(started);
    throw err;
  }
}

/** Last started, first stopped; one failure does not keep the rest running. */
async function stopAll(started: { stop(): unknown }[]): Promise<void> {
  for (const s of started.reverse()) await Promise.resolve(s.stop()).catch(() => undefined);
  started.length = 0;
}
