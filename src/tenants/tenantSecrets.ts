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

/** One place a secret lives, named by what identifies it across updates (a tool's name, not its index). */
interface Slot {
  readonly key: string;
  readonly value: unknown;
  set(value: unknown): void;
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function headerSlots(owner: unknown, prefix: string): Slot[] {
  if (!isObject(owner) || !isObject(owner.headers)) return [];
  const headers = owner.headers;
  return Object.keys(headers).map((h) => ({ key: `${prefix}/headers/${h.toLowerCase()}`, value: headers[h], set: (v) => (headers[h] = v) }));
}

function slots(tenant: Json): Slot[] {
  const out: Slot[] = [];
  if (Array.isArray(tenant.tools)) {
    for (const tool of tenant.tools) if (isObject(tool)) out.push(...headerSlots(tool.webhook, `tools/${String(tool.name)}`));
  }
  if (Array.isArray(tenant.mcpServers)) {
    for (const server of tenant.mcpServers) if (isObject(server)) out.push(...headerSlots(server, `mcpServers/${String(server.name)}`));
  }
  const hooks = tenant.webhooks;
  if (isObject(hooks) && hooks.secret !== undefined) out.push({ key: 'webhooks/secret', value: hooks.secret, set: (v) => (hooks.secret = v) });
  return out;
}

/** A deep copy with every secret replaced by `f(value, key)`. */
function mapSecrets<T>(tenant: object, f: (value: unknown, key: string) => unknown): T {
  const copy = structuredClone(tenant) as Json;
  for (const slot of slots(copy)) slot.set(f(slot.value, slot.key));
  return copy as T;
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
  const before = new Map(slots(structuredClone(previousPlain) as Json).map((s) => [s.key, s.value]));
  return mapSecrets<T>(candidate, (v, key) => (isMasked(v) && typeof before.get(key) === 'string' ? before.get(key) : v));
}
