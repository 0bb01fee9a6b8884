/**
 * Generates tests/fixtures/: speech WAVs of the demo tenant (Ava of Joe's Pizza and a caller), RTP
 * captures of one caller phrase in Opus and PCMU, a PCMU capture with RFC 4733 DTMF, and
 * manifest.json describing each file. `npm run fixtures` (tsx scripts/fixtures.ts [outDir]).
 *
 * Deterministic on purpose: the same code produces the same bytes on every run and machine (flite and
 * libopus are wasm, every time is derived from a fixed epoch, nothing random), so the committed files
 * are checked in tests/fixtures/fixtures.test.ts by regenerating them.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { encodePcap, type PcapRecord } from '../src/media/capture/pcapWriter.js';
import type { UdpAddress } from '../src/media/capture/PacketTap.js';
import type { AudioEncoder, CodecName } from '../src/media/codecs/AudioCodec.js';
import { createEncoder } from '../src/media/codecs/registry.js';
import { dtmfPayloads } from '../src/media/codecs/telephoneEvent.js';
import { resample } from '../src/media/Resampler.js';
import { serializeRtp } from '../src/media/rtp/RtpPacket.js';
import { FRAME_MS, PIPELINE_RATE } from '../src/media/types.js';
import { encodeWav } from '../src/media/wav.js';
import { synthesize, type FliteVoice } from '../src/providers/fliteTts.js';

export const DEFAULT_FIXTURES_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../tests/fixtures');

/** 2026-01-01T00:00:00Z in microseconds: the first packet of every capture. A literal, not a clock. */
export const FIXTURE_EPOCH_US = 1_767_225_600_000_000;

/** The caller's phone sends from here to callgate's RTP port. */
export const CALLER_ADDRESS: UdpAddress = { address: '127.0.0.1', port: 40000 };
export const CALLGATE_ADDRESS: UdpAddress = { address: '127.0.0.1', port: 40002 };

export interface PhraseSpec {
  /** File name stem. */
  readonly id: string;
  readonly text: string;
  /** Who says it in the demo call. */
  readonly role: 'agent' | 'caller';
  readonly voice: FliteVoice;
}

/** Ava speaks with flite's slt voice, the caller with rms, so tests can tell the two sides apart. */
export const PHRASES: readonly PhraseSpec[] = [
  { id: 'ava-greeting', role: 'agent', voice: 'slt', text: "Hi, I'm Ava from Joe's Pizza, what can I do for you today?" },
  { id: 'caller-open-today', role: 'caller', voice: 'rms', text: 'What time do you open today?' },
  { id: 'caller-book-table', role: 'caller', voice: 'rms', text: 'I would like to book a table for four people at seven' },
  { id: 'caller-goodbye', role: 'caller', voice: 'rms', text: 'Thank you, goodbye.' },
];

/** The phrase the RTP captures carry. */
const CAPTURED_PHRASE = 'caller-open-today';
/** The phrase spoken after the digits in the DTMF capture, so audio is seen to resume after events. */
const DTMF_TRAILING_PHRASE = 'caller-goodbye';

interface StreamSpec {
  readonly ssrc: number;
  readonly firstSequence: number;
  readonly firstTimestamp: number;
}

const OPUS_STREAM = { ssrc: 0x0ca11e01, firstSequence: 1000, firstTimestamp: 480_000 } as const satisfies StreamSpec;
const PCMU_STREAM = { ssrc: 0x0ca11e02, firstSequence: 2000, firstTimestamp: 80_000 } as const satisfies StreamSpec;
const DTMF_STREAM = { ssrc: 0x0ca11e03, firstSequence: 3000, firstTimestamp: 160_000 } as const satisfies StreamSpec;
const GOODBYE_STREAM = { ssrc: 0x0ca11e04, firstSequence: 4000, firstTimestamp: 240_000 } as const satisfies StreamSpec;
const ECHO_STREAM = { ssrc: 0x0ca11e05, firstSequence: 5000, firstTimestamp: 320_000 } as const satisfies StreamSpec;
const COUGH_STREAM = { ssrc: 0x0ca11e06, firstSequence: 6000, firstTimestamp: 400_000 } as const satisfies StreamSpec;
const BOOKING_STREAM = { ssrc: 0x0ca11e07, firstSequence: 7000, firstTimestamp: 480_000 } as const satisfies StreamSpec;

