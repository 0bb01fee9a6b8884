import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connectRedis, deletePrefix, testPrefix } from '../../src/tenants/redisClient.js';
import { BrowserPeer } from '../../src/webrtc/testing/BrowserPeer.js';
import { defaultWebRtcDoorOptions } from '../../src/webrtc/WebRtcDoor.js';
import { GatewayProcesses, type GatewayProcess } from '../app/gatewayProcess.js';
import { asks, DEMO, hears, SPEECH_MATCH } from '../support/heard.js';
import { pollUntil, within } from '../../src/util/testing/wait.js';

/**
 * Issue 24, finding 1: offers that pass our SDP check but that libdatachannel refuses once stopped the
 * whole gateway ~2 s after their 400 (an ICE-gathering timer outlived the refused call and rejected
 * unhandled). Here each such offer goes to `npm start`'s real process while another browser call is
 * up; the process must stay up, answer /healthz, keep that call's audio flowing, and log no escaped
 * rejection (the process guard would keep it up even then, so its log line is checked too).
 * Finding 6: offers that never connect hold none of the tenant's lines.
 */
const prefix = testPrefix();
const gateways = new GatewayProcesses({ CALLGATE_REDIS_PREFIX: prefix });
const peers: BrowserPeer[] = [];
/** Offers one address may have connecting at once; past it the oldest is given up. */
const PENDING = defaultWebRtcDoorOptions.maxPendingPerAddress;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

afterAll(async () => {
  for (const p of peers) p.close();
  await gateways.stopAll();
  const redis = await connectRedis({ prefix });
  await deletePrefix(redis, prefix);
  await redis.quit();
});

function peer(name: string): BrowserPeer {
  const p = new BrowserPeer({ name, dataChannel: true, sampleRate: 16000 });
  peers.push(p);
  return p;
}

async function token(gw: GatewayProcess): Promise<string> {
  const res = await fetch(`${gw.base}/v1/call-urls/demo/token`, { method: 'POST', headers: { origin: gw.base } });
  expect(res.status).toBe(201);
  return ((await res.json()) as { token: string }).token;
}

async function postOffer(gw: GatewayProcess, sdp: string): Promise<{ status: number; body: { code?: string; sdp?: string } }> {
  const res = await fetch(`${gw.base}/v1/webrtc/offer`, { method: 'POST', headers: { origin: gw.base, 'content-type': 'application/json' }, body: JSON.stringify({ token: await token(gw), sdp }) });
  return { status: res.status, body: (await res.json()) as { code?: string; sdp?: string } };
}

/** A live call on the demo agent: connected, and its greeting heard whole. */
async function liveCall(gw: GatewayProcess, name: string): Promise<BrowserPeer> {
  const p = peer(name);
  const answer = await postOffer(gw, await p.createOffer());
  expect(answer.status).toBe(201);
  await p.setAnswer(answer.body.sdp!);
  await within(p.connected, 10_000, 'DTLS-SRTP to the gateway');
  expect((await hears(() => p.receivedAudio(), DEMO.GREETING)).score, `${name}: the greeting`).toBeGreaterThanOrEqual(SPEECH_MATCH);
  return p;
}

const hostCandidate = 'a=candidate:1 1 UDP 2122317823 127.0.0.1 40000 typ host';

/** Offers a browser could post that libdatachannel refuses (or chokes on), built from a real offer. */
function hostileOffers(real: string): Record<string, string> {
  const withLine = (line: string): string => real.replace(/(a=mid:[^\r\n]*\r\n)/, `$1${line}\r\n`);
  const fingerprint = (value: string): string => real.replace(/a=fingerprint:[^\r\n]*/, `a=fingerprint:${value}`);
  const hex = (bytes: number): string => Array.from({ length: bytes }, (_, i) => (i % 256).toString(16).padStart(2, '0').toUpperCase()).join(':');
  return {
    'fingerprint sha-999': fingerprint(`sha-999 ${hex(32)}`),
    'fingerprint too short': fingerprint('sha-256 AB:CD'),
    'fingerprint of 4 KiB': fingerprint(`sha-256 ${hex(1400)}`),
    'fingerprint not hex': fingerprint(`sha-256 ${'ZZ:'.repeat(31)}ZZ`),
    'garbage candidate': withLine('a=candidate:garbage here'),
    'candidate with a bad port': withLine(hostCandidate.replace('40000', '99999999')),
    'candidate with a bad address': withLine(hostCandidate.replace('127.0.0.1', '999.1.2.3')),
    'garbage extmap': withLine('a=extmap:abc urn:x'),
    'extmap id out of range': withLine('a=extmap:65535 urn:ietf:params:rtp-hdrext:ssrc-audio-level'),
    'huge max-message-size': withLine('a=max-message-size:999999999999999999999999'),
    'bare CR line endings': real.replace(/\r\n/g, '\r'),
    'ice-ufrag missing': real.replace(/a=ice-ufrag:[^\r\n]*\r\n/g, ''),
    'setup:holdconn': real.replace(/a=setup:[^\r\n]*/g, 'a=setup:holdconn'),
    'ssrc garbage': withLine('a=ssrc:notanumber cname:x'),
  };
}

