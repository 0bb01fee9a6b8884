import type { FastifyInstance, FastifyReply } from 'fastify';

/**
 * Security headers on every response the HTTP server sends (issue 24, finding 4). One onSend hook,
 * added before any route or plugin, covers every route — a page added later included — so none can
 * forget them:
 * - `X-Content-Type-Options: nosniff`: a browser runs what we serve only as the type we say.
 * - `Referrer-Policy: same-origin`: the call page's URL holds its slug, which must not leak to other
 *   sites; this origin may see it. Not `no-referrer`: under it the Fetch standard ("append a request
 *   Origin header") sends `Origin: null` on non-CORS POSTs, and the call-token route checks Origin
 *   (Chromium 156 still sends it on the page's same-origin fetch; the browser test checks it arrives).
 * - A Content-Security-Policy. A route that serves a page sets its own with `setPagePolicy` (the web
 *   phone, swagger-ui under /docs); every other response — JSON, a page someone forgot, an SVG opened
 *   directly — gets `defaultPolicy`, which allows nothing to load and no site to frame it.
 * - `X-Frame-Options`, the fallback for browsers without CSP `frame-ancestors`, derived from the
 *   policy's `frame-ancestors`: DENY for `'none'`, SAMEORIGIN for `'self'` alone, absent for a list of
 *   origins (it cannot express one; browsers with CSP ignore it when `frame-ancestors` is present).
 */
export type ContentSecurityPolicy = Readonly<Record<string, readonly string[]>>;

/** Nothing may load, nothing may frame it: for responses that are not pages. */
export const defaultPolicy = {
  'default-src': ["'none'"],
  'base-uri': ["'none'"],
  'form-action': ["'none'"],
  'frame-ancestors': ["'none'"],
} as const satisfies ContentSecurityPolicy;

export const REFERRER_POLICY = 'same-origin';

export function serializePolicy(policy: ContentSecurityPolicy): string {
  return Object.entries(policy)
    .map(([directive, sources]) => (sources.length ? `${directive} ${sources.join(' ')}` : directive))
    .join('; ');
}

function frameOptions(policy: ContentSecurityPolicy): 'DENY' | 'SAMEORIGIN' | undefined {
  const ancestors = policy['frame-ancestors'];
  // Without the directive CSP allows any framer; so does the absent header.
  if (!ancestors) return undefined;
  if (ancestors.length === 0 || (ancestors.length === 1 && ancestors[0] === "'none'")) return 'DENY';
  if (ancestors.length === 1 && ancestors[0] === "'self'") return 'SAMEORIGIN';
  return undefined;
}

/** A page's own policy: its CSP and the X-Frame-Options that agrees with its `frame-ancestors`. */
export function setPagePolicy(reply: FastifyReply, policy: ContentSecurityPolicy): FastifyReply {
  reply.header('content-security-policy', serializePolicy(policy));
  const xfo = frameOptions(policy);
  if (xfo) reply.header('x-frame-options', xfo);
  else reply.removeHeader('x-frame-options');
  return reply;
}

/** What every response carries; a route's own policy, when it set one, is kept. */
export function applySecurityHeaders(reply: FastifyReply): void {
  reply.header('x-content-type-options', 'nosniff');
  reply.header('referrer-policy', REFERRER_POLICY);
  if (!reply.hasHeader('content-security-policy')) setPagePolicy(reply, defaultPolicy);
}

/**
 * Adds the hook. Call it on the root instance before registering anything: hooks reach the plugins
 * registered after them (swagger-ui's own onSend, which sets /docs's policy, then runs after this one).
 * Fastify's router refusals (`frameworkErrors`) skip hooks: call `applySecurityHeaders` there.
 */
export function addSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onSend', async (_request, reply, payload) => {
    applySecurityHeaders(reply);
    return payload;
  });
}
