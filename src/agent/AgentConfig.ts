import { CallgateError } from '../errors.js';
import { stripUndefined } from '../util/options.js';

/**
 * What a tenant decides about its agent: what it says, how it sounds, which providers it uses and how
 * it takes turns. `src/tenants` stores it; the agent only reads it. Every field has a default here, so a
 * tenant sets only what differs.
 */

/** One thing callers ask for, and what the offline scripted responder answers. */
export interface Intent {
  readonly name: string;
  /** What callers say for it ("what time do you open", "opening hours"). Also steer offline recognition. */
  readonly phrases: readonly string[];
  /** The scripted answer (the offline responder speaks it; an LLM gets it as guidance in the prompt). */
  readonly reply: string;
  /** A keypad entry that selects this intent (e.g. "1"). */
  readonly dtmf?: string;
  /**
   * The offline responder calls this tool for the intent: `say` is spoken first, the tool runs, and
   * `reply` is spoken with its answer (`{{result}}`, `{{result.field}}`).
   */
  readonly tool?: IntentTool;
}

export interface IntentTool {
  readonly name: string;
  /** Fixed values, or `{{utterance}}` / `{{digits}}` for what the caller said or pressed. */
  readonly arguments: Readonly<Record<string, string | number | boolean>>;
  readonly say?: string;
}

/** One provider by name, or a fallback chain of them in order (`['elevenlabs', 'openai']`). */
export type ProviderChoice = string | readonly string[];

export interface ProviderSelection {
  /** 'pocketsphinx' (offline), 'deepgram' or 'openai'. */
  readonly stt: ProviderChoice;
  /** 'scripted' (offline intents, not an LLM) or 'openai' (any OpenAI-compatible server). */
  readonly llm: ProviderChoice;
  /** 'flite' (offline), 'elevenlabs' or 'openai'. */
  readonly tts: ProviderChoice;
  /**
   * A speech-to-speech model ('openai': the Realtime API) that answers instead of stt → llm → tts; those
   * stay the fallback when it cannot be reached or fails twice in a call (docs/realtime.md).
   */
  readonly realtime?: string;
  /** The realtime model's voice (its vendor's name for it); the vendor's default when absent. */
  readonly realtimeVoice?: string;
  /**
   * 'ours' (the default): our VAD ends the caller's turns, so adaptive barge-in and the echo guard apply;
   * 'model': the model's own voice detection ends turns and interrupts it (docs/realtime.md).
   */
  readonly realtimeTurnDetection?: 'ours' | 'model';
  /** Model names for the cloud vendors; each vendor's default when absent. */
  readonly models?: { readonly stt?: string; readonly llm?: string; readonly tts?: string; readonly realtime?: string };
}

/**
 * 'off': the caller cannot interrupt (a legal notice); 'immediate': any speech stops the agent at once;
 * 'adaptive': the agent ducks, then stops for a real interruption and goes on after "uh-huh" or a cough.
 */
export const BARGE_IN_MODES = ['off', 'immediate', 'adaptive'] as const;
export type BargeInMode = (typeof BARGE_IN_MODES)[number];

/** 'fixed': `endpointingMs` of silence ends every turn; 'adaptive': the words decide (src/agent/EndOfTurn.ts). */
export const ENDPOINTING_MODES = ['fixed', 'adaptive'] as const;
export type EndpointingMode = (typeof ENDPOINTING_MODES)[number];

export interface TurnTakingConfig {
  /** Silence after the caller's speech that ends their turn (fixed endpointing; adaptive's when nothing is known). 200–2000 ms. */
  readonly endpointingMs: number;
  readonly endpointing: EndpointingMode;
  /** Adaptive endpointing: the longest it waits after an unfinished clause ("a table for…"). 500–5000 ms. */
  readonly maxEndpointingMs: number;
  /** Whether and how the caller may interrupt the agent. */
  readonly bargeIn: BargeInMode;
  /** Words that keep the agent talking (adaptive barge-in); the language's list when absent. */
  readonly backchannels?: readonly string[];
  /** Silence after the agent finished before it reprompts. */
  readonly noInputMs: number;
  /** Reprompts before the agent gives up and says goodbye. */
  readonly maxReprompts: number;
}

