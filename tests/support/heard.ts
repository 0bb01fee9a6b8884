import { fileURLToPath } from 'node:url';
import { promptPieces } from '../../src/agent/fixedPhrases.js';
import { SentenceSplitter } from '../../src/agent/SentenceSplitter.js';
import { activeSpan, concatSamples, dbfs, harmonicShare } from '../../src/media/signal.js';
import { readWavFile } from '../../src/media/wav.js';
import { synthesize, type FliteVoice } from '../../src/providers/fliteTts.js';
import type { BrowserPeer } from '../../src/webrtc/testing/BrowserPeer.js';

/**
 * What the caller heard, judged by content: the fake TTS (FakeProviders' voiceLike) speaks every text
 * as a buzz on the harmonics of 140 Hz, so "the caller hears the agent" is "most of what reached the
 * caller lies on those harmonics" — not a count of samples or packets, which noise, comfort silence or
 * the wrong audio would pass as well. tests/support/heard.test.ts ties the figures to voiceLike.
 */
export const FAKE_VOICE_HZ = 140;

/** voiceLike reads ~0.98 (also after G.711 or Opus); noise and other tones below ~0.1. */
export const FAKE_VOICE_SHARE = 0.6;

/** The share of the sound in `samples` that is the fake voice (0 for silence). */
export function fakeVoiceShare(samples: Int16Array, sampleRate = 16000): number {
  return harmonicShare(samples, sampleRate, FAKE_VOICE_HZ);
}

/** How long `samples` has sound, first loud frame to last, in ms (0 for none): how much was heard. */
export function soundMs(samples: Int16Array, sampleRate = 16000): number {
  const span = activeSpan(samples, sampleRate);
  return span ? span.endMs - span.startMs : 0;
}

/**
 * "The caller heard these words", for gateways that speak with flite: the loudness envelope of what
 * reached the caller (20 ms frames, in dB) is correlated with the envelope of the same text rendered
 * by flite here. A sentence's rhythm of syllables and pauses survives Opus, G.711, resampling and a
 * change of level, and differs between sentences; silence, comfort noise, a tone or another sentence
 * do not match (tests/support/heard.test.ts measures both sides).
 */
export const SPEECH_MATCH = 0.8;

/** Frame of the loudness envelope: a syllable spans 5–15 of them. */
const ENVELOPE_FRAME_MS = 20;
/** Quieter frames count as silence, so a pause and comfort noise read alike (flite pauses sit below -60). */
const ENVELOPE_FLOOR_DB = -55;

/** Loudness per frame in dBFS, floored. */
export function loudnessEnvelope(samples: Int16Array, sampleRate = 16000): Float64Array {
  const frame = Math.round((ENVELOPE_FRAME_MS * sampleRate) / 1000);
  const out = new Float64Array(Math.floor(samples.length / frame));
  for (let f = 0; f < out.length; f++) {
    const db = dbfs(samples, { start: f * frame, end: (f + 1) * frame });
    out[f] = Math.max(ENVELOPE_FLOOR_DB, db);
  }
  return out;
}

function pearson(a: Float64Array, b: Float64Array, offset: number): number {
  const n = a.length;
  let sa = 0;
  let sb = 0;
  for (let i = 0; i < n; i++) {
    sa += a[i]!;
    sb += b[i + offset]!;
  }
  const ma = sa / n;
  const mb = sb / n;
  let dot = 0;
  let va = 0;
  let vb = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i]! - ma;
    const y = b[i + offset]! - mb;
    dot += x * y;
    va += x * x;
    vb += y * y;
  }
  return va === 0 || vb === 0 ? 0 : dot / Math.sqrt(va * vb);
}

/**
 * How well the whole of `reference` is found somewhere in `heard`: the best correlation of their
 * loudness envelopes over every alignment, in [-1, 1], and where (ms into `heard`: one 20 ms frame
 * before the reference's first sound). 0 until `heard`
 * is at least as long as `reference`: a sentence counts as heard only once all of it was.
 */
