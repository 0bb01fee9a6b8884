import Srf from 'drachtio-srf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offlineProviderRegistry, type ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { resample } from '../../src/media/Resampler.js';
import { buildSdp, negotiate, offerCodecs, parseRemoteSdp } from '../../src/media/sdp.js';
import { readWavFile } from '../../src/media/wav.js';
import { recognizePcm } from '../../src/providers/pocketsphinx/index.js';
import { startDrachtio, type RunningDrachtio } from '../../src/sip/testing/DrachtioProcess.js';
import { RtpCaller } from '../../src/media/testing/RtpCaller.js';
import { startSipHarness, type SipHarness } from '../../src/sip/testing/SipHarness.js';
import type { CallRecord } from '../../src/tenants/CallRecordStore.js';
import { BOOKING, bargeInTenant, CALLER_WAV, expectGreetingCutAndQuestionAnswered, GREETING, HOURS, INTERRUPT_AFTER_MS, SILENT_WITHIN_MS } from '../support/bargein.js';
import { missingTool, testMissing } from '../support/tools.js';
import { pollUntil, until } from '../../src/util/testing/wait.js';

/**
 * Barge-in through the SIP door: a caller UAC (drachtio-srf on a drachtio-server of its own) whose
 * media is a raw RTP socket (src/media/testing/RtpCaller.ts), through drachtio-server, rtpengine and
 * the gateway, to an agent with the offline providers (pocketsphinx hears, the scripted responder
 * answers, flite speaks). While the agent's long greeting plays, the caller asks a question (a fixture
 * recording); the agent's audio must stop at the caller's socket, and what follows must answer what
 * the caller said: the call record says so, and pocketsphinx hears it in the audio the caller received.
 * How fast it stops is a benchmark's business (`npm run bench:bargein -- --door sip`); the bound here is loose.
 */
const TENANT = 'bargein-sip';
const NUMBER = '+15005550180';
/** Port ranges of this file's own: two rtpengines on one range take each other's packets. */
const RTPENGINE_PORTS = { portMin: 54000, portMax: 54499 } as const;
const AGENT_PORTS = { min: 54500, max: 54749 } as const;
const CALLER_PORTS = { min: 54750, max: 54999 } as const;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const MISSING = missingTool('drachtio', 'rtpengine', 'pocketsphinx');
if (MISSING) {
  describe('SIP barge-in', () => testMissing(MISSING));
} else {
  describe('barge-in through the SIP door (drachtio-server, rtpengine, offline providers)', () => {
    let registry: ProviderRegistry;
    let h: SipHarness;
    let callerDrachtio: RunningDrachtio;
    let srf: Srf;

    beforeAll(async () => {
      registry = offlineProviderRegistry();
      h = await startSipHarness({ providers: registry, agentPorts: AGENT_PORTS, rtpengine: RTPENGINE_PORTS });
      await h.tenants.create(bargeInTenant(TENANT));
      await h.numbers.createTrunk({ name: 'local', sourceCidrs: ['127.0.0.1/32'] });
      await h.numbers.createNumber({ number: NUMBER, tenantId: TENANT });
      callerDrachtio = await startDrachtio();
      srf = new Srf();
      await new Promise<void>((resolve, reject) => {
        srf.once('connect', (err: Error) => (err ? reject(err) : resolve()));
        srf.connect({ host: '127.0.0.1', port: callerDrachtio.adminPort, secret: callerDrachtio.secret });
      });
    }, 30_000);

    afterAll(async () => {
      srf?.disconnect();
      await callerDrachtio?.stop();
      await h?.stop();
      await registry?.close();
    });

    it("the caller's question stops the greeting at the caller, and the reply answers that question", async () => {
      const question = await readWavFile(CALLER_WAV);
      expect(question.sampleRate).toBe(16000);
      const caller = await RtpCaller.open({ portRange: CALLER_PORTS });
      try {
        const sdp = buildSdp({ address: '127.0.0.1', port: caller.port, ...offerCodecs(['PCMU']) });
        const dialog = await srf.createUAC(h.target(NUMBER), { localSdp: sdp });
        const answer = negotiate(parseRemoteSdp(dialog.remote.sdp));
        expect(answer.codec.name).toBe('PCMU');
        // Comfort silence from here on, as a phone sends: rtpengine latches onto it.
        caller.start({ address: answer.remote.address, port: answer.remote.port });

        // The greeting (flite, ~10 s) is playing when the caller starts talking.
        await until(() => caller.firstSoundAfter(0) !== undefined, 10_000, 'the greeting at the caller');
        const greetingAt = caller.firstSoundAfter(0)!;
        await sleep(INTERRUPT_AFTER_MS);
        const sent = await caller.speak(question.samples);
        const onset = sent[0]!;
        const speechEnd = sent.at(-1)!;
        // The agent was speaking when the caller began: sound reached the caller in the 300 ms before.
        expect(caller.heard.some((p) => p.sound && p.at > onset - 300 && p.at <= onset)).toBe(true);

        // The answer follows the caller's question (endpointing, pocketsphinx, flite), then plays out.
        await until(() => caller.firstSoundAfter(speechEnd) !== undefined, 15_000, "the agent's reply");
        const replyAt = caller.firstSoundAfter(speechEnd)!;
        await until(() => performance.now() - (caller.lastSoundBefore() ?? 0) > 1000, 15_000, 'the reply to end');

        // Silent at the caller soon after the onset, and silent all the while the caller went on talking.
        const lastGreetingSound = caller.lastSoundBefore(speechEnd)!;
        // A single observation, printed for the reader (the benchmark has the figure).
        console.info(`SIP barge-in: onset → last greeting sound ${(lastGreetingSound - onset).toFixed(0)} ms (fixture onset includes its leading silence)`);
        expect(lastGreetingSound - onset).toBeLessThan(SILENT_WITHIN_MS);
        expect(lastGreetingSound).toBeGreaterThan(greetingAt);

        // What the caller heard after its question is the answer to it, in the agent's voice.
        const replyHeard = resample(caller.audio(replyAt - 20), 8000, 16000);
        const recognised = await recognizePcm(replyHeard, { phrases: [GREETING, HOURS, BOOKING] });
        expect(recognised).toContain('we open at eleven in the morning today');

        await new Promise<void>((resolve) => dialog.destroy(undefined, () => resolve()));
        const record = await pollUntil(
          async () => (await h.records.list(TENANT)).records.find((r) => r.callId === dialog.sip.callId),
          (r): r is CallRecord => r !== undefined,
        );
        expectGreetingCutAndQuestionAnswered(record, 'sip');
      } finally {
        caller.close();
      }
      expect(await h.sessionsDrained()).toBe(0);
    }, 60_000);
  });
}
