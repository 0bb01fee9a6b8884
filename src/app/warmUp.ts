import type { Logger } from 'pino';
import { Audio, PeerConnection } from 'node-datachannel';
import { fixedPhrases, promptPieces } from '../agent/fixedPhrases.js';
import type { PromptCache } from '../agent/PromptCache.js';
import type { ProviderRegistry } from '../agent/ProviderRegistry.js';
import { renderTemplate } from '../util/template.js';
import type { VoiceActivityDetector } from '../agent/vad/VoiceActivityDetector.js';
import type { CodecName } from '../media/codecs/AudioCodec.js';
import { createDecoder, createEncoder } from '../media/codecs/registry.js';
import { Resampler } from '../media/Resampler.js';
import { PIPELINE_RATE, samplesPerFrame } from '../media/types.js';
import type { TenantCache } from '../tenants/TenantCache.js';
import { agentConfigFor } from '../tenants/TenantStore.js';
import { applyRemoteDescription } from '../webrtc/remoteDescription.js';

/**
 * What a process's first call would otherwise pay for, done before the gateway says it is ready
 * (issue 17: the first browser call after a start heard 0.9–1.5 s more silence than later ones). Cold
 * at start, measured in a fresh process: flite's worker thread and its wasm (~1 s to the first sentence,
 * ~0.1 s after), pocketsphinx's dictionary and decoder (~0.5 s, ~0.1 s after), the Opus wasm (60 ms),
 * fvad's wasm (30 ms), libdatachannel's first connection (its ICE transport, DTLS and SCTP), and each
 * tenant's greeting and fixed phrases, which a call would synthesise and encode on the spot.
 *
 * Every step is contained: a failure is logged and the gateway becomes ready anyway (a call then pays
 * for that step as before), since a provider that is down at start must not keep the process down.
 */
export interface WarmUpOptions {
  /** Tenants whose greeting and fixed phrases are synthesised and encoded now. */
  readonly tenantIds: readonly string[];
  /** The codecs a call's prompts are encoded for: Opus for the web door, G.711 too with a SIP door. */
  readonly codecs: readonly CodecName[];
  /** One step taking longer is left to finish in the background and reported as failed. */
  readonly stepTimeoutMs: number;
}

export const defaultWarmUpOptions = {
  tenantIds: [],
  codecs: ['opus'],
  /**
   * 20 s: the slowest step seen here is a tenant's phrases through flite (~1.5 s per codec); a cloud TTS
   * answering slower than this is not worth holding readiness for.
   */
  stepTimeoutMs: 20_000,
} as const satisfies WarmUpOptions;

export interface WarmUpDeps {
  readonly providers: ProviderRegistry;
  readonly prompts: PromptCache;
  readonly tenants: Pick<TenantCache, 'get'>;
  readonly createVad: () => Promise<VoiceActivityDetector>;
  readonly logger: Logger;
}

export interface WarmUpStep {
  readonly name: string;
  readonly ms: number;
  readonly error?: string;
}

export interface WarmUpReport {
  readonly ms: number;
  readonly steps: readonly WarmUpStep[];
}

/** Runs every warm-up step; resolves (never rejects) with what each took and which failed. */
export async function warmUp(deps: WarmUpDeps, options: Partial<WarmUpOptions> = {}): Promise<WarmUpReport> {
  const o: WarmUpOptions = { ...defaultWarmUpOptions, ...options };
  const started = performance.now();
  const step = (name: string, run: () => Promise<unknown>): Promise<WarmUpStep> => timed(name, run, o.stepTimeoutMs);
  // The engines at once: flite and pocketsphinx work in their own thread and process.
  const engines = await Promise.all([
    ...deps.providers.warmUps().map(([name, warm]) => step(`provider:${name}`, warm)),
    step('codecs', async () => warmCodecs(o.codecs)),
    step('vad', () => warmVad(deps.createVad)),
    step('webrtc', () => warmWebRtc(o.stepTimeoutMs)),
  ]);
  const steps: WarmUpStep[] = engines;
  // Tenants one after another: their phrases queue for the same TTS worker anyway.
  for (const id of o.tenantIds) steps.push(await step(`tenant:${id}`, () => warmTenant(deps, id, o.codecs)));
  const report = { ms: Math.round(performance.now() - started), steps };
  const failed = steps.filter((s) => s.error !== undefined);
  if (failed.length > 0) deps.logger.warn({ failed, ms: report.ms }, 'warm-up steps failed; the first call to use each pays for it instead');
  deps.logger.info({ ms: report.ms, steps: Object.fromEntries(steps.map((s) => [s.name, s.ms])) }, 'warmed up');
  return report;
}

