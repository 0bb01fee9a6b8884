import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultAgentConfig } from '../../src/agent/AgentConfig.js';
import { localRedis } from '../../src/app/localRedis.js';
import { connectRedis, deletePrefix, keys, testPrefix } from '../../src/tenants/redisClient.js';
import { BrowserPeer } from '../../src/webrtc/testing/BrowserPeer.js';
import { startDrachtio, type RunningDrachtio } from '../../src/sip/testing/DrachtioProcess.js';
import { createSocket } from 'node:dgram';
import { descendants, exitOf, GatewayProcesses, type GatewayProcess } from './gatewayProcess.js';
import { describeWith } from '../support/tools.js';
import { duplicateKeys } from '../support/duplicateKeys.js';
import { asks, DEMO, hears, SPEECH_MATCH } from '../support/heard.js';
import { pollUntil, within } from '../../src/util/testing/wait.js';

/**
 * `npm start`'s program (src/cli/start.ts) as a real process on loopback: it seeds the demo tenant,
 * serves the web phone, health and metrics, carries a browser call through the direct WebRTC door, and
 * on SIGTERM drains (new offers 503, the call in progress goes on) and exits 0.
 */
const prefix = testPrefix();
const gateways = new GatewayProcesses({ CALLGATE_REDIS_PREFIX: prefix });
const start = (env: Record<string, string> = {}): Promise<GatewayProcess> => gateways.start(env);
const dirs: string[] = [];
/** Prefixes of tests that need a Redis of their own (a demo made by an earlier test would be kept). */
const ownPrefixes: string[] = [];
const ownPrefix = (): string => {
  const p = testPrefix();
  ownPrefixes.push(p);
  return p;
};

