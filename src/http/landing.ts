import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { escapeHtml } from '../util/html.js';
import type { FastifyInstance } from 'fastify';
import { embedSnippet, publicBase } from './routes/callUrls.js';
import { setPagePolicy, type ContentSecurityPolicy } from './securityHeaders.js';

/**
 * What someone who opens the gateway's address in a browser sees (`GET /`): what callgate is, the demo
 * call, where the API docs, health, metrics and the admin walkthrough are, and the call button tag.
 * No login: it tells nothing a visitor could not learn from the public routes. `/favicon.ico` is
 * served too, so a browser's automatic request gets an icon rather than an error.
 */
export interface LandingOptions {
  /** The call URL the big "try it" link opens; none when the demo tenant is not seeded. */
  readonly demoSlug: string | undefined;
  /** PUBLIC_BASE_URL, for the copy-paste tag; unset: the address the page was asked on. */
  readonly publicBaseUrl: string | undefined;
}

const landingPolicy: ContentSecurityPolicy = {
  'default-src': ["'none'"],
  'style-src': ["'self'"],
  'img-src': ["'self'"],
  'base-uri': ["'none'"],
  'form-action': ["'none'"],
  'frame-ancestors': ["'none'"],
};

/** The admin walkthrough (docs/quickstart-admin.md), served as the Markdown it is: readable as text. */
export const ADMIN_GUIDE_PATH = '/guide/admin';
const ADMIN_GUIDE_FILE = fileURLToPath(new URL('../../docs/quickstart-admin.md', import.meta.url));

function landingPage(base: string, demoSlug: string | undefined): string {
  const demo = demoSlug
    ? `<p><a class="big" href="/c/${escapeHtml(demoSlug)}">Try the demo call</a></p>
<p class="hint">Opens a phone in your browser: allow the microphone, press Call, and ask about opening hours or booking a table.</p>`
    : '<p class="hint">The demo tenant is off on this gateway (started with --no-demo). Create a tenant and a call URL with the admin API.</p>';
  const snippet = embedSnippet(base, demoSlug ?? 'YOUR-CALL-URL');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>callgate</title><link rel="icon" href="/favicon.ico"><link rel="stylesheet" href="/web-phone/app.css"></head>
<body class="landing"><main>
<h1>callgate</h1>
<p class="sub">An open-source gateway that puts an AI voice agent on every phone call: SIP numbers from a carrier, and call links that open a phone in the browser.</p>
${demo}
<h2>For operators</h2>
<ul>
<li><a href="${ADMIN_GUIDE_PATH}">Admin walkthrough</a>: a tenant, its greeting and voice, a call URL, a number and a trunk, call records — each step a curl command.</li>
<li><a href="/docs">API reference</a> (OpenAPI); every admin route needs the admin token or a tenant key.</li>
<li><a href="/healthz">Health</a> and <a href="/readyz">readiness</a>; <a href="/metrics">metrics</a> (Prometheus, from this host or with the metrics token).</li>
</ul>
<h2>A call button on your website</h2>
<p>Paste this before <code>&lt;/body&gt;</code>: a button appears in the corner and opens the phone for that call URL. The call URL's <code>allowedOrigins</code> says which sites may show it (none listed: any site).</p>
<pre><code>${escapeHtml(snippet)}</code></pre>
</main></body></html>`;
}

/**
 * A 16×16 icon, made once: an ICO holding one 32-bit bitmap of a green disc. Drawn here rather than
 * kept as a binary file, so the repository holds only what is written in it.
 */
function makeFavicon(): Buffer {
  const size = 16;
  const pixels = Buffer.alloc(size * size * 4);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const d = Math.hypot(x - 7.5, y - 7.5);
      const alpha = Math.max(0, Math.min(1, 7.5 - d)) * 255;
      // BGRA, rows bottom-up (BMP order); the disc is symmetric, so the order does not show.
      pixels.set([0x3b, 0x8a, 0x1f, Math.round(alpha)], (y * size + x) * 4);
    }
  }
  const mask = Buffer.alloc(size * 4); // 1-bit AND mask, rows padded to 4 bytes; alpha already says it
  const header = Buffer.alloc(40);
  header.writeUInt32LE(40, 0);
  header.writeInt32LE(size, 4);
  header.writeInt32LE(size * 2, 8); // ICO bitmaps count the mask's rows too
  header.writeUInt16LE(1, 12);
  header.writeUInt16LE(32, 14);
  const image = Buffer.concat([header, pixels, mask]);
  const dir = Buffer.alloc(22);
  dir.writeUInt16LE(0, 0);
  dir.writeUInt16LE(1, 2); // icon
  dir.writeUInt16LE(1, 4); // one image
  dir.writeUInt8(size, 6);
  dir.writeUInt8(size, 7);
  dir.writeUInt16LE(1, 10); // planes
  dir.writeUInt16LE(32, 12); // bits per pixel
  dir.writeUInt32LE(image.length, 14);
  dir.writeUInt32LE(22, 18);
  return Buffer.concat([dir, image]);
}

let favicon: Buffer | undefined;

export function landingRoutes(app: FastifyInstance, options: LandingOptions): void {
  app.get('/', {
    config: { access: 'public' },
    schema: { hide: true },
    handler: async (request, reply) =>
      setPagePolicy(reply, landingPolicy)
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-cache')
        .send(landingPage(publicBase(request, options.publicBaseUrl), options.demoSlug)),
  });
  app.get(ADMIN_GUIDE_PATH, {
    config: { access: 'public' },
    schema: { hide: true },
    handler: async (_request, reply) => {
      // An install that left docs/ out (a trimmed image) says so rather than failing with a 500.
      const text = await readFile(ADMIN_GUIDE_FILE, 'utf8').catch(() => 'The admin walkthrough (docs/quickstart-admin.md) is not installed with this gateway.\n');
      return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send(text);
    },
  });
  app.get('/favicon.ico', {
    config: { access: 'public' },
    schema: { hide: true },
    handler: async (_request, reply) => {
      favicon ??= makeFavicon();
      return reply.type('image/x-icon').header('cache-control', 'public, max-age=86400').send(favicon);
    },
  });
}
