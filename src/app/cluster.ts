import cluster, { type Worker } from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { CallgateError } from '../errors.js';
import { RtpengineProcess } from '../sip/rtpengine/RtpengineProcess.js';
import { DrachtioServer } from '../sip/drachtioServer.js';
import { ownSipDoor, sipDoorClosedLine } from './ownSipDoor.js';
import type { SipDoorInfo } from './Gateway.js';
import { rtpengineProcessOptions, type GatewayConfig } from './config.js';
import { resolveAdminToken } from './adminToken.js';
import { localRedis, type LocalRedis } from './localRedis.js';

/**
 * Cluster mode (`CALLGATE_WORKERS`): one gateway process per core sharing Redis. The primary holds
 * what must exist once per host — the embedded Redis, the rtpengine, the admin token — and hands its
 * address to the workers; each worker is a whole Gateway. The HTTP port is shared by the workers
 * (node:cluster hands connections round robin), each SIP worker connects to drachtio (which spreads
 * INVITEs across them), and a call stays on the worker that took it. /metrics on any worker answers
 * for the whole cluster (the primary gathers every worker's registry).
 */
export function workerCount(env: NodeJS.ProcessEnv = process.env): number {
  const text = env['CALLGATE_WORKERS'];
  if (!text) return 1;
  if (text === 'auto') return availableParallelism();
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new CallgateError('CG_CONFIG_INVALID', `CALLGATE_WORKERS must be 'auto' or 1–256, not "${text}"`);
  return n;
}

/** Messages between the primary and its workers. */
type ToPrimary = { type: 'callgate:ready'; url: string; metricsUrl: string } | { type: 'callgate:metrics-req'; id: string };
type ToWorker = { type: 'callgate:metrics-res'; id: string; text: string };

export interface Primary {
  /** The workers' shared HTTP address, once every worker is up. */
  readonly url: string;
  /** Where /metrics is (the HTTP port's, or the METRICS_PORT listener the workers share). */
  readonly metricsUrl: string;
  readonly adminTokenFile: string | undefined;
  /** The SIP door of CALLGATE_SIP=1 (its drachtio-server runs in the primary), or why it is closed. */
  readonly sip: SipDoorInfo | undefined;
  /** SIGTERM to every worker (each drains its calls), then the host-wide pieces; resolves when all are down. */
  stop(): Promise<void>;
}

