import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceStore } from '../../tenants/DeviceStore.js';
import { NumberStore } from '../../tenants/NumberStore.js';
import { connectRedis, deletePrefix, testPrefix, type Redis } from '../../tenants/redisClient.js';
import { SecretBox } from '../../tenants/secrets.js';
import { SipAuthFailureStore } from '../../tenants/SipAuthFailureStore.js';
import { TenantStore } from '../../tenants/TenantStore.js';
import { sipErrorFrom, type SipError } from '../SipError.js';
import { DigestAuth, digestResponse } from './DigestAuth.js';
import type { InviteRequest } from './InviteRequest.js';
import { identifySource, routeToNumber, type SourceDeps } from './steps.js';

/** The INVITE steps with devices (issue 25), against real Redis stores. */
const PASSWORD = 'front-desk-secret';
const URI = 'sip:+15005550100@127.0.0.1:5060';

function invite(over: { from?: string; source?: string; uri?: string; authorization?: string } = {}): InviteRequest {
  return {
    callId: `c-${Math.random()}`,
    uri: over.uri ?? URI,
    to: `<${over.uri ?? URI}>`,
    from: over.from ?? '<sip:front-desk@127.0.0.1>;tag=1',
    sourceAddress: over.source ?? '127.0.0.1',
    transport: 'udp',
    header: (name) => (name.toLowerCase() === 'authorization' ? over.authorization : undefined),
  };
}

const rejection = async (work: Promise<unknown>): Promise<SipError> => {
  try {
    await work;
  } catch (err) {
    return sipErrorFrom(err);
  }
  throw new Error('expected a rejection');
};

describe('INVITE steps with devices', () => {
  const prefix = testPrefix();
  const digest = new DigestAuth();
  let redis: Redis;
  let numbers: NumberStore;
  let devices: DeviceStore;
  let deps: SourceDeps;
  const strangers: string[] = [];

  /** The Authorization a phone with `password` sends after a challenge. */
  async function answer(req: InviteRequest, username: string, password: string): Promise<string> {
    const challenge = await rejection(identifySource(req, deps));
    expect(challenge.status).toBe(401);
    const nonce = /nonce="([^"]+)"/.exec(challenge.headers['WWW-Authenticate']!)![1]!;
    const creds = { username, realm: 'callgate', nonce, uri: req.uri, qop: 'auth', nc: '00000001', cnonce: 'abc' };
    return `Digest username="${username}", realm="callgate", nonce="${nonce}", uri="${req.uri}", qop=auth, nc=00000001, cnonce="abc", response="${digestResponse('INVITE', creds, password)}", algorithm=MD5`;
  }

  beforeAll(async () => {
    redis = await connectRedis({ prefix });
    const secrets = new SecretBox(randomBytes(32));
    const tenants = new TenantStore(redis, secrets, { prefix });
    numbers = new NumberStore(redis, secrets, { prefix });
    devices = new DeviceStore(redis, secrets, { prefix });
    await tenants.create({ id: 'demo', displayName: 'Demo' });
    await tenants.create({ id: 'other', displayName: 'Other' });
    // As dialplans/demo.yaml: a trunk without credentials trusting 127.0.0.1, the demo number pinned to it.
    await numbers.createTrunk({ name: 'local-test', sourceCidrs: ['127.0.0.1/32'], tenants: ['demo'] });
    await numbers.createNumber({ number: '+15005550100', tenantId: 'demo', trunk: 'local-test' });
    await numbers.createNumber({ number: '+15005550177', tenantId: 'other' });
    deps = { numbers, digest, authFailures: new SipAuthFailureStore(redis, { prefix }), onStrangerChallenge: (s) => strangers.push(s) };
  });

  afterAll(async () => {
    await deletePrefix(redis, prefix);
    await redis.quit();
  });

  it('refuses an address no trunk covers with 403 while there is no device, and challenges it once there is one', async () => {
    const depsWithDevices = { ...deps, devices };
    expect((await rejection(identifySource(invite({ source: '192.0.2.50', from: '<sip:anyone@x>' }), depsWithDevices))).status).toBe(403);
    await devices.create('demo', { username: 'front-desk', password: PASSWORD });
    deps = depsWithDevices;
    // Any From, known or not: a 401 says nothing about which usernames exist. Each counts towards ignoring the source.
    for (const from of ['<sip:front-desk@x>', '<sip:nobody@x>']) {
      expect((await rejection(identifySource(invite({ source: '192.0.2.50', from }), deps))).status).toBe(401);
    }
    expect(strangers).toEqual(['192.0.2.50', '192.0.2.50']);
  });

  it("challenges a device on an address a trunk without credentials covers, lets its answer in, and routes it to its tenant's numbers", async () => {
    const req = invite();
    // The From names a device: the open trunk on 127.0.0.1 does not let it in unchallenged.
    const authorization = await answer(req, 'front-desk', PASSWORD);
    const source = await identifySource(invite({ authorization }), deps);
    expect(source).toEqual({ kind: 'device', device: expect.objectContaining({ username: 'front-desk', tenantId: 'demo' }) });
    expect(JSON.stringify(source)).not.toContain(PASSWORD);
    // Its own tenant's number, though pinned to a trunk; another tenant's is not there for it.
    expect(await routeToNumber(req, source, numbers)).toMatchObject({ number: '+15005550100', tenantId: 'demo' });
    const elsewhere = invite({ uri: 'sip:+15005550177@127.0.0.1:5060' });
    expect((await rejection(routeToNumber(elsewhere, source, numbers))).status).toBe(404);
    // A carrier on the same address, whose From names no device, is still the trunk, with no challenge.
    expect(await identifySource(invite({ from: '<sip:+14155550123@carrier>' }), deps)).toMatchObject({ kind: 'trunk', auth: 'ip', trunk: { name: 'local-test' } });
  });

  it('refuses a wrong password with 403 and counts it, as for trunks', async () => {
    const req = invite({ from: '<sip:front-desk@10.9.9.9>', source: '192.0.2.60' });
    const authorization = await answer(req, 'front-desk', 'not-the-password');
    const refused = await rejection(identifySource(invite({ from: '<sip:front-desk@10.9.9.9>', source: '192.0.2.60', authorization }), deps));
    expect(refused).toMatchObject({ status: 403, code: 'CG_SIP_FORBIDDEN' });
    expect(await deps.authFailures.check({ username: 'front-desk', source: '192.0.2.60' })).toEqual({ user: 0, source: 0 });
    const counts = await redis.hGetAll(`${prefix}sipauth:source:192.0.2.60`);
    expect(counts['fails']).toBe('1');
  });
});
