/**
 * npm run dialplans -- check [files…]   validate (every problem as file:line:column)
 * npm run dialplans -- load [files…]    validate, then write to Redis idempotently; any problem loads nothing
 *
 * Files default to dialplans/*.yaml. Redis from REDIS_URL (default redis://127.0.0.1:6379) and
 * CALLGATE_REDIS_PREFIX (default callgate:); CALLGATE_SECRET_KEY when a trunk has a password.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CallUrlStore } from '../tenants/CallUrlStore.js';
import { checkDialplans, formatProblem } from '../tenants/dialplan.js';
import { loadDialplans } from '../tenants/dialplanLoad.js';
import { NumberStore } from '../tenants/NumberStore.js';
import { connectRedis, defaultRedisOptions, keys } from '../tenants/redisClient.js';
import { SecretBox } from '../tenants/secrets.js';
import { TenantStore } from '../tenants/TenantStore.js';

const [command, ...args] = process.argv.slice(2);
if (command !== 'check' && command !== 'load') {
  console.error('usage: npm run dialplans -- check|load [files…]');
  process.exit(2);
}
const files = args.length > 0 ? args : (await readdir('dialplans')).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).map((f) => join('dialplans', f));
const result = await checkDialplans(files);
if (!result.ok) {
  for (const p of result.problems) console.error(formatProblem(p));
  console.error(`${result.problems.length} problem(s); nothing loaded`);
  process.exit(1);
}
const tenants = result.dialplans.reduce((n, d) => n + d.dialplan.tenants.length, 0);
console.log(`${files.length} file(s) valid: ${tenants} tenant(s)`);
if (command === 'load') {
  const prefix = process.env['CALLGATE_REDIS_PREFIX'] ?? defaultRedisOptions.prefix;
  const redis = await connectRedis({ url: process.env['REDIS_URL'] ?? defaultRedisOptions.url, prefix });
  try {
    const secrets = new SecretBox();
    const summary = await loadDialplans(result.dialplans, {
      tenants: new TenantStore(redis, secrets, { prefix }),
      callUrls: new CallUrlStore(redis, { prefix }),
      numbers: new NumberStore(redis, secrets, { prefix }),
    });
    // Running gateways drop their cached copies (TenantCache listens on this channel).
    for (const id of summary.tenantIds) await redis.publish(keys(prefix).invalidations(), id);
    console.log(`loaded: ${summary.created} created, ${summary.updated} updated`);
  } finally {
    await redis.quit();
  }
}
