import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Logger } from 'pino';
import { PromptCache } from '../agent/PromptCache.js';
import type { ProviderRegistry } from '../agent/ProviderRegistry.js';
import { createVad } from '../agent/vad/createVad.js';
import { CallgateError } from '../errors.js';
import { buildAdminApp, type AdminApp } from '../http/adminApp.js';
import { rootLogger } from '../log.js';
import { sharedMediaClock } from '../media/MediaClock.js';
import { demoProviders, providerRegistry } from '../agent/cloudProviders.js';
import { ProviderMetrics } from '../providers/resilience/ProviderMetrics.js';
import { MediaAnchor } from '../sip/rtpengine/MediaAnchor.js';
import { RtpengineProcess } from '../sip/rtpengine/RtpengineProcess.js';
import { defaultDrachtioConnection, digestOptionsFromEnv, type DrachtioConnection } from '../sip/SipConfig.js';
import { DrachtioServer } from '../sip/drachtioServer.js';
import { SipGateway } from '../sip/SipGateway.js';
import { DigestAuth } from '../sip/invite/DigestAuth.js';
import { SipAuthFailureStore } from '../tenants/SipAuthFailureStore.js';
import { CallLimiter } from '../tenants/CallLimiter.js';
import { CallRecordStore } from '../tenants/CallRecordStore.js';
import { CallTokenStore } from '../tenants/CallTokenStore.js';
import { CallUrlStore } from '../tenants/CallUrlStore.js';
import { seedDemoTenant } from '../tenants/demo.js';
import { NumberStore } from '../tenants/NumberStore.js';
import { DeviceBindingStore } from '../tenants/DeviceBindingStore.js';
import { DeviceStore } from '../tenants/DeviceStore.js';
import { connectRedis, type Redis } from '../tenants/redisClient.js';
import { SecretBox } from '../tenants/secrets.js';
import { TenantCache } from '../tenants/TenantCache.js';
import { TenantStore } from '../tenants/TenantStore.js';
import { CallRunner } from '../call/CallRunner.js';
import { callEndListener, currentSecret } from '../webhooks/callEnd.js';
import { callStartHook } from '../webhooks/callStart.js';
import { McpTools } from '../tools/mcp/McpTools.js';
import { ToolBoxes } from '../tools/ToolBox.js';
import { privateDestinationsAllowed } from '../util/destination.js';
import { DeliveryQueue } from '../webhooks/DeliveryQueue.js';
import { WebRtcDoor } from '../webrtc/WebRtcDoor.js';
import { RoomSignalling } from '../webrtc/RoomSignalling.js';
import { RoomHub } from '../rooms/RoomHub.js';
import { roomEventListener } from '../webhooks/roomEvents.js';
import { RoomStore } from '../tenants/RoomStore.js';
import { defaultIceOptions, hasIceServers, iceServersFor, toNodeDataChannel } from '../webrtc/iceServers.js';
import { resolveAdminToken } from './adminToken.js';
import { CallMetrics } from './CallMetrics.js';
import { rtpengineProcessOptions, type GatewayConfig } from './config.js';
import { localRedis, type LocalRedis } from './localRedis.js';
import { warmUp } from './warmUp.js';
import { ownSipDoor, sipDoorClosedLine } from './ownSipDoor.js';
import { metricsRoute, startMetricsServer, type MetricsServer, type MetricsSource } from './metricsEndpoint.js';

/**
 * The whole gateway in one process: Redis (embedded when none is configured), the tenant stores and
 * cache, the providers, the direct WebRTC door, the SIP door when drachtio is configured (with an
 * rtpengine of its own unless one is given), and the HTTP server (admin API, web phone, health,
 * metrics). `start()` brings it up in that order; `stop()` drains and takes it down in reverse.
 */
export interface GatewayStatus {
  readonly redis: boolean;
  readonly drachtio: boolean | undefined;
  readonly rtpengine: boolean | undefined;
  readonly draining: boolean;
  /** Start-up work still under way (src/app/warmUp.ts): the first call would pay for it. */
  readonly warming: boolean;
}

