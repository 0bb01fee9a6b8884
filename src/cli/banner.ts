import { relative } from 'node:path';
import type { CloudEnv } from '../agent/cloudProviders.js';
import type { GatewayConfig } from '../app/config.js';
import type { GatewayStartInfo, SipDoorInfo } from '../app/Gateway.js';

/**
 * The lines `npm start` prints once the gateway is ready: what it connected to and what it changed
 * (Redis and its key prefix, the demo objects made or found), which doors are open, which providers
 * speak, where the admin token is, and the URLs to open. No secret is printed: the Redis password is
 * masked, the admin token is only named by its file.
 */
export interface BannerInput {
  readonly config: GatewayConfig;
  /** Where the HTTP server listens (`http://127.0.0.1:8080`). */
  readonly url: string;
  readonly adminTokenFile: string | undefined;
  readonly processes: number;
  readonly metricsUrl?: string | undefined;
  /** What start() found and did; in a cluster the primary knows only its config. */
  readonly info?: GatewayStartInfo | undefined;
  /** The SIP door when the info has none (a cluster's primary runs its drachtio). */
  readonly sip?: SipDoorInfo | undefined;
}

/** `sip:127.0.0.1:5060`, with brackets for IPv6. */
const sipUri = (user: string | undefined, address: string, port: number | undefined): string =>
  `sip:${user ? `${user}@` : ''}${address.includes(':') ? `[${address}]` : address}${port === undefined ? '' : `:${port}`}`;

/**
 * The SIP door's rows: where it listens and through which drachtio, and the demo number to dial with
 * the trunk that lets this host call it (dialplans/demo.yaml), when the demo made or kept them.
 */
export function sipRows(b: BannerInput): string[] {
  const c = b.config;
  const sip = b.info?.sip ?? b.sip;
  if (sip && 'missing' in sip) return [row('doors', 'web phone (direct WebRTC) on; SIP off'), row('SIP door', `off: ${sip.missing}`)];
  if (!sip && !c.drachtio) return [row('doors', 'web phone (direct WebRTC) on; SIP off'), row('SIP door', 'off (npm start -- --sip, or CALLGATE_SIP=1, with drachtio-server installed; or DRACHTIO_HOST and DRACHTIO_SECRET for a running one)')];
  const rows = [row('doors', 'web phone (direct WebRTC) on; SIP on')];
  const through = sip?.drachtio ?? (c.drachtio ? `${c.drachtio.host}:${c.drachtio.port}` : '');
  const address = sip?.address;
  if (sip?.started) rows.push(row('SIP door', `${sipUri(undefined, address ?? '?', sip.port)} (UDP and TCP), drachtio-server started here (admin on ${through})`));
  else rows.push(row('SIP door', `drachtio-server at ${through}${address ? `, SIP at ${sipUri(undefined, address, sip?.port)}` : ''}`));
  const demo = b.info?.demo ? [...b.info.demo.made, ...b.info.demo.kept] : [];
  const number = demo.find((w) => w.startsWith('number '))?.slice('number '.length);
  const trunk = demo.find((w) => w.startsWith('trunk '))?.slice('trunk '.length);
  if (c.seedDemo && number && address) {
    rows.push(row('demo by SIP', `dial ${sipUri(number, address, sip?.port)}${trunk ? ` from this host: trunk ${trunk} trusts 127.0.0.1, no password (dialplans/demo.yaml)` : ''}`));
  }
  return rows;
}

/** Which vendors the environment configures, in words (`OpenAI-compatible at http://…`, `Deepgram`). */
export function cloudVendors(cloud: CloudEnv): string[] {
  const vendors: string[] = [];
  if (cloud.openai.apiKey || cloud.openai.baseURL) vendors.push(cloud.openai.baseURL ? `OpenAI-compatible at ${cloud.openai.baseURL}` : 'OpenAI');
  if (cloud.deepgram.apiKey) vendors.push('Deepgram');
  if (cloud.elevenlabs.apiKey) vendors.push('ElevenLabs');
  return vendors;
}

const row = (label: string, value: string): string => `  ${`${label}:`.padEnd(25)}${value}`;

export function bannerLines(b: BannerInput): string[] {
  const c = b.config;
  const base = (c.publicBaseUrl ?? `http://localhost:${new URL(b.url).port}`).replace(/\/+$/, '');
  // Who may scrape it (src/app/metricsEndpoint.ts); the token itself is never printed.
  const metrics = c.metricsPort === undefined ? `${base}/metrics` : (b.metricsUrl ?? `http://${c.metricsHost}:${c.metricsPort}/metrics`);
  const metricsAccess = c.metricsToken ? 'bearer METRICS_TOKEN' : c.metricsPort !== undefined ? 'its own port' : 'from this host only';
  const info = b.info;
  const redis = info
    ? `${info.redis}${info.redisStarted ? ' (started here, data in var/redis)' : ''}, keys under "${info.prefix}"`
    : `${c.redisUrl ?? 'the one on 127.0.0.1:6379, or one started here'}, keys under "${c.redisPrefix}"`;
  let demo: string;
  if (!c.seedDemo) demo = 'off (--no-demo or CALLGATE_SEED_DEMO=0)';
  else if (!info?.demo) demo = 'made by the first worker when absent';
  else if (info.demo.made.length === 0) demo = `already there, left unchanged (${info.demo.kept.join(', ')})`;
  else demo = `created ${info.demo.made.join(', ')}${info.demo.kept.length ? `; already there, unchanged: ${info.demo.kept.join(', ')}` : ''}`;
  const vendors = cloudVendors(c.cloud);
  const providers = vendors.length ? `cloud: ${vendors.join(', ')} (offline pocketsphinx and flite behind them)` : 'offline (pocketsphinx, scripted replies, flite); set OPENAI_API_KEY, DEEPGRAM_API_KEY or ELEVENLABS_API_KEY for cloud ones';
  const demoProviders = info?.demo?.providers;
  const lines = [
    '',
    `  callgate is running at ${base} (${b.processes === 1 ? 'one process' : `${b.processes} worker processes`})`,
    '',
    ...(c.seedDemo ? [row('web phone (demo agent)', `${base}/c/demo`)] : []),
    row('home', `${base}/`),
    row('admin walkthrough', `${base}/guide/admin`),
    row('API docs', `${base}/docs`),
    row('health', `${base}/healthz, ${base}/readyz`),
    row('metrics', `${metrics} (${metricsAccess})`),
    b.adminTokenFile ? row('admin token', `in ${relative(process.cwd(), b.adminTokenFile)} (set CALLGATE_ADMIN_TOKEN to choose one)`) : row('admin token', 'CALLGATE_ADMIN_TOKEN'),
    '',
    row('Redis', redis),
    row('demo', demo),
    row('providers', providers),
    ...(demoProviders ? [row('demo tenant speaks with', ['stt', 'llm', 'tts'].map((k) => `${k} ${String((demoProviders as Record<string, unknown>)[k] ?? 'default')}`).join(', '))] : []),
    ...sipRows(b),
    '',
  ];
  return lines;
}
