/**
 * The room page (/r/<roomId>): a name, Join, and the room's conversation. Signalling is one WebSocket
 * (/v1/rooms/<roomId>/ws): join, our offer and the gateway's answer, ICE candidates trickled both ways
 * (relay candidates from a TURN server included), mute, leave, and the room's events. The gateway mixes
 * everyone else for us (mix-minus), so one audio track plays the whole room. A dropped socket is
 * reopened and the page resumes as the same participant (within 30 s); media that still flows is kept.
 */
type Participant = { participantId: string; name: string; kind: 'person' | 'agent'; door: string; speaking: boolean; muted: boolean };
type ServerMessage =
  | { type: 'joined'; participantId: string; resumeToken: string; resumed: boolean; iceServers: RTCIceServer[]; participants: Participant[] }
  | { type: 'answer'; sdp: string }
  | { type: 'candidate'; candidate: string; mid: string }
  | { type: 'participants'; participants: Participant[] }
  | { type: 'speaking'; participantId: string; speaking: boolean }
  | { type: 'transcript'; participantId: string; name: string; kind: 'person' | 'agent'; text: string; final: boolean }
  | { type: 'error'; code: string; message: string; hint?: string; url?: string }
  | { type: 'ended'; reason: string };
type State = 'lobby' | 'joining' | 'in-room' | 'reconnecting' | 'left';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const roomId = document.body.dataset['room'] ?? '';
const ui = {
  form: $<HTMLFormElement>('join-form'),
  name: $<HTMLInputElement>('name'),
  pin: document.getElementById('pin') as HTMLInputElement | null,
  join: $<HTMLButtonElement>('join'),
  mute: $<HTMLButtonElement>('mute'),
  leave: $<HTMLButtonElement>('leave'),
  status: $<HTMLParagraphElement>('status'),
  hint: $<HTMLParagraphElement>('hint'),
  error: $<HTMLParagraphElement>('error'),
  micLevel: $<HTMLMeterElement>('mic-level'),
  participants: $<HTMLUListElement>('participants'),
  transcript: $<HTMLOListElement>('transcript'),
  audio: $<HTMLAudioElement>('remote'),
};

/** Gives up reconnecting after this long: the gateway has let the participant go by then. */
const RESUME_MS = 30_000;
const REASONS: Record<string, string> = {
  removed: 'You were removed from the room.',
  'room-deleted': 'The room was closed by its owner.',
  shutdown: 'The server is restarting. Please join again in a moment.',
  left: 'You left the room.',
  gone: 'You were disconnected for too long.',
};

let state: State = 'lobby';
let ws: WebSocket | undefined;
let pc: RTCPeerConnection | undefined;
let mic: MediaStream | undefined;
let me: { participantId: string; resumeToken: string } | undefined;
let people = new Map<string, Participant>();
let lostAt = 0;
let audioCtx: AudioContext | undefined;
let remoteAnalyser: AnalyserNode | undefined;
const interim = new Map<string, HTMLLIElement>();

function setState(next: State, status: string, hint?: string): void {
  state = next;
  document.body.dataset['state'] = next;
  ui.status.textContent = status;
  if (hint !== undefined) ui.hint.textContent = hint;
  const inRoom = next === 'in-room' || next === 'reconnecting';
  ui.mute.disabled = !inRoom;
  ui.leave.disabled = !inRoom;
  ui.join.disabled = next !== 'lobby' && next !== 'left';
  ui.name.disabled = inRoom || next === 'joining';
}

function showError(text: string | undefined): void {
  ui.error.hidden = text === undefined;
  ui.error.textContent = text ?? '';
}

function send(m: Record<string, unknown>): void {
  if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m));
}

