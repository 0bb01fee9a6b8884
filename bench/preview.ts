/**
 * npm run bench:preview [-- --quick] [-- --seconds 20] [-- --calls 50] [-- --previews 20] [-- --compare-shared]
 *
 * Issue 18: a greeting preview during live calls must not stall their media. This process is the gateway:
 * the admin API (the real POST /v1/tenants/:id/greeting-preview over HTTP on loopback, real Redis) and
 * `--calls` live calls (bench/support/liveCalls.ts: AudioLegs paced by the real PacedSender on one
 * MediaClock, callers in a second process). Three runs of `--seconds` each:
 *
 * 1. baseline: the calls alone.
 * 2. pool: `--previews` previews spread over the run, through the route as the gateway serves it (its
 *    own one-worker flite pool). Target: frame lateness p99 < 5 ms.
 * 3. mainThread (the control, showing the bench can fail): the same previews through the same route, with
 *    flite run on the main thread as the route did before (fliteTts.synthesize).
 * 4. poolBusyLive: as 2, while the live calls' own flite worker (a FliteTtsProvider, as ProviderRegistry
 *    makes) synthesises sentences back to back, as if agents never stopped talking: the preview pool's
 *    worker, the live one and the main thread then compete for the 2 cores. liveBusy is the same without
 *    previews, its baseline. With `--compare-shared`, also sharedBusyLive: the previews through the live
 *    calls' worker instead of a pool of their own (the alternative the route's pool was chosen over).
 *
 * Lateness is bench:media's (the latest frame of each tick), over the run after its first second. Each app
 * speaks one preview before its run, not counted (starting the worker / compiling flite are start-up
 * costs). The previews' HTTP client is in this process too, so its cost is counted against the calls.
 * The last line printed is one JSON object.
 */
import './support/logsToStderr.js';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { encodePrompt } from '../src/media/AudioLeg.js';
import { readWavFile } from '../src/media/wav.js';
import { FliteTtsProvider } from '../src/providers/flite/FliteTtsProvider.js';
import { synthesize } from '../src/providers/fliteTts.js';
import type { PreviewSpeech } from '../src/http/routes/context.js';
import { startAdminApp, type TestAdminApp } from '../src/http/testing/testKit.js';
import { percentile, sortedAscending } from '../src/util/percentile.js';
import { withLiveCalls, type LiveCallsResult } from './support/liveCalls.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    seconds: { type: 'string' },
    calls: { type: 'string' },
    previews: { type: 'string' },
    'compare-shared': { type: 'boolean', default: false },
  },
});
const quick = values.quick;
const seconds = Number(values.seconds ?? (quick ? 8 : 20));
const calls = Number(values.calls ?? 50);
const previews = Number(values.previews ?? 20);
const LATENESS_LIMIT_MS = 5;
/** A tenant's greeting of ordinary length: ~60–90 ms of flite. */
const GREETING = 'Thank you for calling {{business}}. This is {{agentName}}, the virtual assistant. How can I help you today?';
const FIXTURES = fileURLToPath(new URL('../tests/fixtures/', import.meta.url));

/** The route's old path: flite on the main thread. */
const mainThread: PreviewSpeech = {
  run: async (text, voice) => (await synthesize(text, { voice })).samples,
};

async function openApp(previewSpeech?: PreviewSpeech): Promise<TestAdminApp> {
  const t = await startAdminApp({ rateLimit: { previewPerKey: 10_000 }, ...(previewSpeech ? { previewSpeech } : {}) });
  const created = await t.call('POST', '/v1/tenants', { id: 'bench', displayName: 'Bench Hardware', greeting: GREETING });
  if (created.status !== 201) throw new Error(`tenant not created: ${created.status} ${JSON.stringify(created.body)}`);
  return t;
}

async function preview(t: TestAdminApp): Promise<{ status: number; ms: number }> {
  const start = performance.now();
  const res = await fetch(`${t.base}/v1/tenants/bench/greeting-preview`, { method: 'POST', headers: { authorization: `Bearer ${t.token}` } });
  await res.arrayBuffer();
  return { status: res.status, ms: performance.now() - start };
}

interface Previews {
  readonly ok: number;
  readonly failed: number;
  readonly latencyP50Ms: number;
  readonly latencyMaxMs: number;
}

/** `previews` previews, one every (seconds − 2 s) / previews, each not waiting for the one before. */
async function spreadPreviews(t: TestAdminApp): Promise<Previews> {
  const spacingMs = ((seconds - 2) * 1000) / previews;
  const results = await Promise.all(
    Array.from({ length: previews }, (_, i) => new Promise<{ status: number; ms: number }>((resolve, reject) => setTimeout(() => preview(t).then(resolve, reject), i * spacingMs))),
  );
  const ms = sortedAscending(results.map((r) => r.ms));
  const ok = results.filter((r) => r.status === 200).length;
  return { ok, failed: results.length - ok, latencyP50Ms: Math.round(percentile(ms, 0.5)), latencyMaxMs: Math.round(ms.at(-1) ?? 0) };
}

