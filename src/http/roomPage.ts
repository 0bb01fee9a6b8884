import websocket from '@fastify/websocket';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isCallgateError } from '../errors.js';
import type { RoomStore } from '../tenants/RoomStore.js';
import { escapeHtml } from '../util/html.js';
import type { RoomSignalling } from '../webrtc/RoomSignalling.js';
import { enforce } from './auth.js';
import { param } from './routes/context.js';
import { setPagePolicy, type ContentSecurityPolicy } from './securityHeaders.js';
import { page, webPhoneBundle } from './webPhone.js';

/**
 * The room page people open (`/r/<roomId>`: name, Join, who is here and speaking, transcript, mute,
 * leave; web-phone/src/room.ts) and its signalling WebSocket (`/v1/rooms/<roomId>/ws`,
 * src/webrtc/RoomSignalling.ts). Public: the room id (131 bits) is the invitation, the PIN when set.
 */
export interface RoomPageOptions {
  /** Page loads and socket opens per `windowMs` for one client IP. */
  readonly perIp: number;
  readonly windowMs: number;
}

export const defaultRoomPageOptions = {
  /** 60 a minute: a page load plus a socket, and reconnects after network changes. */
  perIp: 60,
  windowMs: 60_000,
} as const satisfies RoomPageOptions;

export interface RoomPageDeps {
  readonly store: RoomStore;
  readonly tenants: { get(id: string): Promise<{ readonly displayName: string }> };
  /** Absent: this gateway holds no room audio; the page is served, joins are refused. */
  readonly signalling: RoomSignalling | undefined;
}

/** The page's policy: its script and styles from here, its socket to this host. Framable by any site (a room embedded in a website). */
function roomPolicy(request: FastifyRequest): ContentSecurityPolicy {
  const ws = `${request.protocol === 'https' ? 'wss' : 'ws'}://${request.host}`;
  return {
    'default-src': ["'none'"],
    'script-src': ["'self'"],
    'style-src': ["'self'"],
    'connect-src': ["'self'", ws],
    'base-uri': ["'none'"],
    'form-action': ["'none'"],
    'frame-ancestors': ['*'],
  };
}

function roomBody(roomId: string, title: string, business: string, hasPin: boolean): string {
  const pin = hasPin ? '<label for="pin">Room PIN</label> <input id="pin" name="pin" inputmode="numeric" autocomplete="off" maxlength="8" pattern="[0-9]{4,8}" required>' : '';
  return `<body data-room="${escapeHtml(roomId)}" data-state="lobby">
<main>
<h1>${escapeHtml(title)}</h1>
<p class="sub">A conversation hosted by ${escapeHtml(business)}. Join from your browser.</p>
<form id="join-form" class="controls">
<label for="name">Your name</label> <input id="name" name="name" autocomplete="name" maxlength="60" required>
${pin}
<button id="join" type="submit">Join</button>
</form>
<div class="controls">
<button id="mute" type="button" aria-pressed="false" disabled>Mute</button>
<button id="leave" type="button" disabled>Leave</button>
</div>
<div class="meta"><p id="status" role="status" aria-live="polite">Not joined yet</p></div>
<p id="hint" class="hint">Type your name, press Join and allow the microphone when your browser asks.</p>
<div class="levels"><label for="mic-level">Your microphone</label> <meter id="mic-level" min="0" max="1" value="0"></meter></div>
<p id="error" role="alert" hidden></p>
<h2>In the room</h2>
<ul id="participants" aria-live="polite" aria-label="Participants"></ul>
<h2>Transcript</h2>
<ol id="transcript" aria-live="polite" aria-label="Transcript"></ol>
<audio id="remote" autoplay></audio>
</main>
<script src="/web-phone/room.js" defer></script>
</body>`;
}

function sorry(reply: FastifyReply, status: number, message: string): FastifyReply {
  return setPagePolicy(reply, { 'default-src': ["'none'"], 'style-src': ["'self'"], 'base-uri': ["'none'"], 'form-action': ["'none'"], 'frame-ancestors': ['*'] })
    .code(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(page('Room', `<body><main><h1>Sorry</h1><p>${escapeHtml(message)}</p></main></body>`));
}

export async function roomPageRoutes(app: FastifyInstance, deps: RoomPageDeps, options: Partial<RoomPageOptions> = {}): Promise<void> {
  const o: RoomPageOptions = { ...defaultRoomPageOptions, ...options };
  const perIp = app.createRateLimit({ max: o.perIp, timeWindow: o.windowMs, keyGenerator: (req) => `room:${req.ip}` });
  // 64 KiB: an offer is 2–6 KB; anything far larger is not signalling.
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });

  app.get('/r/:roomId', {
    config: { access: 'public' },
    schema: { hide: true },
    onRequest: (request, reply) => enforce(perIp, request, reply),
    handler: async (request, reply) => {
      const roomId = param(request, 'roomId');
      try {
        const room = await deps.store.joinable(roomId);
        const tenant = await deps.tenants.get(room.tenantId);
        const title = room.name ?? `${tenant.displayName} room`;
        return await setPagePolicy(reply, roomPolicy(request))
          .type('text/html; charset=utf-8')
          .header('cache-control', 'no-store')
          .send(page(title, roomBody(room.roomId, title, tenant.displayName, room.pin !== undefined)));
      } catch (err) {
        if (isCallgateError(err) && (err.code === 'CG_ROOM_NOT_FOUND' || err.code === 'CG_TENANT_NOT_FOUND')) return sorry(reply, 404, 'There is no room at this address.');
        if (isCallgateError(err) && err.code === 'CG_ROOM_EXPIRED') return sorry(reply, 410, 'This room has ended.');
        throw err;
      }
    },
  });
  app.get('/web-phone/room.js', {
    config: { access: 'public' },
    schema: { hide: true },
    handler: async (_request, reply) => reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send((await webPhoneBundle()).room),
  });
  app.get(
    '/v1/rooms/:roomId/ws',
    { websocket: true, config: { access: 'public' }, schema: { hide: true }, onRequest: (request, reply) => enforce(perIp, request, reply) },
    (socket, request) => {
      const roomId = param(request, 'roomId');
      if (!deps.signalling) {
        socket.send(JSON.stringify({ type: 'error', code: 'CG_ROOM_ELSEWHERE', message: 'this gateway holds no rooms' }));
        socket.close(1011, 'no rooms here');
        return;
      }
      const session = deps.signalling.connect(roomId, { send: (text) => socket.send(text), close: (code, reason) => socket.close(code, reason) });
      socket.on('message', (data, isBinary) => {
        if (isBinary) return;
        session.message(data.toString());
      });
      socket.on('close', () => session.closed());
      socket.on('error', () => undefined);
    },
  );
}
