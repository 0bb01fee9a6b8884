import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connectRedis, deletePrefix, testPrefix } from '../../src/tenants/redisClient.js';
import { describeWith } from '../support/tools.js';
import { GatewayProcesses, type GatewayProcess } from './gatewayProcess.js';

/**
 * docs/quickstart-admin.md, run as written: every ```sh block, in order, in one bash (as a reader in
 * one terminal), against a live gateway (`npm start`'s program), with `set -euo pipefail` so a failed
 * step — curl -f on a 4xx, a missing field — fails the test. The doc cannot drift from the API.
 */
const DOC = new URL('../../docs/quickstart-admin.md', import.meta.url);
const ADMIN = 'quickstart-admin-token-000000000000';
const prefix = testPrefix();
const gateways = new GatewayProcesses({ CALLGATE_REDIS_PREFIX: prefix, CALLGATE_ADMIN_TOKEN: ADMIN });
let gw: GatewayProcess;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'callgate-quickstart-'));
}, 60_000);

afterAll(async () => {
  await gateways.stopAll();
  const redis = await connectRedis({ prefix });
  await deletePrefix(redis, prefix);
  await redis.quit();
  await rm(dir, { recursive: true, force: true });
}, 60_000);

/** The doc's shell blocks, in order. */
export function shellBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

describeWith(['pocketsphinx'], 'docs/quickstart-admin.md', () => {
  it('every command runs against a live gateway and does what the text says', async () => {
    gw = await gateways.start();
    const blocks = shellBlocks(await readFile(DOC, 'utf8'));
    expect(blocks.length).toBeGreaterThanOrEqual(10);
    // Each block's output after a marker line, so what each step printed can be checked.
    const script = ['set -euo pipefail', ...blocks.flatMap((b, i) => [`printf '\\n@@step ${i}\\n'`, b])].join('\n');
    const run = spawnSync('bash', ['-c', script], { cwd: dir, env: { ...process.env, CALLGATE: gw.base, TOKEN: ADMIN }, encoding: 'utf8', timeout: 60_000 });
    const out = run.stdout.split(/\n@@step \d+\n/).slice(1);
    expect(run.stderr).toBe('');
    expect(run.status, run.stdout).toBe(0);
    expect(out).toHaveLength(blocks.length);
    const step = (needle: string): string => out[blocks.findIndex((b) => b.includes(needle))] ?? '';
    expect(step('/healthz')).toMatch(/"ok"|ok/i);
    expect(JSON.parse(step('-X POST "$CALLGATE/v1/tenants"'))).toMatchObject({ id: 'bistro', displayName: 'Bistro Verde', agentName: 'Sam' });
    expect(JSON.parse(step('-X PATCH "$CALLGATE/v1/tenants/bistro"'))).toMatchObject({ voice: 'rms', greeting: 'Hello, this is {{agentName}} at {{business}}. How can I help?' });
    // A real WAV, a second or more of speech at 16 kHz.
    expect(Number(/\s(\d+)\s+\w+\s+\d+\s+[\d:]+\s+greeting\.wav/.exec(step('greeting-preview'))?.[1])).toBeGreaterThan(32_000);
    expect(step('"slug": "bistro-bookings"')).toContain(`open ${gw.base}/c/bistro-bookings in a browser`);
    expect(step('.embed')).toContain(`<script src="${gw.base}/widget.js" data-call-url="bistro-bookings" async></script>`);
    expect(step('<h1>')).toContain('<h1>Bistro Verde</h1>');
    expect(step('/v1/trunks"')).toContain('"number":"+15005550142"');
    expect(step('bistro-dashboard')).toContain('"slug":"bistro-bookings"');
    expect(step('?limit=20')).toMatch(/^\{"records":\[.*\}\{"active":0,"limit":10\}$/);
    expect(step('-X DELETE').trim().split('\n')).toEqual(['204', '204']);
    // The tenant is gone with its call URL.
    expect((await fetch(`${gw.base}/c/bistro-bookings`)).status).toBe(404);
  }, 120_000);
});
