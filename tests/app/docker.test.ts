import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { dbfs } from '../../src/media/signal.js';
import { connectRedis, deletePrefix, testPrefix } from '../../src/tenants/redisClient.js';
import { BrowserPeer } from '../../src/webrtc/testing/BrowserPeer.js';
import { composeClient, describeWith } from '../support/tools.js';
import { DEMO, hears, SPEECH_MATCH } from '../support/heard.js';
import { pollUntil, within } from '../../src/util/testing/wait.js';

/**
 * docker/: the compose file is validated by the Compose client (no engine is needed for `config`),
 * and what the image runs — `tsc -p tsconfig.build.json` output under plain `node`, no tsx — is run
 * here: it must start, serve the web phone and carry a call (flite's worker loaded as compiled .js).
 */
const ROOT = new URL('../../', import.meta.url).pathname;
const run = promisify(execFile);

const compose = composeClient();

const required = { DRACHTIO_SECRET: 'drachtio-secret-for-the-test', CALLGATE_ADMIN_TOKEN: 'admin-token-for-the-compose-test' };

async function composeConfig(env: Record<string, string>): Promise<{ ok: boolean; out: string }> {
  const [cmd, ...args] = compose!;
  const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !['DRACHTIO_SECRET', 'CALLGATE_ADMIN_TOKEN', 'TURN_SECRET', 'TURN_URLS'].includes(k)));
  // With the optional `turn` profile (coturn), so every Compose client lists the same services.
  return run(cmd!, [...args, '-f', join(ROOT, 'docker/compose.yaml'), '--profile', 'turn', 'config'], { env: { ...cleanEnv, ...env } }).then(
    (r) => ({ ok: true, out: r.stdout }),
    (err: { stderr?: string }) => ({ ok: false, out: err.stderr ?? '' }),
  );
}

describeWith(['compose'], 'docker/compose.yaml', () => {
  it('is valid Compose, wires the gateway to its drachtio, rtpengine and Redis, and refuses to start without its secrets', async () => {
    const result = await composeConfig(required);
    expect(result.ok).toBe(true);
    const config = parse(result.out) as { services: Record<string, { command?: string[]; entrypoint?: string[]; environment?: Record<string, string>; network_mode?: string; stop_grace_period?: string }> };
    expect(Object.keys(config.services).sort()).toEqual(['coturn', 'drachtio', 'gateway', 'redis', 'rtpengine']);
    // coturn (profile turn) checks TURN REST credentials with the secret the gateway derives them from.
    const turn = await composeConfig({ ...required, TURN_SECRET: 'turn-secret-for-the-test', TURN_URLS: 'turn:192.0.2.10:3478' });
    const turned = parse(turn.out) as typeof config;
    expect(turned.services['coturn']!.environment!['TURN_SECRET']).toBe(turned.services['gateway']!.environment!['TURN_SECRET']);
    expect(turned.services['coturn']!.entrypoint!.join(' ')).toMatch(/turnserver .*--use-auth-secret --static-auth-secret="\$\$TURN_SECRET"/);
    expect(turned.services['gateway']!.environment!['TURN_URLS']).toBe('turn:192.0.2.10:3478');
    const { gateway, drachtio, rtpengine, redis } = config.services;
    const env = gateway!.environment!;
    // The gateway's settings agree with what the other services listen on.
    const drachtioCmd = drachtio!.command!.join(' ');
    expect(drachtioCmd).toContain(`--port ${env['DRACHTIO_PORT']}`);
    expect(drachtioCmd).toContain(`--secret ${required.DRACHTIO_SECRET}`);
    expect(drachtioCmd).toContain('sip:*:5060;transport=udp,tcp');
    expect(rtpengine!.command!).toContain(`--listen-ng=127.0.0.1:${env['RTPENGINE_NG_PORT']}`);
    expect(env['REDIS_URL']).toBe('redis://127.0.0.1:6379');
    expect(redis!.command!.join(' ')).toContain('--appendonly yes');
    expect(env['DRACHTIO_SECRET']).toBe(required.DRACHTIO_SECRET);
    expect(env['HTTP_HOST']).toBe('0.0.0.0');
    for (const s of Object.values(config.services)) expect(s.network_mode).toBe('host');

    const missing = await composeConfig({ CALLGATE_ADMIN_TOKEN: required.CALLGATE_ADMIN_TOKEN });
    expect(missing.ok).toBe(false);
    expect(missing.out).toContain('set DRACHTIO_SECRET');
  }, 60_000);
});

