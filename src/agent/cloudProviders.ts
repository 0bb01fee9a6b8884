import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CallgateError } from '../errors.js';
import { OFFLINE_PROVIDERS, ProviderRegistry, registerOfflineProviders, type ProviderRegistryOptions } from './ProviderRegistry.js';
import type { ProviderSelection } from './AgentConfig.js';
import { DeepgramStt } from '../providers/deepgramStt.js';
import { ElevenLabsTts } from '../providers/elevenlabsTts.js';
import { OpenAiLlm } from '../providers/openaiLlm.js';
import { OpenAiStt } from '../providers/openaiStt.js';
import { OpenAiTts } from '../providers/openaiTts.js';
import { OpenAiRealtime } from '../providers/realtime/openaiRealtime.js';
import { GeminiLive } from '../providers/realtime/geminiLive.js';

/**
 * The cloud vendors as registry entries, and what the environment says about them. A tenant's own key
 * (`providerKeys.openai`, `.deepgram`, `.elevenlabs`) wins over the environment's; a provider with no
 * key anywhere is skipped by its chain.
 */
export interface CloudEnv {
  readonly openai: {
    readonly apiKey: string | undefined;
    readonly baseURL: string | undefined;
    readonly model: string | undefined;
    /** OPENAI_REALTIME_CA_FILE's PEM: a CA to trust for the Realtime WebSocket (a private gateway in between). */
    readonly realtimeCa?: string | undefined;
  };
  readonly deepgram: { readonly apiKey: string | undefined; readonly baseUrl: string | undefined };
  /** Gemini Live (speech-to-speech): GEMINI_API_KEY, GEMINI_BASE_URL (a local server in tests). */
  readonly gemini?: { readonly apiKey: string | undefined; readonly baseUrl: string | undefined };
  readonly elevenlabs: { readonly apiKey: string | undefined; readonly baseUrl: string | undefined };
}

const nonEmpty = (v: string | undefined): string | undefined => (v && v.trim() ? v.trim() : undefined);

/** A CA file named in the environment, read at start; a file that cannot be read stops the start. */
function readCa(path: string | undefined): string | undefined {
  if (!path) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CallgateError('CG_CONFIG_INVALID', `OPENAI_REALTIME_CA_FILE could not be read: ${String(err)}`);
  }
}

export function cloudEnvFrom(env: NodeJS.ProcessEnv = process.env): CloudEnv {
  return {
    openai: {
      apiKey: nonEmpty(env['OPENAI_API_KEY']),
      baseURL: nonEmpty(env['OPENAI_BASE_URL']),
      model: nonEmpty(env['OPENAI_MODEL']),
      realtimeCa: readCa(nonEmpty(env['OPENAI_REALTIME_CA_FILE'])),
    },
    gemini: { apiKey: nonEmpty(env['GEMINI_API_KEY']), baseUrl: nonEmpty(env['GEMINI_BASE_URL']) },
    deepgram: { apiKey: nonEmpty(env['DEEPGRAM_API_KEY']), baseUrl: nonEmpty(env['DEEPGRAM_BASE_URL']) },
    elevenlabs: { apiKey: nonEmpty(env['ELEVENLABS_API_KEY']), baseUrl: nonEmpty(env['ELEVENLABS_BASE_URL']) },
  };
}

/**
 * Keys the registry falls back to, by vendor. A local OpenAI-compatible server (Ollama, vLLM) needs no
 * key, but the SDK will not send a request without one: with only `OPENAI_BASE_URL` set, a placeholder
 * goes in the Authorization header.
 */
export function envKeys(env: CloudEnv): Record<string, string | undefined> {
  return {
    openai: env.openai.apiKey ?? (env.openai.baseURL ? 'no-key' : undefined),
    deepgram: env.deepgram.apiKey,
    gemini: env.gemini?.apiKey ?? (env.gemini?.baseUrl ? 'no-key' : undefined),
    elevenlabs: env.elevenlabs.apiKey,
  };
}

/**
 * The demo tenant's providers: offline unless the environment has a vendor configured, in which case
 * that kind goes to the vendor (the offline provider stays behind it as the last resort).
 */
