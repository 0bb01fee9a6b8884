import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { openAudioLeg, type AudioLeg } from '../../src/media/AudioLeg.js';
import { sharedMediaClock } from '../../src/media/MediaClock.js';
import { buildSdp, negotiate, offerCodecs, parseRemoteSdp } from '../../src/media/sdp.js';
import { FakeLlm, FakeStt, FakeTts, voiceLike } from '../../src/providers/testing/FakeProviders.js';
import { loggerTo, rootLogger } from '../../src/log.js';
import { rejectScanners } from '../../src/sip/invite/steps.js';
import { pendingInviteCount } from '../../src/sip/drachtioPending.js';
import { DRACHTIO_BIN } from '../../src/sip/testing/DrachtioProcess.js';
import { startSipHarness, type SipHarness } from '../../src/sip/testing/SipHarness.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { check, describeText, InvariantViolation, type FuzzTarget } from '../engine.js';
import { mutateText, randomText, type Rng } from '../mutate.js';
import { browserOfferCaptures } from '../seeds.js';
import { renumberPayloadType, SDP_DICTIONARY } from './sdp.js';

/**
 * The live SIP door: mutated INVITEs — their SDP, and sometimes their headers — sent over UDP from
 * 127.0.0.1 through a real drachtio-server into SipGateway, with a real rtpengine and Redis (a test
 * prefix, removed at the end), a trunk that trusts 127.0.0.1 and a routed number. Seeds are real offers:
 * sipp's, a desk phone's, a SIP.js/Chromium WebRTC offer, a carrier SBC's, and the browser offers
 * captured in tests/fixtures (`*-offer.sdp`, Chromium's).
 *
 * Every case is a whole transaction, as a phone does it: the INVITE (retransmitted like Timer A), its
 * final response ACKed; an answered one is ACKed, then hung up with a BYE whose 200 is awaited. A crash
 * is: an unhandled rejection or uncaught exception in the process (counted by listeners installed at
 * open); no answer at all to a well-formed INVITE (only its SDP mutated); drachtio's 100 Trying and then
 * no final response from us to an INVITE that is not a scanner's (scanners get none by design); a 500
 * (what the door sends for an unexpected error); a 200 without an SDP we can use; a hang (the engine's
 * 5 s). Every `checkEvery` cases (and at the end) a live call set up at open must still be carried —
 * media from the agent still arriving, no BYE — the gateway must answer a fresh well-formed INVITE,
 * and drachtio-srf must hold no INVITE we left unanswered. At the end no rtpengine session, no line
 * and no running call may be left.
 *
 * The per-source INVITE limit is raised (one source sends everything) and the ignore list is off (the
 * fuzz's own scanner cases would otherwise get the trunk's address ignored).
 */
export interface SipInviteCase {
  readonly body: string;
  /** Header lines in order, `Name: value` (Via, From, Call-ID and CSeq are added per send). */
  readonly headers: readonly string[];
  /** Request-URI user part (the number dialled). */
  readonly user: string;
  /** Added to the true Content-Length (0 for a correct one). */
  readonly lengthDelta: number;
  /** Only the body was mutated: the SIP message is as a phone sends it, so it must be answered. */
  readonly wellFormed: boolean;
  /** What was mutated, for the report. */
  readonly mutated: string;
  /**
   * Sent inside the dialog when the INVITE is answered, before the BYE: a re-INVITE with another
   * mutated offer (hold, a codec change, garbage) or a SIP INFO with a mutated key press.
   */
  readonly inDialog?: { readonly method: 'INVITE' | 'INFO'; readonly contentType: string; readonly body: string };
}

const NUMBER = '+15005550100';
/** Cases between checks of the live call and the door. */
const CHECK_EVERY = 250;
/** How long a case waits for the final response (a loaded 2-core machine, rtpengine and the VAD included). */
const FINAL_WAIT_MS = 3500;
/**
 * How long a case waits for anything at all: drachtio sends 100 Trying as it hands an INVITE to us, at
 * once; a message it drops is never answered, and waiting the whole FINAL_WAIT_MS for each would make
 * the run mostly waiting.
 */
const FIRST_WAIT_MS = 1500;
/** A scanner's INVITE gets 100 Trying and, by design, nothing more: listened to this long after the 100. */
const SCANNER_WAIT_MS = 300;
/** Timer A: an INVITE (or BYE) is sent again after this while nothing has come back. */
const RETRANSMIT_MS = 500;
const MAX_SDP_CHARS = 8 * 1024;

