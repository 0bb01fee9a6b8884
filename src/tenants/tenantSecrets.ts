import { maskSecret, type MaskedSecret, type SecretBox } from './secrets.js';

/**
 * The secrets inside a tenant besides its provider keys: the header values of its tool webhooks and
 * MCP servers, and its webhook signing secret. At rest each is `{enc, last4}` (encrypted like provider
 * keys); the API shows `{set: true, last4}`; the gateway's calls get the plain value. An update may send
 * a masked value back unchanged (`{set: true, …}`), meaning "keep the one stored".
 */
export interface SealedSecret {
  readonly enc: string;
  readonly last4: string;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

type Mapper = (value: unknown, key: string) => unknown;

/** `headers` with each value mapped, keyed by the owner's name and the header's (lower-cased) name. */
function mapHeaders(headers: unknown, prefix: string, f: Mapper): unknown {
  if (!isObject(headers)) return headers;
  return Object.fromEntries(Object.entries(headers).map(([h, v]) => [h, f(v, `${prefix}/headers/${h.toLowerCase()}`)]));
}

/**
 * A copy of `tenant` with every secret replaced by `f(value, key)`; the key names a secret by what
 * identifies it across updates (a tool's name, not its index). Only the objects on the way to a
 * secret are copied, and only where the shape is the expected one: this runs before validation, on
 * whatever a request sent (a deep clone of a hostile body would overflow the stack).
 */
function mapSecrets<T>(tenant: object, f: Mapper): T {
  const t = { ...(tenant as Json) };
  if (Array.isArray(t.tools)) {
    t.tools = t.tools.map((tool: unknown) =>
      isObject(tool) && isObject(tool.webhook) ? { ...tool, webhook: { ...tool.webhook, headers: mapHeaders(tool.webhook.headers, `tools/${String(tool.name)}`, f) } } : tool,
    );
  }
  if (Array.isArray(t.mcpServers)) {
    t.mcpServers = t.mcpServers.map((server: unknown) => (isObject(server) && 'headers' in server ? { ...server, headers: mapHeaders(server.headers, `mcpServers/${String(server.name)}`, f) } : server));
  }
  if (isObject(t.webhooks) && t.webhooks.secret !== undefined) t.webhooks = { ...t.webhooks, secret: f(t.webhooks.secret, 'webhooks/secret') };
  // Absent stays absent: a mapped `headers: undefined` would be a new key.
  for (const list of [t.tools, t.mcpServers]) {
    if (!Array.isArray(list)) continue;
    for (const item of list) {
      if (isObject(item) && isObject(item.webhook) && item.webhook.headers === undefined) delete item.webhook.headers;
      if (isObject(item) && 'headers' in item && item.headers === undefined) delete item.headers;
    }
  }
  return t as T;
}

/** Every secret of `tenant`, by key. */
function secretsOf(tenant: object): Map<string, unknown> {
  const found = new Map<string, unknown>();
  mapSecrets(tenant, (v, key) => {
    found.set(key, v);
    return v;
  });
  return found;
}

const isSealed = (v: unknown): v is SealedSecret => isObject(v) && typeof v.enc === 'string';
/** A value the API showed (`{set: true, last4}`), sent back to mean "unchanged". */
const isMasked = (v: unknown): boolean => isObject(v) && v.set === true;

export function sealSecrets<T>(tenant: object, box: SecretBox): T {
  return mapSecrets<T>(tenant, (v) => (typeof v === 'string' ? { enc: box.encrypt(v), last4: maskSecret(v).last4 } : v));
}

export function openSecrets<T>(stored: object, box: SecretBox): T {
  return mapSecrets<T>(stored, (v) => (isSealed(v) ? box.decrypt(v.enc) : v));
}

export function maskSecrets<T>(stored: object): T {
  return mapSecrets<T>(stored, (v): MaskedSecret | unknown => (isSealed(v) ? { set: true, last4: v.last4 } : v));
}

/**
 * `candidate` with each masked value replaced by the plain value stored under the same key. A masked
 * value with nothing stored behind it stays as it is, and validation names it.
 */
export function restoreMasked<T>(candidate: object, previousPlain: object): T {
  const before = secretsOf(previousPlain);
  return mapSecrets<T>(candidate, (v, key) => (isMasked(v) && typeof before.get(key) === 'string' ? before.get(key) : v));
}
