import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeNumber, NumberStore } from './NumberStore.js';
import { caught } from './testing/caught.js';
import { connectRedis, deletePrefix, keys, testPrefix, type Redis } from './redisClient.js';
import { SecretBox } from './secrets.js';
import { TenantStore } from './TenantStore.js';

const prefix = testPrefix();
const k = keys(prefix);
let redis: Redis;
let numbers: NumberStore;

const PASSWORD = 'trunk-pass-Q7w9e2r4';

beforeAll(async () => {
  redis = await connectRedis({ prefix });
  const secrets = new SecretBox(randomBytes(32));
  numbers = new NumberStore(redis, secrets, { prefix });
  const tenants = new TenantStore(redis, secrets, { prefix });
  await tenants.create({ id: 'acme', displayName: 'Acme' });
  await tenants.create({ id: 'beta', displayName: 'Beta' });
});

afterAll(async () => {
  await deletePrefix(redis, prefix);
  await redis.close();
});

describe('NumberStore: trunks', () => {
  it('stores the password encrypted and shows it masked', async () => {
    const t = await numbers.createTrunk({ name: 'carrier-a', sourceCidrs: ['203.0.113.0/24', '198.51.100.7/32'], auth: { username: 'acme', password: PASSWORD } });
    expect(t).toEqual({ name: 'carrier-a', sourceCidrs: ['203.0.113.0/24', '198.51.100.7/32'], auth: { username: 'acme', password: { set: true, last4: 'e2r4' } } });
    expect(JSON.stringify(await numbers.getTrunk('carrier-a'))).not.toContain(PASSWORD);
    expect(JSON.stringify(await numbers.listTrunks())).not.toContain(PASSWORD);
    const raw = (await redis.get(k.trunk('carrier-a')))!;
    expect(raw).not.toContain(PASSWORD);
    expect(raw).not.toContain('Q7w9');
    expect((await numbers.getTrunkWithSecrets('carrier-a')).auth).toEqual({ username: 'acme', password: PASSWORD });
    expect((await caught(numbers.createTrunk({ name: 'carrier-a', sourceCidrs: ['192.0.2.0/24'] }))).code).toBe('CG_TRUNK_EXISTS');
  });

  it('refuses invalid trunks with paths', async () => {
    const err = await caught(numbers.createTrunk({ name: 'bad', sourceCidrs: ['10.0.0.0/33', 'nope'], auth: { username: 'u', password: 'short' } }));
    expect(err.code).toBe('CG_TENANT_INVALID');
    expect((err.details?.['issues'] as { path: string }[]).map((i) => i.path).sort()).toEqual(['auth.password', 'sourceCidrs.0', 'sourceCidrs.1']);
  });

  it('updates: keeps the password unless a new one is given, removes auth on null', async () => {
    await numbers.createTrunk({ name: 'carrier-u', sourceCidrs: ['192.0.2.0/24'], auth: { username: 'u1', password: PASSWORD } });
    const renamed = await numbers.updateTrunk('carrier-u', { sourceCidrs: ['192.0.2.0/25'], auth: { username: 'u2' } });
    expect(renamed).toMatchObject({ sourceCidrs: ['192.0.2.0/25'], auth: { username: 'u2' } });
    expect((await numbers.getTrunkWithSecrets('carrier-u')).auth).toEqual({ username: 'u2', password: PASSWORD });
    await numbers.updateTrunk('carrier-u', { auth: { password: 'another-password-1' } });
    expect((await numbers.getTrunkWithSecrets('carrier-u')).auth).toEqual({ username: 'u2', password: 'another-password-1' });
    expect((await numbers.updateTrunk('carrier-u', { auth: null })).auth).toBeUndefined();
    // A string or an array is not credentials: refused, not silently ignored.
    for (const auth of ['nonsense', ['u', 'p']]) expect((await caught(numbers.updateTrunk('carrier-u', { auth } as never))).code).toBe('CG_TENANT_INVALID');
    expect((await caught(numbers.updateTrunk('carrier-u', { sourceCidrs: [] }))).code).toBe('CG_TENANT_INVALID');
    await numbers.deleteTrunk('carrier-u');
    expect((await caught(numbers.getTrunk('carrier-u'))).code).toBe('CG_TRUNK_NOT_FOUND');
    expect((await caught(numbers.deleteTrunk('carrier-u'))).code).toBe('CG_TRUNK_NOT_FOUND');
  });

  it('finds the trunk for a source address by CIDR', async () => {
    await numbers.createTrunk({ name: 'carrier-b', sourceCidrs: ['10.20.0.0/16'] });
    expect((await numbers.trunkForSource('203.0.113.1'))?.name).toBe('carrier-a');
    expect((await numbers.trunkForSource('203.0.113.255'))?.name).toBe('carrier-a');
    expect((await numbers.trunkForSource('198.51.100.7'))?.name).toBe('carrier-a');
    expect(await numbers.trunkForSource('198.51.100.8')).toBeUndefined();
    expect((await numbers.trunkForSource('10.20.255.1'))?.name).toBe('carrier-b');
    expect(await numbers.trunkForSource('10.21.0.1')).toBeUndefined();
    expect(await numbers.trunkForSource('203.0.114.1')).toBeUndefined();
    expect(await numbers.trunkForSource('not an ip')).toBeUndefined();
    // Secrets never come out of the lookup.
    expect(JSON.stringify(await numbers.trunkForSource('203.0.113.9'))).not.toContain(PASSWORD);
  });
});