export interface AgentConfig {
  readonly tenantId: string;
  /** Greeting template; `{{name}}` and `{{name|fallback}}` take the call's variables. */
  readonly greeting: string;
  /** The persona and instructions an LLM gets as its system prompt. */
  readonly systemPrompt: string;
  readonly voice: string;
  /** BCP 47. */
  readonly language: string;
  readonly intents: readonly Intent[];
  /** What the scripted responder says when nothing matches. */
  readonly fallbackReply: string;
  /** Phrases that end the call, and what the agent says before hanging up. */
  readonly goodbye: { readonly phrases: readonly string[]; readonly reply: string };
  /** Said after `noInputMs` of silence. */
  readonly reprompt: string;
  /** Said when the caller spoke but no words could be made out (counts as a reprompt). */
  readonly didNotCatch: string;
  /** Said when a provider fails mid-call; the call goes on. */
  readonly apology: string;
  /** Said before hanging up when providers keep failing (nothing works): the call ends politely. */
  readonly unavailableMessage: string;
  /** Said before hanging up when the gateway shuts down and the call outlasted the drain. */
  readonly shutdownMessage: string;
  /** Said when the call reaches `maxCallDurationMs`, just before the agent hangs up. */
  readonly timeLimitMessage: string;
  readonly maxCallDurationMs: number;
  readonly providers: ProviderSelection;
  readonly turn: TurnTakingConfig;
}

/** The tenant-facing config with everything optional but the id, as operators write it. */
export type AgentConfigInput = { readonly tenantId: string } & {
  readonly [K in Exclude<keyof AgentConfig, 'tenantId' | 'turn' | 'providers' | 'goodbye'>]?: AgentConfig[K];
} & {
  readonly turn?: Partial<Omit<TurnTakingConfig, 'bargeIn'>> & { readonly bargeIn?: BargeInMode | boolean };
  readonly providers?: Partial<ProviderSelection>;
  readonly goodbye?: Partial<AgentConfig['goodbye']>;
};

export const defaultAgentConfig = {
  greeting: 'Hello, thanks for calling. How can I help you today?',
  systemPrompt: 'You are a friendly, concise phone agent. Answer in one or two short sentences.',
  /** flite's clearest built-in voice. */
  voice: 'slt',
  language: 'en-US',
  intents: [],
  fallbackReply: "Sorry, I can't help with that on this line. Is there anything else?",
  goodbye: { phrases: ['goodbye', 'bye', "that's all", 'thank you bye'], reply: 'Thanks for calling. Goodbye!' },
  reprompt: 'Are you still there?',
  didNotCatch: "Sorry, I didn't catch that. Could you say it again?",
  apology: "Sorry, I'm having trouble right now. Could you say that again?",
  unavailableMessage: "Sorry, I can't help on this line right now. Please call again later. Goodbye!",
  shutdownMessage: 'Sorry, I have to end our call now. Please call again. Goodbye!',
  timeLimitMessage: 'We have reached the time limit for this call. Goodbye!',
  /** 15 minutes: a stuck call must not hold a line (and provider spend) forever. */
  maxCallDurationMs: 15 * 60_000,
  /** Everything offline: works with no keys and no network. */
  providers: { stt: 'pocketsphinx', llm: 'scripted', tts: 'flite' },
  turn: {
    /** 500 ms: LiveKit's default; shorter cuts callers off mid-thought, longer feels slow. */
    endpointingMs: 500,
    /** Adaptive: a finished question is answered sooner, a pause mid-clause is waited out. */
    endpointing: 'adaptive',
    /** 1800 ms: longer than the pauses people make mid-sentence (0.7–1.2 s), short of a dropped line. */
    maxEndpointingMs: 1800,
    /** Adaptive: "uh-huh" and coughs do not stop the agent; an interruption does, within ~300 ms. */
    bargeIn: 'adaptive',
    /** 7 s of silence after the agent spoke. */
    noInputMs: 7000,
    /** Two reprompts, then goodbye. */
    maxReprompts: 2,
  },
} as const satisfies Omit<AgentConfig, 'tenantId'>;

export const ENDPOINTING_RANGE_MS = { min: 200, max: 2000 } as const;
export const MAX_ENDPOINTING_RANGE_MS = { min: 500, max: 5000 } as const;

