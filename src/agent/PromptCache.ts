import { encodePromptAsync, type EncodedPrompt } from '../media/AudioLeg.js';
import type { CodecName } from '../media/codecs/AudioCodec.js';
import { resample } from '../media/Resampler.js';
import { concatSamples } from '../media/signal.js';
import { PIPELINE_RATE } from '../media/types.js';
import type { TtsProvider } from '../providers/types.js';
import { frameLevels } from './EchoGuard.js';

/**
 * Fixed phrases (greetings, apologies, reprompts) synthesised and encoded once per (tenant, text, voice,
 * codec), so a call's first packet goes out without waiting for TTS or the encoder, and an apology can
 * still be spoken while the TTS provider is the thing that failed. Bounded (least recently used out).
 */
export interface CachedPrompt {
  readonly text: string;
  /** Made by a fallback voice: served to the calls waiting for it, then dropped so the tenant's voice is tried again. */
  readonly degraded: boolean;
  readonly encoded: EncodedPrompt;
  /** Per-frame levels, for the echo guard. */
  readonly levels: Float32Array;
}

/** A frame quieter than this (dBFS) is lead-in silence: flite's sits near −60, its first syllable's onset passes −45 within a frame. */
const LEAD_IN_DB = -45;

/**
 * The prompt without its lead-in silence, one 20 ms frame of it kept so the first syllable is not
 * clipped. flite starts every utterance with ~175 ms of silence, and a call's greeting is its first
 * sound: that silence was 175 ms more before the caller heard anything. Only for a phrase that starts
 * what the caller hears: between the pieces of a phrase that silence is the pause a listener expects.
 * Frames are dropped from the encoded payloads as they are (prompts are one payload per 20 ms frame,
 * and what is dropped is silence, so the decoder starts from silence either way).
 */
export function withoutLeadIn(prompt: CachedPrompt): { readonly encoded: EncodedPrompt; readonly levels: Float32Array } {
  const { encoded, levels } = prompt;
  if (encoded.payloads.length !== levels.length) return prompt;
  let first = 0;
  while (first < levels.length && levels[first]! < LEAD_IN_DB) first++;
  const drop = first === levels.length ? 0 : Math.max(0, first - 1);
  if (drop === 0) return prompt;
  const frameMs = encoded.durationMs / encoded.payloads.length;
  return { encoded: { ...encoded, payloads: encoded.payloads.slice(drop), durationMs: encoded.durationMs - drop * frameMs }, levels: levels.subarray(drop) };
}

export interface PromptCacheOptions {
  /** Prompts kept; each is a few KB per second of speech. */
  readonly maxEntries: number;
}

export const defaultPromptCacheOptions = {
  /** 2000 prompts: ~4 prompts per tenant for 500 tenants, ~100 MB at worst for 5 s Opus prompts. */
  maxEntries: 2000,
} as const satisfies PromptCacheOptions;

export interface PromptKey {
  readonly tenantId: string;
  readonly text: string;
  readonly voice: string;
  readonly codec: CodecName;
}

export class PromptCache {
  private readonly entries = new Map<string, Promise<CachedPrompt>>();
  /** Keys whose synthesis has finished (entries also holds the ones still in flight). */
  private readonly ready = new Set<string>();
  private readonly opts: PromptCacheOptions;
  private hitCount = 0;
  private missCount = 0;

  constructor(options: Partial<PromptCacheOptions> = {}) {
    this.opts = { ...defaultPromptCacheOptions, ...options };
  }

  /** Whether the prompt is already encoded (not just in flight). */
  has(key: PromptKey): boolean {
    return this.ready.has(keyOf(key));
  }

  /**
   * The cached prompt, or synthesises and encodes it with `tts` (concurrent requests for one key share
   * the work). A failed synthesis is not cached: the next call tries again.
   */
  get(key: PromptKey, tts: TtsProvider, signal?: AbortSignal): Promise<CachedPrompt> {
    const k = keyOf(key);
    const hit = this.entries.get(k);
    if (hit) {
      this.hitCount++;
      // Re-insert: Map order is the LRU order.
      this.entries.delete(k);
      this.entries.set(k, hit);
      return hit;
    }
    this.missCount++;
    const made = build(key, tts, signal ?? new AbortController().signal);
    this.entries.set(k, made);
    made.then(
      (prompt) => {
        if (this.entries.get(k) !== made) return;
        if (prompt.degraded) this.entries.delete(k);
        else this.ready.add(k);
      },
      () => {
        if (this.entries.get(k) === made) this.entries.delete(k);
      },
    );
    while (this.entries.size > this.opts.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
      this.ready.delete(oldest);
    }
    return made;
  }

  /** Drops every prompt of a tenant (its greeting or voice changed). */
  invalidateTenant(tenantId: string): void {
    const prefix = `${tenantId}\u0000`;
    for (const k of this.entries.keys()) {
      if (k.startsWith(prefix)) {
        this.entries.delete(k);
        this.ready.delete(k);
      }
    }
  }

  stats(): { entries: number; hits: number; misses: number } {
    return { entries: this.entries.size, hits: this.hitCount, misses: this.missCount };
  }
}

function keyOf(k: PromptKey): string {
  return [k.tenantId, k.voice, k.codec, k.text].join('\u0000');
}

async function build(key: PromptKey, tts: TtsProvider, signal: AbortSignal): Promise<CachedPrompt> {
  const chunks: Int16Array[] = [];
  let degraded = false;
  for await (const chunk of tts.synthesize({ text: key.text, voice: key.voice, signal })) {
    if (chunk.degraded) degraded = true;
    chunks.push(chunk.sampleRate === PIPELINE_RATE ? chunk.samples : resample(chunk.samples, chunk.sampleRate, PIPELINE_RATE));
  }
  // A provider ends its stream quietly on abort: the audio so far is a cut-off prompt, never to be cached.
  signal.throwIfAborted();
  const pcm = concatSamples(chunks);
  return { text: key.text, degraded, encoded: await encodePromptAsync(pcm, key.codec), levels: frameLevels(pcm) };
}