describe('NumberStore: numbers', () => {
  it('normalises SIP URIs', () => {
    expect(normalizeNumber('SIPS:Support@Example.COM;transport=tls')).toBe('sip:Support@example.com');
    expect(normalizeNumber('sip:+14155550100@10.0.0.1:5060?x=y')).toBe('sip:+14155550100@10.0.0.1:5060');
    expect(normalizeNumber('+14155550100')).toBe('+14155550100');
  });

  it('creates, resolves, lists, updates and deletes', async () => {
    expect(await numbers.createNumber({ number: '+14155550100', tenantId: 'acme', trunk: 'carrier-a' })).toEqual({ number: '+14155550100', tenantId: 'acme', trunk: 'carrier-a' });
    await numbers.createNumber({ number: 'sip:Sales@Acme.example', tenantId: 'acme' });
    expect(await numbers.resolve('+14155550100')).toEqual({ number: '+14155550100', tenantId: 'acme', trunk: 'carrier-a' });
    expect((await numbers.resolve('sips:Sales@ACME.example;transport=tls')).tenantId).toBe('acme');
    // An E.164 user part in a request URI reaches the E.164 route.
    expect((await numbers.resolve('sip:+14155550100@203.0.113.5')).number).toBe('+14155550100');
    expect((await caught(numbers.resolve('+14155550199'))).code).toBe('CG_NUMBER_NOT_FOUND');
    expect((await caught(numbers.resolve('sip:sales@other.example'))).status).toBe(404);
    expect((await numbers.listNumbers('acme')).map((n) => n.number)).toEqual(['+14155550100', 'sip:Sales@acme.example']);
    expect((await caught(numbers.createNumber({ number: '+14155550100', tenantId: 'beta' }))).code).toBe('CG_NUMBER_EXISTS');

    const moved = await numbers.updateNumber('+14155550100', { tenantId: 'beta', trunk: null });
    expect(moved).toEqual({ number: '+14155550100', tenantId: 'beta' });
    expect((await numbers.resolve('+14155550100')).tenantId).toBe('beta');
    expect((await numbers.listNumbers('acme')).map((n) => n.number)).toEqual(['sip:Sales@acme.example']);
    expect((await numbers.listNumbers('beta')).map((n) => n.number)).toEqual(['+14155550100']);

    await numbers.deleteNumber('+14155550100');
    expect((await caught(numbers.resolve('+14155550100'))).code).toBe('CG_NUMBER_NOT_FOUND');
    expect(await numbers.listNumbers('beta')).toEqual([]);
    expect((await caught(numbers.deleteNumber('+14155550100'))).code).toBe('CG_NUMBER_NOT_FOUND');
  });

  it('refuses bad numbers, unknown tenants and unknown trunks', async () => {
    const bad = await caught(numbers.createNumber({ number: '4155550100', tenantId: 'acme' }));
    expect(bad.code).toBe('CG_TENANT_INVALID');
    expect((bad.details?.['issues'] as { path: string }[])[0]?.path).toBe('number');
    expect((await caught(numbers.createNumber({ number: '+14155550101', tenantId: 'nobody' }))).code).toBe('CG_TENANT_NOT_FOUND');
    expect((await caught(numbers.createNumber({ number: '+14155550101', tenantId: 'acme', trunk: 'no-trunk' }))).code).toBe('CG_TRUNK_NOT_FOUND');
    expect((await caught(numbers.updateNumber('sip:Sales@acme.example', { trunk: 'no-trunk' }))).code).toBe('CG_TRUNK_NOT_FOUND');
    // Found by the fuzzer through PATCH /v1/tenants/:id/numbers/:number: a non-string `number` was a TypeError (500).
    const notText = await caught(numbers.updateNumber('sip:Sales@acme.example', { number: 9007199254740994 } as unknown as { number: string }));
    expect(notText.code).toBe('CG_TENANT_INVALID');
    expect((notText.details?.['issues'] as { path: string }[])[0]?.path).toBe('number');
    expect(await redis.exists(k.number('+14155550101'))).toBe(0);
  });
});
