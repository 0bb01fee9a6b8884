import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveAgentConfig } from './AgentConfig.js';
import { cloudEnvFrom, demoProviders, envKeys, providerRegistry, type CloudEnv } from './cloudProviders.js';

/** Which provider a tenant's call gets, with which key: the registry's wiring, against a local chat server. */
let server: Server;
let baseURL: string;
const authSeen: (string | undefined)[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    authSeen.push(req.headers.authorization);
    req.resume();
    req.on('end', () => {
      if (req.headers.authorization === 'Bearer sk-revoked') {
        res.writeHead(401, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify({ error: { message: 'invalid key' } }));
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content: 'Hi.' }, finish_reason: null }] })}\n\n`);
      res.end('data: [DONE]\n\n');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  baseURL = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1`;
});

afterAll(() => {
  server.closeAllConnections();
  server.close();
});

const noCloud: CloudEnv = cloudEnvFrom({});
const signal = new AbortController().signal;

async function firstText(events: AsyncIterable<{ type: string; text?: string }>): Promise<string> {
  let text = '';
  for await (const e of events) if (e.type === 'text') text += e.text;
  return text.trim();
}

describe('cloud provider wiring', () => {
  it('reads the environment; a base URL alone (Ollama, vLLM) is enough for the OpenAI-compatible LLM', () => {
    const env = cloudEnvFrom({ OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1', DEEPGRAM_API_KEY: ' dg-key ', ELEVENLABS_API_KEY: '' });
    expect(env.openai).toEqual({ apiKey: undefined, baseURL: 'http://127.0.0.1:11434/v1', model: undefined });
    expect(envKeys(env)).toEqual({ openai: 'no-key', deepgram: 'dg-key', elevenlabs: undefined });
    expect(demoProviders(env)).toEqual({ stt: 'deepgram', llm: 'openai', tts: 'flite' });
    expect(demoProviders(noCloud)).toEqual({ stt: 'pocketsphinx', llm: 'scripted', tts: 'flite' });
    expect(demoProviders(cloudEnvFrom({ OPENAI_API_KEY: 'sk', ELEVENLABS_API_KEY: 'el' }))).toEqual({ stt: 'pocketsphinx', llm: 'openai', tts: 'elevenlabs' });
  });

  it('every chain ends in the offline provider; a vendor with no key anywhere is skipped', async () => {
    const registry = providerRegistry(noCloud);
    try {
      const config = resolveAgentConfig({ tenantId: 't', voice: '21m00Tcm4TlvDq8ikWAM', providers: { stt: 'deepgram', llm: 'openai', tts: ['elevenlabs', 'openai'] } });
      const p = registry.forCall(config);
      expect([p.stt.name, p.llm.name, p.tts.name]).toEqual(['pocketsphinx', 'scripted', 'flite']);
      // flite cannot speak an ElevenLabs voice id: it gets its own voice, and real audio comes back.
      let samples = 0;
      for await (const chunk of p.tts.synthesize({ text: 'Hello.', voice: config.voice, signal })) samples += chunk.samples.length;
      expect(samples).toBeGreaterThan(1000);

      const withKeys = registry.forCall(config, { deepgram: 'dg', openai: 'sk', elevenlabs: 'el' });
      expect([withKeys.stt.name, withKeys.llm.name, withKeys.tts.name]).toEqual(['deepgram>pocketsphinx', 'openai>scripted', 'elevenlabs>openai>flite']);
      expect(() => registry.forCall(resolveAgentConfig({ tenantId: 't', providers: { llm: 'gpt-unknown' } }))).toThrow(/CG_PROVIDER_UNKNOWN|no provider of that name/);
    } finally {
      await registry.close();
    }
  });

  it("a tenant's own key wins over the environment's, and each key has its own circuit", async () => {
    const env = cloudEnvFrom({ OPENAI_API_KEY: 'sk-env', OPENAI_BASE_URL: baseURL });
    const registry = providerRegistry(env);
    try {
      const config = resolveAgentConfig({ tenantId: 't', providers: { llm: 'openai' } });
      expect(await firstText(registry.forCall(config, { openai: 'sk-tenant' }).llm.stream({ messages: [{ role: 'user', content: 'hi' }], signal }))).toBe('Hi.');
      expect(await firstText(registry.forCall(config).llm.stream({ messages: [{ role: 'user', content: 'hi' }], signal }))).toBe('Hi.');
      expect(authSeen.slice(-2)).toEqual(['Bearer sk-tenant', 'Bearer sk-env']);
      expect(registry.breakers.openKeys()).toEqual([]);

      // A tenant whose key was revoked: its calls fall to the offline responder at once, its circuit
      // opens (named without the key), and the other tenants' calls on the environment key go on.
      const revoked = await firstText(registry.forCall(config, { openai: 'sk-revoked' }).llm.stream({ messages: [{ role: 'user', content: 'hi' }], signal }));
      expect(revoked).toBe(config.fallbackReply);
      const open = registry.breakers.openKeys();
      expect(open).toHaveLength(1);
      expect(open[0]).toMatch(/^llm:openai:[0-9a-f]{12}$/);
      const before = authSeen.length;
      await firstText(registry.forCall(config, { openai: 'sk-revoked' }).llm.stream({ messages: [{ role: 'user', content: 'hi' }], signal }));
      expect(authSeen.length).toBe(before); // skipped: no request for a key known to be bad
      expect(await firstText(registry.forCall(config).llm.stream({ messages: [{ role: 'user', content: 'hi' }], signal }))).toBe('Hi.');
    } finally {
      await registry.close();
    }
  });
});
