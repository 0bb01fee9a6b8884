import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { connect } from 'node:net';
import Srf from 'drachtio-srf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { openAudioLeg, type AudioLeg } from '../../src/media/AudioLeg.js';
import { sharedMediaClock } from '../../src/media/MediaClock.js';
import { buildSdp, negotiate, offerCodecs, parseRemoteSdp } from '../../src/media/sdp.js';
import { concatSamples } from '../../src/media/signal.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/testing/FakeProviders.js';
import type { SipRefusal } from '../../src/sip/SipGateway.js';
import { startDrachtio, type RunningDrachtio } from '../../src/sip/testing/DrachtioProcess.js';
import { startSipHarness, type SipHarness } from '../../src/sip/testing/SipHarness.js';
import type { CallRecord } from '../../src/tenants/CallRecordStore.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { FAKE_VOICE_SHARE, fakeVoiceShare, soundMs } from '../support/heard.js';
import { missingTool, testMissing } from '../support/tools.js';

/**
 * SIP torture (in the spirit of RFC 4475) through a real drachtio-server and our SipGateway: raw
 * datagrams from 127.0.0.1 (the trusted trunk) and 127.0.0.3 (no trunk), one per case, all at once,
 * while a call set up before them is in progress. "final" is the final response to the case's own
 * Via branch; "none" means none within NO_ANSWER_MS (drachtio sends 100 Trying for every INVITE it
 * parses, before our app sees it: a scanner's "no response" is "no final response").
 *
 * | case                                      | final | who answers, and why that is right                                 |
 * |-------------------------------------------|-------|--------------------------------------------------------------------|
 * | Content-Length larger than the body       | 400   | drachtio (sofia): a UDP message shorter than its length is broken (RFC 3261 §18.3) |
 * | Content-Length smaller (SDP cut to 20 B)  | 488   | us: the body is what the length says; that SDP has no audio (CG_SDP_NO_AUDIO) |
 * | Content-Length negative                   | 400   | drachtio ("Bad Content-Length Header")                             |
 * | Content-Length not a number               | 400   | drachtio ("Bad Content-Length Header")                             |
 * | one 63 KB header                          | 400   | drachtio (sofia refuses the oversized header)                      |
 * | 500 Via headers                           | 200   | us: valid, just long; answered, then ACK and BYE from the test     |
 * | unknown method NEWMETHOD                  | none  | drachtio drops it unanswered (RFC 3261 §8.2.1 would have 501); it never reaches the app |
 * | no Call-ID                                | 400   | drachtio                                                           |
 * | no CSeq                                   | 400   | drachtio                                                           |
 * | CSeq method BYE on an INVITE              | 400   | drachtio (RFC 4475 "mismatch01")                                    |
 * | SDP of binary garbage (NUL bytes)         | 400   | drachtio (sofia refuses NUL in the message)                        |
 * | SDP of text garbage                       | 400   | us: rtpengine refuses it; our parser confirms the caller's fault (CG_SDP_MALFORMED), not a 503 |
 * | m= line with no codecs                    | 400   | us (CG_SDP_MALFORMED); rtpengine had "answered" it with unusable SDP |
 * | audio port 0                              | 488   | us (CG_SDP_NO_AUDIO): the only stream is disabled                  |
 * | 2 500 m= lines (UDP, 53 KB)               | 488   | us (CG_SDP_TOO_MANY_MEDIA), before rtpengine: it opens ports per m= line and ran out |
 * | 10 000 m= lines (TCP, 210 KB), sent alone | 488   | us (CG_SDP_TOO_MANY_MEDIA); drachtio takes the whole message over TCP. Alone because of a drachtio-server bug: see the case |
 * | non-UTF-8 bytes in From, a header, SDP s= | 200   | us: bytes we do not read do not matter; answered, ACK, BYE         |
 * | User-Agent: friendly-scanner              | none  | us: silence (CG_SIP_SCANNER); only drachtio's 100 Trying           |
 * | User-Agent: sipvicious                    | none  | us: silence (CG_SIP_SCANNER)                                       |
 * | unknown number                            | 404   | us (CG_NUMBER_NOT_FOUND)                                           |
 * | OPTIONS                                   | 200   | us (keepalive pings)                                               |
 * | INVITE from 127.0.0.3 (no trunk)          | 403   | us (CG_SIP_FORBIDDEN)                                              |
 * | URI escapes `sip:%2B1500555%30100@…`      | 200   | us: the user part decodes to +15005550100 (RFC 3261 §19.1.2) |
 * | user-part params `sip:+15005550100;user=phone@…` | 200 | us: user-part parameters are dropped (as carriers' RFC 4694 ;npdi;rn=) |
 */