export function speechMatch(reference: Int16Array, heard: Int16Array, sampleRate = 16000): { score: number; atMs: number } {
  // From the reference's first sound (one frame of its lead kept): flite starts each utterance with
  // ~175 ms of silence, which the gateway drops before a call's first sound (the greeting), and a
  // lead-in the caller never heard must not be required of what they heard.
  const full = loudnessEnvelope(reference, sampleRate);
  const onset = full.findIndex((db) => db > ENVELOPE_FLOOR_DB);
  const r = onset > 1 ? full.subarray(onset - 1) : full;
  const h = loudnessEnvelope(heard, sampleRate);
  let best = { score: 0, atMs: 0 };
  for (let offset = 0; offset + r.length <= h.length; offset++) {
    const score = pearson(r, h, offset);
    if (score > best.score) best = { score, atMs: offset * ENVELOPE_FRAME_MS };
  }
  return best;
}

const rendered = new Map<string, Promise<Int16Array>>();

/**
 * How the agent cuts what it says into TTS requests: a fixed prompt (greeting, goodbye, apology) by
 * sentence, a model's reply also at its first clause (src/agent/SentenceSplitter.ts).
 */
export type Spoken = 'prompt' | 'reply';

function piecesOf(text: string, spoken: Spoken): string[] {
  if (spoken === 'prompt') return promptPieces(text);
  const splitter = new SentenceSplitter();
  return [...splitter.push(text), ...splitter.flush()];
}

/** `text` as the gateway's flite voice says it (16 kHz), rendered once per process. */
export function fliteSays(text: string, voice: FliteVoice = 'slt', spoken: Spoken = 'prompt'): Promise<Int16Array> {
  const key = `${voice}\n${spoken}\n${text}`;
  let pcm = rendered.get(key);
  if (!pcm) {
    // Piece by piece, as the agent sends text to TTS: each piece is its own utterance, with flite's
    // own pauses around it, so the same text cut elsewhere has another rhythm (it scored 0.57).
    pcm = Promise.all(
      piecesOf(text, spoken).map(async (piece) => {
        const s = await synthesize(piece, { voice });
        if (s.sampleRate !== 16000) throw new Error(`flite gave ${s.sampleRate} Hz, expected 16000`);
        return s.samples;
      }),
    ).then(concatSamples);
    rendered.set(key, pcm);
  }
  return pcm;
}

/**
 * Waits until `text`, in the gateway's flite voice, has been heard whole in what `audio()` returns
 * from sample `from` on; returns the match. Times out with the best score seen, so a failure says
 * how close it came.
 */
export async function hears(
  audio: () => Int16Array,
  text: string,
  options: { from?: number; timeoutMs?: number; voice?: FliteVoice; spoken?: Spoken } = {},
): Promise<{ score: number; atMs: number }> {
  const reference = await fliteSays(text, options.voice, options.spoken);
  const from = options.from ?? 0;
  const deadline = performance.now() + (options.timeoutMs ?? 10_000);
  let best = { score: 0, atMs: 0 };
  for (;;) {
    const heard = audio().subarray(from);
    best = speechMatch(reference, heard);
    if (best.score >= SPEECH_MATCH || performance.now() > deadline) return best;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** What the demo tenant (dialplans/demo.yaml) says: its greeting and two intents' replies. */
export const DEMO = {
  GREETING: "Hi, I'm Ava from Joe's Pizza, what can I do for you today?",
  HOURS: 'We open at eleven in the morning and close at ten at night, every day.',
  BOOK: 'Of course. For how many people, and at what time?',
} as const;

/**
 * The caller says a fixture phrase (tests/fixtures/NAME.wav, 16 kHz); resolves with how well the
 * agent's `reply` was then heard.
 */
export async function asks(peer: BrowserPeer, fixture: string, reply: string, timeoutMs = 15_000): Promise<{ score: number; atMs: number }> {
  const from = peer.receivedAudio().length;
  const { samples, sampleRate } = await readWavFile(fileURLToPath(new URL(`../fixtures/${fixture}.wav`, import.meta.url)));
  if (sampleRate !== 16000) throw new Error(`${fixture}.wav is ${sampleRate} Hz, expected 16000`);
  peer.play(samples);
  const heard = await hears(() => peer.receivedAudio(), reply, { from, timeoutMs, spoken: 'reply' });
  // The match is found before the reply's last words have played; a caller who hangs up now would cut
  // them off (and the record would keep only what was heard). Wait, bounded, for 600 ms of quiet.
  const quietFor = 0.6 * 16000;
  for (let waited = 0; waited < 4000; waited += 100) {
    const audio = peer.receivedAudio();
    if (audio.length - from > quietFor && soundMs(audio.subarray(audio.length - quietFor)) === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return heard;
}
