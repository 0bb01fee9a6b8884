import { createHash } from 'node:crypto';
import { FliteTtsProvider } from '../FliteTtsProvider.js';

/**
 * Run by FliteTtsProvider.test.ts with `tsx` in a child process, to prove the worker starts the way the
 * CLI and benchmarks run TypeScript. Prints one JSON line. `--no-close` leaves the provider open: the
 * process must still exit by itself (an idle pool does not hold the event loop).
 */
const text = process.argv[2] ?? 'What time do you open today?';
const close = !process.argv.includes('--no-close');
const provider = new FliteTtsProvider();
const hash = createHash('sha256');
let samples = 0;
for await (const chunk of provider.synthesize({ text, voice: 'slt', signal: new AbortController().signal })) {
  hash.update(new Uint8Array(chunk.samples.buffer, chunk.samples.byteOffset, chunk.samples.byteLength));
  samples += chunk.samples.length;
}
if (close) await provider.close();
console.log(JSON.stringify({ samples, sha256: hash.digest('hex'), workers: provider.stats().workers }));
