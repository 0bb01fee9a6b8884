import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { findOnPath, isExecutable } from '../../util/executable.js';

/** Decoder flags that change what pocketsphinx hears and how fast; everything else stays at its default. */
export interface PocketsphinxDecoderOptions {
  /**
   * `-vad_postspeech` with a phrase grammar: silence, in 10 ms frames, after which the decoder ends an
   * utterance. `finalize()` pushes this much silence (plus a margin) at once to end the last one.
   */
  readonly vadPostspeechFramesGrammar: number;
  /** `-vad_postspeech` with the general model; here the silence pushed at `finalize()` costs latency. */
  readonly vadPostspeechFramesGeneral: number;
  /** `-vad_prespeech`: audio, in 10 ms frames, kept from before the speech onset. */
  readonly vadPrespeechFrames: number;
  /** `-vad_startspeech`: speech frames needed before an utterance starts (10 = 100 ms). */
  readonly vadStartspeechFrames: number;
  /** `-vad_threshold`: log-ratio of signal to noise level above which a frame is speech. */
  readonly vadThreshold: number;
  /** Further raw flags, appended last (e.g. `['-beam', '1e-60']`). */
  readonly extraArgs: readonly string[];
}

export interface PocketsphinxOptions {
  /** The streaming CLI: a path, or a name looked up on PATH. */
  readonly binary: string;
  /** Model directory: acoustic model in `en-us/`, `en-us.lm.bin`, `cmudict-en-us.dict`. */
  readonly modelDir: string;
  /**
   * 'telephone' cuts every stream to the telephone band (flat to 3.2 kHz) and starts normalisation from
   * a telephone-band mean (see TelephoneBand); 'wide' feeds audio unchanged with the model's own start
   * values — better for wideband-only deployments, very poor on the first utterance of a phone call.
   */
  readonly band: 'telephone' | 'wide';
  /** Prior of one garbage unit beside the phrases (see grammar.ts); 0 makes the phrase grammar closed. */
  readonly garbageWeight: number;
  /** `finalize()` rejects with CG_STT_TIMEOUT when the decoder has not caught up by then. */
  readonly finalizeTimeoutMs: number;
  /** `open()` rejects with CG_STT_UNAVAILABLE when the models have not loaded by then. */
  readonly startTimeoutMs: number;
  /** How often `finalize()` checks whether the decoder has caught up. */
  readonly pollIntervalMs: number;
  /** Audio the decoder may lag behind before the stream fails (it is stuck, or the host overloaded). */
  readonly maxBacklogMs: number;
  /** Where each stream keeps its FIFO, grammar and dictionary; removed on close. */
  readonly tempDir: string;
  readonly decoder: PocketsphinxDecoderOptions;
}

export const defaultDecoderOptions = {
  /**
   * 1 s: longer than the pauses people make inside one phrase and than the agent's default endpointing
   * (500 ms), so an utterance is not cut in two — a phrase split in halves matches no phrase. It costs
   * next to nothing: the grammar search runs at ~0.02× real time, and finalize() resolved a median 16 ms
   * (at most 57 ms) after the last speech frame; about the same with 500 ms.
   */
  vadPostspeechFramesGrammar: 100,
  /**
   * 500 ms, pocketsphinx's default. The general search runs at ~0.1–0.25× real time, so the trailing
   * silence it must search shows in finalize(): median ~220 ms after the last speech frame with 500 ms,
   * ~300 ms with 1 s. A sentence cut at a pause is still transcribed (its parts are joined), so the
   * shorter setting wins here.
   */
  vadPostspeechFramesGeneral: 50,
  /** 200 ms, pocketsphinx's default: enough for a soft word onset. */
  vadPrespeechFrames: 20,
  /** 100 ms, pocketsphinx's default: clicks shorter than that do not open an utterance. */
  vadStartspeechFrames: 10,
  /** pocketsphinx's default (2.0). */
  vadThreshold: 2,
  /** None. */
  extraArgs: [],
} as const satisfies PocketsphinxDecoderOptions;

export const defaultPocketsphinxOptions = {
  /** Debian package `pocketsphinx` (0.8+5prealpha). */
  binary: 'pocketsphinx_continuous',
  /** Debian package `pocketsphinx-en-us`. */
  modelDir: '/usr/share/pocketsphinx/model/en-us',
  /** Phone calls are what callgate is for; see TelephoneBand for the numbers. */
  band: 'telephone',
  /** 1e-12 per unit: the best balance measured (grammar.ts has the table). */
  garbageWeight: 1e-12,
  /** 2 s: the decoder catches up in a median 16 ms (grammar) / 230 ms (general model), 0.5 s at worst seen. */
  finalizeTimeoutMs: 2000,
  /** 10 s: the general model loaded in ~0.3 s here, a grammar in ~30 ms; a slow disk or busy host takes longer. */
  startTimeoutMs: 10_000,
  /** 5 ms: a poll is two small procfs reads. */
  pollIntervalMs: 5,
  /** 10 s of audio: the general model decodes at ~0.1–0.4× real time; lagging this far means stuck. */
  maxBacklogMs: 10_000,
  /** The OS temp directory as the process started. */
  tempDir: tmpdir(),
  decoder: defaultDecoderOptions,
} as const satisfies PocketsphinxOptions;

/** File paths inside `modelDir`. */
export function modelFiles(modelDir: string): { hmm: string; lm: string; dict: string; featParams: string } {
  return {
    hmm: join(modelDir, 'en-us'),
    lm: join(modelDir, 'en-us.lm.bin'),
    dict: join(modelDir, 'cmudict-en-us.dict'),
    featParams: join(modelDir, 'en-us', 'feat.params'),
  };
}

/** Whether the binary (on PATH or at its path) and the model files are installed. */
export function isPocketsphinxInstalled(options: Pick<PocketsphinxOptions, 'binary' | 'modelDir'> = defaultPocketsphinxOptions): boolean {
  const { binary, modelDir } = options;
  const found = binary.includes('/')
    ? isExecutable(isAbsolute(binary) ? binary : join(process.cwd(), binary))
    : findOnPath(binary) !== undefined;
  const files = modelFiles(modelDir);
  return found && existsSync(files.hmm) && existsSync(files.lm) && existsSync(files.dict);
}
