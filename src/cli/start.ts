/**
 * npm start: the gateway in one process (src/app/Gateway.ts), configured from the environment
 * (src/app/config.ts, the README's configuration table). Prints where the web phone and the API docs
 * are; SIGTERM or Ctrl-C drains calls in progress and exits 0.
 */
import { relative } from 'node:path';
import { gatewayConfigFromEnv } from '../app/config.js';
import { Gateway } from '../app/Gateway.js';
import { rootLogger } from '../log.js';

const config = gatewayConfigFromEnv();
const gateway = new Gateway(config);
try {
  await gateway.start();
} catch (err) {
  rootLogger.fatal({ err: err instanceof Error ? err.message : String(err) }, 'callgate could not start');
  await gateway.stop().catch(() => undefined);
  process.exit(1);
}

const port = new URL(gateway.url).port;
const base = config.publicBaseUrl ?? `http://localhost:${port}`;
const lines = [
  '',
  `  callgate is running`,
  `  web phone (demo agent):  ${base}/c/demo`,
  `  API docs:                ${base}/docs`,
  `  health:                  ${base}/healthz, ${base}/readyz, ${base}/metrics`,
  gateway.adminTokenFile ? `  admin token:             in ${relative(process.cwd(), gateway.adminTokenFile)} (set CALLGATE_ADMIN_TOKEN to choose one)` : '  admin token:             CALLGATE_ADMIN_TOKEN',
  config.drachtio ? `  SIP door:                drachtio-server at ${config.drachtio.host}:${config.drachtio.port}` : '  SIP door:                off (set DRACHTIO_HOST and DRACHTIO_SECRET)',
  '',
];
process.stdout.write(`${lines.join('\n')}\n`);

let stopping = false;
const stop = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  rootLogger.info({ signal }, 'stopping');
  gateway.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      rootLogger.error({ err: err instanceof Error ? err.message : String(err) }, 'stop failed');
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