describe('the Dockerfile', () => {
  it('builds in one stage and runs production dependencies only, as a non-root user, with a health check', async () => {
    const text = await readFile(join(ROOT, 'docker/Dockerfile'), 'utf8');
    const stages = text.split(/^FROM /m).slice(1);
    expect(stages).toHaveLength(2);
    // Node 22 LTS, the documented target (README), in both stages; what the home page links to ships too.
    expect(stages[0]).toMatch(/^node:22\S* AS build/);
    expect(stages[1]).toMatch(/^node:22\S* AS runtime/);
    expect(stages[1]).toContain('COPY docs/quickstart-admin.md');
    expect(stages[0]).toContain('npx tsc -p tsconfig.build.json');
    const runtime = stages[1]!;
    expect(runtime).toContain('npm ci --omit=dev');
    expect(runtime).toContain('COPY --from=build /app/dist ./dist');
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).toContain('HEALTHCHECK');
    expect(runtime).toContain('CMD ["node", "dist/cli/start.js"]');
  });
});

/** Where the first 20 ms frame (at 16 kHz) above -40 dBFS starts, or -1. */
function firstLoudFrame(pcm: Int16Array): number {
  for (let at = 0; at + 320 <= pcm.length; at += 320) if (dbfs(pcm.subarray(at, at + 320)) > -40) return at;
  return -1;
}

describe("what the image runs: the compiled gateway under plain node", () => {
  const prefix = testPrefix();
  let dir: string;
  let proc: ChildProcess | undefined;

  afterAll(async () => {
    if (proc && proc.exitCode === null) proc.kill('SIGKILL');
    const redis = await connectRedis({ prefix });
    await deletePrefix(redis, prefix);
    await redis.quit();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('compiles with tsconfig.build.json, starts with node (no tsx), and carries a call', async () => {
    // The image's layout: dist/ beside web-phone/, dialplans/ and node_modules/.
    dir = await mkdtemp(join(tmpdir(), 'callgate-dist-'));
    await run(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')]);
    for (const linked of ['node_modules', 'web-phone', 'dialplans', 'package.json']) await symlink(join(ROOT, linked), join(dir, linked));
    proc = spawn(process.execPath, ['dist/cli/start.js'], {
      cwd: dir,
      env: { ...process.env, VITEST: '', LOG_LEVEL: 'info', HTTP_HOST: '127.0.0.1', HTTP_PORT: '0', CALLGATE_DATA_DIR: join(dir, 'var'), CALLGATE_REDIS_PREFIX: prefix },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const base = await pollUntil(() => /callgate is running at (http:\/\/localhost:\d+)/.exec(out)?.[1], (v) => v !== undefined || proc!.exitCode !== null, 30_000);
    if (!base) throw new Error(`no start banner; output:\n${out}`);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/web-phone/app.js`)).status).toBe(200);

    const origin = base;
    const token = ((await (await fetch(`${base}/v1/call-urls/demo/token`, { method: 'POST', headers: { origin } })).json()) as { token: string }).token;
    const peer = new BrowserPeer({ name: 'compiled', dataChannel: true, sampleRate: 16000 });
    try {
      const offer = await fetch(`${base}/v1/webrtc/offer`, { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: JSON.stringify({ token, sdp: await peer.createOffer() }) });
      expect(offer.status).toBe(201);
      await peer.setAnswer(((await offer.json()) as { sdp: string }).sdp);
      await within(peer.connected, 10_000, 'DTLS-SRTP to the gateway');
      const connectedAt = performance.now();
      // The greeting is synthesised by flite in its worker thread: the compiled worker file loaded. It
      // is heard within 750 ms of connecting (~200 ms here), though this is the process's first call: the
      // engines and the demo's prompts were warmed before the banner (src/app/warmUp.ts). Without the
      // warm-up it came 1.0–1.5 s after connecting.
      await pollUntil(() => firstLoudFrame(peer.receivedAudio()), (at) => at >= 0, 15_000, 10);
      expect(performance.now() - connectedAt).toBeLessThan(750);
      // And it is the greeting, whole, not a click or noise.
      expect((await hears(() => peer.receivedAudio(), DEMO.GREETING)).score, 'the greeting').toBeGreaterThanOrEqual(SPEECH_MATCH);
    } finally {
      peer.close();
    }
    proc.kill('SIGTERM');
    const [code] = (await once(proc, 'exit')) as [number | null];
    expect(code).toBe(0);
  }, 90_000);
});
