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

  it('makes the tenant and its call URL when absent, offline by default; no loopback trunk or number without the SIP door', async () => {
    const summary = await seedDemoTenant(stores, { providers: demoProviders(cloudEnvFrom({})) });
    expect(summary.made).toEqual(['tenant demo', 'call URL demo']);
    expect((await stores.tenants.get('demo')).providers).toEqual({ stt: 'pocketsphinx', llm: 'scripted', tts: 'flite' });
    expect((await stores.callUrls.get('demo')).tenantId).toBe('demo');
    expect(await redis.exists(keys(prefix).trunk('local-test'))).toBe(0);
    expect(await redis.exists(keys(prefix).number('+15005550100'))).toBe(0);
  });

  it("never changes what is there: an operator's demo stays as they left it, whatever the environment now says", async () => {
    await stores.tenants.update('demo', { greeting: 'Our own greeting.', providers: { stt: 'pocketsphinx', llm: 'scripted', tts: 'flite' }, voice: 'rms' });
    await stores.callUrls.update('demo', { maxUses: 3 });
    const before = { tenant: await redis.get(keys(prefix).tenant('demo')), url: await redis.get(keys(prefix).callUrl('demo')) };
    const summary = await seedDemoTenant(stores, { providers: demoProviders(cloudEnvFrom({ OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1', ELEVENLABS_API_KEY: 'el-secret' })) });
    expect(summary).toMatchObject({ created: 0, updated: 0, made: [], kept: ['tenant demo', 'call URL demo'] });
    expect({ tenant: await redis.get(keys(prefix).tenant('demo')), url: await redis.get(keys(prefix).callUrl('demo')) }).toEqual(before);
  });

  it('with the SIP door, the test number and its loopback trunk too; a new demo gets the configured cloud providers and no key', async () => {
    const fresh = testPrefix();
    const r = await connectRedis({ prefix: fresh });
    try {
      const secrets = new SecretBox(randomBytes(32).toString('base64'));
      const s2: DialplanStores = { tenants: new TenantStore(r, secrets, { prefix: fresh }), callUrls: new CallUrlStore(r, { prefix: fresh }), numbers: new NumberStore(r, secrets, { prefix: fresh }) };
      const summary = await seedDemoTenant(s2, { providers: demoProviders(cloudEnvFrom({ OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1', ELEVENLABS_API_KEY: 'el-secret' })), sip: true });
      expect([...summary.made].sort()).toEqual(['call URL demo', 'number +15005550100', 'tenant demo', 'trunk local-test']);
      const demo = await s2.tenants.get('demo');
      expect(demo.providers).toEqual({ stt: 'pocketsphinx', llm: 'openai', tts: 'elevenlabs' });
      expect(demo.providerKeys).toBeUndefined();
      expect(await r.get(keys(fresh).tenant('demo'))).not.toContain('el-secret');
      expect((await s2.numbers.getNumber('+15005550100')).trunk).toBe('local-test');
    } finally {
      await deletePrefix(r, fresh);
      await r.quit();
    }
  });
});
