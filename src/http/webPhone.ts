import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { escapeHtml } from '../util/html.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { build } from 'esbuild';
import { CallgateError, isCallgateError } from '../errors.js';
import { normalizeOrigin } from '../tenants/CallUrlStore.js';
import { stripUndefined } from '../util/options.js';
import { enforce } from './auth.js';
import { param, type RouteContext } from './routes/context.js';
import { setPagePolicy, type ContentSecurityPolicy } from './securityHeaders.js';

/**
 * The web phone a call URL opens: `GET /c/:slug` renders the page with the tenant's and agent's names,
 * `GET /web-phone/app.js` serves the script, bundled from web-phone/src by esbuild once per process
 * (about 20 ms; no build step to forget, nothing generated in the repository), and
 * `GET /web-phone/app.css` its styles (a file rather than an inline <style>, so the page's CSP needs
 * no 'unsafe-inline'), and `GET /widget.js` the call button other websites embed.
 */
const SOURCE_DIR = fileURLToPath(new URL('../../web-phone/src/', import.meta.url));

let bundle: Promise<{ js: string; css: string; widget: string; room: string }> | undefined;

export function webPhoneBundle(): Promise<{ js: string; css: string; widget: string; room: string }> {
  bundle ??= (async () => {
    const compile = async (entry: string): Promise<string> => {
      const out = await build({ entryPoints: [`${SOURCE_DIR}${entry}`], bundle: true, write: false, format: 'iife', target: 'es2020', minify: true, logLevel: 'silent' });
      return out.outputFiles[0]!.text;
    };
    const [js, widget, room, css] = await Promise.all([compile('app.ts'), compile('widget.ts'), compile('room.ts'), readFile(`${SOURCE_DIR}style.css`, 'utf8')]);
    return { js, css, widget, room };
  })();
  return bundle;
}

export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title><link rel="stylesheet" href="/web-phone/app.css"></head>
${body}</html>`;
}

export interface WebPhoneOptions {
  /** SIP mode: where the page's SIP.js connects (drachtio's WS/WSS contact, `ws:`/`wss:`). */
  readonly sipWsUrl: string | undefined;
  /** SIP mode: the domain of the URI the page calls (`sip:<slug>@<domain>`). */
  readonly sipDomain: string;
  /** Page loads (`GET /c/:slug`) per `pageWindowMs` for one client IP, on top of the app-wide per-IP limit. */
  readonly pagesPerIp: number;
  readonly pageWindowMs: number;
}

export const defaultWebPhoneOptions = {
  /** Unset: the page calls through the direct WebRTC door. */
  sipWsUrl: undefined,
  sipDomain: 'callgate.invalid',
  /**
   * 30 a minute per IP, as the call-token route: a caller loads the page once per call, and each load
   * asks that route for a token, so more loads than tokens would buy nothing. 404/403/410/200 tell a
   * prober whether a slug exists; at this rate one address learns one slug every 2 s, as through the
   * token route, instead of 20 a second under the app-wide limit.
   */
  pagesPerIp: 30,
  /** One minute. */
  pageWindowMs: 60_000,
} as const satisfies WebPhoneOptions;

/**
 * Who may frame a page of a call URL: a URL that lists `allowedOrigins` is framed by those sites (and
 * this origin) only; one that lists none by any site — a call button on any website is what such a URL
 * is for (the embed snippet, web-phone/src/widget.ts). Origins are re-serialised (scheme, host, port)
 * and only http(s) ones kept, so nothing stored can add a directive to the header.
 */
export function frameAncestors(allowedOrigins: readonly string[] = []): string[] {
  if (allowedOrigins.length === 0) return ['*'];
  const origins = new Set<string>();
  for (const o of allowedOrigins) {
    const origin = normalizeOrigin(o);
    if (origin && /^https?:\/\//.test(origin)) origins.add(origin);
  }
  return ["'self'", ...origins];
}

/** The SIP edge's origin for the page's `connect-src`; CG_CONFIG_INVALID for what is not a ws(s) URL. */
export function sipWsOrigin(sipWsUrl: string): string {
  let url: URL;
  try {
    url = new URL(sipWsUrl);
  } catch {
    throw new CallgateError('CG_CONFIG_INVALID', `the web phone's SIP WebSocket URL is not a URL: "${sipWsUrl}"`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new CallgateError('CG_CONFIG_INVALID', `the web phone's SIP WebSocket URL must be ws: or wss:, not "${url.protocol}"`);
  return `${url.protocol}//${url.host}`;
}