const TIMEOUT_MS = 40_000;
/** How long a case that should get no final response is listened to. */
const NO_ANSWER_MS = 2000;
/** How long any case may take for its final response (the answered ones include rtpengine and the 200). */
const ANSWER_MS = 5000;

const NUMBER = '+15005550100';

/** One SIP response, as received. */
interface SipResponse {
  readonly status: number;
  readonly text: string;
  header(name: string): string | undefined;
}

function parseResponse(text: string): SipResponse | undefined {
  const m = /^SIP\/2\.0 (\d{3}) /.exec(text);
  if (!m) return undefined;
  const head = text.split('\r\n\r\n', 1)[0]!;
  return {
    status: Number(m[1]),
    text,
    header: (name) => new RegExp(`^${name}[ \\t]*:[ \\t]*(.*)$`, 'mi').exec(head)?.[1]?.trim(),
  };
}

const branchOf = (via: string | undefined): string | undefined => /;branch=([^;\s,]+)/i.exec(via ?? '')?.[1];
const newBranch = (): string => `z9hG4bK-${randomBytes(6).toString('hex')}`;
const toHeaderBlock = (headers: readonly (readonly [string, string])[]): string => headers.map(([n, v]) => `${n}: ${v}`).join('\r\n');

/**
 * A SIP user agent made of one raw socket: sends requests as given (however broken), collects the
 * responses to each request's branch, and answers requests sent to it (a BYE) with 200.
 */
class RawUac {
  private readonly waiting = new Map<string, (res: SipResponse) => void>();

  private constructor(
    private readonly socket: Socket,
    readonly address: string,
    private readonly to: { host: string; port: number },
  ) {
    socket.on('message', (msg) => this.onMessage(msg.toString('latin1')));
  }

  static async open(address: string, to: { host: string; port: number }): Promise<RawUac> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, address, () => resolve());
    });
    return new RawUac(socket, address, to);
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(message: string | Buffer): void {
    this.socket.send(typeof message === 'string' ? Buffer.from(message, 'latin1') : message, this.to.port, this.to.host);
  }

  /** Sends, then collects the responses to `branch` until a final one or `waitMs`. */
  async transact(message: string | Buffer, branch: string, waitMs: number): Promise<SipResponse[]> {
    const got: SipResponse[] = [];
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, waitMs);
      this.waiting.set(branch, (res) => {
        // Retransmissions of a final response are dropped: the first one decides.
        if (got.some((r) => r.status >= 200)) return;
        got.push(res);
        if (res.status >= 200) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    this.send(message);
    await done;
    this.waiting.delete(branch);
    return got;
  }

  close(): void {
    this.socket.close();
  }

  private onMessage(text: string): void {
    const res = parseResponse(text);
    if (res) {
      const branch = branchOf(res.header('Via') ?? res.header('v'));
      if (branch) this.waiting.get(branch)?.(res);
      return;
    }
    // A request to us (the gateway hanging up): 200, copying what a response must copy.
    if (/^BYE /.test(text)) {
      const get = (n: string): string => new RegExp(`^${n}:[ \\t]*(.*)$`, 'mi').exec(text)?.[1]?.trim() ?? '';
      this.send(`SIP/2.0 200 OK\r\nVia: ${get('Via')}\r\nFrom: ${get('From')}\r\nTo: ${get('To')}\r\nCall-ID: ${get('Call-ID')}\r\nCSeq: ${get('CSeq')}\r\nContent-Length: 0\r\n\r\n`);
    }
  }
}

/** What a case sends: one request, with every part overridable (and breakable). */
interface RequestSpec {
  readonly method?: string;
  readonly uri?: string;
  readonly body?: string;
  /** The Content-Length header's value; the body's length when absent. */
  readonly contentLength?: string;
  /** Edits the header list (drop, add, change) before it is written. */
  readonly headers?: (h: [string, string][]) => [string, string][];
  readonly transport?: 'UDP' | 'TCP';
}

