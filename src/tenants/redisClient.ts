import { createClient, type RedisClientType } from 'redis';
import { rootLogger } from '../log.js';

/**
 * The one way callgate connects to Redis (`src/tenants` is the only code that talks to it). Every key
 * goes through `keys(prefix)`, so tests run side by side in one Redis under their own prefix and a
 * deployment can share a Redis with other software.
 */
export interface RedisOptions {
  /** redis:// URL. */
  readonly url: string;
  /** Prepended to every key (`callgate:` in production; a unique one per test run). */
  readonly prefix: string;
  /** Reconnect backoff: first delay, doubling up to the cap. */
  readonly reconnectBaseMs: number;
  readonly reconnectMaxMs: number;
}

export const defaultRedisOptions = {
  url: 'redis://127.0.0.1:6379',
  prefix: 'callgate:',
  /** 50 ms, doubling: a restarted Redis is found within a few hundred ms. */
  reconnectBaseMs: 50,
  /** 2 s: an outage costs at most 2 s of extra wait after Redis is back. */
  reconnectMaxMs: 2000,
} as const satisfies RedisOptions;

export type Redis = RedisClientType;

export async function connectRedis(options: Partial<RedisOptions> = {}): Promise<Redis> {
  const o = { ...defaultRedisOptions, ...options };
  const client: Redis = createClient({
    url: o.url,
    // Fail at once while disconnected instead of queueing: a call being set up cannot wait for a
    // reconnect, and the callers (TenantCache, CallLimiter) have an answer for an outage.
    disableOfflineQueue: true,
    socket: { reconnectStrategy: (retries: number) => Math.min(o.reconnectMaxMs, o.reconnectBaseMs * 2 ** retries) },
  });
  // Without a listener, node-redis throws connection errors as unhandled 'error' events.
  client.on('error', (err: Error) => rootLogger.debug({ err: err.message }, 'redis connection error'));
  await client.connect();
  return client;
}

/** Key names, all under one prefix. One place, so the data model in docs/data-model.md matches the code. */
export function keys(prefix: string) {
  return {
    tenant: (id: string) => `${prefix}tenant:${id}`,
    tenantIndex: () => `${prefix}tenants`,
    callUrl: (slug: string) => `${prefix}callurl:${slug}`,
    /** Calls a call URL started, by the URL's immutable id: a URL deleted and re-created under its slug is a new URL with its own count. */
    callUrlUses: (urlId: string) => `${prefix}callurl-id:${urlId}:uses`,
    /** The same for a URL made before URLs had ids (callgate < issue 24), which kept its count by slug. */
    legacyCallUrlUses: (slug: string) => `${prefix}callurl:${slug}:uses`,
    tenantCallUrls: (tenantId: string) => `${prefix}tenant:${tenantId}:callurls`,
    callToken: (hash: string) => `${prefix}calltoken:${hash}`,
    number: (number: string) => `${prefix}number:${number}`,
    tenantNumbers: (tenantId: string) => `${prefix}tenant:${tenantId}:numbers`,
    trunk: (name: string) => `${prefix}trunk:${name}`,
    trunkIndex: () => `${prefix}trunks`,
    activeCalls: (tenantId: string) => `${prefix}tenant:${tenantId}:active`,
    callRecords: (tenantId: string) => `${prefix}tenant:${tenantId}:calls`,
    callRecordIndex: (tenantId: string) => `${prefix}tenant:${tenantId}:calls:ids`,
    /** Call ids whose record is a `lost` stand-in, which the real record replaces should it come. */
    lostCalls: (tenantId: string) => `${prefix}tenant:${tenantId}:calls:lost`,
    /** Answered calls without a record yet, scored by when their snapshot lapses (all tenants). */
    openCalls: () => `${prefix}calls:open`,
    /** Those calls' latest snapshots (record so far), by the same member. */
    openCallSnapshots: () => `${prefix}calls:open:snapshots`,
    room: (roomId: string) => `${prefix}room:${roomId}`,
    /** A room's AI participants: agent id → JSON. */
    roomAgents: (roomId: string) => `${prefix}room:${roomId}:agents`,
    /** A room's people as they join and leave: participant id → JSON (src/rooms/RoomStore.ts). */
    roomPeople: (roomId: string) => `${prefix}room:${roomId}:people`,
    /** The gateway holding a room's audio: its id and URL, with a lease it keeps renewing. */
    roomOwner: (roomId: string) => `${prefix}room:${roomId}:owner`,
    tenantRooms: (tenantId: string) => `${prefix}tenant:${tenantId}:rooms`,
    /** A tenant's SIP device (desk phone, softphone) by its digest username, unique across the gateway (src/tenants/DeviceStore.ts). */
    device: (username: string) => `${prefix}device:${username}`,
    /** Every device's username: a REGISTER or INVITE from an unknown address is challenged only when there is one. */
    deviceIndex: () => `${prefix}devices`,
    tenantDevices: (tenantId: string) => `${prefix}tenant:${tenantId}:devices`,
    /** A device's registrations: binding key → JSON (contact, source address, expiry), the hash expiring with the last. */
    deviceBindings: (username: string) => `${prefix}device:${username}:bindings`,
    apiKey: (hash: string) => `${prefix}apikey:${hash}`,
    tenantApiKeys: (tenantId: string) => `${prefix}tenant:${tenantId}:apikeys`,
    invalidations: () => `${prefix}invalidate`,
    /** Failed SIP digest attempts and lockouts of one username (hashed) or one source address. */
    sipAuth: (scope: 'user' | 'source', id: string) => `${prefix}sipauth:${scope}:${id}`,
    /** Webhook deliveries waiting or being sent (all tenants), scored by when each is due (src/webhooks/DeliveryQueue.ts). */
    webhookDue: () => `${prefix}webhooks:due`,
    /** One delivery: tenant, call, URL, body, created, attempts; never a secret. */
    webhookDelivery: (id: string) => `${prefix}webhooks:delivery:${id}`,
  };
}

export type Keys = ReturnType<typeof keys>;

/** A fresh prefix for one test run, so parallel runs never see each other's keys. */
export function testPrefix(): string {
  return `callgate-test:${process.pid}:${Math.random().toString(36).slice(2, 8)}:`;
}

/** Deletes every key under `prefix` (tests clean up after themselves). */
export async function deletePrefix(client: Redis, prefix: string): Promise<number> {
  let deleted = 0;
  for await (const batch of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
    const list = Array.isArray(batch) ? batch : [batch];
    if (list.length > 0) deleted += await client.del(list);
  }
  return deleted;
}