/**
 * The agent's greeting as a phone line returns it: 20 dB down (a typical hybrid echo) and this much
 * later than it was sent. The agent tests replay it while the greeting plays: the agent must not take
 * its own voice for the caller.
 */
export const ECHO = { gainDb: -20, delayMs: 60 } as const;

/** A cough: 180 ms of noise, sharp onset, fast decay, as loud as speech. No words in it. */
export const COUGH = { durationMs: 180, peakDbfs: -14, seed: 0xc0ffee } as const;

/** Payload types as commonly negotiated: static 0 for PCMU, the usual dynamic 111 (Opus) and 101 (events). */
export const PAYLOAD_TYPES = { opus: 111, PCMU: 0, telephoneEvent: 101 } as const;

/** What happens in the DTMF capture, in order; gaps are PCMU digital silence. */
type DtmfStep = { readonly silenceMs: number } | { readonly digit: string; readonly durationMs: number } | { readonly phrase: string };
const DTMF_SCRIPT: readonly DtmfStep[] = [
  { silenceMs: 300 },
  { digit: '1', durationMs: 120 },
  { silenceMs: 400 },
  { digit: '5', durationMs: 100 },
  { silenceMs: 400 },
  { digit: '#', durationMs: 160 },
  { silenceMs: 300 },
  { phrase: DTMF_TRAILING_PHRASE },
];

export interface WavEntry {
  readonly file: string;
  readonly kind: 'wav';
  readonly phrase: string;
  readonly role: PhraseSpec['role'];
  readonly voice: FliteVoice;
  readonly sampleRate: number;
  readonly samples: number;
  readonly durationMs: number;
  readonly bytes: number;
  readonly sha256: string;
}

export interface DtmfEntryEvent {
  readonly digit: string;
  /** RTP timestamp every packet of the event carries. */
  readonly rtpTimestamp: number;
  readonly durationMs: number;
  /** When the event's first packet was sent, after the capture's first packet. */
  readonly startMs: number;
}

export interface CaptureEntry {
  readonly file: string;
  readonly kind: 'pcap';
  /** Text spoken in the capture (for the DTMF capture, the phrase after the digits). */
  readonly phrase: string;
  /** The WAV the audio was encoded from. */
  readonly source: string;
  readonly codec: CodecName;
  readonly payloadType: number;
  readonly clockRate: number;
  readonly ssrc: number;
  readonly firstSequence: number;
  readonly firstTimestamp: number;
  readonly src: UdpAddress;
  readonly dst: UdpAddress;
  /** All RTP packets, audio and events. */
  readonly packets: number;
  readonly audioPackets: number;
  /** From the first packet's send time to the end of the last 20 ms slot. */
  readonly durationMs: number;
  readonly telephoneEvent?: { readonly payloadType: number; readonly clockRate: number; readonly events: readonly DtmfEntryEvent[] };
  readonly bytes: number;
  readonly sha256: string;
}

export type ManifestEntry = WavEntry | CaptureEntry;

