/**
 * The web phone: the page a call URL (/c/<slug>) opens. Direct mode: a call token at Call, the
 * microphone, an RTCPeerConnection whose offer (ICE gathered) goes to POST /v1/webrtc/offer; the
 * gateway's answer connects it. The agent's voice plays in an <audio> element; what both sides say
 * arrives on the "events" data channel. SIP mode (the page carries data-sip-ws): SIP.js sends an INVITE
 * over WebSocket to drachtio with the token in X-Call-Token, and media goes through rtpengine; there is
 * no data channel there, so no live transcript. Bundled by esbuild (src/http/webPhone.ts) at start.
 */
import { Inviter, SessionState, UserAgent, type SessionDescriptionHandler } from 'sip.js';

type State = 'idle' | 'connecting' | 'in-call' | 'ended';
type PhoneEvent = { type: 'transcript'; role: 'agent' | 'caller'; turn: number; text: string; final: boolean } | { type: 'ended'; reason: string };

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const slug = document.body.dataset['slug'] ?? '';
const sipWs = document.body.dataset['sipWs'];
const sipTarget = document.body.dataset['sipTarget'];
const ui = {
  call: $<HTMLButtonElement>('call'),
  hangup: $<HTMLButtonElement>('hangup'),
  mute: $<HTMLButtonElement>('mute'),
  status: $<HTMLParagraphElement>('status'),
  error: $<HTMLParagraphElement>('error'),
  timer: $<HTMLSpanElement>('timer'),
  level: $<HTMLMeterElement>('level'),
  transcript: $<HTMLOListElement>('transcript'),
  audio: $<HTMLAudioElement>('remote'),
  keypad: $<HTMLDivElement>('keypad'),
  showKeypad: $<HTMLButtonElement>('show-keypad'),
  hint: $<HTMLParagraphElement>('hint'),
  micLevel: $<HTMLMeterElement>('mic-level'),
};
const agentName = document.body.dataset['agent'] ?? 'The agent';

let pc: RTCPeerConnection | undefined;
let mic: MediaStream | undefined;
let channel: RTCDataChannel | undefined;
let timer: number | undefined;
let meterFrame: number | undefined;
let remoteLevel = 0;
let audioCtx: AudioContext | undefined;
let meterSource: MediaStreamAudioSourceNode | undefined;
let ua: UserAgent | undefined;
let inviter: Inviter | undefined;

const STATUS: Record<State, string> = { idle: 'Ready', connecting: 'Connecting…', 'in-call': 'In call', ended: 'Call ended' };

/** What the line under the status says in each state: what to do next, or what just happened. */
const HINT: Record<State, string> = {
  idle: 'Press Call and allow the microphone when your browser asks.',
  connecting: 'Connecting… If your browser asks for the microphone, choose Allow.',
  'in-call': `Speak as on a phone; you can interrupt ${agentName} at any time.`,
  ended: 'Press Call to call again.',
};

function setState(state: State, hint: string = HINT[state]): void {
  document.body.dataset['state'] = state;
  ui.status.textContent = STATUS[state];
  ui.hint.textContent = hint;
  ui.call.disabled = state === 'connecting' || state === 'in-call';
  ui.hangup.disabled = !(state === 'connecting' || state === 'in-call');
  ui.mute.disabled = state !== 'in-call';
  for (const b of ui.keypad.querySelectorAll('button')) b.disabled = state !== 'in-call';
  if (state !== 'in-call') document.body.dataset['speaking'] = 'false';
}

/** Why a call ended, in the caller's words (the gateway's end reasons, src/agent/events.ts). */
const ENDED: Record<string, string> = {
  'caller-hangup': 'You hung up.',
  'agent-goodbye': `${agentName} ended the call.`,
  'no-input': `${agentName} ended the call after hearing nothing for a while. Check that your microphone is on and not muted.`,
  'max-duration': 'The call reached its time limit.',
  'provider-failure': `${agentName} could not continue because of a problem on our side. Please try again in a minute.`,
  shutdown: 'The service is restarting. Please call again in a minute.',
  'media-timeout': 'The call stopped receiving your audio (the network may have dropped).',
  closed: 'The call was closed.',
};
let endedWhy: string | undefined;

function showError(message: string): void {
  ui.error.textContent = message;
  ui.error.hidden = false;
}

