import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import type Srf from 'drachtio-srf';
import { afterAll, expect, it } from 'vitest';
import { MediaClock } from '../../src/media/MediaClock.js';
import { resample } from '../../src/media/Resampler.js';
import { buildSdp, negotiate, offerCodecs, parseRemoteSdp } from '../../src/media/sdp.js';
import { RtpCaller } from '../../src/media/testing/RtpCaller.js';
import { startDrachtio, type RunningDrachtio } from '../../src/sip/testing/DrachtioProcess.js';
import { connectRedis, deletePrefix, testPrefix } from '../../src/tenants/redisClient.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { DEMO, hears, SPEECH_MATCH } from '../support/heard.js';
import { describeWith } from '../support/tools.js';
import { descendants, exitOf, GatewayProcesses, type GatewayProcess } from './gatewayProcess.js';

/**
 * Issue 25: the SIP door in one command. `CALLGATE_SIP=1 SIP_PORT=<port> npm start` (its program, as
 * tests/app/start.test.ts runs it) starts drachtio-server itself with a generated config, says in its
 * banner where SIP is and what to dial, and a phone on this host (a drachtio-srf UAC on a drachtio of
 * its own, PCMU media from an RtpCaller) that dials the demo number hears the greeting. The first call
 * after the start hears its greeting as soon as the second does (the probe's first call waited 1.78 s
 * from the ACK; a call answered during the warm-up waited 3.3 s here, docs/benchmarks.md). A drachtio
 * that dies is one clear log line and the web door goes on; SIGTERM leaves no drachtio behind. Without
 * a drachtio binary, one line says where to get it and the web door runs alone.
 */
const Srf_ = createRequire(import.meta.url)('drachtio-srf') as typeof Srf;
const prefix = testPrefix();
const gateways = new GatewayProcesses({ CALLGATE_REDIS_PREFIX: prefix });
let phoneDrachtio: RunningDrachtio | undefined;
let phone: Srf | undefined;

afterAll(async () => {
  phone?.disconnect();
  await phoneDrachtio?.stop();
  await gateways.stopAll();
  const redis = await connectRedis({ prefix });
  await deletePrefix(redis, prefix);
  await redis.quit();
});

/** rtpengine's media ports and the callers', clear of every other test file's ranges. */
const RTPENGINE = { min: 60500, max: 60749 };
const CALLER_PORTS = { min: 60750, max: 60999 };

async function tcpAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

interface SipCall {
  readonly caller: RtpCaller;
  /** performance.now() when the 200 OK was in and drachtio had sent the ACK. */
  readonly ackedAt: number;
  hangup(): Promise<void>;
}

async function dial(target: string): Promise<SipCall> {
  // Not the gateway's clock (another process anyway): a clock of its own, as a phone has.
  const caller = await RtpCaller.open({ portRange: CALLER_PORTS, clock: new MediaClock({ spinMs: 0 }) });
  try {
    const dialog = await phone!.createUAC(target, { localSdp: buildSdp({ address: '127.0.0.1', port: caller.port, ...offerCodecs(['PCMU']) }) });
    const ackedAt = performance.now();
    caller.start(negotiate(parseRemoteSdp(dialog.remote.sdp)).remote);
    return {
      caller,
      ackedAt,
      hangup: async () => {
        await new Promise<void>((resolve) => dialog.destroy(undefined, () => resolve()));
        caller.close();
      },
    };
  } catch (err) {
    caller.close();
    throw err;
  }
}

/** Whether `pid` runs (a zombie does not). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, { encoding: 'utf8', flag: 'r' }).toString());
}

/** ms from the ACK to the first agent packet with sound: when the caller starts to hear the greeting. */
async function greetingAfterAck(call: SipCall): Promise<number> {
  const at = await pollUntil(() => call.caller.firstSoundAfter(0), (t) => t !== undefined, 10_000, 1);
  if (at === undefined) throw new Error('no greeting within 10 s of the ACK');
  return at - call.ackedAt;
}

