import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceBindingStore, StaleRegistration, type BindingSource } from './DeviceBindingStore.js';
import { DeviceStore } from './DeviceStore.js';
import { caught } from './testing/caught.js';
import { connectRedis, deletePrefix, keys, testPrefix, type Redis } from './redisClient.js';
import { SecretBox } from './secrets.js';
import { TenantStore } from './TenantStore.js';

const prefix = testPrefix();
const k = keys(prefix);
let redis: Redis;
let devices: DeviceStore;
let bindings: DeviceBindingStore;
const PASSWORD = 'desk-phone-secret-1';

beforeAll(async () => {
  redis = await connectRedis({ prefix });
  const secrets = new SecretBox(randomBytes(32));
  devices = new DeviceStore(redis, secrets, { prefix });
  bindings = new DeviceBindingStore(redis, { prefix, maxBindings: 3 });
  const tenants = new TenantStore(redis, secrets, { prefix });
  await tenants.create({ id: 'acme', displayName: 'Acme' });
  await tenants.create({ id: 'other', displayName: 'Other' });
});

afterAll(async () => {
  await deletePrefix(redis, prefix);
  await redis.quit();
});

/** Every key and value under the prefix, as text. */
async function everything(): Promise<string> {
  let all = '';
  for await (const batch of redis.scanIterator({ MATCH: `${prefix}*` })) {
    for (const key of Array.isArray(batch) ? batch : [batch]) {
      const type = await redis.type(key);
      const value = type === 'string' ? await redis.get(key) : type === 'hash' ? JSON.stringify(await redis.hGetAll(key)) : type === 'set' ? JSON.stringify(await redis.sMembers(key)) : '';
      all += `${key} ${value}\n`;
    }
  }
  return all;
}

