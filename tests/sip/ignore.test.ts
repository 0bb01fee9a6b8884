import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { CallMetrics } from '../../src/app/CallMetrics.js';
import { loggerTo } from '../../src/log.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/testing/FakeProviders.js';
import { pendingInviteCount } from '../../src/sip/drachtioPending.js';
import type { SipRefusal } from '../../src/sip/SipGateway.js';
import { startSipHarness, type SipHarness } from '../../src/sip/testing/SipHarness.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { missingTool, testMissing } from '../support/tools.js';

/**
 * Issue 24: a scanner sending 180 INVITEs a second for two minutes was never slowed — every INVITE was
 * refused, and every refusal parsed, looked up and answered. Now a source that keeps earning refusals
 * (a scanner's INVITEs; 403s of the source check) is ignored after 100 in a minute: its INVITEs get
 * drachtio-server's 100 Trying and nothing else — no final response, no Redis lookup, no log line —
 * until the cool-down ends (2 s here). Raw UDP from 127.0.0.3 (no trunk: 403s) and 127.0.0.4 (a
 * scanner's User-Agent); the trunk at 127.0.0.1 is heard throughout. The per-source rate is raised so
 * the refusals, not the rate limit, are what the sources earn.
 */
const NUMBER = '+15005550100';
const SENT = 300;
const COOL_DOWN_MS = 2000;

/** One raw SIP sender on a loopback address, with every response it got by Call-ID. */
class RawSender {
  readonly finals = new Map<string, number>();
  readonly provisionals = new Map<string, number[]>();
  private constructor(private readonly socket: Socket, private readonly address: string, private readonly target: number) {
    socket.on('message', (msg) => {
      const text = msg.toString('latin1');
      const status = Number(/^SIP\/2\.0 (\d{3}) /.exec(text)?.[1]);
      const callId = /^Call-ID:\s*(\S+)/im.exec(text)?.[1];
      if (!callId || !status) return;
      if (status < 200) this.provisionals.set(callId, [...(this.provisionals.get(callId) ?? []), status]);
      else if (!this.finals.has(callId)) this.finals.set(callId, status);
    });
  }

  static async open(address: string, target: number): Promise<RawSender> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, address, () => resolve()));
    return new RawSender(socket, address, target);
  }

  /** Sends one INVITE; returns its Call-ID. */
  invite(options: { userAgent?: string; to?: string } = {}): string {
    const port = this.socket.address().port;
    const callId = `ign-${randomBytes(8).toString('hex')}`;
    const sdp = `v=0\r\no=- 1 1 IN IP4 ${this.address}\r\ns=-\r\nc=IN IP4 ${this.address}\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n`;
    const to = options.to ?? NUMBER;
    const text =
      `INVITE sip:${to}@127.0.0.1:${this.target} SIP/2.0\r\nVia: SIP/2.0/UDP ${this.address}:${port};branch=z9hG4bK-${randomBytes(6).toString('hex')};rport\r\n` +
      `Max-Forwards: 70\r\nFrom: <sip:probe@${this.address}>;tag=${randomBytes(4).toString('hex')}\r\nTo: <sip:${to}@127.0.0.1>\r\nCall-ID: ${callId}\r\nCSeq: 1 INVITE\r\n` +
      `Contact: <sip:probe@${this.address}:${port}>\r\n${options.userAgent ? `User-Agent: ${options.userAgent}\r\n` : ''}Content-Type: application/sdp\r\nContent-Length: ${sdp.length}\r\n\r\n${sdp}`;
    this.socket.send(text, this.target, '127.0.0.1');
    return callId;
  }

  /** Sends `n` INVITEs in bursts of 20 every 10 ms (~2 000/s): what a scanner does. */
  async burst(n: number, options: { userAgent?: string } = {}): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      ids.push(this.invite(options));
      if (i % 20 === 19) await new Promise((r) => setTimeout(r, 10));
    }
    return ids;
  }

  close(): void {
    this.socket.close();
  }
}

