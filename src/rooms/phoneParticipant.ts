import type { Logger } from 'pino';
import type { Door } from '../call/CallRunner.js';
import { isCallgateError } from '../errors.js';
import { Resampler } from '../media/Resampler.js';
import { PIPELINE_RATE, isSampleRate, type DtmfEvent } from '../media/types.js';
import type { TtsProvider } from '../providers/types.js';
import type { RoomHub } from './RoomHub.js';

/**
 * A phone caller in a room (a number routed to it): asked for the room's PIN on the keypad when it has
 * one, then a participant like any other, named by their number. Leaves when they hang up, or hangs up
 * when removed or the room ends.
 */
export interface PhoneJoin {
  readonly hub: RoomHub;
  readonly roomId: string;
  /** The caller as others see them (their number, or "Phone caller"). */
  readonly name: string;
  readonly door: Door;
  readonly remoteGone: Promise<void>;
  /** Speaks the PIN prompts. */
  readonly tts: TtsProvider;
  readonly voice: string;
  readonly log: Logger;
}

export const PHONE_PROMPTS = {
  pin: 'Please enter the room PIN, then press the pound key.',
  wrongPin: 'Sorry, that PIN is not right.',
  full: 'Sorry, the room is full. Please try again later.',
  ended: 'Sorry, this room has ended.',
  joined: 'You are in the room.',
} as const;

/** Tries at the PIN before the call ends. */
const PIN_TRIES = 3;
/** A PIN entry ends at '#', or this long after the last key. */
const PIN_WAIT_MS = 10_000;

export async function joinRoomByPhone(j: PhoneJoin): Promise<void> {
  const { door, log } = j;
  let gone = false;
  void j.remoteGone.then(() => (gone = true));
  const room = await j.hub.store.joinable(j.roomId).catch(() => undefined);
  if (!room) {
    await say(j, PHONE_PROMPTS.ended);
    await door.hangup('agent-goodbye');
    return;
  }
  let pin: string | undefined;
  if (room.pin !== undefined) {
    for (let attempt = 0; attempt < PIN_TRIES && !gone; attempt++) {
      await say(j, PHONE_PROMPTS.pin);
      const entered = await readDigits(door, j.remoteGone);
      if (entered === room.pin) {
        pin = entered;
        break;
      }
      if (!gone) await say(j, PHONE_PROMPTS.wrongPin);
    }
    if (pin === undefined) {
      if (!gone) await door.hangup('agent-goodbye');
      return;
    }
  }
  if (gone) return;
  let kicked: () => void = () => undefined;
  const removed = new Promise<void>((resolve) => (kicked = resolve));
  let joined;
  try {
    joined = await j.hub.join(j.roomId, { name: j.name, door: 'sip', ...(pin !== undefined ? { pin } : {}), kicked: () => kicked() });
  } catch (err) {
    const code = isCallgateError(err) ? err.code : undefined;
    log.info({ code, roomId: j.roomId }, 'phone caller could not join the room');
    await say(j, code === 'CG_ROOM_FULL' ? PHONE_PROMPTS.full : PHONE_PROMPTS.ended);
    await door.hangup('agent-goodbye');
    return;
  }
  const { live, participantId } = joined;
  live.attachAudio(participantId, door.leg);
  log.info({ roomId: j.roomId, participantId }, 'phone caller joined the room');
  try {
    await Promise.race([j.remoteGone, removed]);
  } finally {
    live.detachAudio(participantId, door.leg);
    await j.hub.leave(j.roomId, participantId);
    if (!gone) await door.hangup('agent-goodbye');
  }
}

/** Says `text` on the caller's leg and waits until it has played (or the caller is gone). */
async function say(j: PhoneJoin, text: string): Promise<void> {
  const abort = new AbortController();
  void j.remoteGone.then(() => abort.abort());
  try {
    let resampler: Resampler | undefined;
    for await (const chunk of j.tts.synthesize({ text, voice: j.voice, signal: abort.signal })) {
      if (chunk.sampleRate !== PIPELINE_RATE && isSampleRate(chunk.sampleRate)) resampler ??= new Resampler(chunk.sampleRate, PIPELINE_RATE);
      j.door.leg.play(resampler ? resampler.process(chunk.samples) : chunk.samples);
    }
  } catch (err) {
    j.log.warn({ err: String(err) }, 'room prompt not spoken');
  }
  const leg = j.door.leg;
  await Promise.race([
    j.remoteGone,
    new Promise<void>((resolve) => {
      if (leg.queuedMs === 0) return resolve();
      leg.once('drain', () => resolve());
    }),
  ]);
}

/** Keys until '#', or a pause of PIN_WAIT_MS, or the caller hangs up. */
function readDigits(door: Door, remoteGone: Promise<void>): Promise<string> {
  return new Promise<string>((resolve) => {
    let digits = '';
    let timer: NodeJS.Timeout;
    const done = (): void => {
      clearTimeout(timer);
      door.leg.off('dtmf', onKey);
      resolve(digits);
    };
    const onKey = (e: DtmfEvent): void => {
      if (e.digit === '#') return done();
      if (digits.length < 16) digits += e.digit;
      clearTimeout(timer);
      timer = setTimeout(done, PIN_WAIT_MS);
    };
    timer = setTimeout(done, PIN_WAIT_MS);
    door.leg.on('dtmf', onKey);
    void remoteGone.then(done);
  });
}