export interface Manifest {
  readonly generator: string;
  readonly epochUs: number;
  readonly files: readonly ManifestEntry[];
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Splits PCM into whole frames, padding the last with silence (a sender never sends a short frame). */
function framesOf(pcm: Int16Array, frameSamples: number): Int16Array[] {
  const frames: Int16Array[] = [];
  for (let start = 0; start < pcm.length; start += frameSamples) {
    const frame = new Int16Array(frameSamples);
    frame.set(pcm.subarray(start, Math.min(pcm.length, start + frameSamples)));
    frames.push(frame);
  }
  return frames;
}

interface ScheduledPacket {
  /** Microseconds after the capture's first packet. */
  readonly offsetUs: number;
  readonly payloadType: number;
  readonly timestamp: number;
  readonly marker: boolean;
  readonly payload: Uint8Array;
}

/**
 * Lays out one RTP stream slot by slot (one slot = 20 ms): audio slots carry a frame each, a key press
 * takes over the slots it lasts (senders pause audio while an event plays, RFC 4733 §2.5.1.1) and its
 * packets all carry the timestamp of its first slot. Sequence numbers are assigned later in send order.
 */
class StreamScheduler {
  readonly packets: ScheduledPacket[] = [];
  readonly events: DtmfEntryEvent[] = [];
  private slot = 0;

  constructor(
    private readonly encoder: AudioEncoder,
    private readonly spec: StreamSpec,
    private readonly payloadType: number,
  ) {}

  get slots(): number {
    return this.slot;
  }

  private timestampOf(slot: number): number {
    return (this.spec.firstTimestamp + slot * this.encoder.timestampIncrement) >>> 0;
  }

  audio(pcm: Int16Array): void {
    for (const frame of framesOf(pcm, this.encoder.frameSamples)) {
      this.packets.push({
        offsetUs: this.slot * FRAME_MS * 1000,
        payloadType: this.payloadType,
        timestamp: this.timestampOf(this.slot),
        // RFC 3550: the marker starts a talkspurt; a continuous stream sets it on its first packet only.
        marker: this.packets.length === 0,
        // Encoders may reuse their output buffer between calls.
        payload: Uint8Array.from(this.encoder.encode(frame)),
      });
      this.slot++;
    }
  }

  silence(durationMs: number): void {
    this.audio(new Int16Array(Math.round((durationMs * this.encoder.sampleRate) / 1000)));
  }

  digit(digit: string, durationMs: number, payloadType: number): void {
    const startUs = this.slot * FRAME_MS * 1000;
    const timestamp = this.timestampOf(this.slot);
    for (const packet of dtmfPayloads(digit, durationMs, this.encoder.clockRate)) {
      this.packets.push({ offsetUs: startUs + packet.sendOffsetMs * 1000, payloadType, timestamp, marker: packet.marker, payload: packet.payload });
    }
    this.events.push({ digit, rtpTimestamp: timestamp, durationMs, startMs: startUs / 1000 });
    this.slot += Math.ceil(durationMs / FRAME_MS);
  }

