import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallUrlStore } from './CallUrlStore.js';
import { NumberStore } from './NumberStore.js';
import { caught } from './testing/caught.js';
import { connectRedis, deletePrefix, keys, testPrefix, type Redis } from './redisClient.js';
import { SecretBox } from './secrets.js';
import { agentConfigFor, TenantStore } from './TenantStore.js';

const prefix = testPrefix();
const k = keys(prefix);
const secrets = new SecretBox(randomBytes(32));
let redis: Redis;
let tenants: TenantStore;

const OPENAI = 'sk-proj-Zx81secretvalueAbCd';

beforeAll(async () => {
  redis = await connectRedis({ prefix });
  tenants = new TenantStore(redis, secrets, { prefix });
});

afterAll(async () => {
  await deletePrefix(redis, prefix);
  expect(await redis.keys(`${prefix}*`)).toEqual([]);
  await redis.close();
});

describe('TenantStore', () => {
  it('creates, reads, lists and refuses a duplicate id', async () => {
    const created = await tenants.create({ id: 'joes-pizza', displayName: "Joe's Pizza", greeting: 'Hi, this is {{agentName}} at {{business}}.' });
    expect(created).toMatchObject({ id: 'joes-pizza', displayName: "Joe's Pizza", agentName: 'Ava', maxConcurrentCalls: 10 });
    expect(await tenants.get('joes-pizza')).toEqual(created);
    expect(await tenants.exists('joes-pizza')).toBe(true);
    const dup = await caught(tenants.create({ id: 'joes-pizza', displayName: 'Other' }));
    expect(dup.code).toBe('CG_TENANT_EXISTS');
    expect(dup.status).toBe(409);
    expect((await caught(tenants.get('nobody'))).code).toBe('CG_TENANT_NOT_FOUND');
  });

  it('refuses invalid tenants with every issue listed by path', async () => {
    const err = await caught(
      tenants.create({
        id: 'Bad Id',
        displayName: '',
        turn: { endpointingMs: 50 },
        intents: [
          { name: 'hours', reply: 'We open at 9.', dtmf: '1' },
          { name: 'menu', phrases: ['menu'], reply: 'Pizza.', dtmf: '1' },
        ],
      }),
    );
    expect(err.code).toBe('CG_TENANT_INVALID');
    expect(err.status).toBe(400);
    const paths = (err.details?.['issues'] as { path: string; message: string }[]).map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['id', 'displayName', 'turn.endpointingMs']));
    expect(await redis.exists(k.tenant('Bad Id'))).toBe(0);
  });

  it('checks the greeting template when it is saved', async () => {
    const unknown = await caught(tenants.create({ id: 'tmpl', displayName: 'T', greeting: 'Hello {{callerName}}!' }));
    expect(unknown.code).toBe('CG_TENANT_INVALID');
    expect(unknown.details?.['issues']).toEqual([expect.objectContaining({ path: 'greeting', message: expect.stringContaining('{{callerName}}') })]);
    const unbalanced = await caught(tenants.create({ id: 'tmpl', displayName: 'T', greeting: 'Hello {{agentName}' }));
    expect(unbalanced.details?.['issues']).toEqual([expect.objectContaining({ path: 'greeting' })]);
    // With a fallback the variable may be missing from a call.
    await expect(tenants.create({ id: 'tmpl', displayName: 'T', greeting: 'Hello {{callerName|there}}!' })).resolves.toMatchObject({ id: 'tmpl' });
  });

  it('encrypts provider keys: masked in get(), ciphertext in Redis, plaintext only from getWithSecrets()', async () => {
    const created = await tenants.create({ id: 'keys', displayName: 'Keys Inc', providerKeys: { openai: OPENAI, deepgram: 'dg-0123456789xyzw' } });
    expect(created.providerKeys).toEqual({ openai: { set: true, last4: 'AbCd' }, deepgram: { set: true, last4: 'xyzw' } });
    expect(JSON.stringify(await tenants.get('keys'))).not.toContain('secretvalue');
    expect(JSON.stringify(await tenants.list({ limit: Infinity }))).not.toContain('secretvalue');
    const raw = (await redis.get(k.tenant('keys')))!;
    expect(raw).not.toContain(OPENAI);
    expect(raw).not.toContain('secretvalue');
    expect(raw).not.toContain('dg-0123456789');
    expect(raw).toContain('"enc":"v1:');
    const full = await tenants.getWithSecrets('keys');
    expect(full.providerKeys).toEqual({ openai: OPENAI, deepgram: 'dg-0123456789xyzw' });
  });

  it('detects a tampered key in Redis', async () => {
    await tenants.create({ id: 'tamper', displayName: 'T', providerKeys: { openai: OPENAI } });
    const stored = JSON.parse((await redis.get(k.tenant('tamper')))!) as { providerKeys: { openai: { enc: string } } };
    const parts = stored.providerKeys.openai.enc.split(':');
    const ct = Buffer.from(parts[3]!, 'base64');
    ct[0] = ct[0]! ^ 0xff;
    parts[3] = ct.toString('base64');
    stored.providerKeys.openai.enc = parts.join(':');
    await redis.set(k.tenant('tamper'), JSON.stringify(stored));
    expect((await caught(tenants.getWithSecrets('tamper'))).code).toBe('CG_SECRET_UNREADABLE');
    // The public view still works: it never decrypts.
    expect((await tenants.get('tamper')).providerKeys).toEqual({ openai: { set: true, last4: 'AbCd' } });
  });

  it('updates partially, re-validating the whole tenant, and keeps keys not named', async () => {
    await tenants.create({ id: 'upd', displayName: 'Upd', voice: 'slt', turn: { endpointingMs: 600, bargeIn: false }, providerKeys: { openai: OPENAI, eleven: 'el-abcdefgh9999' } });
    const updated = await tenants.update('upd', { displayName: 'Updated', turn: { endpointingMs: 800 }, voice: null, providerKeys: { eleven: null, deepgram: 'dg-newkey-5555' } });
    expect(updated.displayName).toBe('Updated');
    expect(updated.turn).toEqual({ endpointingMs: 800, bargeIn: false });
    expect(updated.voice).toBeUndefined();
    expect(updated.providerKeys).toEqual({ openai: { set: true, last4: 'AbCd' }, deepgram: { set: true, last4: '5555' } });
    expect((await tenants.getWithSecrets('upd')).providerKeys).toEqual({ openai: OPENAI, deepgram: 'dg-newkey-5555' });

    const bad = await caught(tenants.update('upd', { greeting: 'Hi {{nope}}', turn: { endpointingMs: 10 } }));
    expect(bad.code).toBe('CG_TENANT_INVALID');
    expect((bad.details?.['issues'] as { path: string }[]).map((i) => i.path).sort()).toEqual(['greeting', 'turn.endpointingMs']);
    expect((await tenants.get('upd')).displayName).toBe('Updated');
    expect((await caught(tenants.update('upd', { id: 'other' }))).code).toBe('CG_TENANT_INVALID');
    expect((await caught(tenants.update('ghost', { displayName: 'x' }))).code).toBe('CG_TENANT_NOT_FOUND');
    expect((await tenants.update('upd', { providerKeys: null })).providerKeys).toBeUndefined();
    // A bare string is not a map of keys (it was stored as one "key" per character), nor is a number a key.
    for (const providerKeys of ['sk-abc', ['sk-abc'], { openai: 42 }]) {
      const refused = await caught(tenants.update('upd', { providerKeys } as never));
      expect(refused.code).toBe('CG_TENANT_INVALID');
    }
    expect((await tenants.get('upd')).providerKeys).toBeUndefined();
  });

  it('lists by id, in pages or all', async () => {
    for (const id of ['list-c', 'list-a', 'list-b']) await tenants.create({ id, displayName: id });
    const all = await tenants.list({ limit: Infinity });
    const ids = all.items.map((t) => t.id);
    expect(ids).toEqual([...ids].sort());
    expect(all.total).toBe(ids.length);
    expect(ids).toEqual(expect.arrayContaining(['list-a', 'list-b', 'list-c']));
    const page1 = await tenants.list({ offset: 0, limit: 2 });
    const page2 = await tenants.list({ offset: 2, limit: 2 });
    expect(page1.items.map((t) => t.id)).toEqual(ids.slice(0, 2));
    expect(page2.items.map((t) => t.id)).toEqual(ids.slice(2, 4));
    expect((await tenants.list({ offset: all.total, limit: 5 })).items).toEqual([]);
  });

  it('deletes a tenant with its call URLs and numbers', async () => {
    const urls = new CallUrlStore(redis, { prefix });
    const numbers = new NumberStore(redis, secrets, { prefix });
    await tenants.create({ id: 'gone', displayName: 'Gone' });
    await tenants.create({ id: 'stays', displayName: 'Stays' });
    const u1 = await urls.create({ tenantId: 'gone' });
    await urls.use(u1.slug);
    await urls.create({ tenantId: 'gone', slug: 'gone-promo' });
    await urls.create({ tenantId: 'stays', slug: 'stays-promo' });
    await numbers.createNumber({ number: '+14155550111', tenantId: 'gone' });
    await numbers.createNumber({ number: 'sip:gone@example.com', tenantId: 'gone' });
    await numbers.createNumber({ number: '+14155550112', tenantId: 'stays' });

    expect(await redis.exists(k.callUrlUses(u1.id!))).toBe(1);
    await tenants.delete('gone');
    expect((await caught(tenants.get('gone'))).code).toBe('CG_TENANT_NOT_FOUND');
    expect((await caught(urls.get(u1.slug))).code).toBe('CG_CALL_URL_NOT_FOUND');
    expect((await caught(urls.use('gone-promo'))).code).toBe('CG_CALL_URL_NOT_FOUND');
    expect((await caught(numbers.resolve('+14155550111'))).code).toBe('CG_NUMBER_NOT_FOUND');
    expect((await caught(numbers.resolve('sip:gone@example.com'))).code).toBe('CG_NUMBER_NOT_FOUND');
    expect(await redis.keys(`${prefix}*gone*`)).toEqual([]);
    // The use count lives under the URL's id, which names no tenant: gone too.
    expect(await redis.exists(k.callUrlUses(u1.id!))).toBe(0);
    expect(await redis.sIsMember(k.tenantIndex(), 'gone')).toBe(0);
    // The other tenant is untouched.
    expect((await urls.get('stays-promo')).tenantId).toBe('stays');
    expect((await numbers.resolve('+14155550112')).tenantId).toBe('stays');
    expect((await caught(tenants.delete('gone'))).code).toBe('CG_TENANT_NOT_FOUND');
    // A call URL or number cannot be made for a deleted tenant.
    expect((await caught(urls.create({ tenantId: 'gone' }))).code).toBe('CG_TENANT_NOT_FOUND');
    expect((await caught(numbers.createNumber({ number: '+14155550111', tenantId: 'gone' }))).code).toBe('CG_TENANT_NOT_FOUND');
  });

  it('maps a stored tenant to the agent config and greeting variables', async () => {
    const tenant = await tenants.create({
      id: 'agent',
      displayName: 'Bella Salon',
      agentName: 'Mia',
      greeting: 'Hi {{name|there}}, {{agentName}} at {{business}} here.',
      turn: { endpointingMs: 700 },
      providers: { tts: 'flite' },
      intents: [{ name: 'hours', phrases: ['when are you open'], reply: 'Nine to five.' }],
    });
    const { config, variables } = agentConfigFor(tenant, { name: 'Sam', business: 'Spoofed Corp' });
    expect(config).toMatchObject({
      tenantId: 'agent',
      greeting: 'Hi {{name|there}}, {{agentName}} at {{business}} here.',
      providers: { stt: 'pocketsphinx', llm: 'scripted', tts: 'flite' },
      turn: { endpointingMs: 700, bargeIn: 'adaptive' },
      voice: 'slt',
    });
    expect(config.intents).toEqual([{ name: 'hours', phrases: ['when are you open'], reply: 'Nine to five.' }]);
    expect(variables).toEqual({ name: 'Sam', agentName: 'Mia', business: 'Bella Salon' });
  });
});

