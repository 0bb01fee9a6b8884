import { isPocketsphinxInstalled } from './options.js';

export { PocketsphinxStt, type PocketsphinxSttInput } from './PocketsphinxStt.js';
export type { PocketsphinxStream } from './PocketsphinxStream.js';
export {
  defaultDecoderOptions,
  defaultPocketsphinxOptions,
  isPocketsphinxInstalled,
  type PocketsphinxDecoderOptions,
  type PocketsphinxOptions,
} from './options.js';
export { recognizePcm, type RecognizePcmOptions } from './recognize.js';
export { normalisePhrase } from './grammar.js';

/** Whether `pocketsphinx_continuous` and the en-us model are installed (checked once, at import). */
export const POCKETSPHINX_AVAILABLE: boolean = isPocketsphinxInstalled();