const SCANNER_UAS = ['friendly-scanner', 'sipvicious', 'sipcli/v1.8', 'VaxSIPUserAgent/3.1', 'sundayddr'];
const PHONE_UAS = ['Yealink SIP-T46S 66.86.0.15', 'PolycomVVX-VVX_411-UA/6.4.3.5018', 'SIP.js/0.21.2', 'Asterisk PBX 20.5.0', 'FPBX-16.0.40(18.22.0)', 'sipp', 'Cisco-SIPGateway/IOS-15.x', 'Z 5.6.4 v2.10.20.4'];

const HEADER_DICTIONARY = ['\r\n', ';', ',', '<', '>', '"', ':', '@', 'sip:', 'tel:', ';tag=', ';transport=tcp', '%00', '%', 'Content-Length: 0', 'Require: 100rel', 'Supported: timer', 'Session-Expires: 90'];

/** Seeds: real offers as phones, sipp, a browser and an SBC send them; ADDR and PORT are filled at open. */
function offers(addr: string, port: number): string[] {
  const crlf = (...l: string[]): string => l.join('\r\n') + '\r\n';
  return [
    // sipp's uac (as tests/sip/scenarios send it).
    crlf('v=0', `o=sipp 42 1 IN IP4 ${addr}`, 's=callgate test call', `c=IN IP4 ${addr}`, 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', 'a=ptime:20', 'a=sendrecv'),
    // A desk phone (Yealink): G.722, G.711 both laws, DTMF events, ptime.
    crlf(
      'v=0',
      `o=- 20019 20019 IN IP4 ${addr}`,
      's=SDP data',
      `c=IN IP4 ${addr}`,
      't=0 0',
      `m=audio ${port} RTP/AVP 9 0 8 18 101`,
      'a=rtpmap:9 G722/8000',
      'a=rtpmap:0 PCMU/8000',
      'a=rtpmap:8 PCMA/8000',
      'a=rtpmap:18 G729/8000',
      'a=fmtp:18 annexb=no',
      'a=ptime:20',
      'a=sendrecv',
      'a=rtpmap:101 telephone-event/8000',
      'a=fmtp:101 0-15',
    ),
    // SIP.js in Chromium: WebRTC (ICE, DTLS-SRTP, Opus) as it would reach a trunk-facing port.
    crlf(
      'v=0',
      `o=- 6053195380823564937 2 IN IP4 ${addr}`,
      's=-',
      't=0 0',
      'a=group:BUNDLE 0',
      'a=extmap-allow-mixed',
      'a=msid-semantic: WMS 1b0e6a3b-c1d4-4f3e-9a57-0c6c0f0f7d11',
      `m=audio ${port} UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126`,
      `c=IN IP4 ${addr}`,
      'a=rtcp:9 IN IP4 0.0.0.0',
      `a=candidate:2999745851 1 udp 2122260223 ${addr} ${port} typ host generation 0 network-id 1`,
      'a=ice-ufrag:7sFv',
      'a=ice-pwd:dOTZKZNVlO9RSGsEGM63JXT2',
      'a=ice-options:trickle',
      'a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08',
      'a=setup:actpass',
      'a=mid:0',
      'a=sendrecv',
      'a=msid:1b0e6a3b-c1d4-4f3e-9a57-0c6c0f0f7d11 2f2a3bb0-9c3b-4d6f-8b7e-5d7e3c1a9f00',
      'a=rtcp-mux',
      'a=rtpmap:111 opus/48000/2',
      'a=rtcp-fb:111 transport-cc',
      'a=fmtp:111 minptime=10;useinbandfec=1',
      'a=rtpmap:63 red/48000/2',
      'a=fmtp:63 111/111',
      'a=rtpmap:9 G722/8000',
      'a=rtpmap:0 PCMU/8000',
      'a=rtpmap:8 PCMA/8000',
      'a=rtpmap:13 CN/8000',
      'a=rtpmap:110 telephone-event/48000',
      'a=rtpmap:126 telephone-event/8000',
      'a=ssrc:2207036434 cname:Q1v8MJ3vBvdiMlnO',
    ),
    // A carrier SBC: PCMU/PCMA, RFC 2833, a session-level c=, an inactive video line.
    crlf(
      'v=0',
      `o=SBC 1684415331 1684415332 IN IP4 ${addr}`,
      's=SBC',
      `c=IN IP4 ${addr}`,
      't=0 0',
      `m=audio ${port} RTP/AVP 0 8 101`,
      'a=rtpmap:0 PCMU/8000',
      'a=rtpmap:8 PCMA/8000',
      'a=rtpmap:101 telephone-event/8000',
      'a=fmtp:101 0-16',
      'a=maxptime:40',
      'm=video 0 RTP/AVP 96',
      'a=inactive',
    ),
  ];
}

const baseHeaders = (sipPort: number, user: string): string[] => [
  `To: <sip:${user}@127.0.0.1:${sipPort}>`,
  'Max-Forwards: 70',
  `User-Agent: ${PHONE_UAS[0]}`,
  'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO',
  'Supported: replaces',
  'Content-Type: application/sdp',
];

/** A response or request read off the wire. */
interface SipMessage {
  readonly status: number | undefined;
  readonly method: string | undefined;
  readonly head: string;
  readonly body: string;
  header(name: string): string | undefined;
}

const COMPACT: Record<string, string> = { 'call-id': 'i', to: 't', from: 'f', via: 'v', contact: 'm', 'content-length': 'l', 'content-type': 'c', cseq: 'cseq' };

function parseSip(text: string): SipMessage | undefined {
  const split = text.indexOf('\r\n\r\n');
  const head = split === -1 ? text : text.slice(0, split);
  const body = split === -1 ? '' : text.slice(split + 4);
  const first = head.split('\r\n', 1)[0] ?? '';
  const status = /^SIP\/2\.0 (\d{3})/.exec(first)?.[1];
  const method = /^([A-Z]+) \S+ SIP\/2\.0$/.exec(first)?.[1];
  if (!status && !method) return undefined;
  return {
    status: status ? Number(status) : undefined,
    method,
    head,
    body,
    header(name: string): string | undefined {
      const n = name.toLowerCase();
      for (const line of head.split('\r\n').slice(1)) {
        const c = line.indexOf(':');
        const h = line.slice(0, c).trim().toLowerCase();
        if (h === n || h === COMPACT[n]) return line.slice(c + 1).trim();
      }
      return undefined;
    },
  };
}

interface Waiter {
  readonly resolve: (m: SipMessage) => void;
  readonly onProvisional?: (m: SipMessage) => void;
}

/** A minimal UDP UAC on 127.0.0.1: sends requests, matches responses by Call-ID and CSeq method, answers BYEs. */
class UdpUac {
  private readonly waiters = new Map<string, Waiter>();
  /** Call-IDs the gateway sent a BYE for. */
  readonly byes = new Set<string>();
  private constructor(
    readonly socket: Socket,
    private readonly sipPort: number,
  ) {
    socket.on('message', (buf) => this.onMessage(buf.toString('utf8')));
  }

  static async open(sipPort: number): Promise<UdpUac> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    return new UdpUac(socket, sipPort);
  }

  get port(): number {
    return this.socket.address().port;
  }

  private onMessage(text: string): void {
    const m = parseSip(text);
    if (!m) return;
    const callId = m.header('call-id') ?? '';
    if (m.method) {
      // A request from the gateway (a BYE at max duration or from the media watchdog): answer it 200.
      if (m.method === 'BYE') this.byes.add(callId);
      if (m.method !== 'ACK') {
        const copy = ['via', 'from', 'to', 'call-id', 'cseq'].flatMap((h) => m.head.split('\r\n').filter((l) => new RegExp(`^(${h}|${COMPACT[h]})\\s*:`, 'i').test(l)));
        this.send(`SIP/2.0 200 OK\r\n${copy.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`);
      }
      return;
    }
    const method = /\d+\s+(\S+)/.exec(m.header('cseq') ?? '')?.[1] ?? '';
    const w = this.waiters.get(`${callId} ${method}`);
    if (!w) return;
    if (m.status! < 200) w.onProvisional?.(m);
    else w.resolve(m);
  }

  send(text: string | Buffer): void {
    this.socket.send(text, this.sipPort, '127.0.0.1');
  }

  /**
   * Sends a request and resolves with its final response, or undefined after `waitMs`. Sent again
   * every RETRANSMIT_MS until anything (a 100 Trying included) comes back, as Timer A does.
   */
  transact(
    callId: string,
    method: string,
    message: Buffer,
    wait: { readonly firstMs: number; readonly finalMs: number; readonly afterTryingMs?: number },
    onProvisional?: (m: SipMessage) => void,
  ): Promise<SipMessage | undefined> {
    const key = `${callId} ${method}`;
    return new Promise((resolve) => {
      let heard = false;
      const retransmit = setInterval(() => {
        if (!heard) this.send(message);
      }, RETRANSMIT_MS);
      const done = (m: SipMessage | undefined): void => {
        clearInterval(retransmit);
        clearTimeout(first);
        clearTimeout(final);
        this.waiters.delete(key);
        resolve(m);
      };
      const first = setTimeout(() => done(undefined), wait.firstMs);
      let final = setTimeout(() => done(undefined), wait.finalMs);
      this.waiters.set(key, {
        resolve: (m) => done(m),
        onProvisional: (m) => {
          heard = true;
          clearTimeout(first);
          if (m.status === 100 && wait.afterTryingMs !== undefined) {
            clearTimeout(final);
            final = setTimeout(() => done(undefined), wait.afterTryingMs);
          }
          onProvisional?.(m);
        },
      });
      this.send(message);
    });
  }

  close(): void {
    this.socket.close();
  }
}