describe('TenantStore: tools, MCP servers and webhooks (issue 19)', () => {
  const HEADER = 'Bearer tool-secret-value-9876';
  const HOOK_SECRET = 'webhook-signing-secret-5555';
  const toolsTenant = {
    id: 'tools-tenant',
    displayName: 'Tools',
    tools: [{ name: 'get_hours', description: 'Hours', parameters: { type: 'object', properties: { day: { type: 'string' } } }, webhook: { url: 'https://93.184.216.34/hours', headers: { Authorization: HEADER } } }],
    mcpServers: [{ name: 'crm', url: 'https://93.184.216.34/mcp', headers: { 'X-Key': 'mcp-secret-key-4321' } }],
    webhooks: { secret: HOOK_SECRET, callEnd: { url: 'https://93.184.216.34/end' } },
  };

  it('seals header values and the webhook secret: masked in the API, encrypted in Redis, plain for the gateway', async () => {
    const created = await tenants.create(toolsTenant);
    const shown = JSON.stringify(created) + JSON.stringify(await tenants.get('tools-tenant')) + JSON.stringify((await tenants.list()).items);
    for (const secret of [HEADER, HOOK_SECRET, 'mcp-secret-key-4321']) expect(shown).not.toContain(secret);
    expect(created.webhooks?.secret).toEqual({ set: true, last4: '5555' });
    const raw = (await redis.get(k.tenant('tools-tenant')))!;
    for (const secret of [HEADER, HOOK_SECRET, 'mcp-secret-key-4321']) expect(raw).not.toContain(secret);
    const full = await tenants.getWithSecrets('tools-tenant');
    expect(full.tools?.[0]?.webhook.headers).toEqual({ Authorization: HEADER });
    expect(full.mcpServers?.[0]?.headers).toEqual({ 'X-Key': 'mcp-secret-key-4321' });
    expect(full.webhooks?.secret).toBe(HOOK_SECRET);
  });

  it('keeps a stored secret when the masked value is sent back, and replaces it when a new one is', async () => {
    const shown = await tenants.get('tools-tenant');
    await tenants.update('tools-tenant', { tools: shown.tools as never, webhooks: shown.webhooks as never, displayName: 'Tools 2' });
    let full = await tenants.getWithSecrets('tools-tenant');
    expect(full.tools?.[0]?.webhook.headers).toEqual({ Authorization: HEADER });
    expect(full.webhooks?.secret).toBe(HOOK_SECRET);
    await tenants.update('tools-tenant', { webhooks: { secret: 'a-brand-new-secret-0000' } });
    full = await tenants.getWithSecrets('tools-tenant');
    expect(full.webhooks?.secret).toBe('a-brand-new-secret-0000');
    expect(full.webhooks?.callEnd?.url).toBe('https://93.184.216.34/end');
  });

  it('refuses a tool, MCP or webhook URL on a private address (400 naming the field) and a bad parameters schema', async () => {
    const privateTool = await caught(tenants.create({ ...toolsTenant, id: 'private-tool', tools: [{ ...toolsTenant.tools[0]!, webhook: { url: 'http://10.0.0.8/hours' } }] }));
    expect(privateTool.status).toBe(400);
    expect(privateTool.message).toMatch(/tools\.0\.webhook\.url .*10\.0\.0\.8/);
    const metadata = await caught(tenants.update('tools-tenant', { webhooks: { callStart: { url: 'http://169.254.169.254/latest' } } }));
    expect(metadata.message).toMatch(/webhooks\.callStart\.url/);
    const badSchema = await caught(tenants.create({ ...toolsTenant, id: 'bad-schema', tools: [{ ...toolsTenant.tools[0]!, parameters: { type: 'object', properties: { day: { type: 'text' } } } }] }));
    expect(badSchema.status).toBe(400);
    expect(JSON.stringify(badSchema.details)).toContain('tools.0.parameters.properties.day.type');
    const allowed = new TenantStore(redis, secrets, { prefix, allowPrivateDestinations: true });
    await allowed.create({ ...toolsTenant, id: 'private-ok', tools: [{ ...toolsTenant.tools[0]!, webhook: { url: 'http://127.0.0.1:9/hours' } }] });
    await allowed.delete('private-ok');
    await tenants.delete('tools-tenant');
  });
});
