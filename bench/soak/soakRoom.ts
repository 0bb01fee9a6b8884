import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { ProviderRegistry } from '../../src/agent/ProviderRegistry.js';
import { openAudioLeg, type AudioLeg } from '../../src/media/AudioLeg.js';
import type { ReplayPacket } from '../../src/media/capture/replay.js';
import { sharedMediaClock } from '../../src/media/MediaClock.js';
import { FakeLlm } from '../../src/providers/testing/FakeProviders.js';
import type { LiveRoom, RoomEvent } from '../../src/rooms/LiveRoom.js';
import type { RoomHub } from '../../src/rooms/RoomHub.js';
import type { RoomStore } from '../../src/tenants/RoomStore.js';
import { PCMU, SoakCaller, soakProviders } from './soakCall.js';

/**
 * One soak room, the way the doors use a room (src/rooms/phoneParticipant.ts, src/webrtc/RoomSignalling.ts):
 * a room with one AI participant is made in Redis (RoomStore, as the API does); each person gets an
 * agent-side AudioLeg on the port range, joins through the RoomHub (owner lease, people hash, the live
 * room made on the first join with its agent) and has the leg attached. The far end of each leg is a
 * SoakCaller replaying the soak's capture. Everyone first hears the agent's greeting, then all speak at
 * once; each person's own recogniser writes their line and the agent (the room's host, `respond:
 * always`) answers. Then they leave one by one through the hub (the last one out closes the room: the
 * agent leaves, the mixer stops, the lease is given back) and the room is deleted as the API does.
 */

export interface SoakRoomOptions {
  /** People per room (each with a leg and a caller). */
  readonly people: number;
  /** A room whose greeting, lines and answer are not all in by then counts as failed (its people still leave). */
  readonly roomTimeoutMs: number;
  /** How long the room gets to close (agent gone, lease given back) after the last person left. */
  readonly closeTimeoutMs: number;
  /** What the fake STT "hears" in the capture (each person's recogniser and the agent's). */
  readonly callerText: string;
  /** The agent's answer. */
  readonly reply: string;
}

export interface SoakRoomDeps {
  readonly hub: RoomHub;
  readonly store: RoomStore;
  readonly tenantId: string;
  readonly capture: readonly ReplayPacket[];
  readonly logger: Logger;
  readonly options: SoakRoomOptions;
}

export interface SoakRoomResult {
  readonly roomId: string;
  /** Greeting heard by everyone, a line per person, the agent's answer, and the room closed clean. */
  readonly ok: boolean;
  readonly durationMs: number;
  /** From the last person's join to the last person hearing the greeting. */
  readonly greetingMs: number | undefined;
  readonly peopleHeardGreeting: number;
  /** People with a final transcript line of their own, under their own name. */
  readonly peopleWithLine: number;
  readonly agentAnswered: boolean;
  /** From the last person's leave to the room's `ended` event and its lease gone from Redis. */
  readonly closeMs: number | undefined;
  /** After the room closed: who the live room still counted, the mixer's members, Redis's view. */
  readonly left: { readonly participants: number; readonly mixerMembers: number; readonly owner: boolean; readonly people: number };
  readonly error?: string;
}

/** The provider name the soak tenant's chains name: the soak's fakes, registered under it. */
export const SOAK_PROVIDER = 'soak-fake';

/**
 * A registry whose only providers are the soak's fakes (fresh per call, as for the call phases). The
 * model answers without hanging up: in a room an agent's end_call makes it leave, and here the agent
 * stays until the room closes around it, the usual way a room ends.
 */
export function soakRoomRegistry(o: SoakRoomOptions, logger: Logger): ProviderRegistry {
  const fakes = (): ReturnType<typeof soakProviders> => soakProviders({ callLimit: 1, callTimeoutMs: 0, callerText: o.callerText, reply: o.reply });
  return new ProviderRegistry({
    factories: {
      stt: { [SOAK_PROVIDER]: () => fakes().stt },
      llm: { [SOAK_PROVIDER]: () => new FakeLlm({ reply: () => o.reply }) },
      tts: { [SOAK_PROVIDER]: () => fakes().tts },
    },
    logger,
  });
}

interface Person {
  readonly name: string;
  readonly caller: SoakCaller;
  leg: AudioLeg | undefined;
  participantId: string | undefined;
}

