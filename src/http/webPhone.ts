import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { build } from 'esbuild';
import { isCallgateError } from '../errors.js';
import { stripUndefined } from '../util/options.js';
import { param, type RouteContext } from './routes/context.js';

/**
 * The web phone a call URL opens: `GET /c/:slug` renders the page with the tenant's and agent's names,
 * `GET /web-phone/app.js` serves the script, bundled from web-phone/src by esbuild once per process
 * (about 20 ms; no build step to forget, nothing generated in the repository).
 */
const SOURCE_DIR = fileURLToPath(new URL('../../web-phone/src/', import.meta.url));

let bundle: Promise<{ js: string; css: string }> | undefined;

export function webPhoneBundle(): Promise<{ js: string; css: string }> {
  bundle ??= (async () => {
    const out = await build({ entryPoints: [`${SOURCE_DIR}app.ts`], bundle: true, write: false, format: 'iife', target: 'es2020', minify: true, logLevel: 'silent' });
    return { js: out.outputFiles[0]!.text, css: await readFile(`${SOURCE_DIR}style.css`, 'utf8') };
  })();
  return bundle;
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, body: string, css: string, extra = ''): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title><style>${css}</style></head>
${body}${extra}</html>`;
}

/** SIP mode: where the page's SIP.js connects (drachtio's WS/WSS contact) and the domain it calls. */
export interface WebPhoneOptions {
  readonly sipWsUrl: string | undefined;
  readonly sipDomain: string;
}

export const defaultWebPhoneOptions = {
  /** Unset: the page calls through the direct WebRTC door. */
  sipWsUrl: undefined,
  sipDomain: 'callgate.invalid',
} as const satisfies WebPhoneOptions;

function phoneBody(slug: string, business: string, agentName: string, o: WebPhoneOptions): string {
  const keys = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#'];
  const sip = o.sipWsUrl ? ` data-sip-ws="${escapeHtml(o.sipWsUrl)}" data-sip-target="${escapeHtml(`sip:${slug}@${o.sipDomain}`)}"` : '';
  return `<body data-slug="${escapeHtml(slug)}" data-state="idle"${sip}>
<main>
<h1>${escapeHtml(business)}</h1>
<p class="sub">Talk to ${escapeHtml(agentName)}, ${escapeHtml(business)}'s assistant, right here in your browser.</p>
<div class="controls">
<button id="call" type="button">Call</button>
<button id="hangup" type="button" disabled>Hang up</button>
<button id="mute" type="button" aria-pressed="false" disabled>Mute</button>
</div>
<div class="meta"><p id="status" role="status" aria-live="polite">Ready</p><span id="timer" aria-label="Call time">0:00</span></div>
<label class="meta">Agent volume <meter id="level" min="0" max="1" value="0"></meter></label>
<p id="error" role="alert" hidden></p>
<div id="keypad" role="group" aria-label="Keypad">${keys.map((k) => `<button type="button" data-key="${k}" aria-label="Key ${k}" disabled>${k}</button>`).join('')}</div>
<h2>Transcript</h2>
<ol id="transcript" aria-live="polite"></ol>
<audio id="remote" autoplay></audio>
</main>
<script src="/web-phone/app.js" defer></script>
</body>`;
}

async function sorry(reply: FastifyReply, status: number, message: string): Promise<FastifyReply> {
  const { css } = await webPhoneBundle();
  return reply.code(status).type('text/html; charset=utf-8').send(page('Call link', `<body><main><h1>Sorry</h1><p>${escapeHtml(message)}</p></main></body>`, css));
}

export function webPhoneRoutes(app: FastifyInstance, ctx: Pick<RouteContext, 'callUrls' | 'tenants'>, options: Partial<WebPhoneOptions> = {}): void {
  const o: WebPhoneOptions = { ...defaultWebPhoneOptions, ...stripUndefined(options) };
  app.get('/c/:slug', {
    config: { access: 'public' },
    schema: { hide: true },
    handler: async (request, reply) => {
      const slug = param(request, 'slug');
      try {
        const url = await ctx.callUrls.get(slug);
        if (!url.enabled) return await sorry(reply, 403, 'This call link has been switched off.');
        if (url.expiresAt && Date.parse(url.expiresAt) <= Date.now()) return await sorry(reply, 410, 'This call link has expired.');
        if (url.maxUses !== undefined && url.uses >= url.maxUses) return await sorry(reply, 410, 'This call link has been used up.');
        const tenant = await ctx.tenants.get(url.tenantId);
        const { css } = await webPhoneBundle();
        return await reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page(`Call ${tenant.displayName}`, phoneBody(slug, tenant.displayName, tenant.agentName, o), css));
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
}