const newBranch = (): string => `z9hG4bK-fz${randomBytes(6).toString('hex')}`;

/** One dialog's identifiers, for its ACK and BYE. */
interface Sent {
  readonly callId: string;
  readonly fromTag: string;
  readonly branch: string;
  readonly from: string;
  readonly requestUri: string;
  /** A well-formed URI for the To of requests inside the dialog. */
  readonly dialogUri: string;
}

function inviteMessage(uac: UdpUac, sipPort: number, c: SipInviteCase): { sent: Sent; bytes: Buffer } {
  const callId = `fz-${randomBytes(10).toString('hex')}@127.0.0.1`;
  const fromTag = randomBytes(5).toString('hex');
  const branch = newBranch();
  const from = `From: <sip:fuzz@127.0.0.1:${uac.port}>;tag=${fromTag}`;
  const requestUri = `sip:${c.user}@127.0.0.1:${sipPort}`;
  const body = Buffer.from(c.body, 'utf8');
  const head = [
    `INVITE ${requestUri} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${uac.port};branch=${branch};rport`,
    from,
    `Call-ID: ${callId}`,
    'CSeq: 1 INVITE',
    `Contact: <sip:fuzz@127.0.0.1:${uac.port}>`,
    ...c.headers,
    `Content-Length: ${Math.max(0, body.length + c.lengthDelta)}`,
  ].join('\r\n');
  return { sent: { callId, fromTag, branch, from, requestUri, dialogUri: `sip:${NUMBER}@127.0.0.1:${sipPort}` }, bytes: Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'utf8'), body]) };
}

