import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { decodeWav, encodeWav } from '../../src/media/wav.js';
import { CHROMIUM } from '../support/tools.js';

/**
 * Chromium loops the fake microphone's file: the question alone would be one endless sentence and the
 * agent could never answer. Silence around it makes a caller who listens: `leadS` for the greeting
 * (sooner, and the caller barges in on it), the question, then `tailS` for the answer. 8 s: the
 * greeting takes ~3.5 s and starts 1.1–1.4 s after the call connects on a fresh process (the cold
 * start issue 17 is about), later still when the suite's other files have just loaded both cores; at
 * 6 s the question cut into the greeting in full-suite runs.
 */
export async function callerWav(fixture: URL, leadS = 8, tailS = 10): Promise<string> {
  const question = decodeWav(await readFile(fixture));
  const rate = question.sampleRate;
  const padded = new Int16Array(rate * leadS + question.samples.length + rate * tailS);
  padded.set(question.samples, rate * leadS);
  const path = join(await mkdtemp(join(tmpdir(), 'callgate-webphone-')), 'caller.wav');
  await writeFile(path, encodeWav({ samples: padded, sampleRate: rate }));
  return path;
}

/** Flags from ENVIRONMENT.md: no background networking (the machine is offline), a fake microphone. */
export function launchChromium(fakeMicWav: string, opts: { micAllowed?: boolean } = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
      // Without the fake UI, headless Chromium refuses the microphone as a user who clicked "Block".
      ...(opts.micAllowed === false ? [] : ['--use-fake-ui-for-media-stream']),
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${fakeMicWav}`,
    ],
  });
}

/** The agent's level (0–1) at the page's WebAudio analyser right now. */
export const remoteLevel = (page: Page): Promise<number> => page.evaluate(() => (globalThis as unknown as { callgate: { level(): number } }).callgate.level());

/** Inbound RTP bytes from the page's getStats(). */
export const inboundBytes = (page: Page): Promise<number> =>
  page.evaluate(() => (globalThis as unknown as { callgate: { inboundBytes(): Promise<number> } }).callgate.inboundBytes());

/** The loudest level seen within `ms` (stops early once above `threshold`). */
export async function loudestWithin(page: Page, ms: number, threshold = 0.01): Promise<number> {
  let loudest = 0;
  for (let waited = 0; waited < ms && loudest <= threshold; waited += 100) {
    loudest = Math.max(loudest, await remoteLevel(page));
    await page.waitForTimeout(100);
  }
  return loudest;
}