describe('DeviceStore', () => {
  it('keeps a device under its tenant with the password encrypted, and never shows the password', async () => {
    const made = await devices.create('acme', { username: 'front-desk', password: PASSWORD, displayName: 'Front desk' });
    expect(made).toEqual({ username: 'front-desk', tenantId: 'acme', displayName: 'Front desk', createdAt: expect.any(String), updatedAt: made.createdAt });
    expect(JSON.stringify(made)).not.toContain('password');
    expect(await devices.get('acme', 'front-desk')).toEqual(made);
    expect(await devices.list('acme')).toEqual([made]);
    // At rest: ciphertext only; nowhere under the prefix is the password in clear.
    const raw = JSON.parse((await redis.get(k.device('front-desk')))!) as { password: { enc: string } };
    expect(raw.password.enc).toMatch(/^v1:/);
    expect(await everything()).not.toContain(PASSWORD);
    // The SIP door gets it in clear, for the digest check.
    expect(await devices.forAuth('front-desk')).toMatchObject({ username: 'front-desk', tenantId: 'acme', password: PASSWORD });
    expect(await devices.forAuth('nobody')).toBeUndefined();
    expect(await devices.forAuth('bad name\r\n')).toBeUndefined();
    expect(await devices.any()).toBe(true);
  });

  it("makes usernames unique across the gateway, and reads another tenant's device as absent", async () => {
    await devices.create('acme', { username: 'shared-name', password: PASSWORD });
    const taken = await caught(devices.create('other', { username: 'shared-name', password: 'another-password' }));
    expect(taken).toMatchObject({ code: 'CG_DEVICE_EXISTS', status: 409, details: { username: 'shared-name' } });
    for (const attempt of [devices.get('other', 'shared-name'), devices.update('other', 'shared-name', { password: 'stolen-password' }), devices.delete('other', 'shared-name')]) {
      expect(await caught(attempt)).toMatchObject({ code: 'CG_DEVICE_NOT_FOUND', status: 404 });
    }
    expect(await devices.list('other')).toEqual([]);
    expect((await devices.forAuth('shared-name'))?.password).toBe(PASSWORD);
    expect(await caught(devices.create('nope', { username: 'orphan', password: PASSWORD }))).toMatchObject({ code: 'CG_TENANT_NOT_FOUND' });
  });

  it('refuses bad input with 400s that name the field', async () => {
    const cases: [unknown, string][] = [
      [{ username: 'a b', password: PASSWORD }, 'username'],
      [{ username: '-dash', password: PASSWORD }, 'username'],
      [{ username: 'x'.repeat(65), password: PASSWORD }, 'username'],
      [{ username: 'ok', password: 'short' }, 'password'],
      [{ username: 'same-as-pass', password: 'same-as-pass' }, 'password'],
      [{ username: 'ok', password: `bad\u0000${PASSWORD}` }, 'password'],
      [{ username: 'ok', password: PASSWORD, realm: 'x' }, 'realm'],
      [{ password: PASSWORD }, 'username'],
      [{ username: 'ok', password: PASSWORD, displayName: 'a\u202eb' }, 'displayName'],
    ];
    for (const [input, path] of cases) {
      const err = await caught(devices.create('acme', input as never));
      expect({ input, code: err.code, path: (err.details?.['issues'] as { path: string }[])[0]?.path }).toEqual({ input, code: 'CG_TENANT_INVALID', path });
    }
    const renamed = await caught(devices.update('acme', 'front-desk', { username: 'other-name' }));
    expect(renamed).toMatchObject({ code: 'CG_TENANT_INVALID', details: { issues: [{ path: 'username' }] } });
  });

  it('changes the password and display name, and removes the display name with null', async () => {
    await devices.create('acme', { username: 'lobby', password: PASSWORD, displayName: 'Lobby' });
    const before = JSON.parse((await redis.get(k.device('lobby')))!) as { password: { enc: string } };
    const updated = await devices.update('acme', 'lobby', { password: 'a-new-password', displayName: 'Lobby phone' });
    expect(updated).toMatchObject({ username: 'lobby', displayName: 'Lobby phone' });
    expect((await devices.forAuth('lobby'))?.password).toBe('a-new-password');
    expect(JSON.parse((await redis.get(k.device('lobby')))!).password.enc).not.toBe(before.password.enc);
    const unnamed = await devices.update('acme', 'lobby', { displayName: null });
    expect(unnamed.displayName).toBeUndefined();
    expect((await devices.forAuth('lobby'))?.password).toBe('a-new-password');
  });

  it('deletes a device with its registrations, and all of a tenant\'s devices', async () => {
    await devices.create('other', { username: 'o1', password: PASSWORD });
    await devices.create('other', { username: 'o2', password: PASSWORD });
    await bindings.register({ username: 'o1', callId: 'c1', cseq: 1, contacts: [{ contact: 'sip:o1@192.0.2.1:5062', expiresS: 60 }], source: { address: '198.51.100.1', port: 5062, transport: 'udp' } });
    expect(await redis.exists(k.deviceBindings('o1'))).toBe(1);
    await devices.delete('other', 'o1');
    expect(await redis.exists(k.deviceBindings('o1'))).toBe(0);
    expect(await caught(devices.get('other', 'o1'))).toMatchObject({ code: 'CG_DEVICE_NOT_FOUND' });
    expect(await devices.deleteAll('other')).toBe(1);
    expect(await devices.list('other')).toEqual([]);
    expect(await devices.forAuth('o2')).toBeUndefined();
    expect(await redis.sIsMember(k.deviceIndex(), 'o2')).toBe(0);
    // The username is free again.
    await devices.create('acme', { username: 'o2', password: PASSWORD });
  });
});