afterAll(async () => {
  // A failed test must not leave a gateway (or its rtpengine) running.
  await gateways.stopAll();
  const redis = await connectRedis({ prefix });
  for (const p of [prefix, ...ownPrefixes]) await deletePrefix(redis, p);
  await redis.quit();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describeWith(['pocketsphinx'], 'npm start (src/cli/start.ts)', () => {
  it('serves the demo web phone, health, metrics and the API; carries a call; SIGTERM drains it and exits 0', async () => {
    const gw = await start({ DRAIN_TIMEOUT_MS: '20000' });
    expect(gw.output()).toContain('API docs:');
    expect((await fetch(`${gw.base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${gw.base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true, redis: true, draining: false, warming: false });
    const page = await fetch(`${gw.base}/c/demo`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Joe&#39;s Pizza'); // HTML-escaped in the page

    // The generated admin token is kept (mode 600) and works; nothing else does.
    const tokenFile = join(gw.dataDir, 'admin-token');
    expect((await stat(tokenFile)).mode & 0o777).toBe(0o600);
    const token = (await readFile(tokenFile, 'utf8')).trim();
    expect(gw.output()).not.toContain(token);
    expect((await fetch(`${gw.base}/v1/tenants/demo`)).status).toBe(401);
    const demo = await fetch(`${gw.base}/v1/tenants/demo`, { headers: { authorization: `Bearer ${token}` } });
    expect(demo.status).toBe(200);
    expect(((await demo.json()) as { providers: unknown }).providers).toEqual({ stt: 'pocketsphinx', llm: 'scripted', tts: 'flite' });

    // Browser calls, as the page makes them.
    const origin = gw.base;
    const issue = async (): Promise<string> => ((await (await fetch(`${gw.base}/v1/call-urls/demo/token`, { method: 'POST', headers: { origin } })).json()) as { token: string }).token;
    const scrape = async (): Promise<string> => (await fetch(`${gw.base}/metrics`)).text();

    // A short call first: the caller hangs up during the greeting; /metrics counts it by door and outcome.
    const short = new BrowserPeer({ name: 'short-call', dataChannel: true, sampleRate: 16000 });
    try {
      const offer = await fetch(`${gw.base}/v1/webrtc/offer`, { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: JSON.stringify({ token: await issue(), sdp: await short.createOffer() }) });
      await short.setAnswer(((await offer.json()) as { sdp: string }).sdp);
      await within(short.connected, 10_000, 'DTLS-SRTP to the gateway');
      await pollUntil(() => short.receivedAudio().length, (n) => n >= 8000, 10_000);
      // Half a second of quiet from the caller, as 25 Opus packets: the RTP counters must see them.
      short.play(new Int16Array(16000 / 2));
      await new Promise((r) => setTimeout(r, 800));
    } finally {
      short.close();
    }
    const counted = await pollUntil(scrape, (m) => m.includes('callgate_calls_total{door="webrtc",outcome="caller-hangup"} 1'), 10_000);
    expect(counted).toContain('callgate_calls_total{door="webrtc",outcome="caller-hangup"} 1');
    const received = Number(/^callgate_rtp_packets_received_total\{door="webrtc"\} (\d+)/m.exec(counted)?.[1]);
    expect(received).toBeGreaterThanOrEqual(20);
    expect(counted).toContain('callgate_rtp_jitter_seconds_count{door="webrtc"} 1');
    const peer = new BrowserPeer({ name: 'start-test', dataChannel: true, sampleRate: 16000 });
    try {
      const offer = await fetch(`${gw.base}/v1/webrtc/offer`, { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: JSON.stringify({ token: await issue(), sdp: await peer.createOffer() }) });
      expect(offer.status).toBe(201);
      await peer.setAnswer(((await offer.json()) as { sdp: string }).sdp);
      await within(peer.connected, 10_000, 'DTLS-SRTP to the gateway');
      expect((await hears(() => peer.receivedAudio(), DEMO.GREETING)).score, 'the greeting').toBeGreaterThanOrEqual(SPEECH_MATCH);
      const metrics = await scrape();
      expect(metrics).toContain('callgate_calls_in_progress{door="webrtc"} 1');
      expect(metrics).toContain('callgate_tenant_calls_active{tenant="demo"} 1');
      expect(metrics).toContain('callgate_provider_first_result_seconds_count{kind="tts",provider="flite"}');
      expect(metrics).toMatch(/^callgate_process_resident_memory_bytes \d+/m);

      // SIGTERM mid-call: no new calls, not ready, the call in progress goes on.
      gw.proc.kill('SIGTERM');
      expect(await pollUntil(() => gw.output().includes('draining: no new calls'), (v) => v, 5000)).toBe(true);
      const late = new BrowserPeer({ name: 'late' });
      try {
        const refused = await fetch(`${gw.base}/v1/webrtc/offer`, { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: JSON.stringify({ token: await issue(), sdp: await late.createOffer() }) });
        expect(refused.status).toBe(503);
        expect(((await refused.json()) as { code: string }).code).toBe('CG_DRAINING');
      } finally {
        late.close();
      }
      const notReady = await fetch(`${gw.base}/readyz`);
      expect(notReady.status).toBe(503);
      // Still talking to the agent: asked something while draining, it answers.
      expect((await asks(peer, 'caller-open-today', DEMO.HOURS)).score, 'the answer while draining').toBeGreaterThanOrEqual(SPEECH_MATCH);
      expect(gw.proc.exitCode).toBeNull();
    } finally {
      peer.close(); // the caller hangs up: the drain ends
    }
    expect(await exitOf(gw.proc)).toBe(0);
    expect(gw.output()).toContain('"msg":"stopped"');
    // One key once per line: pino writes a child's binding again when a child of it binds the same key.
    const logLines = gw.output().split('\n').filter((l) => l.startsWith('{'));
    expect(logLines.length).toBeGreaterThan(5);
    expect(logLines.flatMap((l) => duplicateKeys(l).map((k) => `${k} in ${l}`))).toEqual([]);
    expect(gw.output()).not.toContain('drain deadline reached');
  }, 60_000);

  it('a call still up at the drain deadline hears the agent say goodbye and is hung up; the process exits 0', async () => {
    const gw = await start({ DRAIN_TIMEOUT_MS: '1500' });
    const origin = gw.base;
    const token = ((await (await fetch(`${gw.base}/v1/call-urls/demo/token`, { method: 'POST', headers: { origin } })).json()) as { token: string }).token;
    const peer = new BrowserPeer({ name: 'stays', dataChannel: true, sampleRate: 16000 });
    try {
      const offer = await fetch(`${gw.base}/v1/webrtc/offer`, { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: JSON.stringify({ token, sdp: await peer.createOffer() }) });
      await peer.setAnswer(((await offer.json()) as { sdp: string }).sdp);
      await within(peer.connected, 10_000, 'DTLS-SRTP to the gateway');
      const t0 = performance.now();
      gw.proc.kill('SIGTERM');
      expect(await exitOf(gw.proc)).toBe(0);
      expect(performance.now() - t0).toBeGreaterThan(1400);
      expect(gw.output()).toContain('drain deadline reached with calls in progress: the agents say goodbye');
      expect(gw.output()).not.toContain('cut off');
      // The page saw the agent's goodbye words, then the end of the call with its reason.
      const events = peer.messages.map((m) => JSON.parse(m) as { type: string; role?: string; text?: string; reason?: string });
      const said = events.filter((e) => e.type === 'transcript' && e.role === 'agent').map((e) => e.text).join(' ');
      expect(said).toContain('Sorry, I have to end our call now.');
      expect(events.at(-1)).toEqual({ type: 'ended', reason: 'shutdown' });
      // And heard it: the whole shutdown message reached the caller's ear before the hang-up.
      expect((await hears(() => peer.receivedAudio(), defaultAgentConfig.shutdownMessage, { timeoutMs: 0 })).score, 'the goodbye').toBeGreaterThanOrEqual(SPEECH_MATCH);
    } finally {
      peer.close();
    }
  }, 60_000);

  it('with OPENAI_BASE_URL set, the demo tenant answers with the OpenAI-compatible model (offline STT and TTS stay)', async () => {
    const gw = await start({ OPENAI_BASE_URL: 'http://127.0.0.1:9/v1', CALLGATE_ADMIN_TOKEN: 'admin-token-for-the-start-test-000', CALLGATE_REDIS_PREFIX: ownPrefix() });
    const demo = await fetch(`${gw.base}/v1/tenants/demo`, { headers: { authorization: 'Bearer admin-token-for-the-start-test-000' } });
    expect(((await demo.json()) as { providers: unknown }).providers).toEqual({ stt: 'pocketsphinx', llm: 'openai', tts: 'flite' });
    gw.proc.kill('SIGTERM');
    expect(await exitOf(gw.proc)).toBe(0);
  }, 60_000);
});

describeWith(['pocketsphinx'], 'npm start on a Redis an operator already uses (issue 20)', () => {
  const ADMIN = 'admin-token-for-the-start-test-000';
  const api = (gw: GatewayProcess, path: string, init: RequestInit = {}): Promise<Response> =>
    fetch(`${gw.base}${path}`, { ...init, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', ...(init.headers as Record<string, string> | undefined) } });

  it("leaves an operator's demo tenant and call URL exactly as they were, and says so; a first start says what it made", async () => {
    const p = ownPrefix();
    const first = await start({ CALLGATE_REDIS_PREFIX: p, CALLGATE_ADMIN_TOKEN: ADMIN });
    expect(first.output()).toMatch(/demo:\s+created tenant demo, call URL demo\n/);
    expect(first.output()).toContain(`keys under "${p}"`);
    expect(first.output()).toMatch(/providers:\s+offline/);
    // The SIP door is off: no trunk trusting 127.0.0.1, no number.
    expect((await api(first, '/v1/trunks')).status).toBe(200);
    expect(await (await api(first, '/v1/trunks')).json()).toEqual([]);
    // The operator makes the demo theirs.
    expect((await api(first, '/v1/tenants/demo', { method: 'PATCH', body: JSON.stringify({ greeting: 'Welcome to our own pizza place.', voice: 'rms', providers: { llm: 'scripted' } }) })).status).toBe(200);
    expect((await api(first, '/v1/tenants/demo/call-urls/demo', { method: 'PATCH', body: JSON.stringify({ maxUses: 7 }) })).status).toBe(200);
    first.proc.kill('SIGTERM');
    expect(await exitOf(first.proc)).toBe(0);
    const redis = await connectRedis({ prefix: p });
    const before = { tenant: await redis.get(keys(p).tenant('demo')), url: await redis.get(keys(p).callUrl('demo')) };

    // Started again, with a cloud model configured this time: nothing of the demo changes.
    const again = await start({ CALLGATE_REDIS_PREFIX: p, CALLGATE_ADMIN_TOKEN: ADMIN, OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' });
    try {
      expect(again.output()).toMatch(/demo:\s+already there, left unchanged \(tenant demo, call URL demo\)/);
      expect({ tenant: await redis.get(keys(p).tenant('demo')), url: await redis.get(keys(p).callUrl('demo')) }).toEqual(before);
      expect(before.tenant).toContain('Welcome to our own pizza place.');
    } finally {
      await redis.quit();
      again.proc.kill('SIGTERM');
      expect(await exitOf(again.proc)).toBe(0);
    }
  }, 90_000);

  it('`npm start -- --no-demo`: no npm noise before the banner, nothing written into Redis; the home page and favicon are public, the demo link absent', async () => {
    const p = ownPrefix();
    const gw = await gateways.start({ CALLGATE_REDIS_PREFIX: p, CALLGATE_ADMIN_TOKEN: ADMIN }, ['--no-demo'], true);
    try {
      // Everything is installed here: the prestart hook says nothing, and npm prints no banner or warning.
      const beforeBanner = gw.output().slice(0, gw.output().indexOf('callgate is running'));
      expect(beforeBanner.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{'))).toEqual([]);
      expect(gw.output()).toMatch(/demo:\s+off/);
      expect(gw.output()).not.toContain('/c/demo');
      const redis = await connectRedis({ prefix: p });
      // Only what every gateway keeps (webhook queue, limits) may be there: no tenant, URL, number or trunk.
      const written = await redis.keys(`${p}*`);
      await redis.quit();
      expect(written.filter((k) => /:(tenant|callurl|number|trunk):/.test(k.slice(p.length - 1)))).toEqual([]);
      const home = await fetch(`${gw.base}/`);
      expect(home.status).toBe(200);
      expect(home.headers.get('content-type')).toMatch(/^text\/html/);
      const html = await home.text();
      expect(html).toContain('callgate');
      expect(html).not.toContain('href="/c/demo"');
      const icon = await fetch(`${gw.base}/favicon.ico`);
      expect(icon.status).toBe(200);
      expect(icon.headers.get('content-type')).toBe('image/x-icon');
    } finally {
      // npm and the gateway under it (npm does not wait for its child on SIGTERM).
      gateways.kill(gw);
    }
  }, 60_000);
});

describeWith(['pocketsphinx'], 'npm start in cluster mode (CALLGATE_WORKERS)', () => {
  it('runs two workers on one port sharing Redis; /metrics on any of them counts the whole cluster; SIGTERM to the primary drains both and exits 0', async () => {
    const gw = await start({ CALLGATE_WORKERS: '2' });
    expect(gw.output()).toMatch(/callgate is running at http:\/\/localhost:\d+ \(2 worker processes\)/);
    const origin = gw.base;
    const peers: BrowserPeer[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const token = ((await (await fetch(`${gw.base}/v1/call-urls/demo/token`, { method: 'POST', headers: { origin } })).json()) as { token: string }).token;
        const peer = new BrowserPeer({ name: `cluster-${i}`, dataChannel: true, sampleRate: 16000 });
        peers.push(peer);
        const offer = await fetch(`${gw.base}/v1/webrtc/offer`, { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: JSON.stringify({ token, sdp: await peer.createOffer() }) });
        expect(offer.status).toBe(201);
        await peer.setAnswer(((await offer.json()) as { sdp: string }).sdp);
        await within(peer.connected, 10_000, 'DTLS-SRTP to a worker');
      }
      for (const [i, peer] of peers.entries()) expect((await hears(() => peer.receivedAudio(), DEMO.GREETING)).score, `cluster call ${i}`).toBeGreaterThanOrEqual(SPEECH_MATCH);
      // Connections go round robin: several scrapes reach both workers, and every one sees both calls.
      for (let i = 0; i < 4; i++) {
        const text = await (await fetch(`${gw.base}/metrics`, { headers: { connection: 'close' } })).text();
        expect(text).toContain('callgate_calls_in_progress{door="webrtc"} 2');
        expect(text).toContain('callgate_tenant_calls_active{tenant="demo"} 2');
      }
    } finally {
      for (const peer of peers) peer.close();
    }
    gw.proc.kill('SIGTERM');
    expect(await exitOf(gw.proc)).toBe(0);
    expect(gw.output().match(/"msg":"stopped"/g)).toHaveLength(2);
  }, 60_000);
});

/** Sends a bare INVITE over UDP and resolves with the first final response's status line. */
async function inviteStatus(sipPort: number): Promise<string> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const port = socket.address().port;
  const callId = `start-test-${Date.now()}`;
  const invite = [
    `INVITE sip:+15005550100@127.0.0.1:${sipPort} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK${callId};rport`,
    'Max-Forwards: 70',
    `From: <sip:caller@127.0.0.1>;tag=${callId}`,
    `To: <sip:+15005550100@127.0.0.1>`,
    `Call-ID: ${callId}`,
    'CSeq: 1 INVITE',
    `Contact: <sip:caller@127.0.0.1:${port}>`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  try {
    const final = new Promise<string>((resolve) =>
      socket.on('message', (msg) => {
        const status = msg.toString().split('\r\n')[0]!;
        if (!/^SIP\/2\.0 1\d\d/.test(status)) resolve(status);
      }),
    );
    socket.send(invite, sipPort, '127.0.0.1');
    return await within(final, 5000, 'a final response to the INVITE');
  } finally {
    socket.close();
  }
}

describeWith(['drachtio', 'pocketsphinx'], 'npm start with the SIP door (drachtio-server present)', () => {
  let drachtio: RunningDrachtio | undefined;
  afterAll(async () => {
    await drachtio?.stop();
  });

  it('connects to drachtio, starts its rtpengine, reports both in /readyz, and answers INVITEs 503 while it drains', async () => {
    drachtio = await startDrachtio();
    const gw = await start({ DRACHTIO_HOST: '127.0.0.1', DRACHTIO_PORT: String(drachtio.adminPort), DRACHTIO_SECRET: drachtio.secret, DRAIN_TIMEOUT_MS: '20000' });
    expect(gw.output()).toContain(`SIP door:                drachtio-server at 127.0.0.1:${drachtio.adminPort}`);
    const ready = await fetch(`${gw.base}/readyz`);
    expect(await ready.json()).toEqual({ ready: true, redis: true, drachtio: true, rtpengine: true, draining: false, warming: false });
    expect(ready.status).toBe(200);

    // A browser call keeps the drain open while the SIP door is asked for a new call.
    const origin = gw.base;
    const token = ((await (await fetch(`${gw.base}/v1/call-urls/demo/token`, { method: 'POST', headers: { origin } })).json()) as { token: string }).token;
    const peer = new BrowserPeer({ name: 'keeps-draining', dataChannel: true, sampleRate: 16000 });
    try {
      const offer = await fetch(`${gw.base}/v1/webrtc/offer`, { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: JSON.stringify({ token, sdp: await peer.createOffer() }) });
      await peer.setAnswer(((await offer.json()) as { sdp: string }).sdp);
      await within(peer.connected, 10_000, 'DTLS-SRTP to the gateway');
      // The gateway's own child processes (its rtpengine), to check none outlives it.
      const children = descendants(gw.proc.pid!);
      expect(children.map(([, comm]) => comm)).toContain('rtpengine');
      gw.proc.kill('SIGTERM');
      expect(await pollUntil(() => gw.output().includes('draining: no new calls'), (v) => v, 5000)).toBe(true);
      expect(await inviteStatus(drachtio.sipPort)).toMatch(/^SIP\/2\.0 503 /);
      // The refusal reaches the registry this gateway serves on /metrics (loopback may read it).
      const metrics = await (await fetch(`${gw.base}/metrics`)).text();
      expect(metrics).toMatch(/^callgate_sip_refused_total\{code="CG_DRAINING"\} 1$/m);
      peer.close();
      expect(await exitOf(gw.proc)).toBe(0);
      for (const [pid] of children) expect(() => process.kill(Number(pid), 0)).toThrow(); // gone
    } finally {
      peer.close();
    }
  }, 60_000);
});

describeWith(['redis-server', 'pocketsphinx'], 'the embedded Redis (no REDIS_URL, nothing on the port)', () => {
  it('starts redis-server with its data under the data folder (append-only file on) and stops it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'callgate-redis-'));
    dirs.push(dir);
    // A free port stands in for 6379, which this machine's own Redis holds.
    const probe = (await import('node:net')).createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as { port: number }).port;
    probe.close();
    const local = await localRedis(dir, port);
    try {
      expect(local.process).toBeDefined();
      const client = await connectRedis({ url: local.url });
      await client.set('callgate:probe', 'kept');
      await client.quit();
      const files = await pollUntil(() => readdir(join(dir, 'redis'), { recursive: true }), (list) => list.some((f) => String(f).includes('appendonly')), 5000);
      expect(files.some((f) => String(f).includes('appendonly'))).toBe(true);
      // Something answers there now: a second call uses it rather than starting another.
      const again = await localRedis(dir, port);
      expect(again.process).toBeUndefined();
    } finally {
      await local.stop();
    }
    expect(local.process!.exitCode ?? local.process!.signalCode).not.toBeNull();
  }, 30_000);
});
