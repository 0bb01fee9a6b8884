import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { CallgateError } from '../errors.js';
import { rootLogger } from '../log.js';
import { FliteTtsProvider, isFliteVoice } from '../providers/flite/FliteTtsProvider.js';
import { PocketsphinxStt } from '../providers/pocketsphinx/index.js';
import { CircuitBreakers } from '../providers/resilience/CircuitBreaker.js';
import type { ChainContext, ChainLink } from '../providers/resilience/chain.js';
import { FallbackLlm } from '../providers/resilience/fallbackLlm.js';
import { FallbackStt } from '../providers/resilience/fallbackStt.js';
import { FallbackTts, type TtsChainLink } from '../providers/resilience/fallbackTts.js';
import type { ProviderKind, ProviderMetrics } from '../providers/resilience/ProviderMetrics.js';
import { ScriptedResponder } from '../providers/scripted.js';
import type { AgentProviders, LlmProvider, RealtimeProvider, SttProvider, TtsProvider } from '../providers/types.js';
import type { AgentConfig } from './AgentConfig.js';

/**
 * Turns a tenant's provider choices into provider instances for one call. Each kind is a fallback
 * chain (the tenant's choices in order, then the offline last resort), every link behind a circuit
 * breaker the whole process shares. Vendors register here by name; the agent only ever sees the three
 * interfaces.
 */
export interface ProviderContext {
  /** The vendor key for this call: the tenant's own, else the environment's. Never logged. */
  key(vendor: string): string | undefined;
}

/** Makes a provider for a call, or undefined when it cannot be used (no key): the chain skips it. */
export type ProviderFactory<T> = (config: AgentConfig, ctx: ProviderContext) => T | undefined;

export interface ProviderFactories {
  readonly stt: Readonly<Record<string, ProviderFactory<SttProvider>>>;
  readonly llm: Readonly<Record<string, ProviderFactory<LlmProvider>>>;
  readonly tts: Readonly<Record<string, ProviderFactory<TtsProvider>>>;
}

export interface RegisterOptions {
  /** TTS only: this provider's voice for the tenant's (flite cannot speak a vendor's voice id). */
  readonly voiceFor?: (voice: string) => string;
}

export interface ProviderRegistryOptions {
  readonly factories: Partial<ProviderFactories>;
  /** Appended to every chain that does not name it: the provider that needs no network. */
  readonly lastResort: Partial<Record<ProviderKind, string>>;
  /** Keys used when the tenant has none of its own (`OPENAI_API_KEY`, …), by vendor. */
  readonly envKeys: Readonly<Record<string, string | undefined>>;
  readonly metrics: ProviderMetrics | undefined;
  readonly breakers: CircuitBreakers;
  readonly logger: Logger;
}

interface Closable {
  close?(): unknown;
}

interface Registration<T> {
  readonly factory: ProviderFactory<T>;
  readonly voiceFor: ((voice: string) => string) | undefined;
}

export class ProviderRegistry {
  private readonly realtime = new Map<string, ProviderFactory<RealtimeProvider>>();
  private readonly registrations: { [K in ProviderKind]: Map<string, Registration<ProviderOf<K>>> } = { stt: new Map(), llm: new Map(), tts: new Map() };
  private readonly opts: ProviderRegistryOptions;
  /** Process-wide instances to close at shutdown. */
  private readonly owned: Closable[] = [];
  /** What `warmUp()` runs, by provider name. */
  private readonly warmers = new Map<string, () => Promise<void>>();

