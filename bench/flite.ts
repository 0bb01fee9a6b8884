import './support/logsToStderr.js';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { percentile } from '../src/util/percentile.js';
import { loadFlite, synthesize } from '../src/providers/fliteTts.js';
import { FliteTtsProvider } from '../src/providers/flite/FliteTtsProvider.js';

/**
 * What moving flite off the main thread buys: main-thread event-loop delay while 20 sentences are
 * synthesised, directly (fliteTts.synthesize on this thread) and through FliteTtsProvider; the pool's
 * start-up; time to first chunk per sentence. Prints one JSON line.
 *
 *   npm run bench:flite      (from source: the worker loads through tsx); about 5 s, so --quick is the same run
 */

const SENTENCES = [
  "Hi, I'm Ava from Joe's Pizza, what can I do for you today?",
  'We open at eleven in the morning and close at ten at night.',
  'Would you like to place an order for pickup or delivery?',
  'I can book a table for four people at seven tonight.',
  'Sorry, I did not catch that, could you say it again?',
  'Your order will be ready in about twenty minutes.',
  'We have a large pepperoni, a veggie special, and a margherita.',
  'The total comes to twenty three dollars and fifty cents.',
  'Is there anything else I can help you with?',
  'Thank you for calling, goodbye.',
  'Our address is one hundred and twenty Main Street.',
  'Parking is available behind the building.',
  'We do have gluten free crust for an extra two dollars.',
  'Let me check that for you, one moment please.',
  'The kitchen closes thirty minutes before we do.',
  'Can I have a name for the reservation?',
  'Great, you are all set for Friday at six thirty.',
  'We accept cash and all major credit cards.',
  'Delivery is free for orders over twenty five dollars.',
  'Have a wonderful evening.',
];

interface LoopStats {
  readonly totalMs: number;
  readonly loopDelayMaxMs: number;
  readonly loopDelayP99Ms: number;
}

/** Runs `work` while sampling this thread's event-loop delay at 1 ms resolution. */
async function withLoopDelay(work: () => Promise<void>): Promise<LoopStats> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const started = performance.now();
  await work();
  const totalMs = performance.now() - started;
  histogram.disable();
  const ms = (ns: number): number => Math.round(ns / 1e4) / 100;
  return { totalMs: Math.round(totalMs), loopDelayMaxMs: ms(histogram.max), loopDelayP99Ms: ms(histogram.percentile(99)) };
}

const round = (x: number): number => Math.round(x * 10) / 10;

await loadFlite();
const direct = await withLoopDelay(async () => {
  for (const text of SENTENCES) await synthesize(text);
});

const tts = new FliteTtsProvider();
const startupStarted = performance.now();
await tts.warmUp();
const startupMs = performance.now() - startupStarted;

const firstChunkMs: number[] = [];
const signal = new AbortController().signal;
const pooled = await withLoopDelay(async () => {
  for (const text of SENTENCES) {
    const asked = performance.now();
    let first = true;
    for await (const chunk of tts.synthesize({ text, voice: 'slt', signal })) {
      if (first) firstChunkMs.push(performance.now() - asked);
      first = false;
      void chunk;
    }
  }
});
await tts.close();

firstChunkMs.sort((a, b) => a - b);
console.log(
  JSON.stringify({
    bench: 'flite-pool',
    sentences: SENTENCES.length,
    direct,
    pooled,
    workerStartupMs: Math.round(startupMs),
    firstChunkMs: { p50: round(percentile(firstChunkMs, 0.5)), p95: round(percentile(firstChunkMs, 0.95)), max: round(firstChunkMs.at(-1) ?? 0) },
  }),
);
