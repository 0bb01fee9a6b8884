import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCatalogue } from '../errors.js';
import { hashApiKey } from '../tenants/ApiKeyStore.js';
import { CallRecorder } from '../tenants/CallRecorder.js';
import { CallRecordStore } from '../tenants/CallRecordStore.js';
import { keys } from '../tenants/redisClient.js';
import { startAdminApp, type TestAdminApp } from './testing/testKit.js';

/** Every admin API resource over real HTTP on 127.0.0.1 against the real Redis (a per-run prefix). */
let t: TestAdminApp;

beforeAll(async () => {
  t = await startAdminApp({ publicBaseUrl: 'https://calls.example.com/' });
  expect((await t.call('POST', '/v1/tenants', { id: 'acme', displayName: 'Acme', greeting: 'Hi, {{agentName}} of {{business}} for {{name|you}}.' })).status).toBe(201);
});

afterAll(async () => {
  await t.close();
});

describe('admin API: call URLs', () => {
  it('creates, reads, lists, patches and deletes a call URL with its full public URL', async () => {
    t.invalidated.length = 0;
    const created = await t.call('POST', '/v1/tenants/acme/call-urls', { slug: 'spring-sale', variables: { name: 'Sam' }, maxUses: 5 });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ slug: 'spring-sale', tenantId: 'acme', url: 'https://calls.example.com/c/spring-sale', uses: 0, maxUses: 5 });
    const random = await t.call('POST', '/v1/tenants/acme/call-urls', {});
    expect(random.body!['slug']).toMatch(/^[A-Za-z0-9]{22}$/);
    expect(random.body).toMatchObject({
      url: `https://calls.example.com/c/${String(random.body!['slug'])}`,
      embed: `<script src="https://calls.example.com/widget.js" data-call-url="${String(random.body!['slug'])}" async></script>`,
    });
    expect((await t.call('GET', '/v1/tenants/acme/call-urls/spring-sale')).body).toMatchObject({ variables: { name: 'Sam' } });
    const list = await t.call('GET', '/v1/tenants/acme/call-urls');
    expect((list.body as unknown as { slug: string }[]).map((u) => u.slug).sort()).toEqual([random.body!['slug'], 'spring-sale'].sort());
    const patched = await t.call('PATCH', '/v1/tenants/acme/call-urls/spring-sale', { enabled: false, maxUses: null });
    expect(patched.body).toMatchObject({ enabled: false, url: 'https://calls.example.com/c/spring-sale' });
    expect(patched.body).not.toHaveProperty('maxUses');
    expect((await t.call('DELETE', '/v1/tenants/acme/call-urls/spring-sale')).status).toBe(204);
    expect((await t.call('GET', '/v1/tenants/acme/call-urls/spring-sale')).body!['code']).toBe('CG_CALL_URL_NOT_FOUND');
    expect(t.invalidated).toEqual(['acme', 'acme', 'acme', 'acme']);
  });

  it('gives absolute URLs on the address the request came to when PUBLIC_BASE_URL is not set', async () => {
    const bare = await startAdminApp();
    try {
      expect((await bare.call('POST', '/v1/tenants', { id: 'acme', displayName: 'Acme' })).status).toBe(201);
      const created = await bare.call('POST', '/v1/tenants/acme/call-urls', {});
      expect(created.status).toBe(201);
      const slug = String(created.body!['slug']);
      expect(created.body).toMatchObject({ url: `${bare.base}/c/${slug}`, embed: `<script src="${bare.base}/widget.js" data-call-url="${slug}" async></script>` });
      expect(((await bare.call('GET', '/v1/tenants/acme/call-urls')).body as unknown as { url: string }[])[0]!.url).toBe(`${bare.base}/c/${slug}`);
      expect((await bare.call('GET', `/v1/tenants/acme/call-urls/${slug}`)).body!['url']).toBe(`${bare.base}/c/${slug}`);
      expect((await bare.call('PATCH', `/v1/tenants/acme/call-urls/${slug}`, { enabled: false })).body!['url']).toBe(`${bare.base}/c/${slug}`);
    } finally {
      await bare.close();
    }
  });

  it('refuses invalid call URLs, a body naming another tenant, and an unknown tenant', async () => {
    const bad = await t.call('POST', '/v1/tenants/acme/call-urls', { slug: 'a b', expiresAt: 'tomorrow' });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'CG_TENANT_INVALID' });
    expect((bad.body!['details'] as { issues: { path: string }[] }).issues.map((i) => i.path).sort()).toEqual(['expiresAt', 'slug']);
    const other = await t.call('POST', '/v1/tenants/acme/call-urls', { tenantId: 'someone-else' });
    expect(other).toMatchObject({ status: 400, body: { code: 'CG_HTTP_BAD_REQUEST' } });
    expect((await t.call('POST', '/v1/tenants/acme/call-urls', [1, 2])).body!['code']).toBe('CG_HTTP_BAD_REQUEST');
    expect((await t.call('GET', '/v1/tenants/nobody/call-urls')).body!['code']).toBe('CG_TENANT_NOT_FOUND');
    expect((await t.call('POST', '/v1/tenants/nobody/call-urls', {})).body!['code']).toBe('CG_TENANT_NOT_FOUND');
  });
});

