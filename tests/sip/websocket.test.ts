import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { activeSpan, dbfs } from '../../src/media/signal.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/testing/FakeProviders.js';
import { CALL_TOKEN_HEADER } from '../../src/sip/invite/steps.js';
import { startSipHarness, type SipHarness } from '../../src/sip/testing/SipHarness.js';
import { SipCallRefusedError, SipJsPhone, type SipJsCall } from '../../src/sip/testing/SipJsPhone.js';
import type { CallRecord } from '../../src/tenants/CallRecordStore.js';
import type { BrowserPeer } from '../../src/webrtc/testing/BrowserPeer.js';
import { within } from '../../src/util/testing/wait.js';
import { missingTool, testMissing } from '../support/tools.js';

/**
 * The web phone end to end: SIP.js (the library the web page uses) over SIP-over-WebSocket to
 * drachtio-server, a call token in the INVITE, rtpengine terminating the browser's ICE and DTLS-SRTP,
 * and the agent greeting the caller. The browser's media engine is a BrowserPeer (libdatachannel), so
 * what the test hears went through real SRTP.
 */
const MISSING = missingTool('drachtio', 'rtpengine');
if (MISSING) {
  describe('web phone over SIP-over-WebSocket', () => testMissing(MISSING));
} else {
  describe('web phone over SIP-over-WebSocket (SIP.js → drachtio WS → rtpengine DTLS-SRTP → agent)', () => {
    const TENANT = 'webco';
    /** Uses a call URL's variable, with a fallback for URLs that set none. */
    const GREETING = 'Hello {{visitor|there}}, this is {{agentName}}.';
    /** From the first sound of a greeting to its last: ~750 ms at 30 ms a character, less the last syllable's tail. */
    const GREETING_MIN_MS = 600;
    /** BrowserPeer decodes at 48 kHz. */
    const RATE = 48000;
    let h: SipHarness;
    let phone: SipJsPhone;

    beforeAll(async () => {
      const providers = new ProviderRegistry({
        stt: { pocketsphinx: () => new FakeStt({ transcripts: [] }) },
        llm: { scripted: () => new FakeLlm({ reply: () => 'Sure.' }) },
        // 30 ms a character: a greeting of about a second, so each call is short.
        tts: { flite: () => new FakeTts({ msPerChar: 30 }) },
      });
      h = await startSipHarness({ providers, drachtio: { ws: true }, agentPorts: { min: 48000, max: 48999 } });
      await h.tenants.create({ id: TENANT, displayName: 'Web Co', agentName: 'Ava', greeting: GREETING });
      phone = await SipJsPhone.connect({ server: `ws://127.0.0.1:${h.drachtio.wsPort}` });
    }, 30_000);

    afterAll(async () => {
      await phone?.stop();
      await h?.stop();
    }, 40_000);

    /** The call's record once the gateway has written it (after the session ends). */
    async function recordOf(callId: string): Promise<CallRecord> {
      for (let i = 0; ; i++) {
        try {
          return await h.records.get(TENANT, callId);
        } catch (err) {
          if (i >= 60) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }

    /**
     * Waits until the greeting has been heard to its end: at least `minMs` from its first sound to its
     * last, then 400 ms of quiet (the fake voice pauses ~250 ms between syllables, so that is the end
     * of the utterance, not a gap in it). Hanging up earlier would cut the greeting short, and the
     * record would hold only what was heard.
     */
    async function greetingHeard(peer: BrowserPeer, minMs: number, timeoutMs = 6000): Promise<{ audio: Int16Array; startMs: number; endMs: number }> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const audio = peer.receivedAudio();
        const span = activeSpan(audio, RATE);
        if (span && span.endMs - span.startMs >= minMs && (audio.length * 1000) / RATE - span.endMs >= 400) return { audio, ...span };
        if (Date.now() > deadline) throw new Error(`no greeting of ${minMs} ms heard within ${timeoutMs} ms; heard (# loud, . quiet, 20 ms each): ${envelope(audio)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }

    /** One character per 20 ms frame: # louder than -40 dBFS, . quieter. For failure messages. */
    function envelope(audio: Int16Array): string {
      const f = RATE / 50;
      let out = '';
      for (let i = 0; i + f <= audio.length; i += f) out += dbfs(audio, { start: i, end: i + f }) > -40 ? '#' : '.';
      return out;
    }

    /** performance.now() at the first 20 ms frame louder than -40 dBFS: the greeting's first sound. */
    async function firstSound(peer: BrowserPeer, timeoutMs = 6000): Promise<number> {
      const frame = RATE / 50;
      const deadline = Date.now() + timeoutMs;
      let checked = 0;
      for (;;) {
        const audio = peer.receivedAudio();
        for (; checked + frame <= audio.length; checked += frame) {
          if (dbfs(audio, { start: checked, end: checked + frame }) > -40) return performance.now();
        }
        if (Date.now() > deadline) throw new Error(`no greeting audio within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 5));
      }
    }

    async function tokenFor(slug: string): Promise<string> {
      return (await h.tokens.issue(slug)).token;
    }

    async function expectRefused(call: SipJsCall, status: number): Promise<void> {
      const err = await within(call.established.then(() => undefined, (e: unknown) => e), 5000, 'the refusal');
      expect(err).toBeInstanceOf(SipCallRefusedError);
      expect((err as SipCallRefusedError).status).toBe(status);
      await within(call.ended, 5000, 'the refused call to end');
    }

    it('a call with a call token is answered; the phone hears the greeting through DTLS-SRTP; its BYE ends the call and nothing is left', async () => {
      const slug = 'web-plain';
      await h.callUrls.create({ slug, tenantId: TENANT });
      const usesBefore = (await h.callUrls.get(slug)).uses;
      const call = await phone.call(`sip:${slug}@127.0.0.1`, { headers: { [CALL_TOKEN_HEADER]: await tokenFor(slug) } });
      try {
        await within(call.established, 5000, 'the 200 OK');
        await within(call.peer.connected, 5000, 'ICE and DTLS-SRTP with rtpengine');
        expect(await h.anchor.sessionCount()).toBe(1);

        // "Hello there, this is Ava." at 30 ms a character: ~750 ms of voice at the fake TTS's -20 dBFS.
        const { audio, startMs, endMs } = await greetingHeard(call.peer, GREETING_MIN_MS);
        const voiced = audio.subarray(Math.round((startMs * RATE) / 1000), Math.round((endMs * RATE) / 1000));
        expect(dbfs(voiced)).toBeGreaterThan(-40);
        expect(call.peer.stats().decodeErrors).toBe(0);

        expect(await within(call.hangup(), 5000, 'the hang-up')).toBe('phone');
        expect(await h.sessionsDrained()).toBe(0);
        const record = await recordOf(call.callId);
        expect(record).toMatchObject({ door: 'sip', from: `web:${slug}`, to: `callurl:${slug}`, outcome: 'caller-hangup' });
        expect(record.answeredAt).toBeDefined();
        // The URL sets no `visitor`: the template's fallback is spoken.
        expect(record.transcript).toContainEqual(expect.objectContaining({ role: 'agent', turn: 0, text: 'Hello there, this is Ava.' }));
        expect((await h.callUrls.get(slug)).uses).toBe(usesBefore + 1);
        expect(await h.limiter.active(TENANT)).toBe(0);
      } finally {
        await call.hangup();
      }
    }, 20_000);

    it("a call URL's greeting variables reach the greeting the caller hears", async () => {
      const slug = 'web-dana';
      await h.callUrls.create({ slug, tenantId: TENANT, variables: { visitor: 'Dana' } });
      const call = await phone.call(`sip:${slug}@127.0.0.1`, { headers: { [CALL_TOKEN_HEADER]: await tokenFor(slug) } });
      try {
        await within(call.established, 5000, 'the 200 OK');
        await greetingHeard(call.peer, GREETING_MIN_MS);
        await call.hangup();
        const record = await recordOf(call.callId);
        const greeting = record.transcript.find((t) => t.role === 'agent' && t.turn === 0);
        expect(greeting).toMatchObject({ text: 'Hello Dana, this is Ava.' });
        expect(greeting?.interrupted).toBeUndefined();
        expect(await h.sessionsDrained()).toBe(0);
      } finally {
        await call.hangup();
      }
    }, 20_000);

    it('an INVITE over WS without a call token is refused with 403 before anything is anchored', async () => {
      const call = await phone.call('sip:web-plain@127.0.0.1');
      await expectRefused(call, 403);
      expect(await h.anchor.sessionCount()).toBe(0);
    }, 10_000);

    it('a call token starts one call: presented again it is refused with 403 and counts no use', async () => {
      const slug = 'web-once';
      await h.callUrls.create({ slug, tenantId: TENANT });
      const token = await tokenFor(slug);
      const first = await phone.call(`sip:${slug}@127.0.0.1`, { headers: { [CALL_TOKEN_HEADER]: token } });
      try {
        await within(first.established, 5000, 'the first call');
        await within(first.peer.connected, 5000, 'the first call\'s DTLS-SRTP');
        await first.hangup();
      } finally {
        await first.hangup();
      }
      expect(await h.sessionsDrained()).toBe(0);
      const again = await phone.call(`sip:${slug}@127.0.0.1`, { headers: { [CALL_TOKEN_HEADER]: token } });
      await expectRefused(again, 403);
      expect((await h.callUrls.get(slug)).uses).toBe(1);
      // A token nobody issued fares no better.
      const forged = await phone.call(`sip:${slug}@127.0.0.1`, { headers: { [CALL_TOKEN_HEADER]: 'AAAAAAAAAAAAAAAAAAAAAA' } });
      await expectRefused(forged, 403);
      expect(await h.anchor.sessionCount()).toBe(0);
    }, 20_000);

    it('calls in a row: each is established and greets (INVITE → 200 OK, → DTLS-SRTP up, → first greeting audio reported, not asserted)', async () => {
      const slug = 'web-timing';
      await h.callUrls.create({ slug, tenantId: TENANT });
      const toEstablished: number[] = [];
      const toConnected: number[] = [];
      const toFirstAudio: number[] = [];
      for (let i = 0; i < 5; i++) {
        const call = await phone.call(`sip:${slug}@127.0.0.1`, { headers: { [CALL_TOKEN_HEADER]: await tokenFor(slug) } });
        try {
          const sound = firstSound(call.peer);
          const establishedAt = await within(call.established.then(() => performance.now()), 5000, `call ${i}: the 200 OK`);
          toEstablished.push(establishedAt - call.sentAt);
          toConnected.push((await within(call.peer.connected.then(() => performance.now()), 5000, `call ${i}: DTLS-SRTP`)) - call.sentAt);
          toFirstAudio.push((await sound) - call.sentAt);
          await call.hangup();
          expect(await h.sessionsDrained()).toBe(0);
        } finally {
          await call.hangup();
        }
      }
      expect((await h.callUrls.get(slug)).uses).toBe(5);
      const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;
      console.log(
        JSON.stringify({
          bench: 'sip-ws-call-setup',
          calls: toEstablished.length,
          inviteToEstablishedMsP50: Math.round(median(toEstablished) * 10) / 10,
          inviteToDtlsSrtpUpMsP50: Math.round(median(toConnected) * 10) / 10,
          inviteToFirstGreetingAudioMsP50: Math.round(median(toFirstAudio) * 10) / 10,
        }),
      );
    }, 60_000);

    it('a phone that hangs up at the 200 OK while the gateway is busy: the BYE ends the call and nothing is left', async () => {
      const slug = 'web-quick';
      await h.callUrls.create({ slug, tenantId: TENANT });
      for (let i = 0; i < 3; i++) {
        const call = await phone.call(`sip:${slug}@127.0.0.1`, { headers: { [CALL_TOKEN_HEADER]: await tokenFor(slug) } });
        try {
          // The gateway shares this process, as a real one shares its event loop with other calls'
          // media: holding the loop 30 ms after the BYE makes drachtio's news of our 200 OK, the ACK
          // and the BYE reach drachtio-srf in one read, every time.
          await within(
            call.established.then(() => {
              const bye = call.hangup();
              const until = performance.now() + 30;
              while (performance.now() < until);
              return bye;
            }),
            5000,
            `call ${i}: the 200 OK and our BYE`,
          );
          expect(await h.sessionsDrained()).toBe(0);
          expect(await recordOf(call.callId)).toMatchObject({ outcome: 'caller-hangup', from: `web:${slug}` });
          expect(await h.limiter.active(TENANT)).toBe(0);
        } finally {
          await call.hangup();
        }
      }
    }, 30_000);
  });
}
