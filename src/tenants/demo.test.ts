import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudEnvFrom, demoProviders } from '../agent/cloudProviders.js';
import { CallUrlStore } from './CallUrlStore.js';
import type { DialplanStores } from './dialplanLoad.js';
import { seedDemoTenant } from './demo.js';
import { NumberStore } from './NumberStore.js';
import { connectRedis, deletePrefix, keys, testPrefix, type Redis } from './redisClient.js';
import { SecretBox } from './secrets.js';
import { TenantStore } from './TenantStore.js';

describe('seeding the demo tenant', () => {
  const prefix = testPrefix();
  let redis: Redis;
  let stores: DialplanStores;

  beforeAll(async () => {
    redis = await connectRedis({ prefix });
    const secrets = new SecretBox(randomBytes(32).toString('base64'));
    stores = { tenants: new TenantStore(redis, secrets, { prefix }), callUrls: new CallUrlStore(redis, { prefix }), numbers: new NumberStore(redis, secrets, { prefix }) };
  });

  afterAll(async () => {
    await deletePrefix(redis, prefix);
    await redis.quit();
  });

  it('offline by default; the providers the environment configures once OPENAI_*/DEEPGRAM_/ELEVENLABS_ keys are set, and no key is stored', async () => {
    await seedDemoTenant(stores, demoProviders(cloudEnvFrom({})));
    expect((await stores.tenants.get('demo')).providers).toEqual({ stt: 'pocketsphinx', llm: 'scripted', tts: 'flite' });
    expect((await stores.callUrls.get('demo')).tenantId).toBe('demo');

    const summary = await seedDemoTenant(stores, demoProviders(cloudEnvFrom({ OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1', ELEVENLABS_API_KEY: 'el-secret' })));
    expect(summary.created).toBe(0);
    const demo = await stores.tenants.get('demo');
    expect(demo.providers).toEqual({ stt: 'pocketsphinx', llm: 'openai', tts: 'elevenlabs' });
    expect(demo.providerKeys).toBeUndefined();
    const stored = await redis.get(keys(prefix).tenant('demo'));
    expect(stored).toContain('"elevenlabs"');
    expect(stored).not.toContain('el-secret');
  });
});
