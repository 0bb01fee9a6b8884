import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { encodeWav } from '../../src/media/wav.js';
import { pollUntil } from '../../src/util/testing/wait.js';
import { connectRedis, deletePrefix, testPrefix } from '../../src/tenants/redisClient.js';
import { launchChromium } from '../webrtc/browserKit.js';
import { describeWith } from '../support/tools.js';
import { GatewayProcesses, type GatewayProcess } from './gatewayProcess.js';

/**
 * Issue 17: the first call after a start sounds like every other call. A freshly started gateway
 * (`npm start`'s program) takes two browser calls in a row, made the same way from a real Chromium;
 * for each, click on Call → the first audible agent frame at the page's analyser. Whatever is cold at
 * start must be warmed before the start banner (and /readyz), so the first call may not hear its
 * greeting more than 300 ms later than the second does (the issue's bound). It is relative to a call
 * made the same way a moment later, on the same loaded machine; the gap it guards against was 1.7–2.3 s
 * here without the warm-up (src/app/warmUp.ts).
 *
 * The Chromium is as cold as the gateway: freshly launched, its first page is the first call. A
 * browser's first microphone and first AudioContext are slow to start (~300 and ~250 ms here), and
 * they were on the first call's path until the web phone moved them off it (web-phone/src/app.ts).
 */
const prefix = testPrefix();
const gateways = new GatewayProcesses({ CALLGATE_REDIS_PREFIX: prefix });
const dirs: string[] = [];
/** The demo tenant's greeting (dialplans/demo.yaml) as its calls render it. */
const GREETING = "Hi, I'm Ava from Joe's Pizza, what can I do for you today?";
let browser: Browser | undefined;

afterAll(async () => {
  await browser?.close();
  await gateways.stopAll();
  const redis = await connectRedis({ prefix });
  await deletePrefix(redis, prefix);
  await redis.quit();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}, 60_000);

/** A silent microphone: the caller listens, so nothing they say changes what the agent plays. */
async function silentMic(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'callgate-first-call-'));
  dirs.push(dir);
  const path = join(dir, 'silence.wav');
  await writeFile(path, encodeWav({ samples: new Int16Array(16000 * 30), sampleRate: 16000 }));
  return path;
}

/** The analyser level above which a frame counts as heard (the browser tests' threshold). */
const AUDIBLE = 0.01;

interface FirstAudio {
  clickAt?: number;
  heardAt?: number;
}

/**
 * Opens the web phone, clicks Call, and returns ms from the click to the first analyser reading above
 * AUDIBLE, once the transcript shows that what played was the greeting. Both ends are timed inside the
 * page (performance.now), so the test runner's own latency does not count; the level is read every
 * 5 ms (the page's meter updates it once per animation frame).
 */
async function clickToAudioMs(page: Page, base: string): Promise<number> {
  await page.goto(`${base}/c/demo`);
  await page.evaluate((threshold) => {
    const w = globalThis as unknown as { callgate: { level(): number }; firstAudio: FirstAudio; document: { getElementById(id: string): { addEventListener(type: string, f: () => void, o: object): void } } };
    const t: FirstAudio = (w.firstAudio = {});
    w.document.getElementById('call').addEventListener('click', () => (t.clickAt ??= performance.now()), { capture: true });
    const poll = setInterval(() => {
      if (t.clickAt !== undefined && w.callgate.level() > threshold) {
        t.heardAt = performance.now();
        clearInterval(poll);
      }
    }, 5);
  }, AUDIBLE);
  await page.getByRole('button', { name: 'Call' }).click();
  const t = await pollUntil(
    () => page.evaluate(() => (globalThis as unknown as { firstAudio: FirstAudio }).firstAudio),
    (v) => v.clickAt !== undefined && v.heardAt !== undefined,
    15_000,
    50,
  );
  if (t.clickAt === undefined || t.heardAt === undefined) throw new Error('no agent audio within 15 s of the click');
  // The first thing heard is the greeting (the caller says nothing): the page's transcript names it.
  const transcript = await pollUntil(() => page.textContent('#transcript'), (text) => text?.includes(GREETING) ?? false, 5000, 100);
  expect(transcript).toContain(`Agent: ${GREETING}`);
  return t.heardAt - t.clickAt;
}

function freePort(): Promise<number> {
  const server = createServer();
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    server.close(() => resolve(port));
  }));
}

async function call(base: string): Promise<number> {
  const page = await browser!.newPage();
  try {
    const ms = await clickToAudioMs(page, base);
    await page.getByRole('button', { name: 'Hang up' }).click();
    await page.waitForSelector('body[data-state="ended"]');
    return ms;
  } finally {
    await page.close();
  }
}

describeWith(['chromium', 'pocketsphinx'], 'the first call after a start', () => {
  let gw: GatewayProcess;
  /** Every /readyz answer from before the start banner, in order. */
  const seen: { readonly status: number; readonly warming: unknown }[] = [];

  beforeAll(async () => {
    browser = await launchChromium(await silentMic());
    // /readyz is watched from before the start banner: the HTTP server listens before the warm-up.
    const port = await freePort();
    let starting = true;
    const watching = (async () => {
      while (starting) {
        const r = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
        if (r) seen.push({ status: r.status, warming: ((await r.json()) as { warming?: unknown }).warming });
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    gw = await gateways.start({ HTTP_PORT: String(port) }).finally(() => (starting = false));
    await watching;
  }, 90_000);

  it('says /readyz 503 `warming` until the warm-up is done, and prints its banner only then', async () => {
    // 503 only because of the warm-up (at least once), then 200 for good (the banner may lag by a poll).
    expect(seen.map((r) => `${r.status} ${String(r.warming)}`).join(', ')).toMatch(/^503 true(, 503 true)*(, 200 false)*$/);
    const ready = await fetch(`${gw.base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, warming: false });
  });

  it('hears its greeting no later than 300 ms after the second call does (click → first audible frame)', async () => {
    const first = await call(gw.base);
    const second = await call(gw.base);
    process.stderr.write(`first-call: click → first audible frame: first ${first.toFixed(0)} ms, second ${second.toFixed(0)} ms\n`);
    expect(first).toBeLessThanOrEqual(second + 300);
  }, 60_000);
});
