import Srf from 'drachtio-srf';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { openAudioLeg, type AudioLeg } from '../../src/media/AudioLeg.js';
import { sharedMediaClock } from '../../src/media/MediaClock.js';
import { buildSdp, negotiate, offerCodecs, parseRemoteSdp } from '../../src/media/sdp.js';
import { concatSamples } from '../../src/media/signal.js';
import { FakeStt, FakeTts, voiceLike } from '../../src/providers/testing/FakeProviders.js';
import { parseDtmfUserText, type LlmEvent, type LlmProvider, type LlmRequest } from '../../src/providers/types.js';
import { startDrachtio, type RunningDrachtio } from '../../src/sip/testing/DrachtioProcess.js';
import { startSipHarness, type SipHarness } from '../../src/sip/testing/SipHarness.js';
import type { CallRecord } from '../../src/tenants/CallRecordStore.js';
import { ToolBoxes } from '../../src/tools/ToolBox.js';
import { PromptCache } from '../../src/agent/PromptCache.js';
import { createVad } from '../../src/agent/vad/createVad.js';
import { TenantCache } from '../../src/tenants/TenantCache.js';
import { BrowserPeer } from '../../src/webrtc/testing/BrowserPeer.js';
import { WebRtcDoor } from '../../src/webrtc/WebRtcDoor.js';
import { randomBytes } from 'node:crypto';
import { buildAdminApp } from '../../src/http/adminApp.js';
import { SecretBox } from '../../src/tenants/secrets.js';
import { callerWav, launchChromium, loudestWithin } from '../webrtc/browserKit.js';
import { pollUntil, within } from '../../src/util/testing/wait.js';
import { FAKE_VOICE_SHARE, fakeVoiceShare, soundMs } from '../support/heard.js';
import { missingTool, testMissing } from '../support/tools.js';

/**
 * transfer_call on SIP calls (issue 19), end to end on loopback: drachtio-server, rtpengine, the gateway
 * with the real tool box. The phone is a drachtio-srf app on a drachtio of its own: it calls the
 * gateway, presses a key (which the test's model reads as "transfer me to …"), and plays the caller's
 * side of the REFER as a carrier would — accepting and reporting, refusing (405, 603), or accepting and
 * never reporting. The same app answers INVITEs to `person@` as the person the caller is handed to.
 */
const MISSING = missingTool('drachtio', 'rtpengine');

/** A model that transfers on a key: 1 → sales (cold), 2 → busy (cold), 3 → manager (warm). */
class TransferBot implements LlmProvider {
  readonly name = 'transfer-bot';
  async *stream(request: LlmRequest): AsyncIterable<LlmEvent> {
    const last = request.messages.at(-1);
    if (last?.role === 'tool') {
      const { result } = JSON.parse(last.content) as { result?: string };
      yield { type: 'text', text: `Sorry, that did not work: ${result ?? 'error'}.` };
      return;
    }
    const digits = last?.role === 'user' ? parseDtmfUserText(last.content) : undefined;
    // The web caller says it (the fake STT hears "a person please").
    const target = last?.role === 'user' && /person/.test(last.content) ? 'sales' : { '1': 'sales', '2': 'busy', '3': 'manager' }[digits ?? ''];
    if (target && request.tools?.some((t) => t.name === 'transfer_call')) {
      yield { type: 'text', text: 'Transferring you now.' };
      yield { type: 'tool-call', call: { id: `call-${target}`, name: 'transfer_call', arguments: JSON.stringify({ target, reason: 'the caller asked for a person' }) } };
      return;
    }
    // The warm transfer's summary request, and anything else.
    yield { type: 'text', text: 'A caller wants to talk about an order.' };
  }
}

type ReferMode = 'accept' | 405 | 603 | 'silent';

