import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallUrlStore } from './CallUrlStore.js';
import { checkDialplans } from './dialplan.js';
import { loadDialplans, type DialplanStores } from './dialplanLoad.js';
import { NumberStore } from './NumberStore.js';
import { connectRedis, deletePrefix, testPrefix, type Redis } from './redisClient.js';
import { SecretBox } from './secrets.js';
import { TenantStore } from './TenantStore.js';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;
const DEMO = join(ROOT, 'dialplans/demo.yaml');

describe('loading dialplans into Redis', () => {
  const prefix = testPrefix();
  let redis: Redis;
  let stores: DialplanStores;
  let dir: string;
  const key = randomBytes(32).toString('base64');

  beforeAll(async () => {
    redis = await connectRedis({ prefix });
    const secrets = new SecretBox(key);
    stores = { tenants: new TenantStore(redis, secrets, { prefix }), callUrls: new CallUrlStore(redis, { prefix }), numbers: new NumberStore(redis, secrets, { prefix }) };
    dir = await mkdtemp(join(tmpdir(), 'callgate-load-'));
  });

  afterAll(async () => {
    await deletePrefix(redis, prefix);
    await redis.quit();
    await rm(dir, { recursive: true, force: true });
  });

  it('loads the demo idempotently: the second load changes nothing and keeps what the API set', async () => {
    const checked = await checkDialplans([DEMO]);
    if (!checked.ok) throw new Error('demo dialplan invalid');
    expect(await loadDialplans(checked.dialplans, stores)).toMatchObject({ created: 4, updated: 0, tenantIds: ['demo'] });
    await stores.tenants.update('demo', { providerKeys: { openai: 'sk-set-through-the-api-000' } });
    await stores.callUrls.use('demo');
    const before = { tenant: await stores.tenants.get('demo'), url: await stores.callUrls.get('demo') };
    expect(await loadDialplans(checked.dialplans, stores)).toMatchObject({ created: 0, updated: 4, tenantIds: ['demo'] });
    expect(await stores.tenants.get('demo')).toEqual(before.tenant);
    expect((await stores.callUrls.get('demo')).uses).toBe(before.url.uses);
    expect((await stores.numbers.resolve('+15005550100')).tenantId).toBe('demo');
    expect((await stores.numbers.trunkForSource('127.0.0.1'))?.name).toBe('local-test');
  });

  it('npm run dialplans: check reports file:line problems and exits 1; load of a bad set loads nothing', async () => {
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'tenants:\n  - id: newshop\n    displayName: New shop\n    callUrls:\n      - variables: {}\n');
    const env = { ...process.env, CALLGATE_REDIS_PREFIX: prefix, CALLGATE_SECRET_KEY: key };
    const failed = await run('npx', ['tsx', 'src/cli/dialplans.ts', 'load', DEMO, bad], { cwd: ROOT, env }).catch((e: { code: number; stderr: string }) => e);
    expect('code' in failed && failed.code).toBe(1);
    expect((failed as { stderr: string }).stderr).toContain(`${bad}:5:9: tenants.0.callUrls.0: a call URL in a dialplan needs a slug`);
    await expect(stores.tenants.get('newshop')).rejects.toMatchObject({ code: 'CG_TENANT_NOT_FOUND' });

    const good = join(dir, 'good.yaml');
    await writeFile(good, 'tenants:\n  - id: newshop\n    displayName: New shop\n    callUrls:\n      - slug: newshop\n');
    const ok = await run('npx', ['tsx', 'src/cli/dialplans.ts', 'load', good], { cwd: ROOT, env });
    expect(ok.stdout).toContain('loaded: 2 created, 0 updated');
    expect((await stores.callUrls.get('newshop')).tenantId).toBe('newshop');
  }, 30_000);
});