describe('DeviceBindingStore', () => {
  const nat: BindingSource = { address: '203.0.113.9', port: 40123, transport: 'udp' };

  it('binds several contacts with their real source, refreshes and removes one, and expires them on Redis\'s clock', async () => {
    await devices.create('acme', { username: 'softphone', password: PASSWORD });
    const first = await bindings.register({
      username: 'softphone',
      callId: 'reg-1',
      cseq: 1,
      contacts: [
        { contact: 'sip:softphone@10.0.0.5:5060', expiresS: 60 },
        { contact: 'sip:softphone@10.0.0.5:5070;transport=tcp', expiresS: 1 },
      ],
      source: nat,
      userAgent: 'baresip v1.0.0',
    });
    expect(first.bindings.map((b) => [b.contact, Math.round((b.expiresAt - first.now) / 1000)])).toEqual([
      ['sip:softphone@10.0.0.5:5060', 60],
      ['sip:softphone@10.0.0.5:5070;transport=tcp', 1],
    ]);
    // NAT: the Contact says 10.0.0.5, the packet came from 203.0.113.9:40123; both are kept.
    expect(first.bindings[0]).toMatchObject({ source: nat, userAgent: 'baresip v1.0.0', callId: 'reg-1', cseq: 1 });
    const ttl = await redis.pTTL(k.deviceBindings('softphone'));
    expect(ttl).toBeGreaterThan(55_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    await sleep(1100);
    expect((await bindings.bindings('softphone')).bindings.map((b) => b.contact)).toEqual(['sip:softphone@10.0.0.5:5060']);
    // A refresh from the same Call-ID with a higher CSeq; then that contact removed (Expires 0).
    const refreshed = await bindings.register({ username: 'softphone', callId: 'reg-1', cseq: 2, contacts: [{ contact: 'sip:softphone@10.0.0.5:5060', expiresS: 120 }], source: nat });
    expect(Math.round((refreshed.bindings[0]!.expiresAt - refreshed.now) / 1000)).toBe(120);
    const removed = await bindings.register({ username: 'softphone', callId: 'reg-1', cseq: 3, contacts: [{ contact: 'sip:softphone@10.0.0.5:5060', expiresS: 0 }], source: nat });
    expect(removed.bindings).toEqual([]);
    expect(await redis.exists(k.deviceBindings('softphone'))).toBe(0);
  });

  it('refuses a request older than the binding it would change (same Call-ID, CSeq not higher), changing nothing', async () => {
    await bindings.register({ username: 'softphone', callId: 'reg-2', cseq: 10, contacts: [{ contact: 'sip:softphone@10.0.0.6', expiresS: 60 }], source: nat });
    for (const cseq of [10, 9]) {
      await expect(bindings.register({ username: 'softphone', callId: 'reg-2', cseq, contacts: [{ contact: 'sip:softphone@10.0.0.6', expiresS: 0 }], source: nat })).rejects.toBeInstanceOf(StaleRegistration);
      await expect(bindings.register({ username: 'softphone', callId: 'reg-2', cseq, contacts: '*', source: nat })).rejects.toBeInstanceOf(StaleRegistration);
    }
    expect((await bindings.bindings('softphone')).bindings).toHaveLength(1);
    // Another Call-ID (the phone restarted) is not older: it may change the binding.
    await bindings.register({ username: 'softphone', callId: 'reg-3', cseq: 1, contacts: [{ contact: 'sip:softphone@10.0.0.6', expiresS: 30 }], source: nat });
    expect((await bindings.bindings('softphone')).bindings[0]).toMatchObject({ callId: 'reg-3' });
  });

  it('removes every binding with *, keys a binding by +sip.instance, and keeps at most maxBindings (the latest to expire)', async () => {
    for (let i = 0; i < 5; i++) {
      await bindings.register({ username: 'softphone', callId: `restart-${i}`, cseq: 1, contacts: [{ contact: `sip:softphone-${i}@10.0.0.7`, expiresS: 100 + i }], source: nat });
    }
    expect((await bindings.bindings('softphone')).bindings.map((b) => b.contact)).toEqual(['sip:softphone-4@10.0.0.7', 'sip:softphone-3@10.0.0.7', 'sip:softphone-2@10.0.0.7']);
    await bindings.register({ username: 'softphone', callId: 'x', cseq: 1, contacts: '*', source: nat });
    expect((await bindings.bindings('softphone')).bindings).toEqual([]);
    const instance = '<urn:uuid:00000000-0000-1000-8000-000000000001>';
    await bindings.register({ username: 'softphone', callId: 'y', cseq: 1, contacts: [{ contact: 'sip:softphone@10.0.0.8:1111', expiresS: 60, instance }], source: nat });
    const moved = await bindings.register({ username: 'softphone', callId: 'z', cseq: 1, contacts: [{ contact: 'sip:softphone@10.0.0.8:2222', expiresS: 60, instance }], source: nat });
    expect(moved.bindings.map((b) => [b.key, b.contact])).toEqual([[instance, 'sip:softphone@10.0.0.8:2222']]);
  });

  it('refuses to bind a device that does not exist', async () => {
    expect(await caught(bindings.register({ username: 'ghost', callId: 'g', cseq: 1, contacts: [{ contact: 'sip:ghost@10.0.0.9', expiresS: 60 }], source: nat }))).toMatchObject({ code: 'CG_DEVICE_NOT_FOUND' });
    expect(await redis.exists(k.deviceBindings('ghost'))).toBe(0);
  });
});
