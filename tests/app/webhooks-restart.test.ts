import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connectRedis, deletePrefix, keys, testPrefix } from '../../src/tenants/redisClient.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { DELIVERY_HEADER, SIGNATURE_HEADER, verifySignature } from '../../src/webhooks/sign.js';
import { describeWith } from '../support/tools.js';
import { GatewayProcesses, webCall } from './gatewayProcess.js';

/**
 * Issue 19: call.ended is delivered at least once, surviving the gateway. A browser call to a tenant
 * whose callEnd webhook answers 500 to the first try; the gateway is SIGKILLed after that try; a new
 * gateway on the same Redis prefix sends it again, signed, with the same delivery id.
 */
const prefix = testPrefix();
const TOKEN = 'admin-token-for-the-webhooks-test-00';
const SECRET = 'webhooks-restart-secret-0123456789';
// The webhook secret is stored encrypted: both gateways hold the same key.
const gateways = new GatewayProcesses({
  CALLGATE_REDIS_PREFIX: prefix,
  CALLGATE_WEBHOOK_ALLOW_PRIVATE: 'true',
  CALLGATE_ADMIN_TOKEN: TOKEN,
  CALLGATE_SECRET_KEY: randomBytes(32).toString('hex'),
});
let receiver: Server;
let hookUrl = '';
const received: { at: number; id: string; signature: string; body: string; status: number }[] = [];
const started: { signature: string; body: string }[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (req.url === '/call-started') {
        started.push({ signature: String(req.headers[SIGNATURE_HEADER.toLowerCase()]), body });
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify({ variables: { who: 'Robin' } }));
      }
      const status = received.length === 0 ? 500 : 200;
      received.push({ at: performance.now(), id: String(req.headers[DELIVERY_HEADER.toLowerCase()]), signature: String(req.headers[SIGNATURE_HEADER.toLowerCase()]), body, status });
      res.writeHead(status);
      res.end();
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  hookUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
});

afterAll(async () => {
  await gateways.stopAll();
  receiver.closeAllConnections();
  await new Promise((r) => receiver.close(r));
  const redis = await connectRedis({ prefix });
  await deletePrefix(redis, prefix);
  await redis.quit();
});

describeWith(['pocketsphinx'], 'call.ended webhook across a gateway restart', () => {
  it('a delivery whose first try failed is completed by the next gateway after a SIGKILL, same id, signed', async () => {
    const gw1 = await gateways.start();
    const api = (method: string, path: string, body: unknown) =>
      fetch(`${gw1.base}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const created = await api('POST', '/v1/tenants', {
      id: 'hooked',
      displayName: 'Hooked',
      // The callStart webhook names the caller: the greeting says it first.
      greeting: '{{who|Nobody}} says hello from the webhook test.',
      providers: { stt: 'pocketsphinx', llm: 'scripted', tts: 'flite' },
      webhooks: { secret: SECRET, callStart: { url: `${hookUrl}/call-started` }, callEnd: { url: `${hookUrl}/call-ended` } },
    });
    expect(created.status, await created.clone().text()).toBe(201);
    expect(JSON.stringify(await created.json())).not.toContain(SECRET);
    expect((await api('POST', '/v1/tenants/hooked/call-urls', { slug: 'hooked' })).status).toBe(201);

    const { peer, callId } = await webCall(gw1.base, 'hooked', 'hooked-call');
    try {
      // A second of the greeting.
      expect(await pollUntil(() => peer.receivedAudio().length, (n) => n >= 16000, 10_000), 'greeting samples').toBeGreaterThanOrEqual(16000);
    } finally {
      peer.close(); // the caller hangs up
    }
    // The first call.ended try (500); the gateway dies before its retry.
    expect(await pollUntil(() => received.length, (n) => n >= 1, 10_000), `a first call.ended try; gateway said:\n${gw1.output().slice(-3000)}`).toBe(1);
    const redis = await connectRedis({ prefix });
    try {
      const k = keys(prefix);
      // 300 ms: ample for the gateway to note the failure, well before its retry (2 s ± 10 %).
      await new Promise((r) => setTimeout(r, 300));
      gateways.kill(gw1);
      const killedAt = performance.now();
      expect(received).toHaveLength(1);

      const gw2 = await gateways.start();
      expect(await pollUntil(() => received.length, (n) => n >= 2, 30_000), `a second try; the new gateway said:\n${gw2.output().slice(-3000)}`).toBe(2);
      const [first, second] = [received[0]!, received[1]!];
      expect(second.status).toBe(200);
      expect(second.id).toBe(first.id);
      expect(second.body).toBe(first.body);
      for (const r of [first, second]) expect(verifySignature(SECRET, r.body, r.signature)).toBe(true);
      const body = JSON.parse(second.body) as { type: string; callId: string; tenantId: string; call: { door: string; endReason: string; transcript: { role: string; text: string; at: string }[] } };
      expect(body).toMatchObject({ type: 'call.ended', callId, tenantId: 'hooked', call: { door: 'webrtc', endReason: 'caller-hangup' } });
      // The greeting, as far as the caller heard it before hanging up, with the callStart webhook's name.
      expect(body.call.transcript[0]).toMatchObject({ role: 'agent', text: expect.stringMatching(/^Robin/) });
      expect(started).toHaveLength(1);
      expect(JSON.parse(started[0]!.body)).toMatchObject({ type: 'call.started', callId, tenantId: 'hooked', call: { door: 'webrtc' } });
      expect(verifySignature(SECRET, started[0]!.body, started[0]!.signature)).toBe(true);
      // Delivered: nothing left in Redis, and no third request.
      await pollUntil(() => redis.zCard(k.webhookDue()), (n) => n === 0, 2000);
      expect(await redis.exists(k.webhookDelivery(first.id))).toBe(0);
      await new Promise((r) => setTimeout(r, 600));
      expect(received).toHaveLength(2);
      expect(gw2.output()).toContain('webhook delivered');
      console.log(
        JSON.stringify({ firstTryToKillMs: Math.round(killedAt - first.at), killToDeliveryMs: Math.round(second.at - killedAt), firstToSecondTryMs: Math.round(second.at - first.at) }),
      );
    } finally {
      await redis.quit();
    }
  }, 90_000);
});