if (MISSING) {
  describe('SIP transfers', () => testMissing(MISSING));
} else {
  describe('transfer_call on SIP calls: REFER, its fallbacks, and warm transfers', () => {
    let sip: SipHarness;
    let phoneDrachtio: RunningDrachtio;
    let phone: Srf;
    let referMode: ReferMode = 'accept';
    /** What the person heard, and their dialog. */
    let personHeard: Int16Array[] = [];
    let personDialog: Srf.Dialog | undefined;
    const personLegs: AudioLeg[] = [];
    const refers: string[] = [];

    beforeAll(async () => {
      const providers = new ProviderRegistry({
        stt: { pocketsphinx: () => new FakeStt({ transcripts: ['a person please'] }) },
        llm: { scripted: () => new TransferBot() },
        tts: { flite: () => new FakeTts({ msPerChar: 30 }) },
      });
      sip = await startSipHarness({ providers, tools: new ToolBoxes({ allowPrivate: true }), transferNotifyTimeoutMs: 1500, agentPorts: { min: 37000, max: 37499 }, rtpengine: { portMin: 37500, portMax: 37999 } });
      phoneDrachtio = await startDrachtio();
      phone = new Srf();
      await new Promise<void>((resolve, reject) => {
        phone.once('connect', (err: Error) => (err ? reject(err) : resolve()));
        phone.connect({ host: '127.0.0.1', port: phoneDrachtio.adminPort, secret: phoneDrachtio.secret });
      });
      const person = `sip:person@127.0.0.1:${phoneDrachtio.sipPort}`;
      await sip.numbers.createTrunk({ name: 'local', sourceCidrs: ['127.0.0.1/32'] });
      await sip.tenants.create({
        id: 'xfer',
        displayName: 'Transfers',
        greeting: 'Hello.',
        maxConcurrentCalls: 5,
        builtinTools: ['end_call', 'transfer_call'],
        transfer: {
          timeoutMs: 5000,
          targets: [
            { name: 'sales', uri: person, mode: 'cold' },
            { name: 'busy', uri: `sip:busy@127.0.0.1:${phoneDrachtio.sipPort}`, mode: 'cold' },
            { name: 'manager', uri: person, mode: 'warm' },
          ],
        },
      });
      await sip.numbers.createNumber({ number: '+15005550200', tenantId: 'xfer' });
      // The person (and a busy line): the phone app answers INVITEs that are not its own calls.
      phone.invite(async (req, res) => {
        if (req.uri.includes('busy@')) return res.send(486);
        const leg = await openAudioLeg({ callId: 'person', legId: 'person', codec: { name: 'PCMU', payloadType: 0 }, clock: sharedMediaClock(), env: {}, endpoint: { portRange: { min: 38000, max: 38249 } } });
        personLegs.push(leg);
        const answer = negotiate(parseRemoteSdp(req.body as string));
        leg.endpoint.setRemote({ address: answer.remote.address, port: answer.remote.port });
        leg.on('audio', (f) => personHeard.push(f.slice()));
        personDialog = await phone.createUAS(req, res, { localSdp: buildSdp({ address: '127.0.0.1', port: leg.endpoint.localAddress.port, ...offerCodecs(['PCMU']) }) });
        // The person talks: their voice should reach the caller once bridged.
        leg.play(voiceLike(4000, -20));
      });
    }, 40_000);

    afterAll(async () => {
      phone?.disconnect();
      await phoneDrachtio?.stop();
      await Promise.all(personLegs.map((l) => l.close()));
      await sip?.stop();
    });

    beforeEach(() => {
      personHeard = [];
      personDialog = undefined;
    });

    /** Calls the gateway, waits for the greeting, presses `key`; the dialog answers REFERs per `referMode`. */
    async function callAndPress(key: string): Promise<{ dialog: Srf.Dialog; leg: AudioLeg; heard: Int16Array[]; byeFromGateway: Promise<void> }> {
      const leg = await openAudioLeg({ callId: 'caller', legId: 'caller', codec: { name: 'PCMU', payloadType: 0 }, clock: sharedMediaClock(), env: {}, endpoint: { portRange: { min: 38250, max: 38499 } } });
      const heard: Int16Array[] = [];
      leg.on('audio', (f) => heard.push(f.slice()));
      const dialog = await phone.createUAC(sip.target('+15005550200'), { localSdp: buildSdp({ address: '127.0.0.1', port: leg.endpoint.localAddress.port, ...offerCodecs(['PCMU']) }) });
      const answer = negotiate(parseRemoteSdp(dialog.remote.sdp));
      leg.endpoint.setRemote({ address: answer.remote.address, port: answer.remote.port });
      leg.play(new Int16Array(320));
      const byeFromGateway = new Promise<void>((resolve) => dialog.on('destroy', () => resolve()));
      dialog.on('refer', (req: Srf.SrfRequest, res: Srf.SrfResponse) => {
        refers.push(req.get('Refer-To') ?? '');
        if (typeof referMode === 'number') return res.send(referMode);
        res.send(202);
        if (referMode === 'silent') return;
        const notify = (frag: string): Promise<unknown> =>
          dialog.request({ method: 'NOTIFY', headers: { Event: 'refer', 'Subscription-State': frag.startsWith('SIP/2.0 1') ? 'active;expires=60' : 'terminated;reason=noresource', 'Content-Type': 'message/sipfrag;version=2.0' }, body: `${frag}\r\n` } as never);
        void notify('SIP/2.0 100 Trying').then(() => notify('SIP/2.0 200 OK'));
      });
      await new Promise((r) => setTimeout(r, 800));
      for (const k of [key, '#']) {
        await dialog.request({ method: 'INFO', headers: { 'Content-Type': 'application/dtmf-relay' }, body: `Signal=${k}\r\nDuration=160\r\n` } as never);
      }
      return { dialog, leg, heard, byeFromGateway };
    }

    const recordOf = (pred: (r: CallRecord) => boolean): Promise<CallRecord | undefined> =>
      pollUntil(async () => (await sip.records.list('xfer')).records.find(pred), (r) => r !== undefined, 5000);

    it('cold: the caller side takes the REFER and reports 200; the agent leg ends with a BYE; the record says transferred', async () => {
      referMode = 'accept';
      const call = await callAndPress('1');
      try {
        await Promise.race([call.byeFromGateway, new Promise((_, reject) => setTimeout(() => reject(new Error('no BYE after the REFER was followed')), 8000))]);
        expect(refers.at(-1)).toContain('person@');
        const record = await recordOf((r) => r.transfer !== undefined && r.transfer.method === 'refer');
        expect(record).toMatchObject({ outcome: 'transferred', transfer: { target: 'sales', mode: 'cold', method: 'refer', result: 'transferred' } });
        expect(personDialog, 'the gateway dialled nobody itself').toBeUndefined();
      } finally {
        await call.leg.close();
      }
      expect(await sip.sessionsDrained()).toBe(0);
    }, 20_000);

    for (const mode of [405, 603, 'silent'] as const) {
      it(`cold, REFER ${mode === 'silent' ? 'accepted but never reported' : `refused with ${mode}`}: the gateway dials the person and bridges; both hear each other; the caller's BYE ends both`, async () => {
        referMode = mode;
        const call = await callAndPress('1');
        try {
          await pollUntil(() => personDialog, (d) => d !== undefined, 8000);
          expect(personDialog, 'the person was dialled').toBeDefined();
          const from = concatSamples(call.heard).length;
          // The caller talks now; the person has been talking since they answered.
          call.leg.play(voiceLike(3000, -20));
          await new Promise((r) => setTimeout(r, 2500));
          const callerHeard = concatSamples(call.heard).subarray(from);
          expect(fakeVoiceShare(callerHeard), 'the caller hears the person').toBeGreaterThan(FAKE_VOICE_SHARE);
          expect(soundMs(callerHeard)).toBeGreaterThan(1000);
          const personAudio = concatSamples(personHeard);
          expect(fakeVoiceShare(personAudio), 'the person hears the caller').toBeGreaterThan(FAKE_VOICE_SHARE);
          const personGone = new Promise<void>((resolve) => personDialog!.on('destroy', () => resolve()));
          await new Promise<void>((resolve) => call.dialog.destroy(undefined, () => resolve()));
          await Promise.race([personGone, new Promise((_, reject) => setTimeout(() => reject(new Error('the person was not hung up')), 5000))]);
          const record = await recordOf((r) => r.transfer?.method === 'bridge' && r.outcome === 'transferred' && !seen.has(r.callId));
          seen.add(record!.callId);
          expect(record).toMatchObject({ outcome: 'transferred', transfer: { target: 'sales', method: 'bridge', result: 'bridged' } });
          expect(record!.transfer!.bridgedMs).toBeGreaterThan(1000);
        } finally {
          await call.leg.close();
        }
        expect(await sip.sessionsDrained()).toBe(0);
      }, 25_000);
    }
    const seen = new Set<string>();

    it('the person is busy: the caller stays with the agent, which says so; the record says busy', async () => {
      referMode = 405;
      const call = await callAndPress('2');
      try {
        await new Promise((r) => setTimeout(r, 2500));
        // Still up: no BYE, and the agent spoke after the failed transfer.
        let ended = false;
        void call.byeFromGateway.then(() => (ended = true));
        expect(ended).toBe(false);
        expect(soundMs(concatSamples(call.heard))).toBeGreaterThan(1000);
        await new Promise<void>((resolve) => call.dialog.destroy(undefined, () => resolve()));
        const rec = await recordOf((r) => r.transfer?.target === 'busy');
        expect(rec).toMatchObject({ outcome: 'caller-hangup', transfer: { target: 'busy', result: 'busy', method: 'bridge' } });
        expect(rec!.transcript.some((t) => t.role === 'agent' && /did not work: busy/.test(t.text))).toBe(true);
      } finally {
        await call.leg.close();
      }
    }, 25_000);

    it('warm: the person hears the briefing before the caller is joined', async () => {
      const call = await callAndPress('3');
      try {
        await pollUntil(() => personDialog, (d) => d !== undefined, 8000);
        expect(personDialog).toBeDefined();
        await new Promise((r) => setTimeout(r, 2500));
        // The briefing is the agent's (fake) voice; the person heard it.
        expect(soundMs(concatSamples(personHeard)), 'the briefing').toBeGreaterThan(800);
        expect(refers.filter((r) => r).length, 'no REFER for a warm transfer').toBe(refersBeforeWarm);
        await new Promise<void>((resolve) => call.dialog.destroy(undefined, () => resolve()));
        const rec = await recordOf((r) => r.transfer?.target === 'manager');
        expect(rec).toMatchObject({ outcome: 'transferred', transfer: { mode: 'warm', method: 'bridge', result: 'bridged' } });
      } finally {
        await call.leg.close();
      }
    }, 25_000);
    let refersBeforeWarm = 0;
    beforeEach(() => (refersBeforeWarm = refers.length));

    /** The direct WebRTC door on the harness's stores, with tools and the SIP door's dialer; a call URL `slug` for tenant xfer. */
    async function webDoor(slug: string, ports: { min: number; max: number }): Promise<{ door: WebRtcDoor; cache: TenantCache }> {
      const cache = new TenantCache(sip.tenants, sip.redis, { prefix: sip.prefix });
      await sip.callUrls.create({ slug, tenantId: 'xfer' });
      const door = new WebRtcDoor({
        tokens: sip.tokens,
        tenants: cache,
        limiter: sip.limiter,
        records: sip.records,
        providers: new ProviderRegistry({
          stt: { pocketsphinx: () => new FakeStt({ transcripts: ['a person please'] }) },
          llm: { scripted: () => new TransferBot() },
          tts: { flite: () => new FakeTts({ msPerChar: 30 }) },
        }),
        prompts: new PromptCache(),
        createVad: () => createVad(),
        clock: sharedMediaClock(),
        endpoint: { portRange: ports },
        tools: new ToolBoxes({ allowPrivate: true }),
        transferDialer: () => sip.gateway.transferDialer,
      });
      return { door, cache };
    }

    const CHROMIUM_MISSING = missingTool('chromium');
    (CHROMIUM_MISSING && !process.env['CI'] ? it.skip : it)(`the web phone in Chromium is transferred to a SIP phone: the phone hears the caller and the page hears the phone${CHROMIUM_MISSING ? ` (${CHROMIUM_MISSING})` : ''}`, async () => {
      if (CHROMIUM_MISSING) throw new Error(CHROMIUM_MISSING);
      const { door, cache } = await webDoor('xfer-page', { min: 38600, max: 38699 });
      const api = await buildAdminApp({ redis: sip.redis, prefix: sip.prefix, secrets: new SecretBox(randomBytes(32)), adminToken: 'c'.repeat(32), webrtc: door });
      await api.listen({ host: '127.0.0.1', port: 0 });
      const base = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;
      // The caller asks after 3 s, and again every few seconds (Chromium loops its fake microphone).
      const browser = await launchChromium(await callerWav(new URL('../fixtures/caller-open-today.wav', import.meta.url), 3, 1));
      try {
        const page = await browser.newPage();
        await page.goto(`${base}/c/xfer-page`);
        await page.click('#call');
        await page.waitForSelector('body[data-state="in-call"]', { timeout: 10_000 });
        await pollUntil(() => personDialog, (d) => d !== undefined, 20_000);
        expect(personDialog, 'the phone was dialled').toBeDefined();
        // Bridged: the page hears the phone's voice (the ringback stopped when it answered).
        expect(await loudestWithin(page, 3000), 'the page hears the phone').toBeGreaterThan(0.01);
        await new Promise((r) => setTimeout(r, 5000));
        expect(soundMs(concatSamples(personHeard)), "the phone hears the caller's question").toBeGreaterThan(300);
        const phoneGone = new Promise<void>((resolve) => personDialog!.on('destroy', () => resolve()));
        await page.click('#hangup');
        await Promise.race([phoneGone, new Promise((_, reject) => setTimeout(() => reject(new Error('the phone was not hung up')), 8000))]);
        const rec = await pollUntil(async () => (await sip.records.list('xfer')).records.find((r) => r.door === 'webrtc' && r.from === 'web:xfer-page'), (r) => r !== undefined, 5000);
        expect(rec).toMatchObject({ outcome: 'transferred', transfer: { method: 'bridge', result: 'bridged' } });
      } finally {
        await browser.close();
        await api.close();
        await door.drain();
        await cache.close();
      }
    }, 60_000);

    it('a web caller (direct WebRTC door) is transferred to a SIP phone: the gateway dials it and bridges Opus to G.711', async () => {
      const { door, cache } = await webDoor('xfer-web', { min: 38500, max: 38599 });
      const peer = new BrowserPeer({ name: 'web-caller', dataChannel: true, sampleRate: 16000 });
      try {
        const { token } = await sip.tokens.issue('xfer-web', {});
        const { callId, sdp } = await door.answer({ token, sdp: await peer.createOffer() });
        await peer.setAnswer(sdp);
        await within(peer.connected, 5000, 'DTLS-SRTP to the gateway');
        await new Promise((r) => setTimeout(r, 800));
        peer.play(voiceLike(900, -20));
        await pollUntil(() => personDialog, (d) => d !== undefined, 10_000);
        expect(personDialog, 'the phone was dialled').toBeDefined();
        const from = peer.receivedAudio().length;
        peer.play(voiceLike(3000, -20));
        await new Promise((r) => setTimeout(r, 2500));
        const pageHeard = peer.receivedAudio().subarray(from);
        expect(fakeVoiceShare(pageHeard), 'the web caller hears the phone').toBeGreaterThan(FAKE_VOICE_SHARE);
        expect(fakeVoiceShare(concatSamples(personHeard)), 'the phone hears the web caller').toBeGreaterThan(FAKE_VOICE_SHARE);
        const phoneGone = new Promise<void>((resolve) => personDialog!.on('destroy', () => resolve()));
        peer.close();
        await Promise.race([phoneGone, new Promise((_, reject) => setTimeout(() => reject(new Error('the phone was not hung up')), 8000))]);
        const rec = await pollUntil(async () => (await sip.records.list('xfer')).records.find((r) => r.callId === callId), (r) => r !== undefined, 5000);
        expect(rec).toMatchObject({ door: 'webrtc', outcome: 'transferred', transfer: { target: 'sales', method: 'bridge', result: 'bridged' } });
      } finally {
        peer.close();
        await door.drain();
        await cache.close();
      }
    }, 30_000);
  });
}