  constructor(options: Partial<ProviderRegistryOptions> | Partial<ProviderFactories> = {}) {
    // A bare factories object is still accepted: most tests register one provider per kind.
    const o: Partial<ProviderRegistryOptions> = 'factories' in options || 'lastResort' in options || 'envKeys' in options || 'metrics' in options || 'breakers' in options || 'logger' in options ? (options as Partial<ProviderRegistryOptions>) : { factories: options as Partial<ProviderFactories> };
    this.opts = { factories: {}, lastResort: {}, envKeys: {}, metrics: undefined, breakers: new CircuitBreakers(), logger: rootLogger, ...o };
    for (const kind of ['stt', 'llm', 'tts'] as const) {
      for (const [name, factory] of Object.entries(this.opts.factories[kind] ?? {})) this.register(kind, name, factory as ProviderFactory<ProviderOf<typeof kind>>);
    }
  }

  get breakers(): CircuitBreakers {
    return this.opts.breakers;
  }

  get metrics(): ProviderMetrics | undefined {
    return this.opts.metrics;
  }

  register<K extends ProviderKind>(kind: K, name: string, factory: ProviderFactory<ProviderOf<K>>, options: RegisterOptions = {}): this {
    this.registrations[kind].set(name, { factory, voiceFor: options.voiceFor } as Registration<ProviderOf<K>>);
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

  /**
   * Work that makes a provider's first use as quick as its later ones (start a worker, load a model),
   * run by `warmUp()` before the gateway reports ready. One per name; a later one replaces it.
   */
  onWarmUp(name: string, warm: () => Promise<void>): this {
    this.warmers.set(name, warm);
    return this;
  }

  /** The registered warm-ups, by provider name (the gateway runs them: src/app/warmUp.ts). */
  warmUps(): [name: string, warm: () => Promise<void>][] {
    return [...this.warmers];
  }

  /**
   * The providers a call of this tenant uses, each kind a fallback chain. `keys` are the tenant's own
   * vendor keys (decrypted by the tenant store). Throws CG_PROVIDER_UNKNOWN naming a provider that is
   * not registered, or a chain left empty because no provider in it has a key.
   */
  forCall(config: AgentConfig, keys: Readonly<Record<string, string>> = {}, logger: Logger = this.opts.logger): AgentProviders {
    const ctx: ChainContext = { metrics: this.opts.metrics, logger };
    const realtime = this.realtimeFor(config, keys, logger);
    return {
      stt: new FallbackStt(this.chain('stt', config, keys, logger), ctx),
      llm: new FallbackLlm(this.chain('llm', config, keys, logger), ctx),
      tts: new FallbackTts(this.chain('tts', config, keys, logger) as TtsChainLink[], ctx),
      ...(realtime ? { realtime } : {}),
    };
  }

  /** Registers a speech-to-speech model (`providers.realtime`). */
  registerRealtime(name: string, factory: ProviderFactory<RealtimeProvider>): this {
    this.realtime.set(name, factory);
    return this;
  }

  /** The tenant's speech-to-speech model, or undefined (none chosen; or no key: the cascade answers, logged). */
  private realtimeFor(config: AgentConfig, keys: Readonly<Record<string, string>>, logger: Logger): RealtimeProvider | undefined {
    const name = config.providers.realtime;
    if (!name) return undefined;
    const factory = this.realtime.get(name);
    // The cascade is always there to answer: a model this gateway does not have is a warning, not a refused call.
    if (!factory) {
      logger.warn({ kind: 'realtime', name, available: [...this.realtime.keys()], tenant: config.tenantId }, 'realtime model not available on this gateway; the cascade answers');
      return undefined;
    }
    const provider = factory(config, { key: (vendor) => keys[vendor] ?? this.opts.envKeys[vendor] });
    if (!provider) logger.warn({ kind: 'realtime', name, tenant: config.tenantId }, 'realtime model skipped: no API key for it; the cascade answers');
    return provider;
  }

  async close(): Promise<void> {
    const all = this.owned.splice(0);
    await Promise.all(all.map(async (p) => p.close?.()));
  }

  private chain<K extends ProviderKind>(kind: K, config: AgentConfig, keys: Readonly<Record<string, string>>, logger: Logger): ChainLink<ProviderOf<K>>[] {
    const chosen = config.providers[kind];
    const names = typeof chosen === 'string' ? [chosen] : [...chosen];
    const lastResort = this.opts.lastResort[kind];
    if (lastResort && !names.includes(lastResort)) names.push(lastResort);
    const links: (ChainLink<ProviderOf<K>> & Pick<TtsChainLink, 'voiceFor'>)[] = [];
    const skipped: string[] = [];
    for (const name of names) {
      const registration = this.registrations[kind].get(name);
      if (!registration) {
        throw new CallgateError('CG_PROVIDER_UNKNOWN', `${kind} provider '${name}' (available: ${[...this.registrations[kind].keys()].join(', ') || 'none'})`, {
          details: { kind, name, tenantId: config.tenantId },
        });
      }
      // The breaker is per vendor and per key: a tenant's revoked key must not cut off the others.
      const used: string[] = [];
      const provider = registration.factory(config, {
        key: (vendor) => {
          const key = keys[vendor] ?? this.opts.envKeys[vendor];
          if (key) used.push(key);
          return key;
        },
      });
      if (!provider) {
        skipped.push(name);
        continue;
      }
      const breakerKey = used.length > 0 ? `${kind}:${name}:${fingerprint(used)}` : `${kind}:${name}`;
      links.push({ provider, name, breaker: this.opts.breakers.get(breakerKey), voiceFor: registration.voiceFor ?? identity });
    }
    if (skipped.length > 0) logger.warn({ kind, skipped, tenant: config.tenantId }, 'providers skipped: no API key for them (tenant or environment)');
    if (links.length === 0) {
      throw new CallgateError('CG_PROVIDER_UNKNOWN', `no ${kind} provider of [${names.join(', ')}] has an API key`, { details: { kind, names, tenantId: config.tenantId } });
    }
    return links;
  }
}

type ProviderOf<K extends ProviderKind> = K extends 'stt' ? SttProvider : K extends 'llm' ? LlmProvider : TtsProvider;

const identity = (v: string): string => v;

/** Enough of a hash to tell keys apart in a map; the key itself is never kept as a map key or logged. */
function fingerprint(keys: readonly string[]): string {
  return createHash('sha256').update(keys.join('\0')).digest('hex').slice(0, 12);
}

/**
 * The offline providers (no keys, no network): pocketsphinx STT, the scripted responder, flite TTS.
 * They are also the last resort of every chain of a registry made by `providerRegistry()`.
 */
export function registerOfflineProviders(registry: ProviderRegistry): ProviderRegistry {
  const flite = registry.shared(() => new FliteTtsProvider());
  // flite speaks only its own voices; a vendor voice id gets flite's clearest.
  registry.register('tts', 'flite', () => flite(), { voiceFor: (voice) => (isFliteVoice(voice) ? voice : 'slt') });
  // One provider for all calls: each call's stream starts its own decoder process.
  const pocketsphinx = new PocketsphinxStt();
  registry.register('stt', 'pocketsphinx', () => pocketsphinx);
  // Every chain ends in these two, so they are warmed whoever the tenants' own providers are.
  registry.onWarmUp('flite', () => flite().warmUp());
  registry.onWarmUp('pocketsphinx', () => pocketsphinx.warmUp());
  registry.register('llm', 'scripted', (config) => new ScriptedResponder({ intents: config.intents, fallbackReply: config.fallbackReply, goodbye: config.goodbye }));
  return registry;
}

export const OFFLINE_PROVIDERS = { stt: 'pocketsphinx', llm: 'scripted', tts: 'flite' } as const satisfies Record<ProviderKind, string>;

/** A registry with only the offline providers. */
export function offlineProviderRegistry(options: Partial<Omit<ProviderRegistryOptions, 'factories'>> = {}): ProviderRegistry {
  return registerOfflineProviders(new ProviderRegistry({ lastResort: OFFLINE_PROVIDERS, ...options }));
}