/** How long the agents' shutdown goodbyes may take before the lines are cut (a sentence and the BYE). */
const SHUTDOWN_GOODBYE_MS = 10_000;

export interface GatewayStartInfo {
  /** The Redis URL, password removed. */
  readonly redis: string;
  /** A redis-server of our own was started (no REDIS_URL, nothing on 127.0.0.1:6379). */
  readonly redisStarted: boolean;
  readonly prefix: string;
  /** The demo seed: what it made, what was already there, and the demo tenant's providers now. */
  readonly demo?: { readonly made: readonly string[]; readonly kept: readonly string[]; readonly providers: { readonly stt?: string | readonly string[]; readonly llm?: string | readonly string[]; readonly tts?: string | readonly string[] } | undefined };
  /** The SIP door, when there is one or one was asked for (src/cli/banner.ts prints it). */
  readonly sip?: SipDoorInfo;
}

/**
 * Where callers reach the SIP door (`sip:<address>:<port>`, as drachtio reports its contact) and
 * whether its drachtio-server was started here (CALLGATE_SIP=1); or, when CALLGATE_SIP asked for
 * one that could not be found, the line that says where to get it.
 */
export type SipDoorInfo =
  | { readonly address: string | undefined; readonly port: number | undefined; readonly started: boolean; readonly drachtio: string }
  | { readonly missing: string };

/** drachtio's contacts as it reports them on connect (`udp/127.0.0.1:5060,tcp/127.0.0.1:5060`): the first address and port. */
export function sipContactFrom(hostport: string | undefined): { address: string; port: number } | undefined {
  const m = /(?:^|,)(?:udp|tcp)\/(\[[^\]]+\]|[^:,]+):(\d+)/.exec(hostport ?? '');
  return m ? { address: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) } : undefined;
}