async function timed(name: string, run: () => Promise<unknown>, timeoutMs: number): Promise<WarmUpStep> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const error = await Promise.race([
    run().then(
      () => undefined,
      (err: unknown) => (err instanceof Error ? err.message : String(err)),
    ),
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`took over ${timeoutMs} ms`), timeoutMs))),
  ]).finally(() => clearTimeout(timer));
  const ms = Math.round(performance.now() - started);
  return error === undefined ? { name, ms } : { name, ms, error };
}

/** The codecs' wasm and tables: a frame through an encoder and a decoder of each, and the resamplers a leg makes. */
function warmCodecs(codecs: readonly CodecName[]): void {
  const frame = new Int16Array(samplesPerFrame(PIPELINE_RATE));
  for (const codec of codecs) {
    const encoder = createEncoder(codec);
    const decoder = createDecoder(codec);
    try {
      const pcm = encoder.sampleRate === PIPELINE_RATE ? frame : new Resampler(PIPELINE_RATE, encoder.sampleRate).process(frame);
      const decoded = decoder.decode(encoder.encode(pcm.length === encoder.frameSamples ? pcm : new Int16Array(encoder.frameSamples)));
      if (decoded.ok && decoder.sampleRate !== PIPELINE_RATE) new Resampler(decoder.sampleRate, PIPELINE_RATE).process(decoded.value);
    } finally {
      encoder.close();
      decoder.close();
    }
  }
}

async function warmVad(createVad: () => Promise<VoiceActivityDetector>): Promise<void> {
  const vad = await createVad();
  try {
    vad.process(new Int16Array(samplesPerFrame(PIPELINE_RATE)));
  } finally {
    vad.close();
  }
}

/**
 * Two libdatachannel peers connected to each other on loopback, with an Opus track and a data channel
 * as a web call has: its first ICE transport (which on a process's first connection is sometimes not
 * ready when the remote description comes: src/webrtc/remoteDescription.ts), DTLS, SRTP and SCTP.
 */
async function warmWebRtc(timeoutMs: number): Promise<void> {
  const offerer = new PeerConnection('warm-up-offerer', { iceServers: [], bindAddress: '127.0.0.1' });
  const answerer = new PeerConnection('warm-up-answerer', { iceServers: [], bindAddress: '127.0.0.1' });
  let timer: NodeJS.Timeout | undefined;
  try {
    const audio = new Audio('0', 'SendRecv');
    audio.addOpusCodec(111);
    const track = offerer.addTrack(audio);
    const channel = offerer.createDataChannel('warm-up');
    const open = Promise.all([new Promise<void>((resolve) => track.onOpen(resolve)), new Promise<void>((resolve) => channel.onOpen(resolve))]);
    const failed = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`loopback WebRTC connection not open within ${timeoutMs} ms`)), timeoutMs);
      for (const pc of [offerer, answerer]) pc.onStateChange((state) => state === 'failed' && reject(new Error('loopback WebRTC connection failed')));
    });
    failed.catch(() => undefined);
    offerer.setLocalDescription('offer');
    await Promise.race([gathered(offerer), failed]);
    // As the door's callers do: the offer without candidates, the answer with them (see BrowserPeer).
    const offer = offerer.localDescription()!.sdp.replace(/^a=(?:candidate:|end-of-candidates)[^\r\n]*\r?\n/gm, '');
    await applyRemoteDescription(answerer, offer, 'offer');
    await Promise.race([gathered(answerer), failed]);
    await applyRemoteDescription(offerer, answerer.localDescription()!.sdp, 'answer');
    await Promise.race([open, failed]);
  } finally {
    clearTimeout(timer);
    offerer.close();
    answerer.close();
  }
}

function gathered(pc: PeerConnection): Promise<void> {
  return new Promise((resolve) => {
    pc.onGatheringStateChange((state) => state === 'complete' && resolve());
    if (pc.gatheringState() === 'complete') resolve();
  });
}

/**
 * A tenant's greeting and fixed phrases into the prompt cache, under the keys its calls will ask for
 * (same provider chain, voice, codec and sentence pieces as AgentSession). The greeting is rendered with
 * the tenant's own variables; a greeting naming a call URL's variables is made on its first call instead.
 */
async function warmTenant(deps: WarmUpDeps, tenantId: string, codecs: readonly CodecName[]): Promise<void> {
  const tenant = await deps.tenants.get(tenantId);
  const { config, variables } = agentConfigFor(tenant);
  const { tts } = deps.providers.forCall(config, tenant.providerKeys, deps.logger);
  const greeting = renderTemplate(config.greeting, variables);
  const texts = [...(greeting.missing.length === 0 ? [greeting.text] : []), ...fixedPhrases(config)];
  for (const codec of codecs) {
    for (const text of texts) {
      for (const piece of promptPieces(text)) await deps.prompts.get({ tenantId: config.tenantId, text: piece, voice: config.voice, codec }, tts);
    }
  }
}