export async function runPrimary(config: GatewayConfig, workers: number, log: Logger): Promise<Primary> {
  let redis: LocalRedis | undefined;
  let rtpengine: RtpengineProcess | undefined;
  let drachtio: DrachtioServer | undefined;
  let sip: SipDoorInfo | undefined;
  const env: Record<string, string> = {};
  if (!config.redisUrl) {
    redis = await localRedis(config.dataDir);
    env['REDIS_URL'] = redis.url;
  }
  if (config.sipServer) {
    // One drachtio-server for the host (one SIP port); every worker connects to it and drachtio
    // spreads the INVITEs. The workers are told where it is, not to start their own.
    const own = ownSipDoor(config);
    env['CALLGATE_SIP'] = '0';
    if (own && 'binary' in own) {
      drachtio = await DrachtioServer.start({ binary: own.binary, sipAddress: config.sipServer.address, sipPort: config.sipServer.port });
      drachtio.onExit((exit) => log.error({ exitCode: exit.code, signal: exit.signal, drachtioLog: exit.log.slice(-5), code: 'CG_DRACHTIO_UNAVAILABLE' }, 'drachtio-server exited: the SIP door is closed (the web phone runs on); restart callgate to open it again'));
      Object.assign(env, { DRACHTIO_HOST: '127.0.0.1', DRACHTIO_PORT: String(drachtio.adminPort), DRACHTIO_SECRET: drachtio.secret });
      sip = { address: drachtio.sipAddress, port: drachtio.sipPort, started: true, drachtio: `127.0.0.1:${drachtio.adminPort}` };
    } else if (own) {
      sip = { missing: own.missing };
      log.warn({ code: 'CG_DRACHTIO_UNAVAILABLE' }, sipDoorClosedLine(own.missing));
    }
  }
  if ((config.drachtio || drachtio) && config.rtpengineNgPort === undefined) {
    // One rtpengine for the host: two on one port range would take each other's packets.
    rtpengine = await RtpengineProcess.start(rtpengineProcessOptions(config));
    env['RTPENGINE_NG_PORT'] = String(rtpengine.ngPort);
    const ifs = rtpengine.anchorInterfaces;
    if (ifs) env['CALLGATE_RTPENGINE_DIRECTION'] = `${ifs.caller},${ifs.agent}`;
  }
  const token = await resolveAdminToken(config);
  env['CALLGATE_ADMIN_TOKEN'] = token.token;

  const aggregator = new AggregatorRegistry();
  let stopping = false;
  const ready = new Map<number, string>();
  let allReady: (urls: { url: string; metricsUrl: string }) => void = () => undefined;
  const up = new Promise<{ url: string; metricsUrl: string }>((resolve) => (allReady = resolve));

  const fork = (index: number): Worker => {
    // Only the first worker writes the demo tenant: the others would race it for nothing (they still
    // serve it: its landing link, warm-up and metrics).
    const worker = cluster.fork({ ...env, CALLGATE_WORKER_INDEX: String(index), ...(index > 0 ? { CALLGATE_DEMO_WRITER: '0' } : {}) });
    worker.on('message', (m: ToPrimary) => {
      if (m.type === 'callgate:ready') {
        ready.set(index, m.url);
        if (ready.size === workers) allReady({ url: m.url, metricsUrl: m.metricsUrl });
      } else if (m.type === 'callgate:metrics-req') {
        aggregator.clusterMetrics().then(
          (text) => worker.send({ type: 'callgate:metrics-res', id: m.id, text } satisfies ToWorker),
          (err: unknown) => worker.send({ type: 'callgate:metrics-res', id: m.id, text: `# cluster metrics failed: ${String(err)}\n` } satisfies ToWorker),
        );
      }
    });
    worker.on('exit', (code, signal) => {
      if (stopping) return;
      // A worker that died took its calls with it (their leases expire); a new one takes new calls.
      log.error({ worker: index, code, signal }, 'gateway worker exited; starting another');
      fork(index);
    });
    return worker;
  };
  for (let i = 0; i < workers; i++) fork(i);
  const { url, metricsUrl } = await up;

  return {
    url,
    metricsUrl,
    adminTokenFile: token.file,
    sip,
    stop: async () => {
      stopping = true;
      const exits = Object.values(cluster.workers ?? {}).map((w) => {
        if (!w || w.isDead()) return Promise.resolve();
        const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
        w.process.kill('SIGTERM');
        return exited;
      });
      await Promise.all(exits);
      await rtpengine?.stop();
      await drachtio?.stop();
      await redis?.stop();
    },
  };
}

/** In a worker: tells the primary it is up, and fetches cluster-wide metrics through it. */
export function workerBridge(registry: Registry): { ready(url: string, metricsUrl: string): void; clusterMetrics(): Promise<string> } {
  AggregatorRegistry.setRegistries([registry]);
  // Constructing one makes prom-client answer the primary's requests for this worker's metrics.
  new AggregatorRegistry();
  const pending = new Map<string, (text: string) => void>();
  process.on('message', (m: ToWorker) => {
    if (m?.type === 'callgate:metrics-res') {
      pending.get(m.id)?.(m.text);
      pending.delete(m.id);
    }
  });
  return {
    ready: (url, metricsUrl) => process.send?.({ type: 'callgate:ready', url, metricsUrl } satisfies ToPrimary),
    clusterMetrics: () =>
      new Promise((resolve) => {
        const id = randomUUID();
        pending.set(id, resolve);
        process.send?.({ type: 'callgate:metrics-req', id } satisfies ToPrimary);
      }),
  };
}