function socketUrl(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/rooms/${encodeURIComponent(roomId)}/ws`;
}

function openSocket(first: Record<string, unknown>): void {
  const socket = new WebSocket(socketUrl());
  ws = socket;
  socket.onopen = () => socket.send(JSON.stringify(first));
  socket.onmessage = (e) => {
    if (typeof e.data !== 'string') return;
    try {
      void onMessage(JSON.parse(e.data) as ServerMessage);
    } catch {
      // A message we cannot read is skipped; the next ones still count.
    }
  };
  socket.onclose = () => {
    if (ws !== socket) return;
    ws = undefined;
    if (state === 'in-room' || state === 'reconnecting') reconnect();
    else if (state === 'joining') {
      setState('lobby', 'Could not join', 'Check your connection and press Join again.');
    }
  };
}

/** The socket dropped: come back as the same participant while the gateway still holds our place. */
function reconnect(): void {
  if (!me) return;
  if (state !== 'reconnecting') lostAt = Date.now();
  if (Date.now() - lostAt > RESUME_MS) return end('gone');
  setState('reconnecting', 'Reconnecting…', 'Your connection dropped; getting you back into the room.');
  const delay = Math.min(4000, 250 * 2 ** Math.floor((Date.now() - lostAt) / 2000));
  setTimeout(() => {
    if (state === 'reconnecting' && me) openSocket({ type: 'resume', participantId: me.participantId, resumeToken: me.resumeToken });
  }, delay);
}

async function onMessage(m: ServerMessage): Promise<void> {
  switch (m.type) {
    case 'joined': {
      me = { participantId: m.participantId, resumeToken: m.resumeToken };
      renderParticipants(m.participants);
      setState('in-room', 'In the room', 'Talk as you would in a meeting. Address an assistant by its name.');
      // Media that still flows after a reconnect is kept; otherwise (first join, or it broke) a new offer.
      if (!pc || pc.connectionState === 'failed' || pc.connectionState === 'closed') await startMedia(m.iceServers);
      return;
    }
    case 'answer':
      await pc?.setRemoteDescription({ type: 'answer', sdp: m.sdp });
      return;
    case 'candidate':
      if (m.candidate) await pc?.addIceCandidate({ candidate: m.candidate, sdpMid: m.mid }).catch(() => undefined);
      return;
    case 'participants':
      renderParticipants(m.participants);
      return;
    case 'speaking': {
      const p = people.get(m.participantId);
      if (p) p.speaking = m.speaking;
      const li = ui.participants.querySelector<HTMLLIElement>(`li[data-id="${CSS.escape(m.participantId)}"]`);
      if (li) li.dataset['speaking'] = String(m.speaking);
      return;
    }
    case 'transcript':
      addLine(m.participantId, m.name, m.text, m.final);
      return;
    case 'error':
      // The room's audio is on another gateway of this deployment: join there.
      if (m.code === 'CG_ROOM_ELSEWHERE' && m.url && /^https?:\/\//.test(m.url) && new URL(m.url).pathname === location.pathname) {
        location.href = m.url;
        return;
      }
      showError(m.hint ? `${m.message} — ${m.hint}` : m.message);
      if (state === 'joining') {
        setState('lobby', 'Not joined', m.code === 'CG_ROOM_PIN' ? 'Check the PIN and press Join again.' : m.code === 'CG_ROOM_FULL' ? 'The room is full. Try again later.' : 'Press Join to try again.');
        ws?.close();
      } else if (state === 'reconnecting') {
        // The gateway no longer knows us (it restarted, or we were away too long).
        end('gone');
      }
      return;
    case 'ended':
      end(m.reason);
      return;
  }
}

function renderParticipants(list: Participant[]): void {
  people = new Map(list.map((p) => [p.participantId, p]));
  ui.participants.replaceChildren(
    ...list.map((p) => {
      const li = document.createElement('li');
      li.dataset['id'] = p.participantId;
      li.dataset['speaking'] = String(p.speaking);
      li.dataset['kind'] = p.kind;
      const dot = document.createElement('span');
      dot.className = 'dot';
      dot.setAttribute('aria-hidden', 'true');
      const you = p.participantId === me?.participantId ? ' (you)' : '';
      li.append(dot, ` ${p.name}${you}${p.kind === 'agent' ? ' · assistant' : ''}${p.muted ? ' · muted' : ''}`);
      return li;
    }),
  );
}

function addLine(participantId: string, name: string, text: string, final: boolean): void {
  let li = interim.get(participantId);
  if (!li) {
    li = document.createElement('li');
    const who = document.createElement('b');
    who.textContent = `${name}: `;
    li.append(who, document.createElement('span'));
    ui.transcript.append(li);
  }
  li.querySelector('span')!.textContent = text;
  li.classList.toggle('interim', !final);
  if (final) interim.delete(participantId);
  else interim.set(participantId, li);
}

async function startMedia(iceServers: RTCIceServer[]): Promise<void> {
  pc?.close();
  const conn = new RTCPeerConnection({ iceServers });
  pc = conn;
  mic ??= await navigator.mediaDevices.getUserMedia({ audio: true });
  meterMic(mic);
  for (const track of mic.getAudioTracks()) conn.addTrack(track, mic);
  conn.onicecandidate = (e) => send({ type: 'candidate', candidate: e.candidate?.candidate ?? '', mid: e.candidate?.sdpMid ?? '0' });
  conn.ontrack = (e) => {
    const stream = e.streams[0] ?? new MediaStream([e.track]);
    ui.audio.srcObject = stream;
    void ui.audio.play().catch(() => undefined);
    listen(stream);
  };
  conn.onconnectionstatechange = () => {
    if (conn !== pc) return;
    if (conn.connectionState === 'failed') {
      showError('The audio connection failed. Behind a strict firewall the room needs a TURN server; ask the host.');
    }
  };
  const offer = await conn.createOffer();
  await conn.setLocalDescription(offer);
  send({ type: 'offer', sdp: conn.localDescription?.sdp ?? offer.sdp });
}

function ensureAudio(): AudioContext {
  audioCtx ??= new AudioContext();
  void audioCtx.resume();
  return audioCtx;
}

function meterMic(stream: MediaStream): void {
  const ctx = ensureAudio();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  ctx.createMediaStreamSource(stream).connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  const tick = (): void => {
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const v of buf) sum += v * v;
    ui.micLevel.value = Math.min(1, Math.sqrt(sum / buf.length) * 4);
    if (state !== 'left') requestAnimationFrame(tick);
  };
  tick();
}

/** The room's audio through an analyser: the level and the loudness at a frequency (tests read these). */
function listen(stream: MediaStream): void {
  const ctx = ensureAudio();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 4096;
  ctx.createMediaStreamSource(stream).connect(analyser);
  remoteAnalyser = analyser;
}

function end(reason: string): void {
  if (state === 'left') return;
  const socket = ws;
  ws = undefined;
  socket?.close();
  pc?.close();
  pc = undefined;
  for (const t of mic?.getTracks() ?? []) t.stop();
  mic = undefined;
  me = undefined;
  setState('left', 'Left the room', REASONS[reason] ?? 'The conversation ended.');
  ui.join.disabled = false;
  ui.name.disabled = false;
}

ui.form.addEventListener('submit', (e) => {
  e.preventDefault();
  const name = ui.name.value.trim();
  if (!name) return;
  showError(undefined);
  ensureAudio();
  setState('joining', 'Joining…', 'Allow the microphone when your browser asks.');
  openSocket({ type: 'join', name, ...(ui.pin ? { pin: ui.pin.value.trim() } : {}) });
});

ui.mute.addEventListener('click', () => {
  const muted = ui.mute.getAttribute('aria-pressed') !== 'true';
  for (const t of mic?.getAudioTracks() ?? []) t.enabled = !muted;
  ui.mute.setAttribute('aria-pressed', String(muted));
  ui.mute.textContent = muted ? 'Unmute' : 'Mute';
  send({ type: 'mute', muted });
});

ui.leave.addEventListener('click', () => {
  send({ type: 'leave' });
  end('left');
});

addEventListener('pagehide', () => send({ type: 'leave' }));

/** For tests and debugging: the room as this page sees it. */
(globalThis as unknown as { callgateRoom: unknown }).callgateRoom = {
  get state() {
    return state;
  },
  get participantId() {
    return me?.participantId;
  },
  /** Loudness (dB) of the room's audio around `hz` right now. */
  toneDb(hz: number): number {
    if (!remoteAnalyser || !audioCtx) return -Infinity;
    const bins = new Float32Array(remoteAnalyser.frequencyBinCount);
    remoteAnalyser.getFloatFrequencyData(bins);
    const bin = Math.round((hz / audioCtx.sampleRate) * remoteAnalyser.fftSize);
    return Math.max(bins[bin - 1] ?? -Infinity, bins[bin] ?? -Infinity, bins[bin + 1] ?? -Infinity);
  },
  /** The RMS level (0–1) of the room's audio right now. */
  level(): number {
    if (!remoteAnalyser) return 0;
    const buf = new Float32Array(remoteAnalyser.fftSize);
    remoteAnalyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const v of buf) sum += v * v;
    return Math.sqrt(sum / buf.length);
  },
  /** The selected ICE candidate pair's local candidate type (host, srflx, relay). */
  async candidateType(): Promise<string | undefined> {
    const stats = await pc?.getStats();
    if (!stats) return undefined;
    let type: string | undefined;
    stats.forEach((s: { type: string; state?: string; nominated?: boolean; localCandidateId?: string }) => {
      if (s.type === 'candidate-pair' && s.state === 'succeeded' && s.nominated && s.localCandidateId) {
        const local = stats.get(s.localCandidateId) as { candidateType?: string } | undefined;
        type = local?.candidateType ?? type;
      }
    });
    return type;
  },
  /** Drops the signalling socket as a network change would (tests of resume). */
  dropSocket(): void {
    ws?.close();
  },
};