/** Keeps `tts` synthesising one sentence after another until `work` settles. */
async function whileTalking<T>(tts: FliteTtsProvider, work: () => Promise<T>): Promise<{ result: T; sentences: number }> {
  const stop = new AbortController();
  let sentences = 0;
  const talking = (async () => {
    while (!stop.signal.aborted) {
      for await (const chunk of tts.synthesize({ text: 'We open at eleven in the morning, and we close at ten at night.', voice: 'slt', signal: stop.signal })) void chunk;
      sentences++;
    }
  })();
  try {
    return { result: await work(), sentences };
  } finally {
    stop.abort();
    await talking;
  }
}

/** Previews through the live calls' provider, as if the route shared its pool. */
function sharedWith(tts: FliteTtsProvider): PreviewSpeech {
  return {
    run: async (text, voice, signal) => {
      const parts: Int16Array[] = [];
      for await (const chunk of tts.synthesize({ text, voice, signal })) parts.push(chunk.samples);
      const all = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
      parts.reduce((at, p) => (all.set(p, at), at + p.length), 0);
      return all;
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const started = performance.now();
  const prompt = encodePrompt((await readWavFile(FIXTURES + 'ava-greeting.wav')).samples, 'opus');
  const pooled = await openApp();
  const control = await openApp(mainThread);
  try {
    for (const t of [pooled, control]) {
      const warm = await preview(t);
      if (warm.status !== 200) throw new Error(`warm-up preview answered ${warm.status}`);
    }
    const options = { calls, seconds, prompt };
    const baseline = (await withLiveCalls(options, async () => undefined)).calls;
    process.stderr.write(`baseline: ${JSON.stringify(baseline)}\n`);
    const pool = await withLiveCalls(options, () => spreadPreviews(pooled));
    process.stderr.write(`pool: ${JSON.stringify(pool)}\n`);
    const main = await withLiveCalls(options, () => spreadPreviews(control));
    process.stderr.write(`mainThread: ${JSON.stringify(main)}\n`);
    const liveTts = new FliteTtsProvider();
    await liveTts.warmUp();
    const liveBusy = await withLiveCalls(options, () => whileTalking(liveTts, () => sleep((seconds - 2) * 1000)));
    process.stderr.write(`liveBusy: ${JSON.stringify(liveBusy)}\n`);
    const busy = await withLiveCalls(options, () => whileTalking(liveTts, () => spreadPreviews(pooled)));
    process.stderr.write(`poolBusyLive: ${JSON.stringify(busy)}\n`);
    let shared: { calls: LiveCallsResult; during: { result: Previews; sentences: number } } | undefined;
    if (values['compare-shared']) {
      const sharing = await openApp(sharedWith(liveTts));
      try {
        shared = await withLiveCalls(options, () => whileTalking(liveTts, () => spreadPreviews(sharing)));
      } finally {
        await sharing.close();
      }
      process.stderr.write(`sharedBusyLive: ${JSON.stringify(shared)}\n`);
    }
    await liveTts.close();
    const scenario = (c: LiveCallsResult, p?: Previews) => ({ ...c, ...(p ? { previews: p } : {}) });
    console.log(
      JSON.stringify({
        bench: 'preview',
        quick,
        calls,
        previews,
        seconds,
        greetingChars: GREETING.length,
        pass: pool.calls.p99LatenessMs < LATENESS_LIMIT_MS && pool.during.failed === 0,
        p99LatenessMsBaseline: baseline.p99LatenessMs,
        p99LatenessMsPool: pool.calls.p99LatenessMs,
        p99LatenessMsMainThread: main.calls.p99LatenessMs,
        p99LatenessMsLiveBusy: liveBusy.calls.p99LatenessMs,
        p99LatenessMsPoolBusyLive: busy.calls.p99LatenessMs,
        baseline: scenario(baseline),
        pool: scenario(pool.calls, pool.during),
        mainThread: scenario(main.calls, main.during),
        liveBusy: { ...scenario(liveBusy.calls), liveSentences: liveBusy.during.sentences },
        poolBusyLive: { ...scenario(busy.calls, busy.during.result), liveSentences: busy.during.sentences },
        ...(shared ? { sharedBusyLive: { ...scenario(shared.calls, shared.during.result), liveSentences: shared.during.sentences } } : {}),
        durationS: Math.round((performance.now() - started) / 1000),
      }),
    );
  } finally {
    await pooled.close();
    await control.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
