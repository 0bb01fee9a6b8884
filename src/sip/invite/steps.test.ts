import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallgateError } from '../../errors.js';
import { CallLimiter } from '../../tenants/CallLimiter.js';
import { NumberStore } from '../../tenants/NumberStore.js';
import { connectRedis, deletePrefix, testPrefix, type Redis } from '../../tenants/redisClient.js';
import { SecretBox } from '../../tenants/secrets.js';
import { TenantCache } from '../../tenants/TenantCache.js';
import { TenantStore } from '../../tenants/TenantStore.js';
import { SipAuthFailureStore } from '../../tenants/SipAuthFailureStore.js';
import { sipErrorFrom, SipError } from '../SipError.js';
import { uriOf, userOf, type InviteRequest } from './InviteRequest.js';
import { DigestAuth, digestResponse } from './DigestAuth.js';
import { identifySource, rejectScanners, routeToNumber, tenantFor, type AuthLockout, type SourceDeps } from './steps.js';

/** The INVITE steps one by one, against the real Redis stores (per-run prefix). */
function invite(over: Partial<InviteRequest> & { headers?: Record<string, string> } = {}): InviteRequest {
  const headers = Object.fromEntries(Object.entries(over.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    callId: over.callId ?? `call-${Math.random()}`,
    uri: over.uri ?? 'sip:+15005550100@127.0.0.1;user=phone',
    to: over.to ?? '<sip:+15005550100@127.0.0.1>',
    from: over.from ?? '"Sam" <sip:+14155550123@carrier.example>;tag=1',
    sourceAddress: over.sourceAddress ?? '203.0.113.7',
    transport: over.transport ?? 'udp',
    header: (name) => headers[name.toLowerCase()],
  };
}

const rejection = async (work: Promise<unknown> | (() => unknown)): Promise<SipError> => {
  try {
    await (typeof work === 'function' ? work() : work);
  } catch (err) {
    return sipErrorFrom(err);
  }
  throw new Error('expected a rejection');
};

describe('INVITE steps', () => {
  const prefix = testPrefix();
  let redis: Redis;
  let numbers: NumberStore;
  let cache: TenantCache;
  let limiter: CallLimiter;
  const digest = new DigestAuth();
  let src: SourceDeps;

  beforeAll(async () => {
    redis = await connectRedis({ prefix });
    const secrets = new SecretBox(randomBytes(32));
    const tenants = new TenantStore(redis, secrets, { prefix });
    numbers = new NumberStore(redis, secrets, { prefix });
    cache = new TenantCache(tenants, redis, { prefix });
    limiter = new CallLimiter(redis, { prefix });
    await tenants.create({ id: 'joes', displayName: "Joe's Pizza", maxConcurrentCalls: 2 });
    await numbers.createTrunk({ name: 'carrier', sourceCidrs: ['203.0.113.0/24'], tenants: ['joes'] });
    await numbers.createTrunk({ name: 'other', sourceCidrs: ['198.51.100.0/24'] });
    await numbers.createNumber({ number: '+15005550100', tenantId: 'joes', trunk: 'carrier' });
    await numbers.createNumber({ number: '+15005550199', tenantId: 'joes' });
    // A desk phone that may call from anywhere in 10/8, with digest credentials.
    await numbers.createTrunk({ name: 'desk', sourceCidrs: ['10.0.0.0/8'], auth: { username: 'desk-1', password: 'correct-horse-battery' } });
    src = { numbers, digest, authFailures: new SipAuthFailureStore(redis, { prefix }) };
  });

  afterAll(async () => {
    await deletePrefix(redis, prefix);
    await redis.quit();
  });

  it('parses URIs from headers and Request-URIs', () => {
    expect(uriOf('"Sam" <sip:+1415@host>;tag=9')).toBe('sip:+1415@host');
    expect(userOf('sip:+15005550100@gw;user=phone')).toBe('+15005550100');
    expect(userOf('tel:+15005550100;phone-context=x')).toBe('+15005550100');
    expect(userOf('<sips:support@example.com>')).toBe('support');
    expect(userOf('garbage')).toBeUndefined();
    // Escaped and parameterised user parts, as carriers send them.
    expect(userOf('sip:%2B1500555%30100@gw')).toBe('+15005550100');
    expect(userOf('sip:+15005550100;npdi;rn=+15005550199@gw')).toBe('+15005550100');
    expect(userOf('<sip:%2B15005550100;user=phone@gw>;tag=1')).toBe('+15005550100');
    expect(userOf('sip:%ZZ@gw')).toBeUndefined();
  });

  it('drops scanners silently and lets others through', async () => {
    const err = await rejection(() => rejectScanners(invite({ headers: { 'User-Agent': 'friendly-scanner' } })));
    expect(err).toMatchObject({ silent: true });
    expect(() => rejectScanners(invite({ headers: { 'User-Agent': 'Asterisk PBX 20' } }))).not.toThrow();
  });

  it('identifies a trunk by source address; an unknown source gets 403', async () => {
    expect(await identifySource(invite(), src)).toMatchObject({ kind: 'trunk', auth: 'ip', trunk: { name: 'carrier' } });
    expect(await rejection(identifySource(invite({ sourceAddress: '192.0.2.1' }), src))).toMatchObject({ status: 403 });
  });

  /** A device's Authorization header for `nonce`, computed as a phone would for `uri`. */
  const authorization = (nonce: string, user: string, password: string, uri = 'sip:+15005550100@127.0.0.1;user=phone'): string => {
    const fields = { username: user, realm: 'callgate', nonce, uri, qop: 'auth', nc: '00000001', cnonce: 'ab' };
    return `Digest username="${user}", realm="callgate", nonce="${nonce}", uri="${uri}", response="${digestResponse('INVITE', fields, password)}", qop=auth, nc=00000001, cnonce="ab"`;
  };
  const nonceOf = (challenge: SipError): string => /nonce="([^"]+)"/.exec(challenge.headers['WWW-Authenticate']!)![1]!;

  it('challenges a device with credentials (401), accepts its answer, refuses a wrong password or user (403)', async () => {
    const from = { sourceAddress: '10.1.2.3' };
    const challenge = await rejection(identifySource(invite(from), src));
    expect(challenge).toMatchObject({ status: 401, headers: { 'WWW-Authenticate': expect.stringMatching(/^Digest realm="callgate", nonce=/) } });
    const nonce = nonceOf(challenge);
    const ok = await identifySource(invite({ ...from, headers: { Authorization: authorization(nonce, 'desk-1', 'correct-horse-battery') } }), src);
    expect(ok).toMatchObject({ kind: 'trunk', auth: 'digest', trunk: { name: 'desk' } });
    // The password never travels past this step.
    expect(JSON.stringify(ok)).not.toContain('correct-horse-battery');
    expect(await rejection(identifySource(invite({ ...from, headers: { Authorization: authorization(nonce, 'desk-1', 'wrong-password') } }), src))).toMatchObject({ status: 403 });
    expect(await rejection(identifySource(invite({ ...from, headers: { Authorization: authorization(nonce, 'someone', 'correct-horse-battery') } }), src))).toMatchObject({ status: 403 });
    // Credentials do not open the door from an address outside the device's CIDRs.
    expect(await rejection(identifySource(invite({ sourceAddress: '192.0.2.1', headers: { Authorization: authorization(nonce, 'desk-1', 'correct-horse-battery') } }), src))).toMatchObject({ status: 403 });
  });

  it('refuses an answer computed for another Request-URI like a wrong password, and accepts an equivalent URI', async () => {
    const from = { sourceAddress: '10.9.9.9' };
    const nonce = nonceOf(await rejection(identifySource(invite(from), src)));
    const other = authorization(nonce, 'desk-1', 'correct-horse-battery', 'sip:127.0.0.1');
    expect(await rejection(identifySource(invite({ ...from, headers: { Authorization: other } }), src))).toMatchObject({ status: 403, reason: 'Forbidden', headers: {} });
    // Host case and parameter order do not matter (RFC 3261 §19.1.4); the user part does.
    const same = authorization(nonce, 'desk-1', 'correct-horse-battery', 'SIP:+15005550100@127.0.0.1;USER=phone');
    expect(await identifySource(invite({ ...from, headers: { Authorization: same } }), src)).toMatchObject({ kind: 'trunk', auth: 'digest' });
  });

  it('locks a guessed username out after 5 failures: the right password then gets the very answer a wrong one does', async () => {
    const lockouts: AuthLockout[] = [];
    const deps: SourceDeps = { ...src, onLockout: (l) => lockouts.push(l) };
    const from = { sourceAddress: '10.7.7.7' };
    const nonce = nonceOf(await rejection(identifySource(invite(from), deps)));
    const attempt = (user: string, password: string, over: Partial<InviteRequest> = {}): Promise<SipError> =>
      rejection(identifySource(invite({ ...from, ...over, headers: { Authorization: authorization(nonce, user, password) } }), deps));
    const wrong = await attempt('desk-1', 'guess-1');
    const unknown = await attempt('nobody', 'guess-2');
    // A stale or foreign nonce is challenged again and not counted.
    const foreign = await rejection(identifySource(invite({ ...from, headers: { Authorization: authorization('x.y', 'desk-1', 'guess') } }), deps));
    expect(foreign.status).toBe(401);
    for (let i = 3; i <= 5; i++) await attempt('desk-1', `guess-${i}`);
    // The fifth failure from this address locked the source (two usernames); desk-1 has four.
    expect(lockouts).toEqual([{ scope: 'source', username: 'desk-1', source: '10.7.7.7', lockoutMs: 15 * 60_000 }]);
    const locked = await attempt('desk-1', 'correct-horse-battery');
    const answer = (e: SipError): unknown => ({ status: e.status, reason: e.reason, headers: e.headers, silent: e.silent });
    expect(answer(locked)).toEqual(answer(wrong));
    expect(answer(unknown)).toEqual(answer(wrong));
    expect([wrong.code, unknown.code, locked.code]).toEqual(['CG_SIP_FORBIDDEN', 'CG_SIP_FORBIDDEN', 'CG_SIP_AUTH_LOCKED']);
    // From another address, desk-1's fifth failure locks the username itself: its right password is refused everywhere.
    await attempt('desk-1', 'guess-6', { sourceAddress: '10.7.7.8' });
    expect(lockouts.map((l) => l.scope)).toEqual(['source', 'user']);
    expect((await attempt('desk-1', 'correct-horse-battery', { sourceAddress: '10.7.7.9' })).code).toBe('CG_SIP_AUTH_LOCKED');
    await src.authFailures.succeeded({ username: 'desk-1', source: '10.7.7.9' });
  });

  it('routes the Request-URI, then To, with or without +; unknown → 404; a pinned number refuses other trunks', async () => {
    const carrier = await identifySource(invite(), src);
    expect((await routeToNumber(invite(), carrier, numbers)).tenantId).toBe('joes');
    const bare = invite({ uri: 'sip:15005550199@127.0.0.1', to: '<sip:nobody@x>' });
    expect((await routeToNumber(bare, carrier, numbers)).number).toBe('+15005550199');
    const viaTo = invite({ uri: 'sip:gateway@127.0.0.1', to: '<sip:+15005550199@127.0.0.1>' });
    expect((await routeToNumber(viaTo, carrier, numbers)).number).toBe('+15005550199');
    const unknown = await rejection(routeToNumber(invite({ uri: 'sip:+19999999999@x', to: '<sip:+19999999999@x>' }), carrier, numbers));
    expect(unknown).toMatchObject({ status: 404, code: 'CG_NUMBER_NOT_FOUND' });
    const other = await identifySource(invite({ sourceAddress: '198.51.100.9' }), src);
    expect(await rejection(routeToNumber(invite(), other, numbers))).toMatchObject({ status: 403 });
  });

  it('holds a line per call up to the tenant limit; the next caller hears 486 Busy Here with Retry-After', async () => {
    // The line is taken by the call runner (RunningCall.takeLine), as here: one lease per call under the tenant's limit.
    const tenant = await tenantFor({ number: '+15005550100', tenantId: 'joes' }, cache);
    const line = (callId: string) => limiter.lease(tenant.id, callId, { limit: tenant.maxConcurrentCalls });
    const a = await line('a');
    const b = await line('b');
    const busy = await rejection(line('c'));
    expect(busy).toMatchObject({ status: 486, reason: 'Busy Here', headers: { 'Retry-After': '30' }, code: 'CG_CALL_LIMIT_REACHED' });
    await a.release();
    const c = await line('c');
    await Promise.all([b.release(), c.release()]);
  });

  it('maps failures to SIP responses in one place', () => {
    expect(sipErrorFrom(new CallgateError('CG_REDIS_UNAVAILABLE'))).toMatchObject({ status: 503, headers: { 'Retry-After': '5' } });
    expect(sipErrorFrom(new CallgateError('CG_SDP_NO_COMMON_CODEC'))).toMatchObject({ status: 488 });
    expect(sipErrorFrom(new CallgateError('CG_TENANT_NOT_FOUND'))).toMatchObject({ status: 404 });
    expect(sipErrorFrom(new Error('boom'))).toMatchObject({ status: 500, code: 'CG_INTERNAL' });
  });
});
