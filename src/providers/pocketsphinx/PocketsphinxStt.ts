import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CallgateError, isCallgateError } from '../../errors.js';
import { PIPELINE_RATE } from '../../media/types.js';
import { stripUndefined } from '../../util/options.js';
import type { SttProvider, SttStream, SttStreamOptions } from '../types.js';
import { buildPhraseGrammar, type PhraseGrammar } from './grammar.js';
import { loadLexicon } from './lexicon.js';
import { defaultPocketsphinxOptions, modelFiles, type PocketsphinxDecoderOptions, type PocketsphinxOptions } from './options.js';
import { PocketsphinxProcess } from './PocketsphinxProcess.js';
import { PocketsphinxStream } from './PocketsphinxStream.js';
import { TelephoneBand } from './TelephoneBand.js';

/**
 * Offline speech-to-text with Debian's pocketsphinx (0.8+5prealpha, driven through its CLI): one
 * `pocketsphinx_continuous` per stream. With phrases, it recognises against a grammar of them plus a
 * garbage path (grammar.ts) and returns a phrase (as normalised words, e.g. "joe's pizza") or nothing;
 * without, it transcribes with the general US English language model.
 */

/**
 * Cepstral mean the telephone band starts from, measured with the decoder's own live normalisation on
 * band-limited and 8 kHz µ-law flite speech (4 voices × 16 sentences): the mean it settles on. The model's
 * wideband start value is 41.0, -5.3, -0.1, 5.1, …
 */
const TELEPHONE_CMN_INIT = '41.8,30.7,-32.0,45.7,-10.7,-6.6,22.3,-26.0,8.8,0.5,-4.6,14.1,-10.0';

/** The en-us model is US English; other English variants are close enough to try, other languages not. */
function supportsLanguage(language: string): boolean {
  return /^en(-|$)/i.test(language);
}

function decoderArgs(decoder: PocketsphinxDecoderOptions, postspeechFrames: number): string[] {
  return [
    '-vad_postspeech', String(postspeechFrames),
    '-vad_prespeech', String(decoder.vadPrespeechFrames),
    '-vad_startspeech', String(decoder.vadStartspeechFrames),
    '-vad_threshold', String(decoder.vadThreshold),
    ...decoder.extraArgs,
  ];
}

function checkOptions(options: PocketsphinxOptions): void {
  const bad = (name: string, why: string): never => {
    throw new CallgateError('CG_CONFIG_INVALID', `pocketsphinx ${name} ${why}`, { details: { option: name } });
  };
  const { garbageWeight, decoder } = options;
  if (!(garbageWeight === 0 || (garbageWeight > 1e-20 && garbageWeight <= 1))) bad('garbageWeight', 'must be 0 or in (1e-20, 1]');
  for (const name of ['finalizeTimeoutMs', 'startTimeoutMs', 'pollIntervalMs', 'maxBacklogMs'] as const) {
    if (!(options[name] > 0)) bad(name, 'must be positive');
  }
  for (const name of ['vadPostspeechFramesGrammar', 'vadPostspeechFramesGeneral', 'vadPrespeechFrames', 'vadStartspeechFrames'] as const) {
    if (!Number.isInteger(decoder[name]) || decoder[name] < 1) bad(`decoder.${name}`, 'must be a whole number of frames ≥ 1');
  }
}

export interface PocketsphinxSttInput extends Partial<Omit<PocketsphinxOptions, 'decoder'>> {
  readonly decoder?: Partial<PocketsphinxDecoderOptions>;
}

export class PocketsphinxStt implements SttProvider {
  readonly name = 'pocketsphinx';
  readonly options: PocketsphinxOptions;

  constructor(options: PocketsphinxSttInput = {}) {
    const { decoder, ...rest } = options;
    this.options = {
      ...defaultPocketsphinxOptions,
      ...stripUndefined(rest),
      decoder: { ...defaultPocketsphinxOptions.decoder, ...stripUndefined(decoder ?? {}) },
    };
    checkOptions(this.options);
  }