export async function runSoakRoom(deps: SoakRoomDeps, index: number, track: (live: LiveRoom) => void): Promise<SoakRoomResult> {
  const started = performance.now();
  const { hub, store, tenantId, options: o } = deps;
  const room = await store.create(tenantId, { name: `Soak ${index}`, maxParticipants: o.people + 1, respond: 'always' });
  await store.addAgent(room, { description: 'Max, a note taker for the soak.', greeting: 'Hi, I am Max.' });
  const people: Person[] = Array.from({ length: o.people }, (_, i) => ({ name: `Person ${i + 1}`, caller: new SoakCaller(), leg: undefined, participantId: undefined }));
  let live: LiveRoom | undefined;
  let greetingMs: number | undefined;
  let closeMs: number | undefined;
  let error: string | undefined;
  const lines = new Map<string, string>();
  let agentAnswered = false;
  let ended: Promise<void> | undefined;
  /** People whose own recogniser gave a final line under their own name. */
  const withLine = (): number => people.filter((p) => p.participantId !== undefined && lines.get(p.participantId) === p.name).length;
  const onEvent = (e: RoomEvent): void => {
    if (e.type === 'transcript' && e.final && e.kind === 'person') lines.set(e.participantId, e.name);
    if (e.type === 'transcript' && e.kind === 'agent' && e.text.includes(o.reply)) agentAnswered = true;
  };
  try {
    // Legs and callers first, then the joins at once: everyone is in before the greeting is over.
    await Promise.all(
      people.map(async (p, i) => {
        await p.caller.open();
        p.leg = await openAudioLeg({
          callId: `${room.roomId}-${i}`,
          legId: 'person',
          codec: PCMU,
          clock: sharedMediaClock(),
          env: {},
          endpoint: { remote: { address: '127.0.0.1', port: p.caller.port } },
          logger: deps.logger,
        });
      }),
    );
    await Promise.all(
      people.map(async (p) => {
        const joined = await hub.join(room.roomId, { name: p.name, door: 'sip', kicked: () => undefined });
        p.participantId = joined.participantId;
        live ??= joined.live;
        joined.live.attachAudio(joined.participantId, p.leg!);
      }),
    );
    const joinedAt = performance.now();
    const opened = live!;
    track(opened);
    opened.on('event', onEvent);
    ended = new Promise<void>((resolve) => opened.on('event', (e) => e.type === 'ended' && resolve()));
    const deadline = started + o.roomTimeoutMs;
    // The greeting: sound at every caller before anyone speaks (nothing else in the room makes any).
    await waitFor(() => people.every((p) => p.caller.firstSpeechAt !== undefined), deadline, "everyone to hear the agent's greeting");
    greetingMs = Math.max(...people.map((p) => p.caller.firstSpeechAt!)) - joinedAt;
    // Everyone speaks at once (the capture), from their own socket into their own leg.
    await Promise.all(people.map((p) => p.caller.replay(deps.capture, p.leg!.endpoint.localAddress)));
    await waitFor(() => withLine() === people.length && agentAnswered, deadline, "a line per person and the agent's answer");
  } catch (err) {
    error = String(err);
  } finally {
    // Out one by one, as a door does when its person goes; the last one closes the room.
    let lastLeftAt = 0;
    for (const p of people) {
      if (p.participantId && p.leg) live?.detachAudio(p.participantId, p.leg);
      if (p.participantId) await hub.leave(room.roomId, p.participantId).catch((err: unknown) => void (error ??= String(err)));
      lastLeftAt = performance.now();
      await p.leg?.close();
      await p.caller.close();
    }
    if (ended) {
      let timer: NodeJS.Timeout | undefined;
      const closed = await Promise.race([ended.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), o.closeTimeoutMs)))]);
      clearTimeout(timer);
      const gone = closed && (await waitFor(async () => (await store.owner(room.roomId)) === undefined, performance.now() + o.closeTimeoutMs, '').then(() => true, () => false));
      if (gone) closeMs = performance.now() - lastLeftAt;
      else error ??= 'the room did not close after the last person left';
    }
  }
  const left = {
    participants: live?.size ?? 0,
    // The mixer is the room's own (private): read here only to check it let go of every member.
    mixerMembers: live ? live['mixer'].size : 0,
    owner: (await store.owner(room.roomId)) !== undefined,
    people: (await store.people(room.roomId)).length,
  };
  live?.off('event', onEvent);
  // Deleted as the API does (DELETE /v1/rooms/:id): its keys go, and the hub hears of it.
  await store.delete(room.roomId, tenantId);
  await hub.roomDeleted(room.roomId);
  const peopleHeardGreeting = people.filter((p) => p.caller.firstSpeechAt !== undefined).length;
  const ok = error === undefined && peopleHeardGreeting === people.length && withLine() === people.length && agentAnswered && closeMs !== undefined && left.participants === 0 && left.mixerMembers === 0 && !left.owner && left.people === 0;
  return {
    roomId: room.roomId,
    ok,
    durationMs: performance.now() - started,
    greetingMs,
    peopleHeardGreeting,
    peopleWithLine: withLine(),
    agentAnswered,
    closeMs,
    left,
    ...(error !== undefined ? { error } : {}),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 20 ms until it holds, or rejects naming `what` at `deadline` (performance.now()). */
async function waitFor(check: () => boolean | Promise<boolean>, deadline: number, what: string): Promise<void> {
  for (;;) {
    if (await check()) return;
    if (performance.now() >= deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