  /** pcap records in send order, numbered from the stream's first sequence number. */
  records(): PcapRecord[] {
    return this.packets.map((p, i) => ({
      timeUs: FIXTURE_EPOCH_US + p.offsetUs,
      src: CALLER_ADDRESS,
      dst: CALLGATE_ADDRESS,
      payload: serializeRtp(
        { marker: p.marker, payloadType: p.payloadType, sequenceNumber: (this.spec.firstSequence + i) & 0xffff, timestamp: p.timestamp, ssrc: this.spec.ssrc },
        p.payload,
      ),
    }));
  }
}

interface Output {
  readonly file: string;
  readonly bytes: Uint8Array;
}

function captureEntry(
  file: string,
  bytes: Uint8Array,
  phrase: { readonly text: string; readonly id: string },
  encoder: AudioEncoder,
  spec: StreamSpec,
  payloadType: number,
  scheduler: StreamScheduler,
): CaptureEntry {
  return {
    file,
    kind: 'pcap',
    phrase: phrase.text,
    source: phrase.id === 'cough' ? '' : `${phrase.id}.wav`,
    codec: encoder.codec,
    payloadType,
    clockRate: encoder.clockRate,
    ssrc: spec.ssrc,
    firstSequence: spec.firstSequence,
    firstTimestamp: spec.firstTimestamp,
    src: CALLER_ADDRESS,
    dst: CALLGATE_ADDRESS,
    packets: scheduler.packets.length,
    audioPackets: scheduler.packets.filter((p) => p.payloadType === payloadType).length,
    durationMs: scheduler.slots * FRAME_MS,
    ...(scheduler.events.length > 0
      ? { telephoneEvent: { payloadType: PAYLOAD_TYPES.telephoneEvent, clockRate: encoder.clockRate, events: scheduler.events } }
      : {}),
    bytes: bytes.length,
    sha256: sha256(bytes),
  };
}

/** Seeded noise, low-passed (a cough is mostly below 2 kHz), with a 10 ms attack and an exponential decay. */
function cough(): Int16Array {
  const n = (COUGH.durationMs * PIPELINE_RATE) / 1000;
  const out = new Int16Array(n);
  let state = COUGH.seed;
  let lp = 0;
  const peak = 32768 * 10 ** (COUGH.peakDbfs / 20) * 3;
  for (let i = 0; i < n; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const white = state / 2 ** 31 - 1;
    lp += 0.35 * (white - lp);
    const t = i / PIPELINE_RATE;
    const envelope = Math.min(1, t / 0.01) * Math.exp(-t / 0.06);
    out[i] = Math.round(Math.max(-32767, Math.min(32767, peak * envelope * lp)));
  }
  return out;
}

function phraseById(id: string): PhraseSpec {
  const phrase = PHRASES.find((p) => p.id === id);
  if (!phrase) throw new Error(`fixtures: no phrase "${id}"`);
  return phrase;
}

/** Builds every fixture in memory: file names with their bytes, and the manifest describing them. */
export async function buildFixtures(): Promise<{ outputs: Output[]; manifest: Manifest }> {
  const outputs: Output[] = [];
  const entries: ManifestEntry[] = [];
  const speech = new Map<string, Int16Array>();

  for (const phrase of PHRASES) {
    const { samples, sampleRate } = await synthesize(phrase.text, { voice: phrase.voice });
    speech.set(phrase.id, samples);
    const bytes = encodeWav({ samples, sampleRate });
    const file = `${phrase.id}.wav`;
    outputs.push({ file, bytes });
    entries.push({
      file,
      kind: 'wav',
      phrase: phrase.text,
      role: phrase.role,
      voice: phrase.voice,
      sampleRate,
      samples: samples.length,
      durationMs: (samples.length * 1000) / sampleRate,
      bytes: bytes.length,
      sha256: sha256(bytes),
    });
  }
  const speechOf = (id: string): Int16Array => speech.get(id) ?? new Int16Array(0);
  const captured = phraseById(CAPTURED_PHRASE);

  // Opus straight from the 16 kHz speech (the encoder takes the pipeline rate; the RTP clock is 48 kHz).
  {
    const encoder = createEncoder('opus', { sampleRate: PIPELINE_RATE });
    const scheduler = new StreamScheduler(encoder, OPUS_STREAM, PAYLOAD_TYPES.opus);
    scheduler.audio(speechOf(captured.id));
    encoder.close();
    const file = `${captured.id}.opus.pcap`;
    const bytes = encodePcap(scheduler.records());
    outputs.push({ file, bytes });
    entries.push(captureEntry(file, bytes, captured, encoder, OPUS_STREAM, PAYLOAD_TYPES.opus, scheduler));
  }

  // PCMU of the same phrase, resampled to the 8 kHz a telephone leg carries.
  {
    const encoder = createEncoder('PCMU');
    const scheduler = new StreamScheduler(encoder, PCMU_STREAM, PAYLOAD_TYPES.PCMU);
    scheduler.audio(resample(speechOf(captured.id), PIPELINE_RATE, encoder.sampleRate));
    encoder.close();
    const file = `${captured.id}.pcmu.pcap`;
    const bytes = encodePcap(scheduler.records());
    outputs.push({ file, bytes });
    entries.push(captureEntry(file, bytes, captured, encoder, PCMU_STREAM, PAYLOAD_TYPES.PCMU, scheduler));
  }

  // PCMU with key presses between stretches of silence, then speech.
  {
    const encoder = createEncoder('PCMU');
    const scheduler = new StreamScheduler(encoder, DTMF_STREAM, PAYLOAD_TYPES.PCMU);
    for (const step of DTMF_SCRIPT) {
      if ('silenceMs' in step) scheduler.silence(step.silenceMs);
      else if ('digit' in step) scheduler.digit(step.digit, step.durationMs, PAYLOAD_TYPES.telephoneEvent);
      else scheduler.audio(resample(speechOf(step.phrase), PIPELINE_RATE, encoder.sampleRate));
    }
    encoder.close();
    const digits = DTMF_SCRIPT.flatMap((s) => ('digit' in s ? [s.digit === '#' ? 'hash' : s.digit] : [])).join('-');
    const file = `dtmf-${digits}.pcmu.pcap`;
    const bytes = encodePcap(scheduler.records());
    outputs.push({ file, bytes });
    entries.push(captureEntry(file, bytes, phraseById(DTMF_TRAILING_PHRASE), encoder, DTMF_STREAM, PAYLOAD_TYPES.PCMU, scheduler));
  }

  // PCMU captures for the agent tests: the caller's goodbye, the greeting's echo, and a cough.
  const pcmuCapture = (file: string, phrase: { text: string; id: string }, spec: StreamSpec, pcm16k: Int16Array): void => {
    const encoder = createEncoder('PCMU');
    const scheduler = new StreamScheduler(encoder, spec, PAYLOAD_TYPES.PCMU);
    scheduler.audio(resample(pcm16k, PIPELINE_RATE, encoder.sampleRate));
    encoder.close();
    const bytes = encodePcap(scheduler.records());
    outputs.push({ file, bytes });
    entries.push(captureEntry(file, bytes, phrase, encoder, spec, PAYLOAD_TYPES.PCMU, scheduler));
  };
  pcmuCapture('caller-goodbye.pcmu.pcap', phraseById('caller-goodbye'), GOODBYE_STREAM, speechOf('caller-goodbye'));
  pcmuCapture('caller-book-table.pcmu.pcap', phraseById('caller-book-table'), BOOKING_STREAM, speechOf('caller-book-table'));
  {
    const greeting = speechOf('ava-greeting');
    const gain = 10 ** (ECHO.gainDb / 20);
    const delay = (ECHO.delayMs * PIPELINE_RATE) / 1000;
    const echo = new Int16Array(delay + greeting.length);
    for (let i = 0; i < greeting.length; i++) echo[delay + i] = Math.round(greeting[i]! * gain);
    pcmuCapture(`ava-greeting-echo${ECHO.gainDb}db.pcmu.pcap`, phraseById('ava-greeting'), ECHO_STREAM, echo);
  }
  pcmuCapture('caller-cough.pcmu.pcap', { text: '', id: 'cough' }, COUGH_STREAM, cough());

  const manifest: Manifest = { generator: 'scripts/fixtures.ts (npm run fixtures)', epochUs: FIXTURE_EPOCH_US, files: entries };
  outputs.push({ file: 'manifest.json', bytes: Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`) });
  return { outputs, manifest };
}

/** Writes the fixtures into `outDir` (created if needed); other files there are left alone. */
export async function generateFixtures(outDir: string = DEFAULT_FIXTURES_DIR): Promise<Manifest> {
  const { outputs, manifest } = await buildFixtures();
  await mkdir(outDir, { recursive: true });
  for (const { file, bytes } of outputs) await writeFile(join(outDir, file), bytes);
  return manifest;
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (invokedDirectly) {
  const outDir = resolve(process.argv[2] ?? DEFAULT_FIXTURES_DIR);
  const manifest = await generateFixtures(outDir);
  let total = 0;
  for (const entry of manifest.files) {
    total += entry.bytes;
    console.log(`${entry.file.padEnd(32)} ${String(entry.bytes).padStart(8)} bytes  ${entry.sha256.slice(0, 12)}`);
  }
  console.log(`${manifest.files.length} files, ${total} bytes (+ manifest.json) in ${outDir}`);
}
