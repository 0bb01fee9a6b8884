import { CallgateError } from '../errors.js';
import { FliteTtsProvider } from '../providers/flite/FliteTtsProvider.js';
import { PocketsphinxStt } from '../providers/pocketsphinx/index.js';
import { ScriptedResponder } from '../providers/scripted.js';
import type { AgentProviders, LlmProvider, SttProvider, TtsProvider } from '../providers/types.js';
import type { AgentConfig } from './AgentConfig.js';

/**
 * Turns a tenant's provider names into provider instances for one call. Providers that hold shared
 * resources (flite's worker pool, a vendor's HTTP agent) are made once per process and reused by every
 * call; per-tenant ones (the scripted responder, which is the tenant's intents) are made per call.
 * Vendors register here by name; the agent only ever sees the three interfaces.
 */
export type ProviderFactory<T> = (config: AgentConfig) => T;

export interface ProviderFactories {
  readonly stt: Readonly<Record<string, ProviderFactory<SttProvider>>>;
  readonly llm: Readonly<Record<string, ProviderFactory<LlmProvider>>>;
  readonly tts: Readonly<Record<string, ProviderFactory<TtsProvider>>>;
}

interface Closable {
  close?(): unknown;
}

export class ProviderRegistry {
  private readonly factories: { stt: Map<string, ProviderFactory<SttProvider>>; llm: Map<string, ProviderFactory<LlmProvider>>; tts: Map<string, ProviderFactory<TtsProvider>> };
  /** Process-wide instances to close at shutdown. */
  private readonly owned: Closable[] = [];

  constructor(factories: Partial<ProviderFactories> = {}) {
    this.factories = {
      stt: new Map(Object.entries(factories.stt ?? {})),
      llm: new Map(Object.entries(factories.llm ?? {})),
      tts: new Map(Object.entries(factories.tts ?? {})),
    };
  }

  register<K extends keyof ProviderFactories>(kind: K, name: string, factory: ProviderFactories[K][string]): this {
    (this.factories[kind] as Map<string, ProviderFactories[K][string]>).set(name, factory);
    return this;
  }

  /** Makes `create()` once, on first use, and closes it with the registry. */
  shared<T extends Closable>(create: () => T): () => T {
    let instance: T | undefined;
    return () => {
      if (!instance) {
        instance = create();
        this.owned.push(instance);
      }
      return instance;
    };
  }

  /** The providers a call of this tenant uses. Throws CG_PROVIDER_UNKNOWN naming what is missing. */
  forCall(config: AgentConfig): AgentProviders {
    const pick = <T>(kind: keyof ProviderFactories, name: string): T => {
      const factory = this.factories[kind].get(name) as ProviderFactory<T> | undefined;
      if (!factory) {
        throw new CallgateError('CG_PROVIDER_UNKNOWN', `${kind} provider '${name}' (available: ${[...this.factories[kind].keys()].join(', ') || 'none'})`, {
          details: { kind, name, tenantId: config.tenantId },
        });
      }
      return factory(config);
    };
    return {
      stt: pick<SttProvider>('stt', config.providers.stt),
      llm: pick<LlmProvider>('llm', config.providers.llm),
      tts: pick<TtsProvider>('tts', config.providers.tts),
    };
  }

  async close(): Promise<void> {
    const all = this.owned.splice(0);
    await Promise.all(all.map(async (p) => p.close?.()));
  }
}

/** The offline providers (no keys, no network): pocketsphinx STT, the scripted responder, flite TTS. */
export function offlineProviderRegistry(): ProviderRegistry {
  const registry = new ProviderRegistry();
  const flite = registry.shared(() => new FliteTtsProvider());
  registry.register('tts', 'flite', () => flite());
  // One provider for all calls: each call's stream starts its own decoder process.
  const pocketsphinx = new PocketsphinxStt();
  registry.register('stt', 'pocketsphinx', () => pocketsphinx);
  registry.register('llm', 'scripted', (config) => new ScriptedResponder({ intents: config.intents, fallbackReply: config.fallbackReply, goodbye: config.goodbye }));
  return registry;
}
