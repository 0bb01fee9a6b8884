/**
 * A browser phone built with JsSIP, as a third party would write one, for tests/sip/jssip.test.ts:
 * bundled by esbuild into a test page. `dial(ws, target, token)` places a call over SIP-over-WebSocket
 * with the call token in X-Call-Token; the agent's audio plays and is measured by an analyser.
 */
import JsSIP from 'jssip';

let level = 0;
let state = 'idle';
let session: { terminate(): void; connection?: RTCPeerConnection } | undefined;

function listen(stream: MediaStream): void {
  const audio = new Audio();
  audio.srcObject = stream;
  void audio.play().catch(() => undefined);
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  ctx.createMediaStreamSource(stream).connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  const tick = (): void => {
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const v of buf) sum += v * v;
    level = Math.sqrt(sum / buf.length);
    requestAnimationFrame(tick);
  };
  tick();
}

(window as unknown as Record<string, unknown>)['phone'] = {
  dial(wsUrl: string, target: string, token: string): void {
    const ua = new JsSIP.UA({ sockets: [new JsSIP.WebSocketInterface(wsUrl)], uri: 'sip:jssip-test@callgate.invalid', register: false });
    ua.on('connected', () => {
      state = 'dialing';
      const s = ua.call(target, {
        extraHeaders: [`X-Call-Token: ${token}`],
        mediaConstraints: { audio: true, video: false },
        pcConfig: { iceServers: [] },
        eventHandlers: {
          peerconnection: (e: { peerconnection: RTCPeerConnection }) => {
            e.peerconnection.addEventListener('track', (t) => listen(t.streams[0] ?? new MediaStream([t.track])));
          },
          confirmed: () => (state = 'in-call'),
          failed: (e: { cause: string }) => (state = `failed: ${e.cause}`),
          ended: () => (state = 'ended'),
        },
      });
      session = s as unknown as typeof session;
    });
    ua.start();
  },
  hangup(): void {
    session?.terminate();
  },
  level: () => level,
  state: () => state,
};