/** Plain-language messages for what the gateway refuses (codes from docs/errors.md). */
function explain(code: string | undefined): string {
  if (code === 'CG_CALL_LIMIT_REACHED') return 'All lines are busy right now. Please try again in a minute.';
  if (code?.startsWith('CG_CALL_URL_')) return 'This call link can no longer be used.';
  if (code === 'CG_HTTP_RATE_LIMITED') return 'Too many attempts. Please wait a moment and try again.';
  return 'The call could not be connected. Please try again.';
}

/**
 * In a call button's frame (web-phone/src/widget.ts), the site around the phone: the gateway checks it
 * against the call URL's allowed origins, since this page's own requests carry the gateway's origin.
 * ancestorOrigins is filled by the browser; where it is missing (Firefox), the referrer's origin.
 */
function embedderOrigin(): string | undefined {
  if (window.parent === window) return undefined;
  const ancestors = (location as Location & { ancestorOrigins?: DOMStringList }).ancestorOrigins;
  if (ancestors && ancestors.length > 0) return ancestors[0] ?? undefined;
  try {
    return document.referrer ? new URL(document.referrer).origin : undefined;
  } catch {
    return undefined;
  }
}
const embedder = embedderOrigin();
if (embedder) document.body.classList.add('embedded');

async function post(url: string, body?: unknown): Promise<Record<string, unknown>> {
  let res: Response;
  const headers: Record<string, string> = embedder ? { 'x-callgate-embedder': embedder } : {};
  try {
    res = await fetch(url, body === undefined ? { method: 'POST', headers } : { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  } catch {
    throw new Error('The network is unreachable. Check your connection and try again.');
  }
  const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) throw new Error(explain(typeof json['code'] === 'string' ? json['code'] : undefined));
  return json;
}

/**
 * One line per turn and side. The agent's words arrive a sentence at a time and join their line; the
 * caller's arrive as interim guesses (shown greyed) and then the final words, which replace them. A
 * turn whose final words are empty (a cough, a noise) leaves no line.
 */
function transcriptLine(role: 'agent' | 'caller', turn: number): HTMLLIElement | undefined {
  for (const li of ui.transcript.querySelectorAll<HTMLLIElement>(`li.${role}`)) if (li.dataset['turn'] === String(turn)) return li;
  return undefined;
}

function showWords(role: 'agent' | 'caller', turn: number, text: string, final: boolean): void {
  const words = text.trim();
  let li = transcriptLine(role, turn);
  if (!words) {
    if (role === 'caller' && final) li?.remove();
    return;
  }
  const who = role === 'agent' ? 'Agent' : 'You';
  if (!li) {
    li = document.createElement('li');
    li.className = role;
    li.dataset['turn'] = String(turn);
    li.dataset['text'] = '';
    ui.transcript.append(li);
  }
  if (role === 'agent') li.dataset['text'] = `${li.dataset['text'] ?? ''} ${words}`.trim();
  else li.dataset['text'] = words;
  li.textContent = `${who}: ${li.dataset['text']}`;
  li.classList.toggle('interim', role === 'caller' && !final);
  li.scrollIntoView({ block: 'nearest' });
}

function onEvent(e: PhoneEvent): void {
  if (e.type === 'transcript') showWords(e.role, e.turn, e.text, e.final);
  if (e.type === 'ended') {
    endedWhy = ENDED[e.reason];
    void hangup('ended');
  }
}

function gathered(conn: RTCPeerConnection): Promise<void> {
  if (conn.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      if (conn.iceGatheringState === 'complete') resolve();
    };
    conn.addEventListener('icegatheringstatechange', done);
    // Do not wait forever for a candidate type that never comes (a STUN/TURN server out of reach):
    // host candidates arrive at once, a reachable relay's within a round trip.
    setTimeout(resolve, 2000);
  });
}

/**
 * One AudioContext for the page, made as the page loads and resumed at Call. A browser's first
 * AudioContext blocked the page for ~250 ms here as it was made; made at Call (or when the agent's
 * track arrived), that was 250 ms more before the first call heard its greeting. Made before any click,
 * autoplay rules keep it suspended: the Call click (a user activation) resumes it. Calls reuse it (a
 * context per call would pile up until the page closes).
 */
function startAudio(): AudioContext {
  audioCtx ??= new AudioContext();
  if (audioCtx.state === 'suspended') void audioCtx.resume().catch(() => undefined);
  return audioCtx;
}