describe('the direct WebRTC door under hostile offers (real gateway process)', () => {
  it('survives every offer libdatachannel refuses while another call keeps talking, and logs no escaped rejection', async () => {
    const gw = await start();
    const live = await liveCall(gw, 'live');
    const offers = hostileOffers(await peer('template').createOffer());
    const answers: Record<string, string> = {};
    for (const [name, sdp] of Object.entries(offers)) {
      const reply = await postOffer(gw, sdp);
      answers[name] = `${reply.status} ${reply.body.code ?? ''}`.trim();
      expect(reply.status, name).toBeLessThan(500);
    }
    // Past the ICE-gathering deadline (2 s) and the connect deadline (5 s) of every refused offer.
    const packetsBefore = live.stats().packetsReceived;
    await sleep(6000);
    expect(gw.proc.exitCode, gw.output().slice(-2000)).toBeNull();
    expect((await fetch(`${gw.base}/healthz`)).status).toBe(200);
    expect(live.stats().packetsReceived).toBeGreaterThan(packetsBefore + 200); // 6 s of 20 ms packets, and then some
    // And the conversation goes on: asked something, the agent answers.
    expect((await asks(live, 'caller-open-today', DEMO.HOURS)).score, 'the live call, after the hostile offers').toBeGreaterThanOrEqual(SPEECH_MATCH);
    expect(gw.output()).not.toContain('unhandled promise rejection');
    // Most of them reach libdatachannel and are refused there: that is the path that crashed.
    expect(Object.values(answers).filter((a) => a === '400 CG_SDP_MALFORMED').length, JSON.stringify(answers)).toBeGreaterThanOrEqual(5);
    // And a new call still goes through.
    const after = await liveCall(gw, 'after');
    after.close();
    live.close();
    console.info(JSON.stringify({ hostileOfferAnswers: answers }));
  }, 60_000);

  it("offers that never connect hold none of the tenant's lines; the newest from an address pushes out the oldest; the next real call works", async () => {
    const gw = await start();
    const admin = (await readFile(join(gw.dataDir, 'admin-token'), 'utf8')).trim();
    const lines = async (): Promise<{ active: number; limit: number }> =>
      (await (await fetch(`${gw.base}/v1/tenants/demo/active-calls`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { active: number; limit: number };
    const { limit } = await lines();
    const records = async () =>
      ((await (await fetch(`${gw.base}/v1/tenants/demo/calls?limit=200`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { records: { outcome: string; error?: { code: string } }[] }).records;
    // The tenant's records so far (the other test's calls share it).
    const count = async (outcome: string): Promise<number> => (await records()).filter((r) => r.outcome === outcome).length;
    const abandonedBefore = await count('abandoned');
    const failedBefore = await count('failed');
    // As the probe did: as many offers as the tenant has lines, each answered and never connected.
    const statuses: number[] = [];
    for (let i = 0; i < limit; i++) {
      const p = peer(`ghost-${i}`);
      statuses.push((await postOffer(gw, await p.createOffer())).status);
      p.close(); // the offer's peer goes away without connecting
    }
    expect(statuses).toEqual(Array.from({ length: limit }, () => 201));
    expect((await lines()).active).toBe(0); // no line held by an offer that has not connected
    // The tenant's next real call works at once, from the same address.
    const real = await liveCall(gw, 'real');
    expect((await lines()).active).toBe(1);
    // Every ghost gets a record saying it never connected; the oldest were pushed out by newer offers at once.
    expect(await pollUntil(() => count('abandoned'), (n) => n >= abandonedBefore + limit - PENDING, 3000)).toBeGreaterThanOrEqual(abandonedBefore + limit - PENDING);
    // Within 5 s every ghost is given up on, none as a failure.
    await sleep(5500);
    expect(await count('abandoned')).toBe(abandonedBefore + limit);
    expect(await count('failed')).toBe(failedBefore);
    expect((await records()).filter((r) => r.outcome === 'abandoned').every((r) => r.error?.code === 'CG_WEBRTC_NOT_CONNECTED')).toBe(true);
    const again = await liveCall(gw, 'again');
    expect((await lines()).active).toBe(2);
    again.close();
    real.close();
    expect((await pollUntil(lines, (n) => n.active === 0, 5000)).active).toBe(0);
  }, 60_000);
});

function start(): Promise<GatewayProcess> {
  return gateways.start();
}
