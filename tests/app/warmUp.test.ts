import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { PromptCache } from '../../src/agent/PromptCache.js';
import { ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { createVad } from '../../src/agent/vad/createVad.js';
import { warmUp } from '../../src/app/warmUp.js';
import { CallgateError } from '../../src/errors.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/testing/FakeProviders.js';
import { tenantSchema, type Tenant } from '../../src/tenants/schema.js';
import { agentConfigFor } from '../../src/tenants/TenantStore.js';
import { TestCall } from '../agent/harness.js';

/**
 * src/app/warmUp.ts in process: the prompts it makes are the very ones a call of the tenant asks the
 * cache for (a call after it synthesises nothing), and no failure of a step — a provider's warm-up, an
 * unknown tenant — stops the others or escapes as an error.
 */
const tenant: Tenant = tenantSchema.parse({
  id: 'shop',
  displayName: 'Corner Shop',
  agentName: 'Max',
  greeting: 'Hello, this is {{agentName}} at {{business}}, how can I help? Ask me anything.',
  apology: 'Sorry, something went wrong on my side, could you say that again?',
  providers: { stt: 'fake', llm: 'fake', tts: 'fake' },
});

function setUp(): { tts: FakeTts; registry: ProviderRegistry; prompts: PromptCache; warmed: string[] } {
  const tts = new FakeTts({ msPerChar: 5 });
  const registry = new ProviderRegistry({ stt: { fake: () => new FakeStt() }, llm: { fake: () => new FakeLlm() }, tts: { fake: () => tts } });
  const warmed: string[] = [];
  registry.onWarmUp('engine', async () => void warmed.push('engine'));
  registry.onWarmUp('broken', () => Promise.reject(new Error('model missing')));
  return { tts, registry, prompts: new PromptCache(), warmed };
}

const tenants = {
  get: async (id: string): Promise<Tenant> => {
    if (id === tenant.id) return tenant;
    throw new CallgateError('CG_TENANT_NOT_FOUND', id);
  },
};

describe('warmUp', () => {
  it("makes a tenant's greeting and fixed phrases under the keys its calls use: the call after it synthesises nothing", async () => {
    const { tts, registry, prompts } = setUp();
    await warmUp({ providers: registry, prompts, tenants, createVad: () => createVad(), logger: pino({ level: 'silent' }) }, { tenantIds: ['shop'], codecs: ['PCMU'] });
    const warmedRequests = tts.requests.length;
    const { misses } = prompts.stats();

    const { config, variables } = agentConfigFor(tenant);
    const call = await TestCall.open({ config, variables, providers: registry.forCall(config), prompts });
    try {
      await call.session.start();
      const greeting = await call.next('greeting');
      expect(greeting.text).toBe('Hello, this is Max at Corner Shop, how can I help? Ask me anything.');
      expect(greeting.cached).toBe(true);
      // The session asks for its fixed phrases after the greeting's first packet: give it that long.
      await call.next('agent-text');
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(prompts.stats().misses).toBe(misses);
      expect(tts.requests.slice(warmedRequests)).toEqual([]);
    } finally {
      await call.close();
    }
  });

  it('reports a failed step and still warms everything else (it never throws)', async () => {
    const { registry, prompts, warmed } = setUp();
    const report = await warmUp({ providers: registry, prompts, tenants, createVad: () => createVad(), logger: pino({ level: 'silent' }) }, { tenantIds: ['gone', 'shop'], codecs: ['opus'] });
    const byName = Object.fromEntries(report.steps.map((s) => [s.name, s.error ?? 'ok']));
    expect(byName).toEqual({
      'provider:engine': 'ok',
      'provider:broken': 'model missing',
      codecs: 'ok',
      vad: 'ok',
      webrtc: 'ok',
      'tenant:gone': 'no tenant with that id: gone',
      'tenant:shop': 'ok',
    });
    expect(warmed).toEqual(['engine']);
    expect(prompts.stats().entries).toBeGreaterThan(7);
  });

  it('gives up on a step that outlasts its timeout, and reports it', async () => {
    const { registry, prompts } = setUp();
    registry.onWarmUp('stuck', () => new Promise(() => undefined));
    const report = await warmUp({ providers: registry, prompts, tenants, createVad: () => createVad(), logger: pino({ level: 'silent' }) }, { tenantIds: [], stepTimeoutMs: 300 });
    expect(report.steps.find((s) => s.name === 'provider:stuck')?.error).toBe('took over 300 ms');
  });
});
