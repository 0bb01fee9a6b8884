import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Srf from 'drachtio-srf';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { gatewayConfigFromEnv } from '../../src/app/config.js';
import { Gateway } from '../../src/app/Gateway.js';
import { buildSdp, offerCodecs } from '../../src/media/sdp.js';
import { startDrachtio, type RunningDrachtio } from '../../src/sip/testing/DrachtioProcess.js';
import { NumberStore } from '../../src/tenants/NumberStore.js';
import { connectRedis, deletePrefix, testPrefix, type Redis } from '../../src/tenants/redisClient.js';
import { SecretBox } from '../../src/tenants/secrets.js';
import { TenantStore } from '../../src/tenants/TenantStore.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { describeWith } from '../support/tools.js';

/**
 * Issue 18: the rtpengine `npm start` runs wrote 127.0.0.1 into the SDP a carrier gets. A whole Gateway
 * (as npm start builds it from the environment) with RTPENGINE_ADVERTISED_ADDRESS set answers a trunk's
 * INVITE with that address and a port of RTPENGINE_PORT_MIN–MAX, while its own agent leg still reaches
 * rtpengine on loopback (the greeting arrives). 203.0.113.10 is TEST-NET-3: only written into SDP, never
 * sent to — the trunk here sends no media.
 */
const ADVERTISED = '203.0.113.10';
const PORT_MIN = 31400;
const PORT_MAX = 31499;

describeWith(['drachtio', 'rtpengine', 'redis-server'], 'rtpengine advertised address (issue 18)', () => {
  const prefix = testPrefix();
  let drachtio: RunningDrachtio;
  let trunkDrachtio: RunningDrachtio;
  let trunk: Srf;
  let gateway: Gateway | undefined;
  let redis: Redis;
  let dataDir: string;

  /** What npm start reads, for a gateway on `drachtio` with the settings under test. */
  const env = (): Record<string, string> => ({
    REDIS_URL: 'redis://127.0.0.1:6379',
    CALLGATE_REDIS_PREFIX: prefix,
    CALLGATE_ADMIN_TOKEN: randomBytes(24).toString('hex'),
    HTTP_HOST: '127.0.0.1',
    HTTP_PORT: '0',
    DRACHTIO_HOST: '127.0.0.1',
    DRACHTIO_PORT: String(drachtio.adminPort),
    DRACHTIO_SECRET: drachtio.secret,
    RTPENGINE_INTERFACE: '127.0.0.1',
    RTPENGINE_ADVERTISED_ADDRESS: ADVERTISED,
    RTPENGINE_PORT_MIN: String(PORT_MIN),
    RTPENGINE_PORT_MAX: String(PORT_MAX),
  });

  beforeAll(async () => {
    drachtio = await startDrachtio();
    trunkDrachtio = await startDrachtio();
    dataDir = await mkdtemp(join(tmpdir(), 'callgate-advertised-'));
    redis = await connectRedis({ prefix });
    const secrets = new SecretBox(randomBytes(32));
    const tenants = new TenantStore(redis, secrets, { prefix });
    const numbers = new NumberStore(redis, secrets, { prefix });
    await tenants.create({ id: 'carrier', displayName: 'Carrier', greeting: 'Hello, you reached the carrier test.' });
    await numbers.createTrunk({ name: 'carrier', sourceCidrs: ['127.0.0.1/32'] });
    await numbers.createNumber({ number: '+15005550180', tenantId: 'carrier' });
    trunk = new Srf();
    await new Promise<void>((resolve, reject) => {
      trunk.once('connect', (err: Error) => (err ? reject(err) : resolve()));
      trunk.connect({ host: '127.0.0.1', port: trunkDrachtio.adminPort, secret: trunkDrachtio.secret });
    });
  }, 30_000);

  afterAll(async () => {
    trunk?.disconnect();
    await gateway?.stop();
    await trunkDrachtio?.stop();
    await drachtio?.stop();
    if (redis) {
      await deletePrefix(redis, prefix);
      await redis.quit();
    }
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /** A trunk's call: its SDP answer must carry the advertised address and a port of the range. */
  async function trunkCallIsAdvertised(): Promise<void> {
    // The trunk's media socket: it only listens, so nothing is ever sent towards the advertised address.
    const media = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => media.bind(0, '127.0.0.1', () => resolve()));
    const from: { address: string; port: number }[] = [];
    media.on('message', (_msg, rinfo) => from.push({ address: rinfo.address, port: rinfo.port }));
    try {
      const offer = buildSdp({ address: '127.0.0.1', port: media.address().port, ...offerCodecs(['PCMU']) });
      const dialog = await trunk.createUAC(`sip:+15005550180@127.0.0.1:${drachtio.sipPort}`, { localSdp: offer });
      try {
        const sdp: string = dialog.remote.sdp;
        expect(sdp).toMatch(new RegExp(`^c=IN IP4 ${ADVERTISED.replace(/\./g, '\\.')}\\r?$`, 'm'));
        expect(sdp).not.toMatch(/127\.0\.0\.1/);
        const port = Number(/^m=audio (\d+) /m.exec(sdp)?.[1]);
        expect(port).toBeGreaterThanOrEqual(PORT_MIN);
        expect(port).toBeLessThanOrEqual(PORT_MAX);
        // The agent side still works on loopback: the greeting reaches the trunk, from that very port.
        await pollUntil(() => from.length, (n) => n >= 10, 10_000);
        expect(from.length).toBeGreaterThanOrEqual(10);
        expect(from[0]).toEqual({ address: '127.0.0.1', port });
      } finally {
        dialog.destroy();
      }
    } finally {
      media.close();
    }
  }

  it('the SDP answer a trunk gets carries the advertised address and a port of the configured range', async () => {
    gateway = new Gateway(gatewayConfigFromEnv({ ...env(), CALLGATE_DATA_DIR: dataDir, CALLGATE_SEED_DEMO: '0' }));
    await gateway.start();
    try {
      await trunkCallIsAdvertised();
    } finally {
      await gateway.stop();
      gateway = undefined;
    }
  }, 60_000);
});
