import { fileURLToPath } from 'node:url';
import Srf from 'drachtio-srf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offlineProviderRegistry, type ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { goertzelPower, tone } from '../../src/media/signal.js';
import { buildSdp, negotiate, offerCodecs, parseRemoteSdp } from '../../src/media/sdp.js';
import { RtpCaller } from '../../src/media/testing/RtpCaller.js';
import { readWavFile } from '../../src/media/wav.js';
import { startDrachtio, type RunningDrachtio } from '../../src/sip/testing/DrachtioProcess.js';
import { startSipHarness, type SipHarness } from '../../src/sip/testing/SipHarness.js';
import { pollUntil, until } from '../../src/util/testing/wait.js';
import { missingTool, testMissing } from '../support/tools.js';

/**
 * Phone callers in a room: a number routed to a room with a PIN. Each caller (drachtio-srf UAC, raw
 * RTP) hears the PIN prompt, keys the PIN as SIP INFO, and joins: the room's agent greets, and what one
 * caller says (a tone) reaches the other through the mix.
 */
const TENANT = 'rooms-sip';
const NUMBER = '+15005550190';
const PIN = '4321';
const RTPENGINE_PORTS = { portMin: 55000, portMax: 55499 } as const;
const AGENT_PORTS = { min: 55500, max: 55749 } as const;
const CALLER_PORTS = { min: 55750, max: 55999 } as const;
const TONE_HZ = 600;
const HOURS = 'We open at eight in the morning.';
const QUESTION_WAV = fileURLToPath(new URL('../fixtures/caller-open-today.wav', import.meta.url));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const MISSING = missingTool('drachtio', 'rtpengine', 'pocketsphinx');
if (MISSING) {
  describe('rooms by phone', () => testMissing(MISSING));
} else {
  describe('rooms by phone (drachtio-server, rtpengine)', () => {
    let registry: ProviderRegistry;
    let h: SipHarness;
    let callerDrachtio: RunningDrachtio;
    let srf: Srf;
    let roomId = '';

    beforeAll(async () => {
      registry = offlineProviderRegistry();
      h = await startSipHarness({ providers: registry, agentPorts: AGENT_PORTS, rtpengine: RTPENGINE_PORTS });
      await h.tenants.create({ id: TENANT, displayName: 'Rooms Inc', intents: [{ name: 'hours', phrases: ['what time do you open today'], reply: HOURS }] });
      const room = await h.rooms.store.create(TENANT, { name: 'Standup', pin: PIN });
      roomId = room.roomId;
      await h.rooms.store.addAgent(room, { description: 'Max, a helpful note taker.', greeting: 'Hi, I am Max.' });
      await h.numbers.createTrunk({ name: 'local', sourceCidrs: ['127.0.0.1/32'] });
      await h.numbers.createNumber({ number: NUMBER, tenantId: TENANT, room: roomId });
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

    const dial = async (from: string): Promise<{ caller: RtpCaller; dialog: Srf.Dialog }> => {
      const caller = await RtpCaller.open({ portRange: CALLER_PORTS });
      const sdp = buildSdp({ address: '127.0.0.1', port: caller.port, ...offerCodecs(['PCMU']) });
      const dialog = await srf.createUAC(h.target(NUMBER), { localSdp: sdp, callingNumber: from } as never);
      const answer = negotiate(parseRemoteSdp(dialog.remote.sdp));
      caller.start({ address: answer.remote.address, port: answer.remote.port });
      return { caller, dialog };
    };
    const keys = async (dialog: Srf.Dialog, digits: string): Promise<void> => {
      for (const key of digits) {
        await dialog.request({ method: 'INFO', headers: { 'Content-Type': 'application/dtmf-relay' }, body: `Signal=${key}\r\nDuration=160\r\n` } as never);
      }
    };
    /** Waits for the prompt (sound, then 600 ms of quiet) that starts after `t`. */
    const promptPlayed = async (caller: RtpCaller, t: number): Promise<void> => {
      await until(() => caller.firstSoundAfter(t) !== undefined, 8000, 'a prompt');
      await until(() => {
        const last = caller.lastSoundBefore();
        return last !== undefined && performance.now() - last > 600;
      }, 10_000, 'the prompt to end');
    };

    it('asks for the PIN, refuses a wrong one, joins on the right one, and mixes the callers', async () => {
      const a = await dial('+15551230001');
      const b = await dial('+15551230002');
      try {
        await promptPlayed(a.caller, 0);
        // A wrong PIN: told so and asked again, not joined.
        const wrongAt = performance.now();
        await keys(a.dialog, '1111#');
        await promptPlayed(a.caller, wrongAt);
        expect((await h.rooms.store.people(roomId)).length).toBe(0);
        await keys(a.dialog, `${PIN}#`);
        const joined = await pollUntil(() => h.rooms.store.people(roomId), (p) => p.length === 1, 10_000, 100);
        expect(joined[0]!.name).toBe('+15551230001');
        expect(joined[0]!.door).toBe('sip');
        // The room opened with this caller: its agent greets.
        const joinedAt = performance.now();
        await until(() => a.caller.firstSoundAfter(joinedAt) !== undefined, 8000, "the agent's greeting");

        await promptPlayed(b.caller, 0);
        await keys(b.dialog, `${PIN}#`);
        await pollUntil(() => h.rooms.store.people(roomId), (p) => p.length === 2, 10_000, 100);
        const live = await h.rooms.liveRoom(await h.rooms.store.get(roomId));
        expect(live.view().map((p) => p.name).sort()).toEqual(['+15551230001', '+15551230002', 'Max']);
        await sleep(1500);
        // A speaks (a tone); B hears it through the mix, A does not hear itself.
        const from = performance.now();
        await a.caller.speak(tone(TONE_HZ, 1500, { amplitude: 6000 }));
        await sleep(400);
        const heardByB = b.caller.audio(from, performance.now());
        const heardByA = a.caller.audio(from, performance.now());
        const power = (pcm: Int16Array): number => goertzelPower(pcm, 8000, TONE_HZ);
        expect(power(heardByB)).toBeGreaterThan(100 * Math.max(1, power(heardByA)));
        // A asks the room a question: A's own recogniser writes the transcript line with A's name, and
        // with nobody named and nobody else taking it, the room's agent answers.
        const lines: { name: string; kind: string; text: string }[] = [];
        live.on('event', (e) => {
          if (e.type === 'transcript' && e.final) lines.push({ name: e.name, kind: e.kind, text: e.text });
        });
        await a.caller.speak((await readWavFile(QUESTION_WAV)).samples);
        const heard = await pollUntil(() => lines, (l) => l.some((x) => x.kind === 'agent' && x.text === HOURS), 15_000, 100);
        expect(heard.find((x) => x.kind === 'person')).toMatchObject({ name: '+15551230001', text: 'what time do you open today' });
        // A hangs up: the room sees it leave.
        await Promise.resolve(a.dialog.destroy() as unknown);
        await pollUntil(() => h.rooms.store.people(roomId), (p) => p.length === 1, 5000, 100);
      } finally {
        // A dialog already ended says so (ENODIALOG): nothing to do then.
        for (const d of [a.dialog, b.dialog]) await Promise.resolve(d.destroy() as unknown).catch(() => undefined);
        a.caller.close();
        b.caller.close();
      }
      // The last one out closes the room: its agent leaves and the lease is given back.
      await pollUntil(() => h.rooms.store.owner(roomId), (o) => o === undefined, 5000, 100);
      expect(h.rooms.liveRooms).toBe(0);
    }, 90_000);
  });
}
