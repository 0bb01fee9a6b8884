/**
 * Captures a real browser's WebRTC offer for the fuzz seeds (tests/fixtures/chromium-<version>-offer.sdp):
 * Debian's Chromium, driven by playwright-core, with a microphone track (the fake device) and a data
 * channel as the web phone makes them, ICE gathered on loopback. Run by hand when Chromium changes:
 * `npx tsx scripts/capture-browser-offer.ts`. Needs /usr/bin/chromium (Debian package chromium).
 */
import { createServer } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { chromium } from 'playwright-core';

const server = createServer((_request, response) => response.end('<title>offer</title>')).listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const port = (server.address() as { port: number }).port;
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'],
});
try {
  const page = await browser.newPage();
  await page.goto(`http://localhost:${port}/`);
  // A string, not a function: this script is typechecked without the DOM's types.
  const sdp = (await page.evaluate(`(async () => {
    const pc = new RTCPeerConnection();
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
    pc.createDataChannel('events');
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') resolve();
      pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
      setTimeout(resolve, 3000);
    });
    return pc.localDescription.sdp;
  })()`)) as string;
  const version = browser.version().split('.')[0];
  // Every address becomes loopback (an mDNS name or a LAN address would be this machine's), so a seed
  // can never point ICE checks off this machine.
  const loopback = sdp
    .replace(/^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)/gm, (_m: string, head: string, address: string) => `${head}${address.includes(':') ? '::1' : '127.0.0.1'}`)
    .replace(/^(c=IN IP4 )\S+/gm, '$1127.0.0.1')
    .replace(/^(o=.* IN IP4 )\S+/gm, '$1127.0.0.1');
  const file = new URL(`../tests/fixtures/chromium-${version}-offer.sdp`, import.meta.url);
  await writeFile(file, loopback);
  console.log(`wrote ${file.pathname}`);
} finally {
  await browser.close();
  server.close();
}
