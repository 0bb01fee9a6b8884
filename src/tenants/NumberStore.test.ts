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
    await numbers.updateTrunk('carrier-a', { tenants: ['acme'] });
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

describe('NumberStore: trunks belong to the tenants they list', () => {
  it("pins a number only to a trunk listing its tenant (or '*'), moving it included", async () => {
    await numbers.createTrunk({ name: 'shared', sourceCidrs: ['192.0.2.0/24'], tenants: ['beta'] });
    await numbers.createTrunk({ name: 'nobodys', sourceCidrs: ['192.0.2.0/24'] });
    for (const trunk of ['shared', 'nobodys']) {
      const refused = await caught(numbers.createNumber({ number: '+14155550300', tenantId: 'acme', trunk }));
      expect(refused.code).toBe('CG_TENANT_INVALID');
      expect(refused.details?.['issues']).toEqual([{ path: 'trunk', message: expect.stringContaining(`trunk '${trunk}' does not list tenant 'acme'`) }]);
    }
    expect(await redis.exists(k.number('+14155550300'))).toBe(0);
    expect((await numbers.createNumber({ number: '+14155550300', tenantId: 'beta', trunk: 'shared' })).trunk).toBe('shared');
    // Moving the number to a tenant the trunk does not list, still pinned, is the same pin.
    expect((await caught(numbers.updateNumber('+14155550300', { tenantId: 'acme' }))).code).toBe('CG_TENANT_INVALID');
    expect((await numbers.getNumber('+14155550300')).tenantId).toBe('beta');
    await numbers.updateTrunk('shared', { tenants: ['*'] });
    expect((await numbers.updateNumber('+14155550300', { tenantId: 'acme' })).tenantId).toBe('acme');
  });

  it("refuses a trunk edit that would leave out a tenant whose numbers are pinned to it (CG_TRUNK_IN_USE)", async () => {
    await numbers.createTrunk({ name: 'pinned', sourceCidrs: ['192.0.2.0/24'], tenants: ['acme', 'beta'] });
    await numbers.createNumber({ number: '+14155550400', tenantId: 'beta', trunk: 'pinned' });
    const inUse = await caught(numbers.updateTrunk('pinned', { tenants: ['acme'] }));
    expect(inUse).toMatchObject({ code: 'CG_TRUNK_IN_USE', status: 409, details: { trunk: 'pinned', numbers: ['+14155550400'] } });
    expect((await numbers.getTrunk('pinned')).tenants).toEqual(['acme', 'beta']);
    // Leaving beta listed is fine; so is dropping it once its number is unpinned.
    expect((await numbers.updateTrunk('pinned', { tenants: ['beta'] })).tenants).toEqual(['beta']);
    await numbers.updateNumber('+14155550400', { trunk: null });
    expect((await numbers.updateTrunk('pinned', { tenants: [] })).tenants).toEqual([]);
    // A trunk made again under a deleted one's name must not hand its old pins to anyone it does not list.
    await numbers.updateTrunk('pinned', { tenants: ['beta'] });
    await numbers.updateNumber('+14155550400', { trunk: 'pinned' });
    await numbers.deleteTrunk('pinned');
    expect((await caught(numbers.createTrunk({ name: 'pinned', sourceCidrs: ['192.0.2.0/24'], tenants: ['acme'] }))).code).toBe('CG_TRUNK_IN_USE');
    expect((await numbers.createTrunk({ name: 'pinned', sourceCidrs: ['192.0.2.0/24'], tenants: ['beta'] })).tenants).toEqual(['beta']);
  });

  it('trunkForTenant: one answer for a trunk that is not the tenant\'s and one that does not exist', async () => {
    await numbers.createTrunk({ name: 'acme-only', sourceCidrs: ['192.0.2.0/24'], tenants: ['acme'], outbound: { host: 'sip.carrier.example', port: 5060, transport: 'udp' } });
    expect((await numbers.trunkForTenant('acme-only', 'acme')).name).toBe('acme-only');
    const notYours = await caught(numbers.trunkForTenant('acme-only', 'beta'));
    const missing = await caught(numbers.trunkForTenant('no-such-trunk', 'beta'));
    expect(notYours.code).toBe('CG_TRUNK_NOT_FOUND');
    expect({ status: notYours.status, message: notYours.message.replace('acme-only', 'X'), details: JSON.stringify(notYours.details).replace('acme-only', 'X') }).toEqual({
      status: missing.status,
      message: missing.message.replace('no-such-trunk', 'X'),
      details: JSON.stringify(missing.details).replace('no-such-trunk', 'X'),
    });
    await numbers.updateTrunk('acme-only', { tenants: ['*'] });
    expect((await numbers.trunkForTenant('acme-only', 'beta')).name).toBe('acme-only');
  });

  it('takes a deleted tenant off every trunk list', async () => {
    await numbers.createTrunk({ name: 'leaving-a', sourceCidrs: ['192.0.2.0/24'], tenants: ['leaver', 'acme'] });
    await numbers.createTrunk({ name: 'leaving-b', sourceCidrs: ['192.0.2.0/24'], tenants: ['leaver'] });
    expect((await numbers.removeTenantFromTrunks('leaver')).sort()).toEqual(['leaving-a', 'leaving-b']);
    expect((await numbers.getTrunk('leaving-a')).tenants).toEqual(['acme']);
    expect((await numbers.getTrunk('leaving-b')).tenants).toEqual([]);
    expect(await numbers.removeTenantFromTrunks('leaver')).toEqual([]);
  });

  it('refuses unknown fields inside auth and outbound, on create and on update (not dropped)', async () => {
    const created = await caught(numbers.createTrunk({ name: 'typo', sourceCidrs: ['192.0.2.0/24'], auth: { username: 'u', password: PASSWORD, realm: 'x' } } as never));
    expect(created.details?.['issues']).toEqual([{ path: 'auth.realm', message: 'is not a known field' }]);
    await numbers.createTrunk({ name: 'typo', sourceCidrs: ['192.0.2.0/24'], auth: { username: 'u', password: PASSWORD } });
    for (const auth of [{ realm: 'x' }, { username: 'v', realm: 'x' }, { password: 'another-password-1', realm: 'x' }]) {
      const patched = await caught(numbers.updateTrunk('typo', { auth } as never));
      expect(patched.details?.['issues']).toEqual([{ path: 'auth.realm', message: 'is not a known field' }]);
    }
    const outbound = await caught(numbers.updateTrunk('typo', { outbound: { host: 'h.example', prot: 5061 } } as never));
    expect(outbound.details?.['issues']).toEqual([{ path: 'outbound.prot', message: 'is not a known field' }]);
    expect((await numbers.getTrunkWithSecrets('typo')).auth).toEqual({ username: 'u', password: PASSWORD });
  });
});
