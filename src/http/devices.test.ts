import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceBindingStore } from '../tenants/DeviceBindingStore.js';
import { keys } from '../tenants/redisClient.js';
import { startAdminApp, type TestAdminApp } from './testing/testKit.js';

/** `/v1/tenants/:id/devices` over real HTTP and Redis: who may, what comes back, what never does. */
let t: TestAdminApp;
let acmeKey: string;
let otherKey: string;
const PASSWORD = 'front-desk-password';

beforeAll(async () => {
  t = await startAdminApp();
  for (const id of ['acme', 'other']) expect((await t.call('POST', '/v1/tenants', { id, displayName: id })).status).toBe(201);
  acmeKey = (await t.call('POST', '/v1/tenants/acme/keys', {})).body!['key'] as string;
  otherKey = (await t.call('POST', '/v1/tenants/other/keys', {})).body!['key'] as string;
});

afterAll(async () => {
  await t.close();
});

describe('devices API', () => {
  it("lets a tenant's key create, read, change and delete its devices, and never returns the password", async () => {
    const made = await t.call('POST', '/v1/tenants/acme/devices', { username: 'front-desk', password: PASSWORD, displayName: 'Front desk' }, acmeKey);
    expect(made.status).toBe(201);
    expect(made.body).toEqual({ username: 'front-desk', tenantId: 'acme', displayName: 'Front desk', createdAt: expect.any(String), updatedAt: expect.any(String), registrations: [] });
    const got = await t.call('GET', '/v1/tenants/acme/devices/front-desk', undefined, acmeKey);
    expect(got.body).toEqual(made.body);
    expect((await t.call('GET', '/v1/tenants/acme/devices', undefined, acmeKey)).body).toEqual([made.body]);
    const patched = await t.call('PATCH', '/v1/tenants/acme/devices/front-desk', { password: 'another-password', displayName: null }, acmeKey);
    expect(patched.status).toBe(200);
    expect(patched.body).not.toHaveProperty('displayName');
    // No answer carries the password, old or new, nor any part of its ciphertext.
    for (const body of [made.body, got.body, patched.body]) {
      const text = JSON.stringify(body);
      for (const secret of [PASSWORD, 'another-password', 'enc', 'password']) expect(text).not.toContain(secret);
    }
    expect((await t.call('DELETE', '/v1/tenants/acme/devices/front-desk', undefined, acmeKey)).status).toBe(204);
    expect((await t.call('GET', '/v1/tenants/acme/devices/front-desk', undefined, acmeKey)).body).toMatchObject({ code: 'CG_DEVICE_NOT_FOUND' });
  });

  it("keeps tenants apart: another tenant's key is 403, another tenant's device reads as absent, a taken username is 409", async () => {
    expect((await t.call('POST', '/v1/tenants/acme/devices', { username: 'lobby', password: PASSWORD }, acmeKey)).status).toBe(201);
    expect(await t.call('GET', '/v1/tenants/acme/devices/lobby', undefined, otherKey)).toMatchObject({ status: 403, body: { code: 'CG_HTTP_FORBIDDEN' } });
    // The admin token asking through the other tenant's path finds nothing.
    expect(await t.call('GET', '/v1/tenants/other/devices/lobby')).toMatchObject({ status: 404, body: { code: 'CG_DEVICE_NOT_FOUND' } });
    expect(await t.call('DELETE', '/v1/tenants/other/devices/lobby', undefined, otherKey)).toMatchObject({ status: 404, body: { code: 'CG_DEVICE_NOT_FOUND' } });
    expect(await t.call('POST', '/v1/tenants/other/devices', { username: 'lobby', password: PASSWORD }, otherKey)).toMatchObject({ status: 409, body: { code: 'CG_DEVICE_EXISTS' } });
    expect(await t.call('GET', '/v1/tenants/nope/devices')).toMatchObject({ status: 404, body: { code: 'CG_TENANT_NOT_FOUND' } });
    expect(await t.call('POST', '/v1/tenants/nope/devices', { username: 'x1', password: PASSWORD })).toMatchObject({ status: 404, body: { code: 'CG_TENANT_NOT_FOUND' } });
  });

  it('answers bad bodies with 400s naming the field', async () => {
    const bad: [unknown, string][] = [
      [{ username: 'has space', password: PASSWORD }, 'username'],
      [{ username: 'short-pass', password: '1234' }, 'password'],
      [{ username: 'typo', password: PASSWORD, displayname: 'x' }, 'displayname'],
      [{ username: 'nopass' }, 'password'],
    ];
    for (const [body, path] of bad) {
      const res = await t.call('POST', '/v1/tenants/acme/devices', body, acmeKey);
      expect({ status: res.status, code: res.body!['code'], path: (res.body!['details'] as { issues: { path: string }[] }).issues[0]!.path }).toEqual({ status: 400, code: 'CG_TENANT_INVALID', path });
    }
    expect(await t.call('POST', '/v1/tenants/acme/devices', ['x'], acmeKey)).toMatchObject({ status: 400, body: { code: 'CG_HTTP_BAD_REQUEST' } });
    expect(await t.call('PATCH', '/v1/tenants/acme/devices/lobby', { username: 'renamed' }, acmeKey)).toMatchObject({ status: 400, body: { code: 'CG_TENANT_INVALID' } });
  });

  it('shows where a device is registered (contact, real source, seconds left), and deletes devices with their tenant', async () => {
    expect((await t.call('POST', '/v1/tenants/other/devices', { username: 'o-phone', password: PASSWORD }, otherKey)).status).toBe(201);
    const bindings = new DeviceBindingStore(t.redis, { prefix: t.prefix });
    await bindings.register({ username: 'o-phone', callId: 'r1', cseq: 1, contacts: [{ contact: 'sip:o-phone@10.1.2.3:5060', expiresS: 300 }], source: { address: '203.0.113.5', port: 61000, transport: 'udp' }, userAgent: 'Desk 1.0' });
    const got = await t.call('GET', '/v1/tenants/other/devices/o-phone', undefined, otherKey);
    expect(got.body!['registrations']).toEqual([{ contact: 'sip:o-phone@10.1.2.3:5060', source: 'udp:203.0.113.5:61000', expiresInS: expect.any(Number), registeredAt: expect.any(String), userAgent: 'Desk 1.0' }]);
    expect(((got.body!['registrations'] as { expiresInS: number }[])[0]!).expiresInS).toBeGreaterThan(295);
    expect((await t.call('DELETE', '/v1/tenants/other')).status).toBe(204);
    const k = keys(t.prefix);
    expect(await t.redis.exists([k.device('o-phone'), k.deviceBindings('o-phone'), k.tenantDevices('other')])).toBe(0);
    expect(await t.redis.sIsMember(k.deviceIndex(), 'o-phone')).toBe(0);
  });

  it("places a call to the tenant's own device only, and names what is wrong in a bad call body", async () => {
    const dialed: unknown[] = [];
    const d = await startAdminApp({ dialer: { dial: async (req) => (dialed.push(req), { callId: 'out-1' }) } });
    try {
      for (const id of ['acme', 'other']) await d.call('POST', '/v1/tenants', { id, displayName: id });
      const key = (await d.call('POST', '/v1/tenants/acme/keys', {})).body!['key'] as string;
      await d.call('POST', '/v1/tenants/acme/devices', { username: 'desk', password: PASSWORD });
      await d.call('POST', '/v1/tenants/other/devices', { username: 'their-desk', password: PASSWORD });
      expect(await d.call('POST', '/v1/tenants/acme/calls', { device: 'desk', variables: { name: 'Sam' } }, key)).toMatchObject({ status: 202, body: { callId: 'out-1', status: 'dialing' } });
      expect(dialed).toEqual([{ tenantId: 'acme', device: 'desk', variables: { name: 'Sam' } }]);
      // Another tenant's device is one that does not exist; nothing is dialled.
      expect(await d.call('POST', '/v1/tenants/acme/calls', { device: 'their-desk' }, key)).toMatchObject({ status: 404, body: { code: 'CG_DEVICE_NOT_FOUND' } });
      expect(await d.call('POST', '/v1/calls', { tenant: 'acme', device: 'their-desk' })).toMatchObject({ status: 404, body: { code: 'CG_DEVICE_NOT_FOUND' } });
      expect(await d.call('POST', '/v1/calls', { tenant: 'other', device: 'their-desk' })).toMatchObject({ status: 202 });
      const bad: [unknown, string][] = [
        [{ device: '' }, 'device'],
        [{ device: 'desk', to: '+14155550123' }, 'to'],
        [{ to: '+14155550123' }, 'trunk'],
      ];
      for (const [body, path] of bad) {
        const res = await d.call('POST', '/v1/tenants/acme/calls', body, key);
        expect({ status: res.status, path: (res.body!['details'] as { issues: { path: string }[] }).issues[0]!.path }).toEqual({ status: 400, path });
      }
      expect(dialed).toHaveLength(2);
    } finally {
      await d.close();
    }
  });
});