/** The agent's level above which the page shows it speaking (the tests' "heard" is 0.01). */
const SPEAKING_LEVEL = 0.01;
let lastVoiceAt = -Infinity;
let micAnalyser: AnalyserNode | undefined;
let micSource: MediaStreamAudioSourceNode | undefined;
const micBuf = new Float32Array(1024);
/** The loudest the caller's microphone has been this call (read by tests). */
let micPeak = 0;

/** The caller's own level in the "Your microphone" meter: proof the page hears them. Read with the agent's, once per frame. */
function watchMic(stream: MediaStream): void {
  const ctx = startAudio();
  micSource?.disconnect();
  micAnalyser = ctx.createAnalyser();
  micAnalyser.fftSize = micBuf.length;
  micSource = ctx.createMediaStreamSource(stream);
  micSource.connect(micAnalyser);
}

/** An analyser's level now: the RMS of its latest window, 0–1. */
function levelOf(analyser: AnalyserNode, buf: Float32Array<ArrayBuffer>): number {
  analyser.getFloatTimeDomainData(buf);
  let sum = 0;
  for (const v of buf) sum += v * v;
  return Math.sqrt(sum / buf.length);
}

/** Level of the agent's voice (0–1) from a WebAudio analyser, shown in the meter and read by tests. */
function watchLevel(stream: MediaStream): void {
  const ctx = startAudio();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  meterSource?.disconnect();
  meterSource = ctx.createMediaStreamSource(stream);
  meterSource.connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  const tick = (): void => {
    remoteLevel = levelOf(analyser, buf);
    ui.level.value = Math.min(1, remoteLevel * 4);
    // Speaking while the voice is above a whisper, and for 300 ms after (gaps between words).
    const now = performance.now();
    if (remoteLevel > SPEAKING_LEVEL) lastVoiceAt = now;
    const speaking = now - lastVoiceAt < 300 ? 'true' : 'false';
    if (document.body.dataset['speaking'] !== speaking) document.body.dataset['speaking'] = speaking;
    if (micAnalyser) {
      const level = levelOf(micAnalyser, micBuf);
      micPeak = Math.max(micPeak, level);
      ui.micLevel.value = Math.min(1, level * 4);
    }
    meterFrame = requestAnimationFrame(tick);
  };
  tick();
}

function startTimer(): void {
  const start = Date.now();
  timer = window.setInterval(() => {
    const s = Math.floor((Date.now() - start) / 1000);
    ui.timer.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  }, 250);
}

/** SIP mode: the same call through drachtio and rtpengine, placed by SIP.js over WebSocket. */
async function callOverSip(token: string, iceServers: RTCIceServer[]): Promise<void> {
  const agent = (ua = new UserAgent({
    uri: UserAgent.makeURI(`sip:web-${Math.random().toString(36).slice(2, 10)}@callgate.invalid`),
    transportOptions: { server: sipWs },
    logLevel: 'error',
    sessionDescriptionHandlerFactoryOptions: { peerConnectionConfiguration: { iceServers } },
  }));
  try {
    await agent.start();
  } catch {
    throw new Error('The network is unreachable. Check your connection and try again.');
  }
  const target = UserAgent.makeURI(sipTarget ?? '');
  if (!target) throw new Error('The call could not be connected. Please try again.');
  const session = (inviter = new Inviter(agent, target, {
    extraHeaders: [`X-Call-Token: ${token}`],
    sessionDescriptionHandlerOptions: { constraints: { audio: true, video: false } },
  }));
  session.stateChange.addListener((state) => {
    if (state === SessionState.Established) {
      const sdh = session.sessionDescriptionHandler as (SessionDescriptionHandler & { peerConnection?: RTCPeerConnection }) | undefined;
      pc = sdh?.peerConnection;
      const tracks = pc?.getReceivers().map((r) => r.track).filter((t) => t.kind === 'audio') ?? [];
      const stream = new MediaStream(tracks);
      ui.audio.srcObject = stream;
      void ui.audio.play().catch(() => undefined);
      watchLevel(stream);
      setState('in-call');
      startTimer();
    } else if (state === SessionState.Terminated && document.body.dataset['state'] !== 'ended') {
      void hangup('ended');
    }
  });
  await session.invite({
    requestDelegate: {
      onReject: (res) => showError(res.message.statusCode === 486 ? explain('CG_CALL_LIMIT_REACHED') : explain(undefined)),
    },
  });
}