describeWith(['drachtio', 'rtpengine', 'pocketsphinx'], 'CALLGATE_SIP=1 npm start: the SIP door in one command (issue 25)', () => {
  it('starts drachtio-server itself; the demo number answers with the greeting, the first call as soon as the second; a dead drachtio is one line; SIGTERM leaves none', async () => {
    const sipPort = await freePort();
    const target = `sip:+15005550100@127.0.0.1:${sipPort}`;
    // The phone is ready before the gateway starts: it dials as soon as drachtio takes SIP, while the
    // gateway still warms up, and again until a call is answered (drachtio says 503 while no door is
    // connected to it). That first answered call is the first call after the start.
    phoneDrachtio = await startDrachtio();
    phone = new Srf_();
    await new Promise<void>((resolve, reject) => {
      phone!.once('connect', (err: Error) => (err ? reject(err) : resolve()));
      phone!.connect({ host: '127.0.0.1', port: phoneDrachtio!.adminPort, secret: phoneDrachtio!.secret });
    });
    const starting = gateways.start({
      CALLGATE_SIP: '1',
      SIP_PORT: String(sipPort),
      RTPENGINE_PORT_MIN: String(RTPENGINE.min),
      RTPENGINE_PORT_MAX: String(RTPENGINE.max),
      DRAIN_TIMEOUT_MS: '5000',
    });
    starting.catch(() => undefined);
    const refused: number[] = [];
    const first = await (async (): Promise<SipCall> => {
      const deadline = performance.now() + 45_000;
      while (!(await tcpAccepts(sipPort))) {
        if (performance.now() > deadline) throw new Error('drachtio never took SIP');
        await new Promise((r) => setTimeout(r, 20));
      }
      for (;;) {
        try {
          return await dial(target);
        } catch (err) {
          const status = (err as { status?: number }).status;
          if (status !== 503 || performance.now() > deadline) throw err;
          refused.push(status);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    })();
    let firstMs: number;
    try {
      firstMs = await greetingAfterAck(first);
      // It is the greeting, heard whole.
      expect((await hears(() => resample(first.caller.audio(), 8000, 16000), DEMO.GREETING)).score, 'the greeting').toBeGreaterThanOrEqual(SPEECH_MATCH);
    } finally {
      await first.hangup();
    }
    const gw: GatewayProcess = await starting;
    const out = gw.output();
    expect(out).toMatch(new RegExp(`SIP door:\\s+sip:127\\.0\\.0\\.1:${sipPort} \\(UDP and TCP\\), drachtio-server started here`));
    expect(out).toMatch(new RegExp(`demo by SIP:\\s+dial sip:\\+15005550100@127\\.0\\.0\\.1:${sipPort} from this host: trunk local-test trusts 127\\.0\\.0\\.1`));
    const children = descendants(gw.proc.pid!);
    const drachtioPid = children.find(([, comm]) => comm === 'drachtio')?.[0];
    expect(drachtioPid, `drachtio among ${JSON.stringify(children)}`).toBeDefined();
    expect(children.map(([, comm]) => comm)).toContain('rtpengine');
    // Its generated config: SIP where asked, admin on loopback, and a secret that no output carries.
    const confPath = (await readFile(`/proc/${drachtioPid}/cmdline`, 'utf8')).split('\0')[2]!;
    const conf = await readFile(confPath, 'utf8');
    expect(conf).toContain(`<contact>sip:127.0.0.1:${sipPort};transport=udp,tcp</contact>`);
    const secret = /secret="([^"]+)"/.exec(conf)![1]!;
    expect(conf).toMatch(/<admin port="\d+" secret="[^"]+">127\.0\.0\.1<\/admin>/);
    expect(secret.length).toBeGreaterThanOrEqual(24);
    expect(gw.output()).not.toContain(secret);
    expect(await (await fetch(`${gw.base}/readyz`)).json()).toEqual({ ready: true, redis: true, drachtio: true, rtpengine: true, draining: false, warming: false });

    const second = await dial(target);
    let secondMs: number;
    try {
      secondMs = await greetingAfterAck(second);
    } finally {
      await second.hangup();
    }
    process.stderr.write(`sip-start: ACK → first greeting packet: first call ${firstMs.toFixed(1)} ms (after ${refused.length} INVITEs refused 503 during the warm-up), second ${secondMs.toFixed(1)} ms\n`);
    // The bound; it was 3.3 s against 3 ms for a call that met the warm-up.
    expect(firstMs).toBeLessThanOrEqual(secondMs + 300);
    // The phone did call during the warm-up: drachtio refused it (no door yet) rather than the door
    // answering and making it wait.
    expect(refused.length).toBeGreaterThan(0);

    // drachtio dies: one clear line, /readyz says so, the web door goes on.
    process.kill(Number(drachtioPid), 'SIGKILL');
    expect(await pollUntil(() => gw.output().includes('drachtio-server exited: the SIP door is closed'), (v) => v, 5000)).toBe(true);
    const ready = await pollUntil(async () => (await fetch(`${gw.base}/readyz`)).json() as Promise<{ drachtio?: boolean }>, (r) => r.drachtio === false, 5000);
    expect(ready).toMatchObject({ ready: false, drachtio: false, redis: true });
    expect((await fetch(`${gw.base}/c/demo`)).status).toBe(200);
    gw.proc.kill('SIGTERM');
    expect(await exitOf(gw.proc)).toBe(0);
    // Its drachtio and rtpengine are gone (a zombie of tsx's esbuild, reparented, may linger a moment).
    for (const [pid, comm] of children.filter(([, c]) => c === 'drachtio' || c === 'rtpengine')) {
      expect(await pollUntil(() => alive(pid), (a) => !a, 2000), `${comm} (pid ${pid}) still running`).toBe(false);
    }
  }, 60_000);

  it('without drachtio-server: one line says where to get it, the web door runs, no SIP objects are made', async () => {
    const gw = await gateways.start({ CALLGATE_SIP: '1', DRACHTIO_BIN: '/nonexistent/drachtio', CALLGATE_REDIS_PREFIX: `${prefix}nodrachtio:` });
    try {
      const out = gw.output();
      expect(out).toMatch(/SIP door:\s+off: drachtio-server not found at DRACHTIO_BIN=\/nonexistent\/drachtio/);
      expect(out.split('\n').filter((l) => l.includes('drachtio-server not found') && l.includes('"level":40'))).toHaveLength(1);
      expect(await (await fetch(`${gw.base}/readyz`)).json()).toEqual({ ready: true, redis: true, draining: false, warming: false });
      expect(out).toMatch(/demo:\s+created tenant demo, call URL demo\n/);
    } finally {
      gw.proc.kill('SIGTERM');
      expect(await exitOf(gw.proc)).toBe(0);
    }
  }, 60_000);
});
