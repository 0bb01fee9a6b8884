import { randomBytes } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PromptCache } from '../../src/agent/PromptCache.js';
import { ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { createVad } from '../../src/agent/vad/createVad.js';
import { buildAdminApp, type AdminApp } from '../../src/http/adminApp.js';
import { sharedMediaClock } from '../../src/media/MediaClock.js';
import { GeminiLive } from '../../src/providers/realtime/geminiLive.js';
import { OpenAiRealtime } from '../../src/providers/realtime/openaiRealtime.js';
import { GeminiLiveServer } from '../../src/providers/realtime/testing/GeminiLiveServer.js';
import { OpenAiRealtimeServer } from '../../src/providers/realtime/testing/OpenAiRealtimeServer.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/testing/FakeProviders.js';
import { CallLimiter } from '../../src/tenants/CallLimiter.js';
import { CallRecordStore, type CallRecord } from '../../src/tenants/CallRecordStore.js';
import { CallTokenStore } from '../../src/tenants/CallTokenStore.js';
import { CallUrlStore } from '../../src/tenants/CallUrlStore.js';
import { connectRedis, deletePrefix, testPrefix, type Redis } from '../../src/tenants/redisClient.js';
import { SecretBox } from '../../src/tenants/secrets.js';
import { TenantCache } from '../../src/tenants/TenantCache.js';
import { TenantStore } from '../../src/tenants/TenantStore.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { WebRtcDoor } from '../../src/webrtc/WebRtcDoor.js';
import { missingTool, testMissing } from '../support/tools.js';
import { callerWav, launchChromium } from '../webrtc/browserKit.js';

/**
 * A speech-to-speech tenant in a real browser: Debian's Chromium (playwright-core) opens the web phone
 * for the tenant's call URL and presses Call; its fake microphone asks "what time do you open today"
 * (tests/fixtures/caller-open-today.wav, after 4 s of listening). The tenant's `providers.realtime` is
 * "openai" or "gemini", each a local server speaking that protocol through the official SDK; its
 * answer is a 440 Hz tone. What the page plays is measured in the page: a probe of our own (an
 * AnalyserNode on the remote stream) records the level and the 440 Hz share of what it heard, with
 * wall-clock times that line up with the servers'.
 */
const QUESTION = 'what time do you open today';
const ANSWER = 'We open at eight in the morning.';
const GREETING = 'Hello, Realtime Bakery.';
const TONE_HZ = 440;
/** Heard: the page's level (RMS, 0–1) above this. */
const HEARD = 0.01;
/** The greeting plays from the prompt cache as the call is answered: heard within this of "connected". */
const GREETING_WITHIN_MS = 2000;

/**
 * The probe: once the page's <audio id="remote"> has the agent's stream, an AnalyserNode of its own
 * (16384 samples, ~340 ms at 48 kHz) is read every 50 ms: the level of the last 50 ms, and the share of
 * the window's power at 440 Hz (Goertzel; 1 for a pure tone, ~0 for speech-like harmonics of 140 Hz).
 * A string, not a function: it runs before the page's own script, which is built for the browser.
 */
const PROBE = `(() => {
  const HZ = ${TONE_HZ};
  const probe = { samples: [] };
  window.__toneProbe = probe;
  let analyser, buf, rate;
  setInterval(() => {
    if (!analyser) {
      const el = document.getElementById('remote');
      const stream = el && el.srcObject;
      if (!stream || stream.getAudioTracks().length === 0) return;
      const ctx = new AudioContext();
      void ctx.resume();
      analyser = ctx.createAnalyser();
      analyser.fftSize = 16384;
      ctx.createMediaStreamSource(stream).connect(analyser);
      buf = new Float32Array(analyser.fftSize);
      rate = ctx.sampleRate;
    }
    analyser.getFloatTimeDomainData(buf);
    const recent = Math.round(rate * 0.05);
    let now = 0;
    for (let i = buf.length - recent; i < buf.length; i++) now += buf[i] * buf[i];
    const c = 2 * Math.cos((2 * Math.PI * HZ) / rate);
    let energy = 0, s1 = 0, s2 = 0;
    for (let i = 0; i < buf.length; i++) {
      const x = buf[i];
      energy += x * x;
      const s = x + c * s1 - s2;
      s2 = s1;
      s1 = s;
    }
    const power = s1 * s1 + s2 * s2 - c * s1 * s2;
    probe.samples.push({
      t: performance.timeOrigin + performance.now(),
      rms: Math.sqrt(now / recent),
      windowRms: Math.sqrt(energy / buf.length),
      tone: energy > 0 ? (2 * power) / (buf.length * energy) : 0,
    });
  }, 50);
})();`;

/** One reading of the probe: wall-clock ms, the level now, the 340 ms window's level and its 440 Hz share. */
interface Sample {
  t: number;
  rms: number;
  windowRms: number;
  tone: number;
}

const samples = (page: Page): Promise<Sample[]> => page.evaluate(() => (globalThis as unknown as { __toneProbe: { samples: Sample[] } }).__toneProbe.samples);

/** The page's performance mark `callgate:<name>` as wall-clock ms. */
const markAt = (page: Page, name: string): Promise<number | undefined> =>
  page.evaluate((n) => {
    const p = (globalThis as unknown as { performance: { timeOrigin: number; getEntriesByName(n: string): { startTime: number }[] } }).performance;
    const m = p.getEntriesByName(`callgate:${n}`)[0];
    return m === undefined ? undefined : p.timeOrigin + m.startTime;
  }, name);

/** When the model was asked for what: the caller's turn committed (transcribed), its answer begun. */
interface ModelLog {
  turns: number[];
  answers: number[];
}

interface Model {
  readonly name: 'openai' | 'gemini';
  readonly log: ModelLog;
  /** Caller audio the model received, ms (all sessions). */
  heardMs(): number;
  stop(): Promise<void>;
}

/** The model's side of both protocols: the scripted transcription of the caller's turn, and its answer. */
function script(log: ModelLog): { transcribe: () => string; answer: () => { text: string }; chunkIntervalMs: number } {
  return {
    transcribe: () => {
      log.turns.push(Date.now());
      return QUESTION;
    },
    answer: () => {
      log.answers.push(Date.now());
      return { text: ANSWER };
    },
    chunkIntervalMs: 20,
  };
}

const MISSING = missingTool('chromium');
if (MISSING) {
  describe('a speech-to-speech tenant in Chromium', () => testMissing(MISSING));
} else {
  describe('a speech-to-speech tenant in Chromium (the web phone, direct WebRTC)', () => {
    const prefix = testPrefix();
    let redis: Redis;
    let api: AdminApp;
    let door: WebRtcDoor;
    let records: CallRecordStore;
    let cache: TenantCache;
    let base = '';
    const models = new Map<string, Model>();
    let openai: OpenAiRealtimeServer;
    let gemini: GeminiLiveServer;

    beforeAll(async () => {
      const openaiLog: ModelLog = { turns: [], answers: [] };
      const geminiLog: ModelLog = { turns: [], answers: [] };
      openai = await OpenAiRealtimeServer.start(script(openaiLog));
      gemini = await GeminiLiveServer.start(script(geminiLog));
      models.set('OpenAI Realtime', { name: 'openai', log: openaiLog, heardMs: () => openai.sessions.reduce((s, x) => s + x.appendedMs, 0), stop: () => openai.stop() });
      models.set('Gemini Live', { name: 'gemini', log: geminiLog, heardMs: () => gemini.sessions.reduce((s, x) => s + x.appendedMs, 0), stop: () => gemini.stop() });
      // The cascade behind the model: it would say other words, and no tone.
      const providers = new ProviderRegistry({
        stt: { pocketsphinx: () => new FakeStt({ transcripts: ['cascade heard this'] }) },
        llm: { scripted: () => new FakeLlm({ reply: () => 'The cascade answers.' }) },
        tts: { flite: () => new FakeTts({ msPerChar: 30 }) },
      })
        .registerRealtime('openai', () => new OpenAiRealtime({ apiKey: 'sk-test', baseURL: openai.baseURL, ca: openai.ca }))
        .registerRealtime('gemini', () => new GeminiLive({ apiKey: 'test-key', baseUrl: gemini.baseUrl }));
      redis = await connectRedis({ prefix });
      const secrets = new SecretBox(randomBytes(32));
      const tenants = new TenantStore(redis, secrets, { prefix });
      for (const name of ['openai', 'gemini'] as const) {
        await tenants.create({ id: `rt-${name}`, displayName: 'Realtime Bakery', greeting: GREETING, providers: { realtime: name } });
        await new CallUrlStore(redis, { prefix }).create({ slug: `rt-${name}`, tenantId: `rt-${name}` });
      }
      records = new CallRecordStore(redis, { prefix });
      cache = new TenantCache(tenants, redis, { prefix });
      door = new WebRtcDoor({
        tokens: new CallTokenStore(redis, { prefix }),
        tenants: cache,
        limiter: new CallLimiter(redis, { prefix }),
        records,
        providers,
        prompts: new PromptCache(),
        createVad: () => createVad(),
        clock: sharedMediaClock(),
        endpoint: { portRange: { min: 42000, max: 42249 } },
      });
      api = await buildAdminApp({ redis, prefix, secrets, adminToken: 'z'.repeat(32), webrtc: door });
      await api.listen({ host: '127.0.0.1', port: 0 });
      base = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;
    }, 30_000);

    afterAll(async () => {
      await api?.close();
      await door?.drain();
      await records?.close(500);
      await cache?.close();
      for (const m of models.values()) await m.stop();
      if (redis) {
        await deletePrefix(redis, prefix);
        await redis.quit();
      }
    }, 30_000);

    describe.each(['OpenAI Realtime', 'Gemini Live'])('%s', (which) => {
      let browser: Browser;
      beforeAll(async () => {
        // A browser per protocol: its fake microphone starts the fixture afresh.
        browser = await launchChromium(await callerWav(new URL('../fixtures/caller-open-today.wav', import.meta.url), 4, 10));
      }, 30_000);
      afterAll(async () => {
        await browser?.close();
      });

      it('greets at once; the model answers what the caller said, heard as its 440 Hz tone, shown in the transcript, kept in the record', async () => {
        const model = models.get(which)!;
        const tenant = `rt-${model.name}`;
        const page = await browser.newPage();
        try {
          await page.addInitScript(PROBE);
          await page.goto(`${base}/c/${tenant}`);
          await page.getByRole('button', { name: 'Call' }).click();
          await page.waitForSelector('body[data-state="in-call"]', { timeout: 10_000 });

          // The greeting: heard at once, before the caller's turn was even committed to the model (so
          // before any answer of the model's could be), and it is not the model's tone.
          const firstHeard = (s: Sample[]): Sample | undefined => s.find((x) => x.rms > HEARD);
          const greeted = firstHeard(await pollUntil(() => samples(page), (s) => firstHeard(s) !== undefined, 5000, 50));
          expect(greeted, 'the greeting was never heard').toBeDefined();
          const connected = await markAt(page, 'connected');
          expect(greeted!.t - connected!).toBeLessThan(GREETING_WITHIN_MS);
          expect(model.log.turns.filter((t) => t <= greeted!.t)).toEqual([]);
          expect(model.log.answers.filter((t) => t <= greeted!.t)).toEqual([]);

          // The caller asks; the model's words come to the page's live transcript.
          const transcript = await pollUntil(() => page.textContent('#transcript'), (t) => t?.includes(ANSWER) ?? false, 15_000, 100);
          expect(transcript).toContain(`Agent: ${ANSWER}`);
          const lines = await page.$$eval('#transcript li', (lis) => lis.map((li) => li.textContent));
          expect(lines).toEqual([`Agent: ${GREETING}`, `You: ${QUESTION}`, `Agent: ${ANSWER}`]);
          expect(model.log.turns).toHaveLength(1);
          expect(model.log.answers).toHaveLength(1);
          // The model heard the caller's question itself (the fixture's ~2.2 s of speech, and its edges).
          expect(model.heardMs()).toBeGreaterThan(1500);
          const [asked] = model.log.turns as [number];
          const [answered] = model.log.answers as [number];

          // The answer plays out (~1.9 s of tone) and ends: the page is quiet again.
          const after = (s: Sample[]): Sample[] => s.filter((x) => x.t > answered);
          const played = (s: Sample[]): boolean => {
            const a = after(s);
            const loud = a.findIndex((x) => x.rms > HEARD);
            return loud >= 0 && a.slice(loud).some((x) => x.t - a[loud]!.t > 1000 && x.windowRms < HEARD / 2);
          };
          const heard = await pollUntil(() => samples(page), played, 8000, 100);
          // What the page heard of the greeting (up to the caller's turn) and of the answer (after it).
          const greeting = heard.filter((x) => x.t >= greeted!.t && x.t < asked && x.windowRms > HEARD);
          const answer = after(heard).filter((x) => x.windowRms > HEARD);
          const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
          const loudest = (xs: Sample[]): number => Math.max(0, ...xs.map((x) => x.windowRms));
          const summary = JSON.stringify({
            greeting: { n: greeting.length, toneMedian: median(greeting.map((x) => x.tone)), toneMax: Math.max(0, ...greeting.map((x) => x.tone)), loudest: loudest(greeting) },
            answer: { n: answer.length, toneMedian: median(answer.map((x) => x.tone)), loudest: loudest(answer), ms: (answer.at(-1)?.t ?? 0) - (answer[0]?.t ?? 0) },
          });
          // The answer: 440 Hz through and through, loud, for about as long as the model spoke (1.9 s);
          // the greeting: no tone in it.
          const tonal = answer.filter((x) => x.tone > 0.6);
          expect(median(answer.map((x) => x.tone)), summary).toBeGreaterThan(0.6);
          expect((tonal.at(-1)?.t ?? 0) - (tonal[0]?.t ?? 0), summary).toBeGreaterThan(1200);
          expect(loudest(tonal), summary).toBeGreaterThan(0.05);
          expect(greeting.length, summary).toBeGreaterThan(3);
          expect(Math.max(...greeting.map((x) => x.tone)), summary).toBeLessThan(0.1);

          await page.getByRole('button', { name: 'Hang up' }).click();
          await page.waitForSelector('body[data-state="ended"]');
          const rec = await pollUntil(
            async () => (await records.list(tenant)).records.find((r: CallRecord) => r.door === 'webrtc'),
            (r) => r !== undefined,
            6000,
            100,
          );
          expect(rec, 'no call record').toBeDefined();
          expect(rec!.outcome).toBe('caller-hangup');
          expect(rec!.transcript.map((t) => [t.role, t.text])).toEqual([
            ['agent', GREETING],
            ['caller', QUESTION],
            ['agent', ANSWER],
          ]);
          expect(rec!.realtime).toMatchObject({ provider: model.name, responses: 1, reconnects: 0, fellBack: false, inputTokens: 10, outputTokens: 20 });
          expect(rec!.realtime!.audioInMs).toBeGreaterThan(1500);
          expect(rec!.realtime!.audioOutMs).toBeGreaterThan(1500);
        } finally {
          await page.close();
        }
      }, 30_000);
    });
  });
}