interface BuiltRequest {
  readonly text: string;
  readonly branch: string;
  readonly callId: string;
  readonly uri: string;
  readonly via: string;
  readonly from: string;
}

function buildRequest(uac: { address: string; port: number }, target: string, spec: RequestSpec, sdp: string): BuiltRequest {
  const method = spec.method ?? 'INVITE';
  const uri = spec.uri ?? target;
  const branch = newBranch();
  const callId = `torture-${randomBytes(8).toString('hex')}`;
  const body = spec.body ?? (method === 'INVITE' ? sdp : '');
  const via = `SIP/2.0/${spec.transport ?? 'UDP'} ${uac.address}:${uac.port};branch=${branch};rport`;
  const from = `<sip:torture@${uac.address}>;tag=${randomBytes(4).toString('hex')}`;
  let headers: [string, string][] = [
    ['Via', via],
    ['Max-Forwards', '70'],
    ['From', from],
    ['To', `<${uri}>`],
    ['Call-ID', callId],
    ['CSeq', `1 ${method}`],
    ['Contact', `<sip:torture@${uac.address}:${uac.port}${spec.transport === 'TCP' ? ';transport=tcp' : ''}>`],
    ...(body ? ([['Content-Type', 'application/sdp']] as [string, string][]) : []),
  ];
  if (spec.headers) headers = spec.headers(headers);
  headers.push(['Content-Length', spec.contentLength ?? String(Buffer.byteLength(body, 'latin1'))]);
  return { text: `${method} ${uri} SIP/2.0\r\n${toHeaderBlock(headers)}\r\n\r\n${body}`, branch, callId, uri, via, from };
}

/** The ACK for a non-2xx final response: same branch, the response's To (RFC 3261 §17.1.1.3). */
function ackFor(req: BuiltRequest, res: SipResponse): string {
  const cseq = (res.header('CSeq') ?? '1').split(/\s+/)[0];
  return `ACK ${req.uri} SIP/2.0\r\nVia: ${req.via}\r\nMax-Forwards: 70\r\nFrom: ${req.from}\r\nTo: ${res.header('To') ?? ''}\r\nCall-ID: ${req.callId}\r\nCSeq: ${cseq} ACK\r\nContent-Length: 0\r\n\r\n`;
}

/** An in-dialog request after a 200 to an INVITE (ACK or BYE): a new transaction to the Contact. */
function inDialog(uac: RawUac, req: BuiltRequest, ok: SipResponse, method: 'ACK' | 'BYE', cseq: number): { text: string; branch: string } {
  const contact = /<([^>]+)>/.exec(ok.header('Contact') ?? '')?.[1] ?? req.uri;
  const branch = newBranch();
  return {
    branch,
    text: `${method} ${contact} SIP/2.0\r\nVia: SIP/2.0/UDP ${uac.address}:${uac.port};branch=${branch};rport\r\nMax-Forwards: 70\r\nFrom: ${req.from}\r\nTo: ${ok.header('To') ?? ''}\r\nCall-ID: ${req.callId}\r\nCSeq: ${cseq} ${method}\r\nContent-Length: 0\r\n\r\n`,
  };
}

/** What a case got: its final status (or 'none'), and what came before it. */
interface CaseResult {
  readonly final: number | 'none';
  readonly provisional: number[];
  /** For an answered INVITE: the status of the test's BYE. */
  readonly bye?: number | 'none';
}

async function runUdpCase(uac: RawUac, target: string, spec: RequestSpec, sdp: string, waitMs: number): Promise<CaseResult> {
  const req = buildRequest(uac, target, spec, sdp);
  const got = await uac.transact(req.text, req.branch, waitMs);
  const final = got.find((r) => r.status >= 200);
  const provisional = got.filter((r) => r.status < 200).map((r) => r.status);
  if (!final) return { final: 'none', provisional };
  if ((spec.method ?? 'INVITE') !== 'INVITE') return { final: final.status, provisional };
  if (final.status >= 300) {
    uac.send(ackFor(req, final));
    return { final: final.status, provisional };
  }
  // Answered: ACK, then hang up at once.
  uac.send(inDialog(uac, req, final, 'ACK', 1).text);
  const bye = inDialog(uac, req, final, 'BYE', 2);
  const byeRes = (await uac.transact(bye.text, bye.branch, ANSWER_MS)).find((r) => r.status >= 200);
  return { final: final.status, provisional, bye: byeRes?.status ?? 'none' };
}