/**
 * The call token is fetched when the page loads (so a link that cannot be used says so before anyone
 * clicks) and again at Call when it was used or is about to expire: tokens are single use and short-lived.
 * Its answer carries this page's ICE servers (STUN/TURN, with a TURN credential of its own that lasts
 * an hour by default), which the peer connections use.
 */
interface Issued {
  readonly token: string;
  readonly expiresAt: string;
  readonly iceServers: RTCIceServer[];
}
let tokenAhead: Promise<Issued> | undefined;

async function fetchToken(): Promise<Issued> {
  const answer = await post(`/v1/call-urls/${encodeURIComponent(slug)}/token`);
  return { token: String(answer['token']), expiresAt: String(answer['expiresAt']), iceServers: Array.isArray(answer['iceServers']) ? (answer['iceServers'] as RTCIceServer[]) : [] };
}

async function takeToken(): Promise<Issued> {
  const ahead = tokenAhead;
  tokenAhead = undefined;
  const fresh = ahead ? await ahead.catch(() => undefined) : undefined;
  if (fresh && Date.parse(fresh.expiresAt) - Date.now() > 10_000) return fresh;
  return fetchToken();
}

/**
 * The next call's connection, made while the caller reads the page: the peer connection with its audio
 * transceiver and events channel, its offer, and its ICE candidates gathered. Made at Call, that was
 * ~75 ms for the offer and ~130 ms of gathering (Chromium, loopback) before the offer could leave;
 * made ahead, Call sends it at once. A prepared connection older than PREPARED_MAX_AGE_MS is made
 * again at Call: its candidates name the network the page was on then, and a laptop may have moved.
 * It waits for the page's first token answer, which names its ICE servers: with a TURN server, its relay
 * candidate is gathered ahead too (one allocation held per open page, at most PREPARED_MAX_AGE_MS; the
 * credential outlives that), so the offer still leaves complete at Call, with no trickle ICE.
 */
interface Prepared {
  readonly conn: RTCPeerConnection;
  readonly sender: RTCRtpSender;
  readonly outgoing: MediaStream;
  readonly channel: RTCDataChannel;
  /** The offer set and its candidates gathered. */
  readonly ready: Promise<void>;
  readonly at: number;
}
const PREPARED_MAX_AGE_MS = 5 * 60_000;
let prepared: Prepared | undefined;

function prepare(iceServers: RTCIceServer[]): Prepared {
  const conn = new RTCPeerConnection({ iceServers });
  const outgoing = new MediaStream();
  const { sender } = conn.addTransceiver('audio', { direction: 'sendrecv', streams: [outgoing] });
  const events = conn.createDataChannel('events');
  const ready = (async () => {
    await conn.setLocalDescription(await conn.createOffer());
    mark('offer');
    await gathered(conn);
  })();
  // A failure here shows at Call, where `ready` is awaited.
  ready.catch(() => undefined);
  return { conn, sender, outgoing, channel: events, ready, at: Date.now() };
}

function takePrepared(iceServers: RTCIceServer[]): Prepared {
  const p = prepared;
  prepared = undefined;
  if (p && Date.now() - p.at < PREPARED_MAX_AGE_MS && p.conn.signalingState === 'have-local-offer') return p;
  p?.conn.close();
  return prepare(iceServers);
}

/** The ICE servers of the page's latest token answer (none before the first, or when it failed). */
let lastIceServers: RTCIceServer[] = [];

/**
 * After the page has painted (and after a call), so the next Call finds its connection ready; once the
 * token asked for at load has answered, so the connection has the page's ICE servers. After a call
 * (no token ahead) the last answer's servers serve: their credential outlives the prepared connection.
 */
function prepareSoon(): void {
  if (sipWs) return;
  const ahead = tokenAhead;
  setTimeout(() => {
    void (ahead ?? Promise.resolve(undefined))
      .then((issued) => issued?.iceServers ?? lastIceServers, () => lastIceServers)
      .then((servers) => {
        prepared ??= prepare(servers);
      });
  }, 0);
}

/** Counts calls and hang-ups, so what finishes opening after a hang-up knows it is too late. */
let calls = 0;