/**
 * The To of requests inside the dialog: the INVITE's own To (or Request-URI) may be a mutated one
 * drachtio let through but will not take back in a BYE, so it is rebuilt from the number and the
 * gateway's tag (dialogs are matched by Call-ID and tags).
 */
function dialogTo(s: Sent, answer: SipMessage): string {
  const tag = /;\s*tag=([^;>\s]+)/i.exec(answer.header('to') ?? '')?.[1];
  return `<${s.dialogUri}>${tag ? `;tag=${tag}` : ''}`;
}

/** ACK for a final response: for a non-2xx on the INVITE's branch, for a 2xx a new one to the Contact. */
function ack(uac: UdpUac, s: Sent, response: SipMessage): void {
  const ok = response.status! < 300;
  const to = ok ? dialogTo(s, response) : (response.header('to') ?? '');
  const target = ok ? (/<([^>]+)>/.exec(response.header('contact') ?? '')?.[1] ?? s.requestUri) : s.requestUri;
  uac.send(
    [`ACK ${target} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${uac.port};branch=${ok ? newBranch() : s.branch};rport`, s.from, `To: ${to}`, `Call-ID: ${s.callId}`, 'CSeq: 1 ACK', 'Max-Forwards: 70', 'Content-Length: 0', '', ''].join('\r\n'),
  );
}

/** A re-INVITE or INFO inside an answered dialog; resolves with its final response (a re-INVITE's is ACKed). */
async function within(uac: UdpUac, s: Sent, answer: SipMessage, r: NonNullable<SipInviteCase['inDialog']>): Promise<SipMessage | undefined> {
  const target = /<([^>]+)>/.exec(answer.header('contact') ?? '')?.[1] ?? s.requestUri;
  const branch = newBranch();
  const body = Buffer.from(r.body, 'utf8');
  const head = [
    `${r.method} ${target} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${uac.port};branch=${branch};rport`,
    s.from,
    `To: ${dialogTo(s, answer)}`,
    `Call-ID: ${s.callId}`,
    `CSeq: 2 ${r.method}`,
    `Contact: <sip:fuzz@127.0.0.1:${uac.port}>`,
    'Max-Forwards: 70',
    `Content-Type: ${r.contentType}`,
    `Content-Length: ${body.length}`,
  ].join('\r\n');
  const final = await uac.transact(s.callId, r.method, Buffer.concat([Buffer.from(`${head}\r\n\r\n`), body]), { firstMs: FIRST_WAIT_MS, finalMs: FINAL_WAIT_MS });
  if (final && r.method === 'INVITE') {
    const ok = final.status! < 300;
    uac.send(
      [`ACK ${target} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${uac.port};branch=${ok ? newBranch() : branch};rport`, s.from, `To: ${ok ? dialogTo(s, answer) : (final.header('to') ?? '')}`, `Call-ID: ${s.callId}`, 'CSeq: 2 ACK', 'Max-Forwards: 70', 'Content-Length: 0', '', ''].join('\r\n'),
    );
  }
  return final;
}

