import { describe, expect, it } from 'vitest';
import { rootLogger } from '../log.js';
import { sharedMediaClock } from '../media/MediaClock.js';
import type { RoomHub } from '../rooms/RoomHub.js';
import { CallgateError } from '../errors.js';
import { RoomSignalling } from './RoomSignalling.js';
import { pollUntil } from '../util/testing/wait.js';

function socket() {
  const sent: Record<string, unknown>[] = [];
  let closed: number | undefined;
  return { sent, closed: () => closed, send: (t: string) => sent.push(JSON.parse(t) as Record<string, unknown>), close: (code?: number) => (closed = code ?? 1000) };
}
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

describe('RoomSignalling: what a page may send', () => {
  const hub = {
    join: async () => {
      throw new CallgateError('CG_ROOM_PIN', 'wrong PIN');
    },
  } as unknown as RoomHub;
  const signalling = new RoomSignalling({ hub, clock: sharedMediaClock(), pageIceServers: () => [], peerIceServers: () => [], log: rootLogger });

  it('answers garbage, unknown messages, oversized ones and steps out of order with a typed error, and keeps the socket', async () => {
    const s = socket();
    const session = signalling.connect('room', s);
    session.message('not json');
    session.message(JSON.stringify({ type: 'dance' }));
    session.message(JSON.stringify({ type: 'offer', sdp: 'v=0' }));
    session.message('x'.repeat(70_000));
    session.message(JSON.stringify({ type: 'join', name: '' }));
    await settle();
    // Malformed messages are answered at once; the out-of-order offer after the steps queued before it.
    expect(s.sent.map((m) => m['code']).sort()).toEqual(['CG_HTTP_BAD_REQUEST', 'CG_HTTP_BAD_REQUEST', 'CG_HTTP_BAD_REQUEST', 'CG_HTTP_BAD_REQUEST', 'CG_HTTP_BODY_TOO_LARGE']);
    expect(s.sent.some((m) => String(m['message']).includes('join first'))).toBe(true);
    expect(s.closed()).toBeUndefined();
    session.closed();
  });

  it("passes a refused join's code, message and hint to the page", async () => {
    const s = socket();
    const session = signalling.connect('room', s);
    session.message(JSON.stringify({ type: 'join', name: 'Ana', pin: '0000' }));
    await settle();
    expect(s.sent[0]).toMatchObject({ type: 'error', code: 'CG_ROOM_PIN', hint: 'enter the PIN the room was made with' });
    expect(s.sent[0]!['message']).toContain('wrong PIN');
    // A resume nobody can claim.
    const t = socket();
    signalling.connect('room', t).message(JSON.stringify({ type: 'resume', participantId: 'p-x', resumeToken: 'nope' }));
    await settle();
    expect(t.sent[0]).toMatchObject({ type: 'error', code: 'CG_ROOM_PARTICIPANT_NOT_FOUND' });
  });

  it('lets a joined page offer ten times a minute, then refuses with a rate limit', async () => {
    const live = { room: { roomId: 'room', name: 'R' }, view: () => [], on: () => undefined, off: () => undefined, detachAudio: () => undefined };
    const joiningHub = {
      join: async () => ({ room: live.room, live, participantId: 'p-1' }),
      liveRoom: async () => live,
      leave: async () => undefined,
      store: { get: async () => live.room },
    } as unknown as RoomHub;
    const own = new RoomSignalling({ hub: joiningHub, clock: sharedMediaClock(), pageIceServers: () => [], peerIceServers: () => [], log: rootLogger });
    const s = socket();
    const session = own.connect('room', s);
    session.message(JSON.stringify({ type: 'join', name: 'Ana' }));
    for (let i = 0; i < 11; i++) session.message(JSON.stringify({ type: 'offer', sdp: 'v=0 not really' }));
    await pollUntil(() => s.sent.length, (n) => n >= 12, 2000, 10);
    expect(s.sent[0]).toMatchObject({ type: 'joined', participantId: 'p-1' });
    const codes = s.sent.slice(1).map((m) => m['code']);
    expect(codes.slice(0, 10)).toEqual(Array(10).fill("CG_SDP_NO_AUDIO"));
    expect(codes[10]).toBe('CG_HTTP_RATE_LIMITED');
    session.closed();
    await own.closeAll();
  });
});