/** One request over a fresh TCP connection (a message too big for a datagram); its final status. */
async function runTcpCase(sipPort: number, target: string, spec: RequestSpec, sdp: string): Promise<CaseResult> {
  const socket = connect(sipPort, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  try {
    const req = buildRequest({ address: '127.0.0.1', port: socket.localPort! }, target, { ...spec, transport: 'TCP' }, sdp);
    let buffer = '';
    const statuses: number[] = [];
    const final = await new Promise<SipResponse | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), ANSWER_MS);
      socket.on('data', (d: Buffer) => {
        buffer += d.toString('latin1');
        // Responses here carry no body: each ends at its blank line.
        for (let end = buffer.indexOf('\r\n\r\n'); end !== -1; end = buffer.indexOf('\r\n\r\n')) {
          const res = parseResponse(buffer.slice(0, end + 4));
          buffer = buffer.slice(end + 4);
          if (!res) continue;
          statuses.push(res.status);
          if (res.status >= 200) {
            clearTimeout(timer);
            resolve(res);
          }
        }
      });
      socket.write(Buffer.from(req.text, 'latin1'));
    });
    if (final && final.status >= 300) socket.write(Buffer.from(ackFor(req, final).replace('/UDP ', '/TCP '), 'latin1'));
    return { final: final?.status ?? 'none', provisional: statuses.filter((s) => s < 200) };
  } finally {
    socket.destroy();
  }
}