/** What an answered case sends inside its dialog. */
function inDialogRequest(rng: Rng, seed: string, seeds: readonly string[], dictionary: readonly string[]): NonNullable<SipInviteCase['inDialog']> {
  if (rng.bool(0.6)) {
    const held = rng.bool(0.3) ? seed.replace('a=sendrecv', rng.pick(['a=sendonly', 'a=inactive', 'a=recvonly'])) : seed;
    const body = rng.bool(0.2) ? held : mutateText(rng, held, { others: seeds, dictionary, maxLength: MAX_SDP_CHARS });
    return { method: 'INVITE', contentType: 'application/sdp', body: rng.bool(0.05) ? '' : body };
  }
  const relay = `Signal=${rng.pick(['5', '#', '*', '10', '11', 'A', 'x', ''])}\r\nDuration=${rng.pick(['160', '0', '-1', '99999999999', 'abc'])}\r\n`;
  const body = rng.bool(0.5) ? relay : mutateText(rng, relay, { maxLength: 2048 });
  return { method: 'INFO', contentType: rng.pick(['application/dtmf-relay', 'application/dtmf', 'application/DTMF-Relay; charset=x', 'text/plain', '']), body };
}

/** Hangs up an answered call: BYE to the Contact, resolves with the BYE's final response. */
function bye(uac: UdpUac, s: Sent, answer: SipMessage): Promise<SipMessage | undefined> {
  const target = /<([^>]+)>/.exec(answer.header('contact') ?? '')?.[1] ?? s.requestUri;
  const message = Buffer.from(
    [`BYE ${target} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${uac.port};branch=${newBranch()};rport`, s.from, `To: ${dialogTo(s, answer)}`, `Call-ID: ${s.callId}`, 'CSeq: 2 BYE', 'Max-Forwards: 70', 'Content-Length: 0', '', ''].join('\r\n'),
  );
  return uac.transact(s.callId, 'BYE', message, { firstMs: 2000, finalMs: 2000 });
}

/** Whether the door takes these headers for a scanner's (it answers those with nothing on purpose). */
function looksLikeScanner(headers: readonly string[]): boolean {
  return headers.some((h) => {
    const m = /^user-agent\s*:(.*)$/i.exec(h);
    if (!m) return false;
    try {
      rejectScanners({ callId: '', uri: '', to: '', from: '', sourceAddress: '', transport: 'udp', header: () => m[1]!.trim() });
      return false;
    } catch {
      return true;
    }
  });
}