/** A Redis URL fit to print: its password (and user) dropped. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(not a URL)';
  }
}

export class Gateway {
  readonly metrics = new Registry();
  private readonly log: Logger;
  private redis: Redis | undefined;
  private embeddedRedis: LocalRedis | undefined;
  private cache: TenantCache | undefined;
  private records: CallRecordStore | undefined;
  private reaper: NodeJS.Timeout | undefined;
  private deliveries: DeliveryQueue | undefined;
  private providers: ProviderRegistry | undefined;
  private webrtc: WebRtcDoor | undefined;
  private roomHub: RoomHub | undefined;
  private roomSignalling: RoomSignalling | undefined;
  private sip: SipGateway | undefined;
  private rtpengine: RtpengineProcess | undefined;
  /** The drachtio-server started here (CALLGATE_SIP=1), stopped with the gateway. */
  private ownDrachtio: DrachtioServer | undefined;
  private anchor: MediaAnchor | undefined;
  private app: AdminApp | undefined;
  private metricsServer: MetricsServer | undefined;
  private draining = false;
  /** Until start() has warmed the engines and the tenants' prompts, /readyz says 503. */
  private warming = true;
  private drachtioConnected = false;
  /** Where the HTTP server listens, once started. */
  url = '';
  /** Where /metrics is served, once started: on `url`, or on its own listener with METRICS_PORT. */
  metricsUrl = '';
  /** Where the admin token was written when it was generated (never logged itself). */
  adminTokenFile: string | undefined;
  /** What start() connected to and changed, for the start banner. */
  startInfo: GatewayStartInfo = { redis: '', redisStarted: false, prefix: '' };

  constructor(
    readonly config: GatewayConfig,
    logger: Logger = rootLogger,
    /** What /metrics serves; this process's registry unless a cluster aggregates its workers'. */
    private readonly metricsText: (registry: Registry) => Promise<string> = (registry) => registry.metrics(),
  ) {
    this.log = logger;
  }

  async start(): Promise<void> {
    const c = this.config;
    await mkdir(c.dataDir, { recursive: true });
    let redisUrl = c.redisUrl;
    if (!redisUrl) {
      this.embeddedRedis = await localRedis(c.dataDir);
      redisUrl = this.embeddedRedis.url;
      this.log.info({ redis: redisUrl, embedded: this.embeddedRedis.process !== undefined }, this.embeddedRedis.process ? 'started redis-server (data in var/redis)' : 'using the Redis on 127.0.0.1:6379');
    }
    const prefix = c.redisPrefix;
    const redis = (this.redis = await connectRedis({ url: redisUrl, prefix }));
    const secrets = new SecretBox();
    const tenants = new TenantStore(redis, secrets, { prefix });
    const callUrls = new CallUrlStore(redis, { prefix, ...(c.publicBaseUrl ? { publicBaseUrl: c.publicBaseUrl } : {}) });
    const numbers = new NumberStore(redis, secrets, { prefix });
    const tokens = new CallTokenStore(redis, { prefix });
    const records = (this.records = new CallRecordStore(redis, { prefix, openCallTtlMs: c.callLeaseMs }));
    const limiter = new CallLimiter(redis, { prefix, leaseMs: c.callLeaseMs });
    // Calls whose gateway died get their records from whichever gateway looks first (the take is
    // atomic). A third of the lease, jittered so a fleet started together does not reap in step.
    this.reaper = setInterval(() => void records.reapLost(), Math.round((c.callLeaseMs / 3) * (0.75 + Math.random() / 2)));
    this.reaper.unref();
    const cache = (this.cache = new TenantCache(tenants, redis, { prefix }));
    await cache.start();
    this.startInfo = { redis: redactUrl(redisUrl), redisStarted: this.embeddedRedis?.process !== undefined, prefix };
    // CALLGATE_SIP=1: a drachtio-server of our own, when there is one to run. Without it the web door
    // runs alone, and one line says where to get drachtio.
    const own = ownSipDoor(c);
    if (own && 'missing' in own) {
      this.log.warn({ code: 'CG_DRACHTIO_UNAVAILABLE' }, sipDoorClosedLine(own.missing));
      this.startInfo = { ...this.startInfo, sip: { missing: own.missing } };
    }
    const drachtioBinary = own && 'binary' in own ? own.binary : undefined;
    const sipDoor = c.drachtio !== undefined || drachtioBinary !== undefined;
    if (c.seedDemo && c.demoWriter) {
      const providers = demoProviders(c.cloud);
      const demo = await seedDemoTenant({ tenants, callUrls, numbers }, { providers, sip: sipDoor });
      if (demo.made.length > 0) await cache.invalidate('demo');
      const current = await tenants.get('demo').catch(() => undefined);
      this.startInfo = { ...this.startInfo, demo: { made: demo.made, kept: demo.kept, providers: current?.providers } };
      this.log.info({ made: demo.made, kept: demo.kept }, demo.made.length > 0 ? 'demo objects created' : 'demo objects already there, left unchanged');
    }

    collectDefaultMetrics({ register: this.metrics, prefix: 'callgate_' });
    const providerMetrics = new ProviderMetrics(this.metrics);
    const callMetrics = new CallMetrics(this.metrics, limiter);
    records.observe((r) => callMetrics.record(r));
    if (c.seedDemo) callMetrics.tenant('demo');
    this.providers = providerRegistry(c.cloud, { metrics: providerMetrics, logger: this.log });
    const prompts = new PromptCache();
    const clock = sharedMediaClock();
    // One runner for both doors: every call's record, line, agent and events go through it.
    // Each call's tools: the tenant's webhooks, MCP servers and the built-ins (src/tools).
    const allowPrivate = privateDestinationsAllowed();
    const tools = new ToolBoxes({ allowPrivate, mcp: new McpTools({ allowPrivate, logger: this.log }) });
    const runner = new CallRunner({ records, limiter, prompts, tools, callAnswered: callStartHook() });
    // call.ended webhooks: queued in Redis, sent by whichever gateway polls first, each try signed with
    // the tenant's current secret.
    const deliveries = (this.deliveries = new DeliveryQueue(redis, { secretFor: currentSecret((id) => cache.get(id)), logger: this.log, onResult: (r) => callMetrics.webhookDelivery(r) }, { prefix }));
    runner.on('call', (e) => callMetrics.callEvent(e));
    runner.on('call', callEndListener({ queue: deliveries, tenant: (id) => cache.get(id), logger: this.log }));
    deliveries.start();
    this.webrtc = new WebRtcDoor({
      runner,
      tokens,
      tenants: cache,
      limiter,
      records,
      providers: this.providers,
      prompts,
      createVad: () => createVad(),
      clock,
      logger: this.log,
      legStats: (s) => callMetrics.legClosed('webrtc', s.endpoint.received),
      // A web caller is transferred through the SIP door's dialer, when there is a SIP door.
      transferDialer: () => this.sip?.transferDialer,
    }, {
      connectTimeoutMs: c.webrtcConnectTimeoutMs,
      maxPendingPerAddress: c.webrtcPendingPerIp,
      iceAddress: c.webrtcIceAddress,
      // Each call's peer gets ICE_SERVERS and, with TURN REST, its own credential (named by the call id
      // in coturn's log): with a relay candidate of its own, a page that can only relay reaches it even
      // where coturn cannot reach the gateway's own address.
      iceServers: (callId) => toNodeDataChannel(iceServersFor(c.ice, callId)),
      ...(hasIceServers(c.ice) ? { gatherTimeoutMs: defaultIceOptions.gatherTimeoutMs } : {}),
    });
    const doors = { webrtc: () => this.webrtc, sip: () => this.sip };
    new Gauge({
      name: 'callgate_calls_in_progress',
      help: 'Calls this process is carrying, by door',
      labelNames: ['door'],
      registers: [this.metrics],
      collect() {
        this.set({ door: 'webrtc' }, doors.webrtc()?.activeCalls ?? 0);
        const sip = doors.sip();
        if (sip) this.set({ door: 'sip' }, sip.activeCalls);
      },
    });

    // Rooms: the audio of each room lives on the gateway that took its first join (src/rooms).
    const roomHub = (this.roomHub = new RoomHub(
      { store: new RoomStore(redis, { prefix }), tenants: cache, clock, prompts, providers: this.providers, createVad: () => createVad(), tools, logger: this.log },
      { url: () => c.publicBaseUrl ?? this.url },
    ));
    roomHub.on('participant', roomEventListener({ queue: deliveries, tenant: (id) => cache.get(id), logger: this.log }));
    const roomSignalling = (this.roomSignalling = new RoomSignalling(
      {
        hub: roomHub,
        clock,
        pageIceServers: (id) => iceServersFor(c.ice, id),
        peerIceServers: (id) => toNodeDataChannel(iceServersFor(c.ice, `gw-${id}`)),
        log: this.log,
      },
      { iceAddress: c.webrtcIceAddress },
    ));
    let drachtio: DrachtioConnection | undefined = c.drachtio;
    if (drachtioBinary && c.sipServer) {
      const own = (this.ownDrachtio = await DrachtioServer.start({
        binary: drachtioBinary,
        sipAddress: c.sipServer.address,
        sipPort: c.sipServer.port,
        onLog: (line) => this.log.debug({ drachtio: line }, 'drachtio-server'),
      }));
      own.onExit((exit) =>
        this.log.error(
          { exitCode: exit.code, signal: exit.signal, drachtioLog: exit.log.slice(-5), code: 'CG_DRACHTIO_UNAVAILABLE' },
          'drachtio-server exited: the SIP door is closed (the web phone runs on); restart callgate to open it again',
        ),
      );
      drachtio = { host: '127.0.0.1', port: own.adminPort, secret: own.secret, reconnectMaxDelayMs: defaultDrachtioConnection.reconnectMaxDelayMs };
      this.log.info({ sip: `${own.sipAddress}:${own.sipPort}`, pid: own.pid }, 'started drachtio-server');
    }
    if (drachtio) {
      const ngPort = c.rtpengineNgPort ?? (this.rtpengine = await RtpengineProcess.start(rtpengineProcessOptions(c))).ngPort;
      this.anchor = await MediaAnchor.open({ port: ngPort, interfaces: this.rtpengine?.anchorInterfaces ?? c.rtpengineDirection });
      this.sip = new SipGateway({
        runner,
        numbers,
        tenants: cache,
        limiter,
        records,
        anchor: this.anchor,
        rooms: roomHub,
        providers: this.providers,
        prompts,
        createVad: () => createVad(),
        clock,
        tokens,
        digest: new DigestAuth(digestOptionsFromEnv()),
        logger: this.log,
        legStats: (s) => callMetrics.legClosed('sip', s.endpoint.received),
        // A burst of three seconds' worth, as at the default rate (10/s, 30).
        sourceLimit: { invitesPerSecond: c.sipInvitesPerSecond, burst: 3 * c.sipInvitesPerSecond },
        authFailures: new SipAuthFailureStore(redis, { prefix, maxFailures: c.sipAuthMaxFailures, windowMs: c.sipAuthWindowMs, lockoutMs: c.sipAuthLockoutMs, maxLockoutMs: c.sipAuthMaxLockoutMs }),
        ignore: { refusals: c.sipIgnoreAfterRefusals, ignoreMs: c.sipIgnoreMs },
        // The tenants' devices: REGISTER, device INVITEs and API calls to devices (docs/devices.md).
        devices: new DeviceStore(redis, secrets, { prefix }),
        bindings: new DeviceBindingStore(redis, { prefix }),
      });
      callMetrics.watchSip(this.sip);
      this.sip.srf.on('connect', (err: Error | undefined, hostport: string) => {
        this.drachtioConnected = !err;
        if (err) return;
        const contact = sipContactFrom(hostport);
        this.startInfo = { ...this.startInfo, sip: { address: contact?.address, port: contact?.port, started: this.ownDrachtio !== undefined, drachtio: `${drachtio!.host}:${drachtio!.port}` } };
      });
      // drachtio-srf says 'close' when the link drops (it has no 'disconnect' event: /readyz never saw a
      // lost drachtio until issue 25's test killed one).
      (this.sip.srf as unknown as NodeJS.EventEmitter).on('close', () => (this.drachtioConnected = false));
    }

    const webrtc = this.webrtc;
    const sip = this.sip;
    const admin = await resolveAdminToken(c);
    this.adminTokenFile = admin.file;
    const app = (this.app = await buildAdminApp({
      redis,
      prefix,
      secrets,
      adminToken: admin.token,
      invalidate: (id) => cache.invalidate(id),
      logger: this.log,
      ...(c.publicBaseUrl ? { publicBaseUrl: c.publicBaseUrl } : {}),
      ...(c.seedDemo ? { demoSlug: 'demo' } : {}),
      // Each page load's own ICE servers, in its token answer (a TURN credential per page, never the secret).
      callTokens: { iceServers: () => iceServersFor(c.ice, `page-${randomBytes(6).toString('hex')}`) },
      webrtc: {
        answer: (offer) => {
          if (this.draining) return Promise.reject(new CallgateError('CG_DRAINING'));
          return webrtc.answer(offer);
        },
      },
      ...(sip ? { dialer: { dial: (req) => sip.dial(req) } } : {}),
      rooms: { hub: roomHub, signalling: roomSignalling },
    }));
    app.get('/healthz', { config: { access: 'public' }, schema: { hide: true } }, async () => ({ ok: true }));
    app.get('/readyz', { config: { access: 'public' }, schema: { hide: true } }, async (_request, reply) => {
      const status = await this.status();
      const ready = status.redis && status.drachtio !== false && status.rtpengine !== false && !status.draining && !status.warming;
      return reply.status(ready ? 200 : 503).send({ ready, ...status });
    });
    // Who may read it: src/app/metricsEndpoint.ts (it names tenants, so never the whole internet).
    const metrics: MetricsSource = { contentType: this.metrics.contentType, text: () => this.metricsText(this.metrics) };
    if (c.metricsPort === undefined) metricsRoute(app, c.metricsToken === undefined ? { kind: 'loopback' } : { kind: 'token', token: c.metricsToken }, metrics);
    this.url = await app.listen({ host: c.httpHost, port: c.httpPort });
    if (c.metricsPort !== undefined) {
      this.metricsServer = await startMetricsServer({ host: c.metricsHost, port: c.metricsPort, token: c.metricsToken, source: metrics, logger: this.log });
    }
    this.metricsUrl = `${this.metricsServer?.url ?? this.url}/metrics`;

    // Listening already (a load balancer sees /readyz 503 `warming`), ready only once the first call
    // would sound like any other. Never throws: a step that fails is logged and its first use pays.
    await warmUp(
      { providers: this.providers, prompts, tenants: cache, createVad: () => createVad(), logger: this.log },
      { tenantIds: [...new Set([...(c.seedDemo ? ['demo'] : []), ...c.warmTenants])], codecs: sip ? ['opus', 'PCMU', 'PCMA'] : ['opus'] },
    );
    // The SIP door opens only now: drachtio hands INVITEs only to a connected app, and answers 503
    // itself while none is. Connected before the warm-up, a call that came during it was answered and
    // then waited for it (3.3 s from the ACK to the greeting, against 3 ms for the next call).
    if (sip && drachtio) {
      await sip.connect(drachtio);
      this.drachtioConnected = true;
    }
    this.warming = false;
  }

  /** What /readyz reports: Redis always; drachtio and rtpengine only when configured (undefined otherwise); warming until start() is done. */
  async status(): Promise<GatewayStatus> {
    const redis = await this.redis?.ping().then(
      (r) => r === 'PONG',
      () => false,
    );
    const rtpengine = this.anchor ? await this.anchor.sessionCount().then(() => true, () => false) : undefined;
    return { redis: redis ?? false, drachtio: this.sip ? this.drachtioConnected : undefined, rtpengine, draining: this.draining, warming: this.warming };
  }

  /**
   * SIGTERM: no new calls (SIP 503, WebRTC offers 503, /readyz 503), calls in progress go on for up to
   * `drainTimeoutMs`, then everything is closed. Returns the calls still up at the deadline.
   */
  async stop(): Promise<{ cutOff: number }> {
    this.draining = true;
    this.sip?.stopAccepting();
    const activeCalls = (): number => (this.webrtc?.activeCalls ?? 0) + (this.sip?.activeCalls ?? 0);
    this.log.info({ calls: activeCalls(), deadlineMs: this.config.drainTimeoutMs }, 'draining: no new calls');
    const drained = (ms: number): Promise<boolean> => {
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([
        Promise.all([this.webrtc?.drain(), this.sip?.drain()]).then(() => true),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
      ]).finally(() => clearTimeout(timer));
    };
    let cutOff = 0;
    if (!(await drained(this.config.drainTimeoutMs))) {
      // Past the deadline: each agent says its tenant's shutdown message and hangs up, rather than the
      // line going dead mid-sentence.
      const asked = (this.webrtc?.shutdownCalls() ?? 0) + (this.sip?.shutdownCalls() ?? 0);
      this.log.warn({ calls: activeCalls(), saidGoodbye: asked }, 'drain deadline reached with calls in progress: the agents say goodbye');
      if (!(await drained(SHUTDOWN_GOODBYE_MS))) {
        cutOff = activeCalls();
        this.log.warn({ calls: cutOff }, 'calls still up after their goodbye: cut off');
      }
    }
    // Rooms do not drain (a meeting may go on for hours): their people are told the gateway restarts.
    await this.roomSignalling?.closeAll();
    await this.roomHub?.closeAll();
    if (this.app) {
      // Clients' keep-alive connections would hold close() open for their idle timeout (a minute):
      // requests in flight get 2 s to finish, then every connection is closed.
      const closing = this.app.close();
      const force = setTimeout(() => this.app?.server.closeAllConnections(), 2000);
      this.app.server.closeIdleConnections();
      await closing;
      clearTimeout(force);
    }
    await this.metricsServer?.close();
    try {
      this.sip?.disconnect();
    } catch {
      // drachtio-srf throws when the link is already down (a drachtio that died): nothing to close.
    }
    this.anchor?.close();
    await this.rtpengine?.stop();
    await this.ownDrachtio?.stop();
    await this.providers?.close();
    await this.cache?.close();
    clearInterval(this.reaper);
    await this.deliveries?.stop();
    await this.records?.close(500);
    await this.redis?.quit().catch(() => undefined);
    await this.embeddedRedis?.stop();
    this.log.info('stopped');
    return { cutOff };
  }
}