/**
 * The phone page's policy: its one script and stylesheet from here, requests to this origin (call
 * token, WebRTC offer) and, in SIP mode, the SIP edge's WebSocket. WebRTC media and the remote audio
 * element's MediaStream are outside CSP's reach; nothing else may load.
 */
export function phonePolicy(allowedOrigins: readonly string[], sipOrigin: string | undefined): ContentSecurityPolicy {
  return {
    'default-src': ["'none'"],
    'script-src': ["'self'"],
    'style-src': ["'self'"],
    'connect-src': sipOrigin ? ["'self'", sipOrigin] : ["'self'"],
    'base-uri': ["'none'"],
    'form-action': ["'none'"],
    'frame-ancestors': frameAncestors(allowedOrigins),
  };
}

/** The error pages' policy: the stylesheet only. Framed where the URL's phone would be, so an embed shows the reason. */
function sorryPolicy(allowedOrigins: readonly string[]): ContentSecurityPolicy {
  return {
    'default-src': ["'none'"],
    'style-src': ["'self'"],
    'base-uri': ["'none'"],
    'form-action': ["'none'"],
    'frame-ancestors': frameAncestors(allowedOrigins),
  };
}

function phoneBody(slug: string, business: string, agentName: string, o: WebPhoneOptions): string {
  const keys = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#'];
  const sip = o.sipWsUrl ? ` data-sip-ws="${escapeHtml(o.sipWsUrl)}" data-sip-target="${escapeHtml(`sip:${slug}@${o.sipDomain}`)}"` : '';
  return `<body data-slug="${escapeHtml(slug)}" data-state="idle" data-agent="${escapeHtml(agentName)}"${sip}>
<main>
<h1>${escapeHtml(business)}</h1>
<p class="sub">Talk to ${escapeHtml(agentName)}, ${escapeHtml(business)}'s assistant, right here in your browser.</p>
<div class="controls">
<button id="call" type="button">Call</button>
<button id="hangup" type="button" disabled>Hang up</button>
<button id="mute" type="button" aria-pressed="false" disabled>Mute</button>
<button id="show-keypad" type="button" aria-expanded="false" aria-controls="keypad">Keypad</button>
</div>
<div class="meta"><p id="status" role="status" aria-live="polite">Ready</p><span id="timer" role="timer" aria-label="Call time">0:00</span></div>
<p id="hint" class="hint">Press Call and allow the microphone when your browser asks.</p>
<div class="levels">
<p id="speaking" class="speaking" aria-hidden="true"><span class="dot"></span> ${escapeHtml(agentName)} is speaking</p>
<label for="level">${escapeHtml(agentName)}'s voice</label> <meter id="level" min="0" max="1" value="0"></meter>
<label for="mic-level">Your microphone</label> <meter id="mic-level" min="0" max="1" value="0"></meter>
</div>
<p id="error" role="alert" hidden></p>
<div id="keypad" role="group" aria-label="Keypad" hidden>${keys.map((k) => `<button type="button" data-key="${k}" aria-label="Key ${k}" disabled>${k}</button>`).join('')}</div>
<h2>Transcript</h2>
<ol id="transcript" aria-live="polite" aria-label="Transcript"></ol>
<audio id="remote" autoplay></audio>
</main>
<script src="/web-phone/app.js" defer></script>
</body>`;
}