export const sipInviteTarget: FuzzTarget<SipInviteCase> = {
  name: 'sip-invite',
  about: 'mutated INVITE SDP and headers through drachtio-server into the live SIP door (rtpengine, Redis); no final response, a 500, an escaped rejection or a dropped live call is a crash',
  /**
   * 20 000 in a full run: each case is a whole SIP transaction (~12 ms, a call set up and torn down for
   * one in six), so 100 000 would take about 20 minutes alone; 1 000 (~15 s) in --quick.
   */
  caseLimit: { full: 20_000, quick: 1_000 },
  async open() {
    if (!DRACHTIO_BIN) throw new Error('sip-invite needs drachtio-server (DRACHTIO_BIN or ../shared/bin/drachtio)');
    // What escapes a call's own handling reaches these; any is a crash of the case that caused it.
    const escaped: string[] = [];
    const onRejection = (reason: unknown): void => void escaped.push(`unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`);
    const onException = (err: Error): void => void escaped.push(`uncaught exception: ${err.stack ?? err.message}`);
    process.on('unhandledRejection', onRejection);
    process.on('uncaughtException', onException);
    // Every call's leg logs a line as it closes; tens of thousands of them would bury the report.
    const rootLevel = rootLogger.level;
    if (process.env['LOG_LEVEL'] === undefined) rootLogger.level = 'warn';
    const restore = (): void => {
      rootLogger.level = rootLevel;
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtException', onException);
    };

    const providers = new ProviderRegistry({
      // The live call's caller speaks now and then, so its agent answers and never gives up on it.
      stt: { pocketsphinx: () => new FakeStt({ transcripts: Array<string>(10_000).fill('hello there') }) },
      llm: { scripted: () => new FakeLlm({ reply: () => 'Sure.' }) },
      tts: { flite: () => new FakeTts({ msPerChar: 5 }) },
    });
    let h: SipHarness | undefined;
    let uac: UdpUac | undefined;
    let live: { leg: AudioLeg; sent: Sent; answer: SipMessage; speaking: NodeJS.Timeout } | undefined;
    /** The door's last warnings (an unexpected failure is logged with its stack): quoted in crash reports. */
    const warnings: string[] = [];
    /** Call-IDs the door itself answered 500, or failed unexpectedly on (drachtio sends its own 500 at times). */
    const door500 = new Set<string>();
    const logger = loggerTo(
      {
        write: (line: string) => {
          if (process.env['FUZZ_SIP_LOG']) process.stderr.write(line);
          const level = Number(/"level":(\d+)/.exec(line)?.[1]);
          const ours500 = line.includes('"status":500') || line.includes('"msg":"call setup failed"') || line.includes('"msg":"INVITE handler failed"');
          if (ours500) door500.add(/"callId":"([^"]+)"/.exec(line)?.[1] ?? '?');
          if (level < 40) return;
          warnings.push(line.slice(0, 1000));
          if (warnings.length > 20) warnings.shift();
        },
      },
      // "call refused" lines (info) say which status the door sent.
      process.env['FUZZ_SIP_LOG'] ?? 'info',
    );
    const sink = createSocket('udp4');
    try {
      h = await startSipHarness({
        providers,
        agentPorts: { min: 49500, max: 49999 },
        rtpengine: { portMin: 53500, portMax: 53999 },
        sourceLimit: { invitesPerSecond: 1e6, burst: 1e6 },
        ignore: { ignoreMs: 0 },
        logger,
      });
      await h.tenants.create({ id: 'fuzz', displayName: 'Fuzz', greeting: 'Hello.', maxConcurrentCalls: 100, maxCallDurationMs: 4 * 3600_000, turn: { noInputMs: 60_000, maxReprompts: 10 } });
      await h.numbers.createTrunk({ name: 'local', sourceCidrs: ['127.0.0.1/32'] });
      await h.numbers.createNumber({ number: NUMBER, tenantId: 'fuzz' });
      uac = await UdpUac.open(h.drachtio.sipPort);
      // Where rtpengine sends the cases' media: a socket of ours, so nothing bounces.
      await new Promise<void>((resolve) => sink.bind(0, '127.0.0.1', () => resolve()));
    } catch (err) {
      await h?.stop();
      sink.close();
      restore();
      throw err;
    }
    const harness = h;
    const client = uac;
    // Real browsers' offers captured in tests/fixtures, their media sent to the sink too.
    const captured = browserOfferCaptures().map((sdp) => sdp.replace(/^m=audio \d+/m, `m=audio ${sink.address().port}`).replace(/\r?\n/g, '\r\n'));
    const seeds = [...offers('127.0.0.1', sink.address().port), ...captured];
    const dictionary = [...SDP_DICTIONARY, 'a=rtpmap:111 opus/48000/2', 'a=candidate:1 1 udp 1 127.0.0.1 9 typ host', 'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:', 'm=audio 0 RTP/AVP 0'];

    /** Sends one case, finishes its transaction, hangs up what was answered; the final status, or undefined. */
    async function place(c: SipInviteCase): Promise<{ status: number | undefined; provisional: number[]; answer?: SipMessage; sent: Sent }> {
      const { sent, bytes } = inviteMessage(client, harness.drachtio.sipPort, c);
      const provisional: number[] = [];
      const scanner = looksLikeScanner(c.headers);
      const wait = { firstMs: FIRST_WAIT_MS, finalMs: FINAL_WAIT_MS, ...(scanner ? { afterTryingMs: SCANNER_WAIT_MS } : {}) };
      const final = await client.transact(sent.callId, 'INVITE', bytes, wait, (m) => provisional.push(m.status!));
      if (!final) return { status: undefined, provisional, sent };
      ack(client, sent, final);
      return { status: final.status, provisional, answer: final, sent };
    }

    /** The long call the door must carry through the run: media both ways, never hung up. */
    async function startLiveCall(): Promise<NonNullable<typeof live>> {
      const leg = await openAudioLeg({ callId: 'fuzz-live', legId: 'caller', codec: { name: 'PCMU', payloadType: 0 }, clock: sharedMediaClock(), env: {}, endpoint: { portRange: { min: 54000, max: 54099 } } });
      const sdp = buildSdp({ address: '127.0.0.1', port: leg.endpoint.localAddress.port, ...offerCodecs(['PCMU']) });
      const r = await place({ body: sdp, headers: baseHeaders(harness.drachtio.sipPort, NUMBER), user: NUMBER, lengthDelta: 0, wellFormed: true, mutated: 'none' });
      if (r.status !== 200 || !r.answer) {
        await leg.close();
        throw new Error(`sip-invite: the live call was not answered (${String(r.status)})`);
      }
      const media = negotiate(parseRemoteSdp(r.answer.body));
      leg.endpoint.setRemote({ address: media.remote.address, port: media.remote.port });
      // Comfort silence keeps RTP flowing between the caller's words, so the media watchdog sees a live
      // caller; a few words every 15 s get an answer, so the agent's no-input timer never ends the call.
      leg.play(voiceLike(800, -20));
      const speaking = setInterval(() => leg.play(voiceLike(800, -20)), 15_000);
      speaking.unref();
      return { leg, sent: r.sent, answer: r.answer, speaking };
    }

    let received = 0;
    let cases = 0;
    /** The door is whole: the live call carried, a fresh INVITE answered, nothing held for unanswered ones. */
    async function checkDoor(): Promise<void> {
      live ??= await startLiveCall();
      check(!client.byes.has(live.sent.callId), 'the live call was hung up by the gateway');
      const now = await pollUntil(() => live!.leg.endpoint.stats().received.packets, (n) => n > received, 3000);
      check(now > received, `the live call's media stopped (${now} packets received, as at the last check)`);
      received = now;
      const fresh = await place({ body: seeds[0]!, headers: baseHeaders(harness.drachtio.sipPort, NUMBER), user: NUMBER, lengthDelta: 0, wellFormed: true, mutated: 'none' });
      check(fresh.status === 200, `a well-formed INVITE got ${String(fresh.status)} instead of 200`);
      if (fresh.answer) await bye(client, fresh.sent, fresh.answer);
      check(harness.gateway.activeCalls >= 1, 'the gateway has no call in progress although the live call is up');
      const pending = pendingInviteCount(harness.gateway.srf);
      check(pending === undefined || pending <= 2, `drachtio-srf holds ${String(pending)} INVITEs that got no final response`);
    }

    await checkDoor();

    return {
      generate(rng: Rng): SipInviteCase {
        const seed = rng.pick(seeds);
        const r = rng.float();
        let body: string;
        if (r < 0.05) body = seed;
        else if (r < 0.12) body = 'v=0\r\n' + randomText(rng, rng.length(2000), dictionary);
        else body = mutateText(rng, rng.bool(0.3) ? renumberPayloadType(rng, seed) : seed, { others: seeds, dictionary, maxLength: MAX_SDP_CHARS });
        const inDialog = rng.bool(0.3) ? inDialogRequest(rng, rng.pick(seeds), seeds, dictionary) : undefined;
        const extra = inDialog ? { inDialog } : {};
        if (!rng.bool(0.2)) return { body, headers: baseHeaders(0, NUMBER), user: NUMBER, lengthDelta: 0, wellFormed: true, mutated: 'sdp', ...extra };
        // Header mutations: the envelope a phone, a PBX or an attacker might send.
        const headers = baseHeaders(0, NUMBER);
        let user = NUMBER;
        let lengthDelta = 0;
        const what: string[] = [];
        for (let i = rng.range(1, 3); i > 0; i--) {
          const kind = rng.int(8);
          what.push(['user-agent', 'request-uri', 'to', 'header', 'content-type', 'content-length', 'extra', 'drop'][kind]!);
          if (kind === 0) headers[2] = `User-Agent: ${rng.bool(0.3) ? rng.pick(SCANNER_UAS) : rng.bool(0.5) ? rng.pick(PHONE_UAS) : mutateText(rng, rng.pick(PHONE_UAS), { maxLength: 512, dictionary: HEADER_DICTIONARY })}`;
          else if (kind === 1) user = rng.bool(0.5) ? rng.pick(['15005550100', '%2B15005550100', '+15005550100;user=phone', '+19995550000', 'gateway', '']) : mutateText(rng, NUMBER, { maxLength: 256, dictionary: HEADER_DICTIONARY });
          else if (kind === 2) headers[0] = `To: ${mutateText(rng, headers[0]!.slice(4), { maxLength: 512, dictionary: HEADER_DICTIONARY })}`;
          else if (kind === 3) {
            const at = rng.int(headers.length);
            headers[at] = mutateText(rng, headers[at]!, { maxLength: 1024, dictionary: HEADER_DICTIONARY });
          } else if (kind === 4) headers[5] = `Content-Type: ${rng.pick(['application/SDP', 'application/sdp; charset=utf-8', 'text/plain', 'multipart/mixed;boundary=x', 'application/json', ''])}`;
          else if (kind === 5) lengthDelta = rng.pick([-1, 1, -10, 10, -100000, 1000]);
          else if (kind === 6) headers.push(rng.pick(['Require: 100rel', 'Supported: 100rel, timer', 'Session-Expires: 90;refresher=uac', 'Min-SE: 90', 'Privacy: id', 'P-Asserted-Identity: <sip:+14155550123@carrier>', `X-Call-Token: ${randomText(rng, rng.length(64))}`, `Subject: ${randomText(rng, rng.length(200))}`, 'Max-Forwards: 0', 'Expires: 0', 'Replaces: abc;to-tag=1;from-tag=2']));
          else headers.splice(rng.range(1, headers.length - 1), 1);
        }
        return { body, headers, user, lengthDelta, wellFormed: false, mutated: what.join('+'), ...extra };
      },

      async run(c: SipInviteCase) {
        if (cases > 0 && cases % CHECK_EVERY === 0) await checkDoor();
        cases++;
        const before = escaped.length;
        // The To header carries the real port (a phone names where it sends); cases were made without it.
        const headers = c.headers.map((l) => l.replace('@127.0.0.1:0>', `@127.0.0.1:${harness.drachtio.sipPort}>`));
        const r = await place({ ...c, headers });
        if (r.status !== undefined && r.status < 300 && r.answer) {
          if (c.inDialog) {
            const inDialog = await within(client, r.sent, r.answer, c.inDialog);
            check(inDialog !== undefined, `no final response to an in-dialog ${c.inDialog.method}`);
            check(!(inDialog.status === 500 && door500.has(r.sent.callId)), `500 to an in-dialog ${c.inDialog.method}; last warning: ${warnings.at(-1) ?? 'none'}`);
          }
          const hangup = await bye(client, r.sent, r.answer);
          check(hangup?.status === 200, `the BYE of an answered call got ${String(hangup?.status)}`);
        }
        // Let anything the case set off in the background (cleanup, records) run before judging.
        await new Promise((resolve) => setImmediate(resolve));
        if (escaped.length > before) throw new InvariantViolation(escaped.slice(before).join(' | ').slice(0, 600));
        if (r.status === undefined) {
          if (c.wellFormed) throw new InvariantViolation('no answer at all to a well-formed INVITE');
          // drachtio passed it to us (100 Trying) and we never answered: only a scanner's gets that.
          if (r.provisional.includes(100) && !looksLikeScanner(headers)) throw new InvariantViolation('100 Trying, then no final response from the gateway');
          return 'rejected';
        }
        // drachtio answers 500 itself when it cannot send our response (a To header it let in but cannot
        // echo back): only the door's own 500 is a failure of ours.
        check(!(r.status === 500 && door500.has(r.sent.callId)), `500 Server Internal Error from the door; last warning: ${warnings.at(-1) ?? 'none'}`);
        if (r.status >= 200 && r.status < 300) {
          let usable = true;
          try {
            negotiate(parseRemoteSdp(r.answer!.body));
          } catch {
            usable = false;
          }
          check(usable, `200 OK without an SDP answer we can use: ${JSON.stringify(r.answer!.body.slice(0, 200))}`);
          return 'accepted';
        }
        return 'rejected';
      },

      isTyped: () => false,

      describe: (c: SipInviteCase) =>
        `${c.inDialog ? `then ${c.inDialog.method} (${c.inDialog.contentType}) ${describeText(c.inDialog.body, 200)}; ` : ''}${c.mutated}${c.wellFormed ? '' : ` user=${JSON.stringify(c.user)} headers=${JSON.stringify(c.headers)} lengthDelta=${c.lengthDelta}`} body ${describeText(c.body)}`,

      async close() {
        const problems: string[] = [];
        try {
          await checkDoor();
        } catch (err) {
          problems.push(String(err));
        }
        if (live) {
          const hangup = await bye(client, live.sent, live.answer);
          if (hangup?.status !== 200) problems.push(`the live call's BYE got ${String(hangup?.status)}`);
          clearInterval(live.speaking);
          await live.leg.close();
        }
        const sessions = await harness.sessionsDrained();
        if (sessions !== 0) problems.push(`${sessions} rtpengine sessions left`);
        const lines = await pollUntil(() => harness.limiter.active('fuzz'), (n) => n === 0);
        if (lines !== 0) problems.push(`${lines} lines still held`);
        const calls = await pollUntil(() => harness.gateway.activeCalls, (n) => n === 0);
        if (calls !== 0) problems.push(`${calls} calls still running`);
        client.close();
        sink.close();
        await harness.stop();
        await providers.close();
        restore();
        if (problems.length > 0) throw new Error(`sip-invite: ${problems.join('; ')}`);
      },
    };
  },
};
