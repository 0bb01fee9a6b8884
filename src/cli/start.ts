/**
 * npm start: the gateway (src/app/Gateway.ts), configured from the environment (src/app/config.ts, the
 * README's configuration table). One process by default; with CALLGATE_WORKERS (a number or `auto`),
 * one per core under a primary (src/app/cluster.ts). Prints where the web phone and the API docs are
 * once the gateway has warmed up (src/app/warmUp.ts), so the first call is as quick as any other;
 * SIGTERM or Ctrl-C drains calls in progress and exits 0. With `--sip` (CALLGATE_SIP=1) it also starts
 * drachtio-server (src/sip/drachtioServer.ts) and stops it on the way out.
 */
import cluster from 'node:cluster';
import { runPrimary, workerBridge, workerCount } from '../app/cluster.js';
import { gatewayConfigFromEnv, type GatewayConfig } from '../app/config.js';
import { Gateway } from '../app/Gateway.js';
import { installProcessGuards } from '../app/processGuards.js';
import { rootLogger } from '../log.js';
import { bannerLines, type BannerInput } from './banner.js';

// `npm start -- --no-demo` (or CALLGATE_SEED_DEMO=0): no demo tenant, call URL, number or trunk.
// `npm start -- --sip` (or CALLGATE_SIP=1): a drachtio-server started here, and the SIP door on it. A
// cluster's workers get the argv too, but the primary's drachtio is theirs (src/app/cluster.ts).
const fromEnv = gatewayConfigFromEnv(process.env, { sip: process.argv.includes('--sip') && !cluster.isWorker });
const config: GatewayConfig = process.argv.includes('--no-demo') ? { ...fromEnv, seedDemo: false } : fromEnv;
installProcessGuards(rootLogger);
const workers = workerCount();

function banner(input: BannerInput): void {
  process.stdout.write(`${bannerLines(input).join('\n')}\n`);
}

function onSignals(stop: () => Promise<unknown>): void {
  let stopping = false;
  const handle = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    rootLogger.info({ signal }, 'stopping');
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        rootLogger.error({ err: err instanceof Error ? err.message : String(err) }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => handle('SIGTERM'));
  process.on('SIGINT', () => handle('SIGINT'));
}

if (workers > 1 && cluster.isPrimary) {
  const log = rootLogger.child({ role: 'primary' });
  const primary = await runPrimary(config, workers, log);
  banner({ config, url: primary.url, adminTokenFile: primary.adminTokenFile, processes: workers, metricsUrl: primary.metricsUrl, sip: primary.sip });
  onSignals(() => primary.stop());
} else {
  const inCluster = cluster.isWorker;
  const logger = inCluster ? rootLogger.child({ worker: Number(process.env['CALLGATE_WORKER_INDEX'] ?? 0) }) : rootLogger;
  let bridge: ReturnType<typeof workerBridge> | undefined;
  const gateway = new Gateway(config, logger, (registry) => (bridge ? bridge.clusterMetrics() : registry.metrics()));
  if (inCluster) bridge = workerBridge(gateway.metrics);
  try {
    await gateway.start();
  } catch (err) {
    logger.fatal({ err: err instanceof Error ? err.message : String(err) }, 'callgate could not start');
    await gateway.stop().catch(() => undefined);
    process.exit(1);
  }
  if (bridge) bridge.ready(gateway.url, gateway.metricsUrl);
  else banner({ config, url: gateway.url, adminTokenFile: gateway.adminTokenFile, processes: 1, metricsUrl: gateway.metricsUrl, info: gateway.startInfo });
  onSignals(() => gateway.stop());
}