function sorry(reply: FastifyReply, status: number, message: string, allowedOrigins: readonly string[] = []): FastifyReply {
  return setPagePolicy(reply, sorryPolicy(allowedOrigins))
    .code(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(page('Call link', `<body><main><h1>Sorry</h1><p>${escapeHtml(message)}</p></main></body>`));
}

/**
 * Every error on the page route — a rate limit (this route's or the app-wide one, thrown in onRequest
 * hooks), Redis down — as a page: the one who sees it is a person in a browser, not an API client.
 */
function pageError(err: Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (isCallgateError(err) && err.code === 'CG_HTTP_RATE_LIMITED') {
    // enforce() has set Retry-After.
    return sorry(reply, 429, 'Too many attempts from your network. Please wait a minute and try again.');
  }
  if (isCallgateError(err) && err.status < 500) return sorry(reply, err.status, 'This call link cannot be opened.');
  request.log.error({ err: err.message, url: '/c/:slug' }, 'web phone page error');
  return sorry(reply, isCallgateError(err) ? err.status : 500, 'Something went wrong on our side. Please try again in a minute.');
}

/** Needs @fastify/rate-limit registered on `app` (adminApp.ts does, with `global: false`). */
export function webPhoneRoutes(app: FastifyInstance, ctx: Pick<RouteContext, 'callUrls' | 'tenants'>, options: Partial<WebPhoneOptions> = {}): void {
  const o: WebPhoneOptions = { ...defaultWebPhoneOptions, ...stripUndefined(options) };
  const sipOrigin = o.sipWsUrl === undefined ? undefined : sipWsOrigin(o.sipWsUrl);
  const perIp = app.createRateLimit({ max: o.pagesPerIp, timeWindow: o.pageWindowMs, keyGenerator: (req) => `callpage:${req.ip}` });
  app.get('/c/:slug', {
    config: { access: 'public' },
    schema: { hide: true },
    onRequest: (request, reply) => enforce(perIp, request, reply),
    errorHandler: pageError,
    handler: async (request, reply) => {
      const slug = param(request, 'slug');
      try {
        const url = await ctx.callUrls.get(slug);
        if (!url.enabled) return sorry(reply, 403, 'This call link has been switched off.', url.allowedOrigins);
        if (url.expiresAt && Date.parse(url.expiresAt) <= Date.now()) return sorry(reply, 410, 'This call link has expired.', url.allowedOrigins);
        if (url.maxUses !== undefined && url.uses >= url.maxUses) return sorry(reply, 410, 'This call link has been used up.', url.allowedOrigins);
        const tenant = await ctx.tenants.get(url.tenantId);
        return await setPagePolicy(reply, phonePolicy(url.allowedOrigins, sipOrigin))
          .type('text/html; charset=utf-8')
          .header('cache-control', 'no-store')
          .send(page(`Call ${tenant.displayName}`, phoneBody(slug, tenant.displayName, tenant.agentName, o)));
      } catch (err) {
        if (isCallgateError(err) && (err.code === 'CG_CALL_URL_NOT_FOUND' || err.code === 'CG_TENANT_NOT_FOUND')) return sorry(reply, 404, 'There is no call link at this address.');
        throw err;
      }
    },
  });
  app.get('/web-phone/app.js', {
    config: { access: 'public' },
    schema: { hide: true },
    handler: async (_request, reply) => reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send((await webPhoneBundle()).js),
  });
  // The call button for other websites (web-phone/src/widget.ts). A classic <script src> on another
  // origin needs no CORS header; the type and nosniff make it run only as the script it is.
  app.get('/widget.js', {
    config: { access: 'public' },
    schema: { hide: true },
    handler: async (_request, reply) => reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=300').send((await webPhoneBundle()).widget),
  });
  app.get('/web-phone/app.css', {
    config: { access: 'public' },
    schema: { hide: true },
    handler: async (_request, reply) => reply.type('text/css; charset=utf-8').header('cache-control', 'no-cache').send((await webPhoneBundle()).css),
  });
}