export function demoProviders(env: CloudEnv): { stt: string; llm: string; tts: string } {
  return {
    stt: env.deepgram.apiKey ? 'deepgram' : OFFLINE_PROVIDERS.stt,
    llm: env.openai.apiKey || env.openai.baseURL ? 'openai' : OFFLINE_PROVIDERS.llm,
    tts: env.elevenlabs.apiKey ? 'elevenlabs' : OFFLINE_PROVIDERS.tts,
  };
}

/** One SDK client per (provider, key, model): calls share connections instead of each making its own. */
function perKey<T>(make: (key: string, model: string | undefined) => T): (key: string, model: string | undefined) => T {
  const made = new Map<string, T>();
  return (key, model) => {
    const id = `${createHash('sha256').update(key).digest('hex').slice(0, 16)}\0${model ?? ''}`;
    let instance = made.get(id);
    if (!instance) {
      instance = make(key, model);
      made.set(id, instance);
    }
    return instance;
  };
}

export function registerCloudProviders(registry: ProviderRegistry, env: CloudEnv): ProviderRegistry {
  const llm = perKey((apiKey, model) => new OpenAiLlm({ apiKey, baseURL: env.openai.baseURL, model: model ?? env.openai.model }));
  const openaiStt = perKey((apiKey, model) => new OpenAiStt({ apiKey, baseURL: env.openai.baseURL, model }));
  const openaiTts = perKey((apiKey, model) => new OpenAiTts({ apiKey, baseURL: env.openai.baseURL, model }));
  const deepgram = perKey((apiKey, model) => new DeepgramStt({ apiKey, baseUrl: env.deepgram.baseUrl, model }));
  const elevenlabs = perKey((apiKey, model) => new ElevenLabsTts({ apiKey, baseUrl: env.elevenlabs.baseUrl, modelId: model }));

  const keyed =
    <T>(vendor: string, make: (key: string, model: string | undefined) => T, kind: 'stt' | 'llm' | 'tts') =>
    (config: { providers: ProviderSelection }, ctx: { key(vendor: string): string | undefined }): T | undefined => {
      const key = ctx.key(vendor);
      return key ? make(key, config.providers.models?.[kind]) : undefined;
    };
  registry.register('llm', 'openai', keyed('openai', llm, 'llm'));
  registry.register('stt', 'openai', keyed('openai', openaiStt, 'stt'));
  registry.register('tts', 'openai', keyed('openai', openaiTts, 'tts'));
  registry.register('stt', 'deepgram', keyed('deepgram', deepgram, 'stt'));
  registry.register('tts', 'elevenlabs', keyed('elevenlabs', elevenlabs, 'tts'));
  // One provider object per key and model; each call opens its own session (a WebSocket) on it.
  const realtime = perKey((apiKey, model) => new OpenAiRealtime({ apiKey, baseURL: env.openai.baseURL, ...(model ? { model } : {}), ...(env.openai.realtimeCa ? { ca: env.openai.realtimeCa } : {}) }));
  registry.registerRealtime('openai', (config, ctx) => {
    const key = ctx.key('openai');
    return key ? realtime(key, config.providers.models?.realtime) : undefined;
  });
  const gemini = perKey((apiKey, model) => new GeminiLive({ apiKey, baseUrl: env.gemini?.baseUrl, ...(model ? { model } : {}) }));
  registry.registerRealtime('gemini', (config, ctx) => {
    const key = ctx.key('gemini');
    return key ? gemini(key, config.providers.models?.realtime) : undefined;
  });
  return registry;
}

/**
 * The registry a gateway runs with: the offline providers, the cloud vendors, and every chain ending
 * in the offline provider of its kind.
 */
export function providerRegistry(env: CloudEnv = cloudEnvFrom(), options: Partial<Omit<ProviderRegistryOptions, 'factories' | 'envKeys'>> = {}): ProviderRegistry {
  const registry = new ProviderRegistry({ lastResort: OFFLINE_PROVIDERS, ...options, envKeys: envKeys(env) });
  registerOfflineProviders(registry);
  return registerCloudProviders(registry, env);
}