/**
 * Marks on the page's performance timeline (`performance.getEntriesByType('mark')`) at each step of a
 * call's setup: how long the first sound took, and where, is readable in any browser's devtools and by
 * bench:webphone. Cleared at each Call.
 */
const MARKS = ['click', 'token', 'offer', 'gathered', 'answer', 'connected', 'track', 'mic'] as const;
function mark(name: (typeof MARKS)[number]): void {
  performance.mark(`callgate:${name}`);
}

async function call(): Promise<void> {
  calls += 1;
  for (const m of MARKS) performance.clearMarks(`callgate:${m}`);
  mark('click');
  micPeak = 0;
  startAudio();
  let micReady: Promise<MediaStream | undefined> | undefined;
  ui.error.hidden = true;
  ui.transcript.replaceChildren();
  setState('connecting');
  try {
    const { token, iceServers } = await takeToken();
    lastIceServers = iceServers;
    mark('token');
    if (sipWs) {
      await callOverSip(token, iceServers);
      return;
    }
    // The microphone opens while the offer is made, gathered and answered, not before: a browser's
    // first microphone of a session took 260–320 ms to open here (40 ms afterwards), and the greeting
    // needs none of it. The audio transceiver is in the offer from the start; the track joins it
    // (replaceTrack, no renegotiation) once the microphone is open.
    micReady = openMic(calls);
    // A microphone this page may not use is refused at once: then no call is placed at all.
    let micRefused: unknown;
    micReady.catch((err: unknown) => (micRefused = err));
    const { conn, sender, outgoing, channel: events, ready } = takePrepared(iceServers);
    pc = conn;
    channel = events;
    channel.onmessage = (m) => onEvent(JSON.parse(String(m.data)) as PhoneEvent);
    conn.ontrack = (e) => {
      mark('track');
      const stream = e.streams[0] ?? new MediaStream([e.track]);
      ui.audio.srcObject = stream;
      void ui.audio.play().catch(() => undefined);
      watchLevel(stream);
    };
    conn.onconnectionstatechange = () => {
      if (conn.connectionState === 'connected') {
        mark('connected');
        setState('in-call');
        startTimer();
      } else if (conn.connectionState === 'failed' || conn.connectionState === 'disconnected') {
        // Failed before it ever connected: the media path is blocked (a firewall, a VPN), not dropped.
        showError(
          document.body.dataset['state'] === 'connecting'
            ? 'Your browser could not reach the call’s audio. A firewall or VPN may be blocking it: try another network.'
            : 'The connection was lost. Check your network and call again.',
        );
        void hangup('ended');
      }
    };
    await ready;
    mark('gathered');
    // A microphone this page may already use opens during the call's setup. Otherwise the browser is
    // asking the caller (or has been told no): the call waits for that answer, so a refusal places no
    // call at all.
    if ((await micPermission()) !== 'granted') await micReady;
    if (micRefused) throw micRefused;
    const answer = (await post('/v1/webrtc/offer', { token, sdp: conn.localDescription?.sdp })) as { sdp: string };
    await conn.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    mark('answer');
    const opened = await micReady;
    mark('mic');
    if (!opened) return; // hung up meanwhile
    mic = opened;
    watchMic(opened);
    const [track] = opened.getAudioTracks();
    if (track) {
      track.enabled = ui.mute.getAttribute('aria-pressed') !== 'true';
      outgoing.addTrack(track);
      await sender.replaceTrack(track);
    }
  } catch (err) {
    // A microphone that opened before the call failed (lines busy, network) was never handed to the
    // call, so hangup() does not know it: close it, or the browser keeps recording.
    void micReady?.then((s) => s?.getTracks().forEach((t) => t.stop()), () => undefined);
    showError(err instanceof Error ? err.message : String(err));
    await hangup('ended');
  }
}

/** The page's microphone permission as the browser keeps it; 'prompt' where it cannot say. */
async function micPermission(): Promise<PermissionState> {
  try {
    return (await navigator.permissions.query({ name: 'microphone' as PermissionName })).state;
  } catch {
    return 'prompt';
  }
}

/**
 * The caller's microphone, with the browser's echo cancelling (the agent plays through the speaker).
 * Undefined, and closed again at once, when call `n` was hung up while it opened.
 */