  /**
   * Starts a decoder for one stream and resolves once its models are loaded: ~30 ms with phrases (the
   * decoder then holds ~13 MB), ~0.3 s for the general model (~100 MB). Rejects with CG_STT_UNAVAILABLE
   * when pocketsphinx or its model is missing, the language is not English, or the decoder does not start.
   */
  async open(streamOptions: SttStreamOptions): Promise<SttStream> {
    const { options } = this;
    const log = streamOptions.logger?.child({ stt: this.name });
    if (!supportsLanguage(streamOptions.language)) {
      throw new CallgateError('CG_STT_UNAVAILABLE', `pocketsphinx has no model for language "${streamOptions.language}"`, {
        details: { language: streamOptions.language },
      });
    }
    const files = modelFiles(options.modelDir);
    const grammar = streamOptions.phrases.length > 0 ? await this.grammarFor(streamOptions.phrases, files.dict) : undefined;
    if (grammar?.unknownWords.length) {
      log?.warn({ words: grammar.unknownWords }, 'phrase words missing from the pocketsphinx dictionary were left out');
    }
    if (streamOptions.phrases.length > 0 && !grammar) log?.warn('no phrase is usable; recognising with the general model');

    const dir = await mkdtemp(join(options.tempDir, 'callgate-pocketsphinx-')).catch((err: unknown) => {
      throw new CallgateError('CG_STT_UNAVAILABLE', 'cannot create a directory for pocketsphinx', { cause: err });
    });
    try {
      const { decoder } = options;
      const postspeechFrames = grammar ? decoder.vadPostspeechFramesGrammar : decoder.vadPostspeechFramesGeneral;
      const args = ['-hmm', files.hmm, ...(await this.writeModelFiles(dir, grammar, files)), ...decoderArgs(decoder, postspeechFrames)];
      const proc = await PocketsphinxProcess.start({
        binary: options.binary,
        args,
        dir,
        startTimeoutMs: options.startTimeoutMs,
        maxBacklogBytes: options.maxBacklogMs * (PIPELINE_RATE / 1000) * 2,
      });
      log?.debug({ pid: proc.pid, mode: grammar ? 'grammar' : 'general', phrases: grammar?.phrases.size ?? 0 }, 'pocketsphinx stream open');
      return new PocketsphinxStream({
        proc,
        dir,
        grammar,
        band: options.band === 'telephone' ? new TelephoneBand() : undefined,
        postspeechMs: postspeechFrames * 10,
        options,
        log,
      });
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      if (isCallgateError(err)) throw err;
      throw new CallgateError('CG_STT_UNAVAILABLE', 'cannot prepare pocketsphinx', { cause: err });
    }
  }

  /**
   * Does once what a process's first stream would pay for (~0.5 s here, against ~0.1 s later): parses
   * the pronunciation dictionary (kept for every stream after) and starts and stops one decoder, which
   * pages its binary and acoustic model in. Rejects as `open` does when pocketsphinx is missing.
   */
  async warmUp(): Promise<void> {
    const stream = await this.open({ language: 'en-US', phrases: ['hello'] });
    await stream.close();
  }

  private async grammarFor(phrases: readonly string[], dictPath: string): Promise<PhraseGrammar | undefined> {
    const lexicon = await loadLexicon(dictPath);
    return buildPhraseGrammar(phrases, lexicon, { garbageWeight: this.options.garbageWeight });
  }

  /** Writes the grammar, its dictionary and the feature parameters into `dir`; returns the decoder flags for them. */
  private async writeModelFiles(dir: string, grammar: PhraseGrammar | undefined, files: ReturnType<typeof modelFiles>): Promise<string[]> {
    const args: string[] = [];
    if (grammar) {
      await writeFile(join(dir, 'phrases.gram'), grammar.jsgf);
      await writeFile(join(dir, 'phrases.dict'), grammar.dictionary);
      args.push('-jsgf', join(dir, 'phrases.gram'), '-dict', join(dir, 'phrases.dict'));
    } else {
      args.push('-lm', files.lm, '-dict', files.dict);
    }
    if (this.options.band === 'telephone') {
      // The model's feat.params wins over a -cmninit flag, so the start value goes into a copy of it.
      const params = await readFile(files.featParams, 'utf8').catch((err: unknown) => {
        throw new CallgateError('CG_STT_UNAVAILABLE', 'pocketsphinx model feature parameters cannot be read', {
          cause: err,
          details: { path: files.featParams },
        });
      });
      const lines = params.split('\n').filter((line) => !line.startsWith('-cmninit'));
      await writeFile(join(dir, 'feat.params'), [...lines.filter((l) => l.trim() !== ''), `-cmninit ${TELEPHONE_CMN_INIT}`, ''].join('\n'));
      args.push('-featparams', join(dir, 'feat.params'));
    }
    return args;
  }
}