/** The old boolean setting still works: true is 'adaptive' (what "may interrupt" means now), false 'off'. */
export function bargeInMode(value: BargeInMode | boolean | undefined): BargeInMode | undefined {
  if (value === true) return 'adaptive';
  if (value === false) return 'off';
  return value;
}

/** Fills defaults and checks ranges: a bad config is refused with the field named, never half-used. */
export function resolveAgentConfig(input: AgentConfigInput): AgentConfig {
  const config: AgentConfig = {
    ...defaultAgentConfig,
    ...stripUndefined(input),
    tenantId: input.tenantId,
    goodbye: { ...defaultAgentConfig.goodbye, ...stripUndefined(input.goodbye ?? {}) },
    providers: { ...defaultAgentConfig.providers, ...stripUndefined(input.providers ?? {}) },
    turn: { ...defaultAgentConfig.turn, ...stripUndefined({ ...input.turn, bargeIn: bargeInMode(input.turn?.bargeIn) }) },
  };
  const bad = (field: string, why: string): never => {
    throw new CallgateError('CG_AGENT_CONFIG_INVALID', `${field} ${why}`, { details: { tenantId: input.tenantId, field } });
  };
  if (!config.tenantId) bad('tenantId', 'is empty');
  const { endpointingMs, noInputMs, maxReprompts } = config.turn;
  if (!Number.isFinite(endpointingMs) || endpointingMs < ENDPOINTING_RANGE_MS.min || endpointingMs > ENDPOINTING_RANGE_MS.max) {
    bad('turn.endpointingMs', `must be ${ENDPOINTING_RANGE_MS.min}–${ENDPOINTING_RANGE_MS.max} ms`);
  }
  if (!Number.isFinite(noInputMs) || noInputMs < 1000) bad('turn.noInputMs', 'must be at least 1000 ms');
  if (!(BARGE_IN_MODES as readonly string[]).includes(config.turn.bargeIn)) bad('turn.bargeIn', `must be one of ${BARGE_IN_MODES.join(', ')} (or true/false)`);
  if (!(ENDPOINTING_MODES as readonly string[]).includes(config.turn.endpointing)) bad('turn.endpointing', `must be one of ${ENDPOINTING_MODES.join(', ')}`);
  const { maxEndpointingMs } = config.turn;
  if (!Number.isFinite(maxEndpointingMs) || maxEndpointingMs < MAX_ENDPOINTING_RANGE_MS.min || maxEndpointingMs > MAX_ENDPOINTING_RANGE_MS.max) {
    bad('turn.maxEndpointingMs', `must be ${MAX_ENDPOINTING_RANGE_MS.min}–${MAX_ENDPOINTING_RANGE_MS.max} ms`);
  }
  if (!Number.isInteger(maxReprompts) || maxReprompts < 0 || maxReprompts > 10) bad('turn.maxReprompts', 'must be 0–10');
  if (!Number.isFinite(config.maxCallDurationMs) || config.maxCallDurationMs < 1000) bad('maxCallDurationMs', 'must be at least 1000 ms');
  const dtmfKeys = new Set<string>();
  for (const [i, intent] of config.intents.entries()) {
    if (!intent.name) bad(`intents[${i}].name`, 'is empty');
    if (intent.dtmf !== undefined) {
      if (!/^[0-9*A-D]+$/.test(intent.dtmf)) bad(`intents[${i}].dtmf`, "must be keypad keys 0-9, *, A-D ('#' ends an entry)");
      if (dtmfKeys.has(intent.dtmf)) bad(`intents[${i}].dtmf`, `'${intent.dtmf}' is used by another intent`);
      dtmfKeys.add(intent.dtmf);
    }
    if (!intent.reply.trim()) bad(`intents[${i}].reply`, 'is empty');
    if (intent.phrases.length === 0 && intent.dtmf === undefined) bad(`intents[${i}]`, 'needs phrases or a dtmf key');
  }
  for (const field of ['greeting', 'voice', 'apology', 'unavailableMessage', 'shutdownMessage', 'reprompt', 'didNotCatch', 'fallbackReply', 'timeLimitMessage', 'language'] as const) {
    if (typeof config[field] !== 'string' || !config[field].trim()) bad(field, 'is empty');
  }
  if (typeof config.goodbye.reply !== 'string' || !config.goodbye.reply.trim()) bad('goodbye.reply', 'is empty');
  return config;
}