const MISSING = missingTool('drachtio', 'rtpengine');
if (MISSING) {
  describe('SIP ignore list', () => testMissing(MISSING));
} else {
  describe('SIP sources that keep sending what is refused are ignored for a cool-down', () => {
    let h: SipHarness;
    let stranger: RawSender;
    let scanner: RawSender;
    let trunk: RawSender;
    const registry = new Registry();
    const refusals: SipRefusal[] = [];
    const logLines: { msg?: string; source?: string }[] = [];
    /** Trunk lookups in Redis by source address: what an ignored INVITE must never cost. */
    const lookups = new Map<string, number>();

    beforeAll(async () => {
      const providers = new ProviderRegistry({
        stt: { pocketsphinx: () => new FakeStt({ transcripts: [] }) },
        llm: { scripted: () => new FakeLlm({ reply: () => 'Sure.' }) },
        tts: { flite: () => new FakeTts({ msPerChar: 35 }) },
      });
      h = await startSipHarness({
        providers,
        agentPorts: { min: 49000, max: 49499 },
        rtpengine: { portMin: 53000, portMax: 53499 },
        sourceLimit: { invitesPerSecond: 10_000, burst: 30_000 },
        ignore: { ignoreMs: COOL_DOWN_MS },
        logger: loggerTo({ write: (line: string) => void logLines.push(JSON.parse(line) as (typeof logLines)[number]) }, 'warn'),
      });
      await h.tenants.create({ id: 'joes', displayName: "Joe's Pizza", greeting: 'Hi.' });
      await h.numbers.createTrunk({ name: 'local', sourceCidrs: ['127.0.0.1/32'] });
      await h.numbers.createNumber({ number: NUMBER, tenantId: 'joes' });
      const lookup = h.numbers.trunksForSourceWithSecrets.bind(h.numbers);
      h.numbers.trunksForSourceWithSecrets = (ip) => {
        lookups.set(ip, (lookups.get(ip) ?? 0) + 1);
        return lookup(ip);
      };
      const metrics = new CallMetrics(registry, h.limiter);
      h.gateway.on('refused', (r) => {
        refusals.push(r);
        metrics.sipRefused(r.code);
      });
      h.gateway.on('source-ignored', () => metrics.sipSourceIgnored());
      stranger = await RawSender.open('127.0.0.3', h.drachtio.sipPort);
      scanner = await RawSender.open('127.0.0.4', h.drachtio.sipPort);
      trunk = await RawSender.open('127.0.0.1', h.drachtio.sipPort);
    }, 30_000);

    afterAll(async () => {
      stranger?.close();
      scanner?.close();
      trunk?.close();
      await h?.stop();
    });

    const count = (code: string, source: string): number => refusals.filter((r) => r.code === code && r.source === source).length;

    it('answers 100 refusals, then drops the rest unanswered and unlooked-up, and hears the source again after the cool-down', async () => {
      const sent = await stranger.burst(SENT);
      const scans = await scanner.burst(SENT, { userAgent: 'friendly-scanner' });
      // Every INVITE reached the gateway (drachtio sent each its 100 Trying) and was dealt with.
      await pollUntil(() => refusals.filter((r) => r.source !== '127.0.0.1').length, (n) => n >= 2 * SENT, 10_000);
      expect(sent.filter((id) => stranger.provisionals.get(id)?.includes(100)).length).toBeGreaterThan(SENT * 0.9);

      // 127.0.0.3 (no trunk): exactly 100 answered 403; the other 200 unanswered. Those that had passed
      // the screen before the 100th refusal cost their Redis lookup; every later one cost none.
      expect(count('CG_SIP_FORBIDDEN', '127.0.0.3')).toBe(100);
      expect(count('CG_SIP_SOURCE_IGNORED', '127.0.0.3')).toBe(SENT - 100);
      expect([...stranger.finals.values()].filter((s) => s === 403)).toHaveLength(100);
      expect(stranger.finals.size).toBe(100);
      const inFlight = lookups.get('127.0.0.3')! - 100;
      expect(inFlight).toBeGreaterThanOrEqual(0);
      expect(inFlight).toBeLessThan(SENT - 100);
      // 127.0.0.4 (a scanner): never a final response, never a lookup; ignored after its 100th INVITE.
      expect(count('CG_SIP_SCANNER', '127.0.0.4')).toBe(100);
      expect(count('CG_SIP_SOURCE_IGNORED', '127.0.0.4')).toBe(SENT - 100);
      expect(scanner.finals.size).toBe(0);
      expect(scans.filter((id) => scanner.provisionals.get(id)?.some((s) => s !== 100)).length).toBe(0);
      expect(lookups.get('127.0.0.4')).toBeUndefined();
      // Nothing kept for the unanswered INVITEs (drachtio-srf would otherwise hold each for ever).
      expect(pendingInviteCount(h.gateway.srf)).toBe(0);
      // One log line per ignored source, and the metric.
      const ignoredLines = logLines.filter((l) => l.msg?.startsWith('SIP source kept sending'));
      expect(ignoredLines.map((l) => l.source).sort()).toEqual(['127.0.0.3', '127.0.0.4']);
      expect(logLines.length).toBeLessThan(10);
      const text = await registry.metrics();
      expect(text).toContain('callgate_sip_ignored_sources_total 2');
      expect(text).toContain(`callgate_sip_refused_total{code="CG_SIP_SOURCE_IGNORED"} ${2 * (SENT - 100)}`);

      // The trunk is heard meanwhile: an unknown number from it gets its 404.
      const fromTrunk = trunk.invite({ to: '+19995550000' });
      expect(await pollUntil(() => trunk.finals.get(fromTrunk), (s) => s !== undefined, 5000)).toBe(404);

      // After the cool-down the stranger is answered again.
      await new Promise((r) => setTimeout(r, COOL_DOWN_MS + 100));
      const again = stranger.invite();
      expect(await pollUntil(() => stranger.finals.get(again), (s) => s !== undefined, 5000)).toBe(403);
      expect(h.gateway.activeCalls).toBe(0);
    }, 30_000);
  });
}