describe('admin API: numbers and trunks', () => {
  it('routes, reads, moves and deletes numbers (URL-encoded), and CRUDs trunks without returning passwords', async () => {
    const trunk = await t.call('POST', '/v1/trunks', { name: 'carrier-a', sourceCidrs: ['203.0.113.0/24'], tenants: ['acme'], auth: { username: 'gw', password: 'very-secret-password' } });
    expect(trunk.status).toBe(201);
    expect(JSON.stringify(trunk.body)).not.toContain('very-secret-password');
    expect(trunk.body).toMatchObject({ auth: { username: 'gw', password: { set: true, last4: 'word' } } });
    expect((await t.call('GET', '/v1/trunks')).body).toHaveLength(1);
    const patchedTrunk = await t.call('PATCH', '/v1/trunks/carrier-a', { sourceCidrs: ['198.51.100.0/24'] });
    expect(patchedTrunk.body).toMatchObject({ sourceCidrs: ['198.51.100.0/24'], auth: { username: 'gw' } });
    expect(JSON.stringify((await t.call('GET', '/v1/trunks/carrier-a')).body)).not.toContain('very-secret-password');
    expect(t.invalidated.at(-1)).toBe('*');

    const created = await t.call('POST', '/v1/tenants/acme/numbers', { number: '+14155550100', trunk: 'carrier-a' });
    expect(created).toMatchObject({ status: 201, body: { number: '+14155550100', tenantId: 'acme', trunk: 'carrier-a' } });
    const sip = await t.call('POST', '/v1/tenants/acme/numbers', { number: 'sip:Support@Example.COM;transport=tcp' });
    expect(sip.body).toMatchObject({ number: 'sip:Support@example.com' });
    expect((await t.call('GET', `/v1/tenants/acme/numbers/${encodeURIComponent('+14155550100')}`)).body).toMatchObject({ trunk: 'carrier-a' });
    expect((await t.call('GET', `/v1/tenants/acme/numbers/${encodeURIComponent('sip:Support@example.com')}`)).status).toBe(200);
    expect((await t.call('GET', '/v1/tenants/acme/numbers')).body).toHaveLength(2);
    const unpinned = await t.call('PATCH', `/v1/tenants/acme/numbers/${encodeURIComponent('+14155550100')}`, { trunk: null });
    expect(unpinned.body).toEqual({ number: '+14155550100', tenantId: 'acme' });
    const dup = await t.call('POST', '/v1/tenants/acme/numbers', { number: '+14155550100' });
    expect(dup).toMatchObject({ status: 409, body: { code: 'CG_NUMBER_EXISTS' } });
    const bad = await t.call('POST', '/v1/tenants/acme/numbers', { number: '555-0100' });
    expect(bad).toMatchObject({ status: 400, body: { code: 'CG_TENANT_INVALID' } });
    expect((await t.call('DELETE', `/v1/tenants/acme/numbers/${encodeURIComponent('+14155550100')}`)).status).toBe(204);
    expect((await t.call('GET', `/v1/tenants/acme/numbers/${encodeURIComponent('+14155550100')}`)).body!['code']).toBe('CG_NUMBER_NOT_FOUND');

    expect((await t.call('POST', '/v1/trunks', { name: 'carrier-b', sourceCidrs: [] })).body!['code']).toBe('CG_TENANT_INVALID');
    expect((await t.call('DELETE', '/v1/trunks/carrier-a')).status).toBe(204);
    expect((await t.call('GET', '/v1/trunks/carrier-a')).body!['code']).toBe('CG_TRUNK_NOT_FOUND');
  });

  it("reads another tenant's number or call URL through this tenant's path as not found", async () => {
    await t.call('POST', '/v1/tenants', { id: 'other', displayName: 'Other' });
    await t.call('POST', '/v1/tenants/other/numbers', { number: '+14155550199' });
    await t.call('POST', '/v1/tenants/other/call-urls', { slug: 'others-link' });
    expect((await t.call('GET', `/v1/tenants/acme/numbers/${encodeURIComponent('+14155550199')}`)).status).toBe(404);
    expect((await t.call('DELETE', `/v1/tenants/acme/numbers/${encodeURIComponent('+14155550199')}`)).status).toBe(404);
    expect((await t.call('GET', '/v1/tenants/acme/call-urls/others-link')).status).toBe(404);
    expect((await t.call('PATCH', '/v1/tenants/acme/call-urls/others-link', { enabled: false })).status).toBe(404);
    expect((await t.call('GET', '/v1/tenants/other/call-urls/others-link')).body).toMatchObject({ enabled: true });
  });
});

