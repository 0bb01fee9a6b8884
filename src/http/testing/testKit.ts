import { randomBytes } from 'node:crypto';
import { connectRedis, deletePrefix, testPrefix, type Redis } from '../../tenants/redisClient.js';
import { SecretBox } from '../../tenants/secrets.js';
import { buildAdminApp, type AdminApp, type AdminAppOptions } from '../adminApp.js';

/** For tests: the admin API listening on 127.0.0.1 (a free port) over the real Redis, under a fresh prefix. */
export interface TestAdminApp {
  readonly app: AdminApp;
  readonly base: string;
  readonly redis: Redis;
  readonly prefix: string;
  readonly token: string;
  /** Tenant ids passed to `invalidate`, in order. */
  readonly invalidated: string[];
  call(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: Record<string, unknown> | undefined; headers: Headers }>;
  close(): Promise<void>;
}

export async function startAdminApp(options: Partial<AdminAppOptions> = {}): Promise<TestAdminApp> {
  const prefix = testPrefix();
  const redis = await connectRedis({ prefix });
  const token = randomBytes(24).toString('base64url');
  const invalidated: string[] = [];
  const app = await buildAdminApp({
    redis,
    prefix,
    secrets: new SecretBox(randomBytes(32)),
    adminToken: token,
    invalidate: async (id) => void invalidated.push(id),
    ...options,
  });
  try {
    await app.listen({ host: '127.0.0.1', port: 0 });
  } catch (err) {
    await app.close();
    await redis.quit();
    throw err;
  }
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  const base = `http://127.0.0.1:${address.port}`;
  return {
    app,
    base,
    redis,
    prefix,
    token,
    invalidated,
    async call(method, path, body, bearer = token) {
      const res = await fetch(base + path, {
        method,
        headers: { authorization: `Bearer ${bearer}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined, headers: res.headers };
    },
    async close() {
      await app.close();
      await deletePrefix(redis, prefix);
      await redis.quit();
    },
  };
}