const MISSING = missingTool('drachtio', 'rtpengine');
if (MISSING) {
  describe('SIP torture', () => testMissing(MISSING));
} else {
  describe('SIP torture: malformed and hostile messages through drachtio-server and the gateway', () => {
    let h: SipHarness;
    let callerDrachtio: RunningDrachtio;
    let caller: Srf;
    let trunkUac: RawUac;
    let strangerUac: RawUac;
    /** Where rtpengine sends the raw cases' media (a socket of ours, so nothing bounces). */
    const mediaSink = createSocket('udp4');
    const refusals: SipRefusal[] = [];

    beforeAll(async () => {
      const providers = new ProviderRegistry({
        stt: { pocketsphinx: () => new FakeStt({ transcripts: [] }) },
        llm: { scripted: () => new FakeLlm({ reply: () => 'Sure.' }) },
        tts: { flite: () => new FakeTts({ msPerChar: 35 }) },
      });
      h = await startSipHarness({ providers, agentPorts: { min: 46500, max: 46999 } });
      await h.tenants.create({ id: 'joes', displayName: "Joe's Pizza", greeting: "Hi, you have reached Joe's Pizza, how can I help?", maxConcurrentCalls: 20 });
      await h.numbers.createTrunk({ name: 'local', sourceCidrs: ['127.0.0.1/32'] });
      await h.numbers.createNumber({ number: NUMBER, tenantId: 'joes' });
      h.gateway.on('refused', (r) => refusals.push(r));
      callerDrachtio = await startDrachtio();
      caller = new Srf();
      await new Promise<void>((resolve, reject) => {
        caller.once('connect', (err: Error) => (err ? reject(err) : resolve()));
        caller.connect({ host: '127.0.0.1', port: callerDrachtio.adminPort, secret: callerDrachtio.secret });
      });
      const to = { host: '127.0.0.1', port: h.drachtio.sipPort };
      trunkUac = await RawUac.open('127.0.0.1', to);
      strangerUac = await RawUac.open('127.0.0.3', to);
      await new Promise<void>((resolve) => mediaSink.bind(0, '127.0.0.1', () => resolve()));
    }, 30_000);

    afterAll(async () => {
      trunkUac?.close();
      strangerUac?.close();
      mediaSink.close();
      caller?.disconnect();
      await callerDrachtio?.stop();
      await h?.stop();
    });

    const sdp = (port: number): string =>
      `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n`;
    const sinkSdp = (): string => sdp(mediaSink.address().port);

    /** A caller's media leg and its offer (ports apart from the agent legs'). */
    async function callerLeg(): Promise<{ leg: AudioLeg; sdp: string }> {
      const leg = await openAudioLeg({ callId: 'torture-caller', legId: 'caller', codec: { name: 'PCMU', payloadType: 0 }, clock: sharedMediaClock(), env: {}, endpoint: { portRange: { min: 46000, max: 46499 } } });
      return { leg, sdp: buildSdp({ address: '127.0.0.1', port: leg.endpoint.localAddress.port, ...offerCodecs(['PCMU']) }) };
    }

    const recordWhere = (pred: (r: CallRecord) => boolean): Promise<CallRecord | undefined> =>
      pollUntil(async () => (await h.records.list('joes')).records.find(pred), (r) => r !== undefined);

    it(
      'answers each malformed or hostile message as the table says, while a call in progress keeps its audio',
      async () => {
        // The call in progress: up, its audio flowing, before the first bad byte is sent.
        const { leg, sdp: offer } = await callerLeg();
        let frames = 0;
        const heard: Int16Array[] = [];
        leg.on('audio', (f) => {
          frames++;
          heard.push(f.slice());
        });
        try {
          const dialog = await caller.createUAC(h.target(NUMBER), { localSdp: offer });
          const callId = (dialog as unknown as { sip: { callId: string } }).sip.callId;
          const answer = negotiate(parseRemoteSdp(dialog.remote.sdp));
          leg.endpoint.setRemote({ address: answer.remote.address, port: answer.remote.port });
          leg.play(new Int16Array(320)); // latch rtpengine onto our address
          await new Promise((r) => setTimeout(r, 500));
          expect(frames).toBeGreaterThan(10);

          const target = h.target(NUMBER);
          const mLines = (n: number): string => 'm=audio 1 RTP/AVP 0\r\n'.repeat(n);
          const cases: Record<string, () => Promise<CaseResult>> = {
            'Content-Length larger than the body': () => runUdpCase(trunkUac, target, { contentLength: '9999' }, sinkSdp(), ANSWER_MS),
            'Content-Length smaller (SDP cut to 20 B)': () => runUdpCase(trunkUac, target, { contentLength: '20' }, sinkSdp(), ANSWER_MS),
            'Content-Length negative': () => runUdpCase(trunkUac, target, { contentLength: '-5' }, sinkSdp(), ANSWER_MS),
            'Content-Length not a number': () => runUdpCase(trunkUac, target, { contentLength: 'abc' }, sinkSdp(), ANSWER_MS),
            'one 63 KB header': () => runUdpCase(trunkUac, target, { headers: (hs) => [...hs, ['X-Huge', 'a'.repeat(63 * 1024)]] }, sinkSdp(), ANSWER_MS),
            '500 Via headers': () =>
              runUdpCase(
                trunkUac,
                target,
                { headers: (hs) => [hs[0]!, ...Array.from({ length: 499 }, (_, i): [string, string] => ['Via', `SIP/2.0/UDP 10.0.${i >> 8}.${i & 255}:5060;branch=z9hG4bK-hop${i}`]), ...hs.slice(1)] },
                sinkSdp(),
                ANSWER_MS,
              ),
            'unknown method NEWMETHOD': () => runUdpCase(trunkUac, target, { method: 'NEWMETHOD' }, sinkSdp(), NO_ANSWER_MS),
            'no Call-ID': () => runUdpCase(trunkUac, target, { headers: (hs) => hs.filter(([n]) => n !== 'Call-ID') }, sinkSdp(), ANSWER_MS),
            'no CSeq': () => runUdpCase(trunkUac, target, { headers: (hs) => hs.filter(([n]) => n !== 'CSeq') }, sinkSdp(), ANSWER_MS),
            'CSeq method BYE on an INVITE': () => runUdpCase(trunkUac, target, { headers: (hs) => hs.map(([n, v]): [string, string] => [n, n === 'CSeq' ? '1 BYE' : v]) }, sinkSdp(), ANSWER_MS),
            'SDP of binary garbage': () => runUdpCase(trunkUac, target, { body: '\x00\x01\x02garbage\x00\r\n' }, sinkSdp(), ANSWER_MS),
            'SDP of text garbage': () => runUdpCase(trunkUac, target, { body: 'this is not sdp\r\nat=all\r\n' }, sinkSdp(), ANSWER_MS),
            'm= line with no codecs': () => runUdpCase(trunkUac, target, { body: sinkSdp().replace(/RTP\/AVP 0 101/, 'RTP/AVP') }, sinkSdp(), ANSWER_MS),
            'audio port 0': () => runUdpCase(trunkUac, target, { body: sdp(0) }, sinkSdp(), ANSWER_MS),
            '2 500 m= lines (UDP)': () => runUdpCase(trunkUac, target, { body: sinkSdp() + mLines(2500) }, sinkSdp(), ANSWER_MS),
            'non-UTF-8 bytes': () =>
              runUdpCase(
                trunkUac,
                target,
                {
                  body: sinkSdp().replace('s=-', 's=\xff\xfe\xc3('),
                  headers: (hs) => [...hs.map(([n, v]): [string, string] => [n, n === 'From' ? `"\xc0\xaf\xff caller" ${v}` : v]), ['X-Bytes', '\xff\xfe\xc3\x28\xa0\xa1']],
                },
                sinkSdp(),
                ANSWER_MS,
              ),
            'User-Agent: friendly-scanner': () => runUdpCase(trunkUac, target, { headers: (hs) => [...hs, ['User-Agent', 'friendly-scanner']] }, sinkSdp(), NO_ANSWER_MS),
            'User-Agent: sipvicious': () => runUdpCase(trunkUac, target, { headers: (hs) => [...hs, ['User-Agent', 'sipvicious 0.3.4']] }, sinkSdp(), NO_ANSWER_MS),
            'unknown number': () => runUdpCase(trunkUac, h.target('+19995550000'), {}, sinkSdp(), ANSWER_MS),
            OPTIONS: () => runUdpCase(trunkUac, target, { method: 'OPTIONS' }, sinkSdp(), ANSWER_MS),
            'INVITE from 127.0.0.3 (no trunk)': () => runUdpCase(strangerUac, target, {}, sinkSdp(), ANSWER_MS),
          };
          const framesBefore = frames;
          const tortureStarted = performance.now();
          const results: Record<string, CaseResult> = Object.fromEntries(await Promise.all(Object.entries(cases).map(async ([name, run]) => [name, await run()] as const)));
          // Alone, not with the others: drachtio-server writes a message over 64 KB to our app in several
          // writes, and lets other messages' writes interleave with them (it queues none), which breaks
          // drachtio-srf's framing and throws out of its socket handler. A drachtio-server bug; the
          // gateway survives it (src/sip/drachtioFraming.ts drops and reconnects the link), but messages
          // in flight on the link are lost, which would make the concurrent cases' answers a race.
          results['10 000 m= lines (TCP)'] = await runTcpCase(h.drachtio.sipPort, target, { body: sinkSdp() + mLines(10_000) }, sinkSdp());
          const tortureMs = performance.now() - tortureStarted;
          const framesDuring = frames - framesBefore;

          const finals = Object.fromEntries(Object.entries(results).map(([name, r]) => [name, r.final]));
          expect(finals).toEqual({
            'Content-Length larger than the body': 400,
            'Content-Length smaller (SDP cut to 20 B)': 488,
            'Content-Length negative': 400,
            'Content-Length not a number': 400,
            'one 63 KB header': 400,
            '500 Via headers': 200,
            'unknown method NEWMETHOD': 'none',
            'no Call-ID': 400,
            'no CSeq': 400,
            'CSeq method BYE on an INVITE': 400,
            'SDP of binary garbage': 400,
            'SDP of text garbage': 400,
            'm= line with no codecs': 400,
            'audio port 0': 488,
            '2 500 m= lines (UDP)': 488,
            '10 000 m= lines (TCP)': 488,
            'non-UTF-8 bytes': 200,
            'User-Agent: friendly-scanner': 'none',
            'User-Agent: sipvicious': 'none',
            'unknown number': 404,
            OPTIONS: 200,
            'INVITE from 127.0.0.3 (no trunk)': 403,
          });
          // The answered ones hung up cleanly; the scanners heard drachtio's 100 Trying and nothing of ours.
          expect(results['500 Via headers']!.bye).toBe(200);
          expect(results['non-UTF-8 bytes']!.bye).toBe(200);
          expect(results['User-Agent: friendly-scanner']!.provisional).toEqual([100]);
          expect(results['User-Agent: sipvicious']!.provisional).toEqual([100]);

          // What never reached a tenant was told to metrics by code; what did has a record.
          expect(refusals.map((r) => `${r.code} ${r.source}`).sort()).toEqual(
            ['CG_NUMBER_NOT_FOUND 127.0.0.1', 'CG_SIP_FORBIDDEN 127.0.0.3', 'CG_SIP_SCANNER 127.0.0.1', 'CG_SIP_SCANNER 127.0.0.1'].sort(),
          );
          const rejected = await pollUntil(
            async () => (await h.records.list('joes')).records.filter((r) => r.outcome === 'rejected').map((r) => r.error?.code).sort(),
            (codes) => codes.length >= 6,
          );
          expect(rejected).toEqual(['CG_SDP_MALFORMED', 'CG_SDP_MALFORMED', 'CG_SDP_NO_AUDIO', 'CG_SDP_NO_AUDIO', 'CG_SDP_TOO_MANY_MEDIA', 'CG_SDP_TOO_MANY_MEDIA']);

          // The call in progress heard the agent's stream (speech, then comfort silence: one frame per
          // 20 ms) all through the torture, and is still up: it ends with the caller's BYE.
          expect(framesDuring).toBeGreaterThan((tortureMs / 20) * 0.8);
          // And what it heard was the agent: the greeting in the fake voice.
          expect(fakeVoiceShare(concatSamples(heard))).toBeGreaterThan(FAKE_VOICE_SHARE);
          await new Promise<void>((resolve) => dialog.destroy(undefined, () => resolve()));
          expect(await recordWhere((r) => r.callId === callId)).toMatchObject({ outcome: 'caller-hangup', door: 'sip' });
        } finally {
          await leg.close();
        }
      },
      TIMEOUT_MS,
    );

    it('routes dialled numbers written with URI escapes or user-part parameters', async () => {
      const port = h.drachtio.sipPort;
      const escaped = await runUdpCase(trunkUac, `sip:%2B1500555%30100@127.0.0.1:${port}`, {}, sinkSdp(), ANSWER_MS);
      const withParams = await runUdpCase(trunkUac, `sip:${NUMBER};user=phone@127.0.0.1:${port}`, {}, sinkSdp(), ANSWER_MS);
      expect([escaped.final, withParams.final]).toEqual([200, 200]);
    });

    it(
      'afterwards the gateway is unaffected: a normal call is answered, heard and recorded, and nothing is left behind',
      async () => {
        const { leg, sdp: offer } = await callerLeg();
        const heard: Int16Array[] = [];
        leg.on('audio', (f) => heard.push(f.slice()));
        try {
          const dialog = await caller.createUAC(h.target(NUMBER), { localSdp: offer });
          const callId = (dialog as unknown as { sip: { callId: string } }).sip.callId;
          const answer = negotiate(parseRemoteSdp(dialog.remote.sdp));
          leg.endpoint.setRemote({ address: answer.remote.address, port: answer.remote.port });
          leg.play(new Int16Array(320));
          await new Promise((r) => setTimeout(r, 1500));
          const audio = concatSamples(heard);
          // The greeting, judged by content: the fake voice, for more than a blip.
          expect(fakeVoiceShare(audio)).toBeGreaterThan(FAKE_VOICE_SHARE);
          expect(soundMs(audio)).toBeGreaterThan(500);
          await new Promise<void>((resolve) => dialog.destroy(undefined, () => resolve()));
          expect(await recordWhere((r) => r.callId === callId)).toMatchObject({ outcome: 'caller-hangup', door: 'sip', to: NUMBER });
        } finally {
          await leg.close();
        }
        expect(await h.sessionsDrained()).toBe(0);
        expect(await pollUntil(() => h.limiter.active('joes'), (n) => n === 0)).toBe(0);
        expect(await pollUntil(() => h.gateway.activeCalls, (n) => n === 0)).toBe(0);
        // The trunk's own INVITEs stayed well inside its rate: none was refused as a flood.
        expect(refusals.filter((r) => r.code === 'CG_SIP_RATE_LIMITED')).toEqual([]);
      },
      TIMEOUT_MS,
    );
  });
}