describe('admin API: keys, active calls, greeting preview, docs', () => {
  it('shows a key once, keeps only its hash, lets it read its tenant, and revokes it', async () => {
    const created = await t.call('POST', '/v1/tenants/acme/keys', { name: 'dashboard' });
    expect(created.status).toBe(201);
    const key = created.body!['key'] as string;
    const keyId = created.body!['keyId'] as string;
    expect(key).toMatch(/^cgk_/);
    const raw = await t.redis.get(keys(t.prefix).apiKey(hashApiKey(key)));
    expect(JSON.parse(raw!)).toMatchObject({ tenantId: 'acme', keyId, name: 'dashboard' });
    expect(raw).not.toContain(key.slice(17));
    const list = await t.call('GET', '/v1/tenants/acme/keys');
    expect(list.body).toEqual([{ keyId, tenantId: 'acme', name: 'dashboard', createdAt: created.body!['createdAt'] }]);
    expect(JSON.stringify(list.body)).not.toContain(key.slice(17));

    expect((await t.call('GET', '/v1/tenants/acme', undefined, key)).body).toMatchObject({ id: 'acme' });
    expect((await t.call('PATCH', '/v1/tenants/acme', { agentName: 'Max' }, key)).body).toMatchObject({ agentName: 'Max' });
    const limit = await t.call('PATCH', '/v1/tenants/acme', { maxConcurrentCalls: 9999 }, key);
    expect(limit).toMatchObject({ status: 403, body: { code: 'CG_HTTP_FORBIDDEN' } });
    expect((await t.call('DELETE', `/v1/tenants/acme/keys/${keyId}`)).status).toBe(204);
    expect((await t.call('GET', '/v1/tenants/acme', undefined, key)).status).toBe(401);
    expect((await t.call('DELETE', `/v1/tenants/acme/keys/${keyId}`)).body!['code']).toBe('CG_API_KEY_NOT_FOUND');
  });

  it('revokes every key of a deleted tenant', async () => {
    await t.call('POST', '/v1/tenants', { id: 'short-lived', displayName: 'Gone Soon' });
    const key = (await t.call('POST', '/v1/tenants/short-lived/keys', {})).body!['key'] as string;
    expect((await t.call('GET', '/v1/tenants/short-lived', undefined, key)).status).toBe(200);
    expect((await t.call('DELETE', '/v1/tenants/short-lived')).status).toBe(204);
    await t.call('POST', '/v1/tenants', { id: 'short-lived', displayName: 'Back Again' });
    expect((await t.call('GET', '/v1/tenants/short-lived', undefined, key)).status).toBe(401);
  });

  it('reports active calls against the limit', async () => {
    expect((await t.call('GET', '/v1/tenants/acme/active-calls')).body).toEqual({ active: 0, limit: 10 });
    expect((await t.call('GET', '/v1/tenants/nobody/active-calls')).body!['code']).toBe('CG_TENANT_NOT_FOUND');
  });

  it('speaks the greeting preview as a RIFF WAV, and refuses a missing variable', async () => {
    const res = await fetch(`${t.base}/v1/tenants/acme/greeting-preview`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ variables: { name: 'Sam' } }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('audio/wav');
    const wav = Buffer.from(await res.arrayBuffer());
    expect(wav.subarray(0, 4).toString('latin1')).toBe('RIFF');
    expect(wav.subarray(8, 12).toString('latin1')).toBe('WAVE');
    const rate = wav.readUInt32LE(24);
    const seconds = (wav.length - 44) / 2 / rate;
    // "Hi, Max of Acme for Sam." is about 1.5 s of speech.
    expect(seconds).toBeGreaterThan(0.8);
    expect(seconds).toBeLessThan(5);

    expect(res.headers.get('x-callgate-voice')).toBe('slt');
    const voiceOf = async (voice: string) => {
      await t.call('PATCH', '/v1/tenants/acme', { voice });
      const r = await fetch(`${t.base}/v1/tenants/acme/greeting-preview`, { method: 'POST', headers: { authorization: `Bearer ${t.token}` } });
      await r.arrayBuffer();
      return r.headers.get('x-callgate-voice');
    };
    expect(await voiceOf('rms')).toBe('rms');
    // A voice of another TTS vendor is previewed in flite's default voice.
    expect(await voiceOf('en-US-Neural2-C')).toBe('slt');

    // A greeting whose variables no call provides cannot be saved, so a preview never meets one.
    const missing = await t.call('PATCH', '/v1/tenants/acme', { greeting: 'Hello {{caller}}' });
    expect(missing).toMatchObject({ status: 400, body: { code: 'CG_TENANT_INVALID' } });
    const badBody = await t.call('POST', '/v1/tenants/acme/greeting-preview', { variables: { name: 5 } });
    expect(badBody).toMatchObject({ status: 400, body: { code: 'CG_TENANT_INVALID' } });
  });

  it('serves the OpenAPI JSON and the docs page without a token', async () => {
    const spec = await fetch(`${t.base}/docs/json`);
    expect(spec.status).toBe(200);
    const doc = (await spec.json()) as { openapi: string; paths: Record<string, Record<string, { requestBody?: unknown }>> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/tenants', '/v1/tenants/{id}/call-urls/{slug}', '/v1/trunks/{name}', '/v1/tenants/{id}/greeting-preview']));
    expect(JSON.stringify(doc.paths['/v1/tenants']!['post']!.requestBody)).toContain('displayName');
    const page = await fetch(`${t.base}/docs`, { redirect: 'follow' });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('swagger');
    // The page's script comes from the npm package, not a CDN: the docs work offline.
    const bundle = await fetch(`${t.base}/docs/static/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
    const noToken = await fetch(`${t.base}/v1/tenants`);
    expect(noToken.status).toBe(401);
    await noToken.arrayBuffer();
  });
});

describe('admin API: call records', () => {
  it('lists a tenant\'s call records newest first with paging, and reads one with its transcript', async () => {
    const store = new CallRecordStore(t.redis, { prefix: t.prefix });
    for (const i of [1, 2, 3]) {
      const recorder = new CallRecorder(store, { callId: `call-${i}`, tenantId: 'acme', door: 'test', from: 'caller', to: '/c/demo' });
      recorder.observe({ type: 'transcript', atMs: 100, turn: 1, text: `question ${i}`, final: true });
      await recorder.finish({ outcome: 'caller-hangup' });
    }
    await store.close();
    const first = await t.call('GET', '/v1/tenants/acme/calls?limit=2');
    expect(first.status).toBe(200);
    const page = first.body as unknown as { records: { callId: string }[]; next?: string };
    expect(page.records.map((r) => r.callId)).toEqual(['call-3', 'call-2']);
    const second = await t.call('GET', `/v1/tenants/acme/calls?limit=2&before=${encodeURIComponent(page.next!)}`);
    expect((second.body as unknown as { records: { callId: string }[] }).records.map((r) => r.callId)).toEqual(['call-1']);
    const one = await t.call('GET', '/v1/tenants/acme/calls/call-2');
    expect(one.body).toMatchObject({ callId: 'call-2', outcome: 'caller-hangup', transcript: [{ role: 'caller', text: 'question 2' }] });
    expect((await t.call('GET', '/v1/tenants/acme/calls/nope')).body!['code']).toBe('CG_CALL_RECORD_NOT_FOUND');
    expect((await t.call('GET', '/v1/tenants/acme/calls?limit=x')).body!['code']).toBe('CG_HTTP_BAD_REQUEST');
  });
});

describe('admin API: unknown fields are refused at every level (issue 24)', () => {
  const issuesOf = (body: Record<string, unknown> | undefined) => (body?.['details'] as { issues: { path: string; message: string }[] }).issues;

  it("answers 400 naming the typo for the probe's examples, and changes nothing", async () => {
    await t.call('POST', '/v1/tenants', { id: 'typos', displayName: 'Typos', turn: { endpointingMs: 500 } });
    const cases: [Record<string, unknown>, string[]][] = [
      [{ turn: { endpointingMS: 300, bargein: false } }, ['turn.endpointingMS', 'turn.bargein']],
      [{ goodbye: { phrase: ['bye'] } }, ['goodbye.phrase']],
      [{ providers: { model: { llm: 'gpt' } } }, ['providers.model']],
      [{ intents: [{ name: 'hours', phrases: ['hours'], reply: 'Nine to five.', dtmff: '1' }] }, ['intents.0.dtmff']],
    ];
    for (const [patch, paths] of cases) {
      const res = await t.call('PATCH', '/v1/tenants/typos', patch);
      expect(res.status, JSON.stringify(patch)).toBe(400);
      expect(res.body!['code']).toBe('CG_TENANT_INVALID');
      expect(issuesOf(res.body)).toEqual(paths.map((path) => ({ path, message: 'is not a known field' })));
      expect(res.body!['message']).toContain(paths[0]);
    }
    expect((await t.call('POST', '/v1/tenants', { id: 'typos-2', displayName: 'T', goodbye: { phrase: ['bye'] } })).status).toBe(400);
    const stored = await t.call('GET', '/v1/tenants/typos');
    expect(stored.body).toMatchObject({ turn: { endpointingMs: 500 } });
    expect(stored.body).not.toHaveProperty('goodbye');
    expect(stored.body).not.toHaveProperty('intents');

    const trunk = await t.call('POST', '/v1/trunks', { name: 'typo-trunk', sourceCidrs: ['192.0.2.0/24'], auth: { username: 'u', password: 'long-enough-1', realm: 'x' } });
    expect(trunk.status).toBe(400);
    expect(issuesOf(trunk.body)).toEqual([{ path: 'auth.realm', message: 'is not a known field' }]);
    await t.call('POST', '/v1/trunks', { name: 'typo-trunk', sourceCidrs: ['192.0.2.0/24'], auth: { username: 'u', password: 'long-enough-1' } });
    const patched = await t.call('PATCH', '/v1/trunks/typo-trunk', { auth: { realm: 'x' } });
    expect(patched.status).toBe(400);
    expect(issuesOf(patched.body)).toEqual([{ path: 'auth.realm', message: 'is not a known field' }]);
    const url = await t.call('POST', '/v1/tenants/typos/call-urls', { slug: 'typo-url', maxUse: 3 });
    expect(url.status).toBe(400);
    expect(issuesOf(url.body)).toEqual([{ path: 'maxUse', message: 'is not a known field' }]);
  });

  it('documents every request body as closed: each object in the OpenAPI spec has additionalProperties: false', async () => {
    const spec = (await (await fetch(`${t.base}/docs/json`)).json()) as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: unknown }> } }>> };
    const open: string[] = [];
    const visit = (node: unknown, where: string): void => {
      if (Array.isArray(node)) return node.forEach((n, i) => visit(n, `${where}[${i}]`));
      if (typeof node !== 'object' || node === null) return;
      const o = node as Record<string, unknown>;
      if (o['type'] === 'object' && o['properties'] && o['additionalProperties'] !== false) open.push(where);
      for (const [k, v] of Object.entries(o)) visit(v, `${where}.${k}`);
    };
    let bodies = 0;
    for (const [path, ops] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const schema = op.requestBody?.content['application/json']?.schema;
        if (!schema) continue;
        bodies++;
        visit(schema, `${method.toUpperCase()} ${path}`);
      }
    }
    expect(bodies).toBeGreaterThanOrEqual(10);
    expect(open).toEqual([]);
  });

  it('refuses control and bidi characters in names with 400 naming the path', async () => {
    for (const displayName of ['Joe\u0000s', 'Joe\u0007s', 'Joe\u202es']) {
      const res = await t.call('PATCH', '/v1/tenants/typos', { displayName });
      expect(res.status).toBe(400);
      expect(issuesOf(res.body).map((i) => i.path)).toEqual(['displayName']);
    }
    expect((await t.call('PATCH', '/v1/tenants/typos', { greeting: 'Hello,\nwelcome to {{business}}.' })).status).toBe(200);
  });
});

describe('admin API: call record cursors are client errors, not outages (issue 24)', () => {
  it('answers 400 CG_CALL_RECORD_INVALID (not retryable) for a cursor no page gives, before Redis sees it', async () => {
    const reasons: Record<string, RegExp> = {
      '0-0': /cannot be 0-0/,
      '00-000': /cannot be 0-0/,
      abc: /must look like <ms>-<seq>/,
      '1-': /must look like/,
      '99999999999999999999-0': /out of range/,
      '1-18446744073709551616': /out of range/,
    };
    for (const [before, reason] of Object.entries(reasons)) {
      const res = await t.call('GET', `/v1/tenants/acme/calls?before=${encodeURIComponent(before)}`);
      expect(res.status, before).toBe(400);
      expect(res.body!['code'], before).toBe('CG_CALL_RECORD_INVALID');
      // Refused by the check before Redis, with the reason (Redis's own refusal would be 400 too, without it).
      expect(res.body!['message'], before).toMatch(reason);
    }
    expect(errorCatalogue.CG_CALL_RECORD_INVALID.retryable).toBe(false);
    // The largest cursor Redis takes is a cursor (an empty page).
    const max = await t.call('GET', `/v1/tenants/acme/calls?before=${encodeURIComponent('18446744073709551615-18446744073709551615')}`);
    expect(max.status).toBe(200);
    expect((await t.call('GET', '/v1/tenants/acme/calls?before=0-1')).body).toEqual({ records: [] });
  });
});

describe('admin API: trunks belong to the tenants they list (issue 24)', () => {
  let d: TestAdminApp;
  const dialed: { tenantId: string; trunk: string }[] = [];
  let acmeKey: string;
  beforeAll(async () => {
    // A stand-in for the SIP door: what matters here is whether the route lets the call through to it.
    d = await startAdminApp({ dialer: { dial: async (req) => (dialed.push({ tenantId: req.tenantId, trunk: 'trunk' in req ? req.trunk : '' }), { callId: `out-${dialed.length}` }) } });
    for (const id of ['acme', 'other']) await d.call('POST', '/v1/tenants', { id, displayName: id });
    acmeKey = (await d.call('POST', '/v1/tenants/acme/keys', {})).body!['key'] as string;
    const outbound = { host: 'sip.carrier.example' };
    expect((await d.call('POST', '/v1/trunks', { name: 'acme-carrier', sourceCidrs: ['192.0.2.0/24'], tenants: ['acme'], outbound })).status).toBe(201);
    expect((await d.call('POST', '/v1/trunks', { name: 'other-carrier', sourceCidrs: ['198.51.100.0/24'], tenants: ['other'], outbound })).status).toBe(201);
    expect((await d.call('POST', '/v1/trunks', { name: 'legacy-carrier', sourceCidrs: ['203.0.113.0/24'], outbound })).status).toBe(201);
  });
  afterAll(async () => {
    await d.close();
  });

  it("refuses a tenant key dialling out on another customer's trunk, with the same answer as a trunk that does not exist", async () => {
    const dial = (trunk: string) => d.call('POST', '/v1/tenants/acme/calls', { to: '+14155550123', trunk }, acmeKey);
    const theirs = await dial('other-carrier');
    const unlisted = await dial('legacy-carrier');
    const missing = await dial('no-such-carrier');
    for (const [res, name] of [[theirs, 'other-carrier'], [unlisted, 'legacy-carrier'], [missing, 'no-such-carrier']] as const) {
      expect(res.status).toBe(404);
      expect(JSON.stringify(res.body).replaceAll(name, 'X')).toBe(JSON.stringify(missing.body).replaceAll('no-such-carrier', 'X'));
    }
    expect(dialed).toEqual([]);
    expect(await dial('acme-carrier')).toMatchObject({ status: 202, body: { callId: 'out-1', status: 'dialing' } });
    expect(dialed).toEqual([{ tenantId: 'acme', trunk: 'acme-carrier' }]);
  });

  it('holds for the admin route too, and a trunk listing * is every tenant\'s', async () => {
    dialed.length = 0;
    const admin = await d.call('POST', '/v1/calls', { tenant: 'acme', to: '+14155550123', trunk: 'other-carrier' });
    expect(admin).toMatchObject({ status: 404, body: { code: 'CG_TRUNK_NOT_FOUND' } });
    expect(dialed).toEqual([]);
    await d.call('PATCH', '/v1/trunks/legacy-carrier', { tenants: ['*'] });
    expect((await d.call('POST', '/v1/calls', { tenant: 'other', to: '+14155550123', trunk: 'legacy-carrier' })).status).toBe(202);
    expect((await d.call('POST', '/v1/tenants/acme/calls', { to: '+14155550123', trunk: 'legacy-carrier' }, acmeKey)).status).toBe(202);
    expect(dialed.map((x) => x.tenantId)).toEqual(['other', 'acme']);
  });

  it("pins a number only to a trunk its tenant may use, and a deleted tenant's id loses its trunks", async () => {
    const pin = await d.call('POST', '/v1/tenants/acme/numbers', { number: '+14155550777', trunk: 'other-carrier' });
    expect(pin.status).toBe(400);
    expect(issuesOf(pin.body)).toEqual([{ path: 'trunk', message: expect.stringContaining("does not list tenant 'acme'") }]);
    expect((await d.call('POST', '/v1/tenants/acme/numbers', { number: '+14155550777', trunk: 'acme-carrier' })).status).toBe(201);
    const drop = await d.call('PATCH', '/v1/trunks/acme-carrier', { tenants: ['other'] });
    expect(drop).toMatchObject({ status: 409, body: { code: 'CG_TRUNK_IN_USE', details: { numbers: ['+14155550777'] } } });

    await d.call('POST', '/v1/tenants', { id: 'brief', displayName: 'Brief' });
    await d.call('PATCH', '/v1/trunks/other-carrier', { tenants: ['other', 'brief'] });
    expect((await d.call('DELETE', '/v1/tenants/brief')).status).toBe(204);
    expect((await d.call('GET', '/v1/trunks/other-carrier')).body).toMatchObject({ tenants: ['other'] });
    await d.call('POST', '/v1/tenants', { id: 'brief', displayName: 'Someone else' });
    expect((await d.call('POST', '/v1/calls', { tenant: 'brief', to: '+14155550123', trunk: 'other-carrier' })).status).toBe(404);
  });

  const issuesOf = (body: Record<string, unknown> | undefined) => (body?.['details'] as { issues: { path: string; message: string }[] }).issues;
});
