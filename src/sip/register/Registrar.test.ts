import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rootLogger } from '../../log.js';
import { DeviceBindingStore } from '../../tenants/DeviceBindingStore.js';
import { DeviceStore } from '../../tenants/DeviceStore.js';
import { connectRedis, deletePrefix, testPrefix, type Redis } from '../../tenants/redisClient.js';
import { SecretBox } from '../../tenants/secrets.js';
import { SipAuthFailureStore } from '../../tenants/SipAuthFailureStore.js';
import { TenantStore } from '../../tenants/TenantStore.js';
import { DigestAuth, digestResponse } from '../invite/DigestAuth.js';
import type { AuthLockout } from '../invite/steps.js';
import { Registrar, type RegisterRequest } from './Registrar.js';

/** The registrar's answers to REGISTERs, against real Redis stores (drachtio is in tests/sip/baresip.test.ts). */
const PASSWORD = 'softphone-secret';
const URI = 'sip:127.0.0.1:5060';
const NAT = { address: '203.0.113.20', port: 40000, transport: 'udp' } as const;

describe('Registrar', () => {
  const prefix = testPrefix();
  const digest = new DigestAuth();
  let redis: Redis;
  let bindings: DeviceBindingStore;
  let authFailures: SipAuthFailureStore;
  let registrar: Registrar;
  const lockouts: AuthLockout[] = [];
  let cseq = 1;

  beforeAll(async () => {
    redis = await connectRedis({ prefix });
    const secrets = new SecretBox(randomBytes(32));
    await new TenantStore(redis, secrets, { prefix }).create({ id: 'demo', displayName: 'Demo' });
    const devices = new DeviceStore(redis, secrets, { prefix });
    await devices.create('demo', { username: 'alice', password: PASSWORD });
    await devices.create('demo', { username: 'bob', password: 'bobs-own-password' });
    bindings = new DeviceBindingStore(redis, { prefix });
    authFailures = new SipAuthFailureStore(redis, { prefix });
    registrar = new Registrar({ devices, bindings, digest, authFailures, onLockout: (l) => lockouts.push(l), logger: rootLogger }, { minExpiresS: 60, maxExpiresS: 600, defaultExpiresS: 300 });
  });

  afterAll(async () => {
    await deletePrefix(redis, prefix);
    await redis.quit();
  });

  /** A REGISTER as a phone sends it: first unauthenticated, then with the answer to the challenge. */
  async function register(over: Partial<RegisterRequest> & { username?: string; password?: string } = {}) {
    const { username = 'alice', password = PASSWORD, ...fields } = over;
    const base: RegisterRequest = {
      callId: 'reg-call-1',
      uri: URI,
      to: `<sip:${username}@127.0.0.1>`,
      cseq: cseq++,
      contact: `<sip:${username}-1@10.0.0.5:5062>`,
      expires: '120',
      authorization: undefined,
      userAgent: 'baresip v1.0.0',
      source: NAT,
      ...fields,
    };
    const challenge = await registrar.handle(base);
    expect(challenge.status).toBe(401);
    const nonce = /nonce="([^"]+)"/.exec(challenge.headers['WWW-Authenticate']!)![1]!;
    const creds = { username, realm: 'callgate', nonce, uri: URI, qop: 'auth', nc: '00000001', cnonce: 'c1' };
    const authorization = `Digest username="${username}", realm="callgate", nonce="${nonce}", uri="${URI}", response="${digestResponse('REGISTER', creds, password)}", qop=auth, nc=00000001, cnonce="c1"`;
    return registrar.handle({ ...base, cseq: cseq++, authorization });
  }

  it('challenges, binds the contact with the real source, and answers 200 listing the bindings with their expiry', async () => {
    const ok = await register();
    expect(ok).toMatchObject({ status: 200, reason: 'OK', device: { username: 'alice', tenantId: 'demo' } });
    expect(ok.headers['Contact']).toMatch(/^<sip:alice-1@10\.0\.0\.5:5062>;expires=(119|120)$/);
    expect(ok.headers['Date']).toMatch(/GMT$/);
    const now = await bindings.bindings('alice');
    expect(now.bindings).toEqual([expect.objectContaining({ contact: 'sip:alice-1@10.0.0.5:5062', source: NAT, userAgent: 'baresip v1.0.0', callId: 'reg-call-1' })]);
    // A second contact (another Call-ID: another phone of the same user), the default and the cap.
    const two = await register({ callId: 'reg-call-2', contact: '<sip:alice-2@10.0.0.6>;expires=99999', expires: undefined });
    expect(two.headers['Contact']!.split(', ').map((c) => c.replace(/expires=\d+/, 'expires=N'))).toEqual(['<sip:alice-2@10.0.0.6>;expires=N', '<sip:alice-1@10.0.0.5:5062>;expires=N']);
    expect(two.headers['Contact']).toMatch(/alice-2@10\.0\.0\.6>;expires=(599|600)/);
    const dflt = await register({ callId: 'reg-call-3', contact: '<sip:alice-3@10.0.0.7>', expires: undefined });
    expect(dflt.headers['Contact']).toMatch(/alice-3@10\.0\.0\.7>;expires=(299|300)/);
  });

  it('answers 423 with Min-Expires below the minimum, and un-registers with Expires: 0 and with *', async () => {
    const brief = await register({ callId: 'reg-call-1', expires: '30' });
    expect(brief).toMatchObject({ status: 423, reason: 'Interval Too Brief', headers: { 'Min-Expires': '60' } });
    const one = await register({ callId: 'reg-call-1', expires: '0' });
    expect(one.status).toBe(200);
    expect((await bindings.bindings('alice')).bindings.map((b) => b.contact)).toEqual(['sip:alice-2@10.0.0.6', 'sip:alice-3@10.0.0.7']);
    // A query (no Contact) lists them; `*` needs Expires: 0.
    expect((await register({ contact: undefined })).headers['Contact']).toContain('alice-3');
    expect((await register({ contact: '*', expires: '60' })).status).toBe(400);
    const all = await register({ contact: '*', expires: '0' });
    expect(all.status).toBe(200);
    expect(all.headers['Contact']).toBeUndefined();
    expect((await bindings.bindings('alice')).bindings).toEqual([]);
  });

  it("refuses a wrong password, an unknown user and another device's address of record with the same 403, and locks out as INVITEs do", async () => {
    const wrong = await register({ password: 'not-it', source: { ...NAT, address: '198.51.100.7' } });
    const unknown = await register({ username: 'mallory', source: { ...NAT, address: '198.51.100.7' } });
    // alice's own credentials, registering bob's address of record.
    const hijack = await register({ to: '<sip:bob@127.0.0.1>', source: { ...NAT, address: '198.51.100.7' } });
    for (const r of [wrong, unknown, hijack]) expect(r).toEqual({ status: 403, reason: 'Forbidden', headers: {} });
    expect((await bindings.bindings('bob')).bindings).toEqual([]);
    // Two more failures from that address (other usernames) lock it, 5 in all: then alice's right password is refused too.
    await register({ username: 'mallory', password: 'nope-1', source: { ...NAT, address: '198.51.100.7' } });
    await register({ username: 'eve', password: 'nope-2', source: { ...NAT, address: '198.51.100.7' } });
    expect(lockouts).toEqual([expect.objectContaining({ scope: 'source', source: '198.51.100.7' })]);
    expect((await register({ source: { ...NAT, address: '198.51.100.7' } })).status).toBe(403);
    // Elsewhere, alice still registers.
    expect((await register({ source: { ...NAT, address: '198.51.100.8' } })).status).toBe(200);
  });

  it('answers a REGISTER older than its binding (same Call-ID, lower CSeq) 500, and bad headers 400', async () => {
    expect((await register({ callId: 'order', cseq: 100 })).status).toBe(200);
    cseq = 10;
    expect((await register({ callId: 'order' })).status).toBe(500);
    cseq = 1000;
    expect((await register({ contact: '<sip:a@b', callId: 'bad' })).status).toBe(400);
    expect((await register({ expires: 'soon', callId: 'bad' })).status).toBe(400);
  });
});
