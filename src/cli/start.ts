/**
 * npm start: the gateway (src/app/Gateway.ts), configured from the environment (src/app/config.ts, the
 * README's configuration table). One process by default; with CALLGATE_WORKERS (a number or `auto`),
 * one per core under a primary (src/app/cluster.ts). Prints where the web phone and the API docs are
 * once the gateway has warmed up (src/app/warmUp.ts), so the first call is as quick as any other;
 * SIGTERM or Ctrl-C drains calls in progress and exits 0.
 */
import cluster from 'node:cluster';
import { relative } from 'node:path';
import { runPrimary, workerBridge, workerCount } from '../app/cluster.js';
import { gatewayConfigFromEnv, type GatewayConfig } from '../app/config.js';
import { Gateway } from '../app/Gateway.js';
import { installProcessGuards } from '../app/processGuards.js';
import { rootLogger } from '../log.js';

const config = gatewayConfigFromEnv();
installProcessGuards(rootLogger);
const workers = workerCount();

function banner(c: GatewayConfig, url: string, adminTokenFile: string | undefined, processes: number, metricsUrl?: string): void {
  const base = c.publicBaseUrl ?? `http://localhost:${new URL(url).port}`;
  // Who may scrape it (src/app/metricsEndpoint.ts); the token itself is never printed.
  const metrics = c.metricsPort === undefined ? `${base}/metrics` : (metricsUrl ?? `http://${c.metricsHost}:${c.metricsPort}/metrics`);
  const metricsAccess = c.metricsToken ? 'bearer METRICS_TOKEN' : c.metricsPort !== undefined ? 'its own port' : 'from this host only';
  const lines = [
    '',
    `  callgate is running (${processes === 1 ? 'one process' : `${processes} worker processes`})`,
    `  web phone (demo agent):  ${base}/c/demo`,
    `  API docs:                ${base}/docs`,
    `  health:                  ${base}/healthz, ${base}/readyz`,
    `  metrics:                 ${metrics} (${metricsAccess})`,
    adminTokenFile ? `  admin token:             in ${relative(process.cwd(), adminTokenFile)} (set CALLGATE_ADMIN_TOKEN to choose one)` : '  admin token:             CALLGATE_ADMIN_TOKEN',
    c.drachtio ? `  SIP door:                drachtio-server at ${c.drachtio.host}:${c.drachtio.port}` : '  SIP door:                off (set DRACHTIO_HOST and DRACHTIO_SECRET)',
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
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
  banner(config, primary.url, primary.adminTokenFile, workers, primary.metricsUrl);
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
  else banner(config, gateway.url, gateway.adminTokenFile, 1, gateway.metricsUrl);
  onSignals(() => gateway.stop());
}