async function openMic(n: number): Promise<MediaStream | undefined> {
  let stream: MediaStream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
  } catch (err) {
    const name = err instanceof DOMException ? err.name : '';
    if (name === 'NotFoundError' || name === 'OverconstrainedError') throw new Error('No microphone was found. Plug one in (or choose one in your browser’s settings) and try again.');
    if (name === 'NotReadableError') throw new Error('Your microphone is in use by another program. Close it there and try again.');
    throw new Error('The microphone is blocked. Allow microphone access for this page (the icon in the address bar) and try again.');
  }
  if (n === calls) return stream;
  for (const t of stream.getTracks()) t.stop();
  return undefined;
}

async function hangup(next: State): Promise<void> {
  calls += 1;
  if (timer !== undefined) clearInterval(timer);
  if (meterFrame !== undefined) cancelAnimationFrame(meterFrame);
  timer = meterFrame = undefined;
  meterSource?.disconnect();
  meterSource = undefined;
  micSource?.disconnect();
  micSource = micAnalyser = undefined;
  ui.micLevel.value = 0;
  channel?.close();
  if (inviter) {
    // SIP mode: a BYE once established, a CANCEL while ringing; SIP.js owns the peer connection.
    const session = inviter;
    inviter = undefined;
    if (session.state === SessionState.Established) await session.bye().catch(() => undefined);
    else if (session.state === SessionState.Establishing || session.state === SessionState.Initial) await session.cancel().catch(() => undefined);
    await ua?.stop().catch(() => undefined);
    ua = undefined;
  } else pc?.close();
  for (const t of mic?.getTracks() ?? []) t.stop();
  pc = mic = channel = undefined;
  remoteLevel = 0;
  ui.level.value = 0;
  setState(next, next === 'ended' ? `${endedWhy ?? 'The call has ended.'} Press Call to call again.` : undefined);
  endedWhy = undefined;
  prepareSoon();
}

ui.call.addEventListener('click', () => void call());
ui.hangup.addEventListener('click', () => {
  endedWhy = ENDED['caller-hangup'];
  void hangup('ended');
});
ui.showKeypad.addEventListener('click', () => {
  const show = ui.keypad.hidden;
  ui.keypad.hidden = !show;
  ui.showKeypad.setAttribute('aria-expanded', String(show));
  ui.showKeypad.textContent = show ? 'Hide keypad' : 'Keypad';
});
ui.mute.addEventListener('click', () => {
  const muted = ui.mute.getAttribute('aria-pressed') !== 'true';
  for (const t of mic?.getAudioTracks() ?? []) t.enabled = !muted;
  ui.mute.setAttribute('aria-pressed', String(muted));
  ui.mute.textContent = muted ? 'Unmute' : 'Mute';
});
ui.keypad.addEventListener('click', (e) => {
  const key = (e.target as HTMLElement).closest('button')?.dataset['key'];
  if (key && channel?.readyState === 'open') channel.send(JSON.stringify({ type: 'dtmf', digit: key }));
});

/** For tests and support: what the page sees of the call. */
(window as unknown as { callgate: unknown }).callgate = {
  level: () => remoteLevel,
  micPeak: () => micPeak,
  /** The browser's own measure of what it played: inbound-rtp totalAudioEnergy (sum of level² × seconds). */
  energy: async (): Promise<number> => {
    let energy = 0;
    (await pc?.getStats())?.forEach((r: { type: string; kind?: string; totalAudioEnergy?: number }) => {
      if (r.type === 'inbound-rtp' && r.kind === 'audio') energy += r.totalAudioEnergy ?? 0;
    });
    return energy;
  },
  audioState: (): string => audioCtx?.state ?? 'none',
  connection: (): string => pc?.connectionState ?? 'none',
  inboundBytes: async (): Promise<number> => {
    let bytes = 0;
    (await pc?.getStats())?.forEach((r: { type: string; kind?: string; bytesReceived?: number }) => {
      if (r.type === 'inbound-rtp' && r.kind === 'audio') bytes += r.bytesReceived ?? 0;
    });
    return bytes;
  },
};

setState('idle');
tokenAhead = fetchToken();
tokenAhead.then((issued) => (lastIceServers = issued.iceServers), () => undefined);
// After the page has painted, so the page shows before the context's start-up blocks it.
setTimeout(() => (audioCtx ??= new AudioContext()), 0);
prepareSoon();
tokenAhead.catch((err: unknown) => {
  ui.call.disabled = true;
  showError(err instanceof Error ? err.message : String(err));
});
