import { EventEmitter } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { PromptCache } from '../agent/PromptCache.js';
import { offlineProviderRegistry } from '../agent/ProviderRegistry.js';
import { createVad } from '../agent/vad/createVad.js';
import { rootLogger } from '../log.js';
import { sharedMediaClock } from '../media/MediaClock.js';
import type { Tenant } from '../tenants/schema.js';
import { pollUntil } from '../util/testing/wait.js';
import { LiveRoom, type MemberChange } from './LiveRoom.js';

class FakePersonAudio extends EventEmitter<{ audio: [Int16Array] }> {
  readonly played: Int16Array[] = [];
  queuedMs = 0;
  play(pcm: Int16Array): boolean {
    this.played.push(pcm);
    return true;
  }
}

const tenant = { id: 'acme', displayName: 'Acme', agentName: 'Ava', maxConcurrentCalls: 5 } as Tenant;
const room = { roomId: 'room-1', tenantId: 'acme', maxParticipants: 8, respond: 'addressed' as const, createdAt: '' };
const providers = offlineProviderRegistry();
afterAll(() => providers.close());

function liveRoom(): LiveRoom {
  return new LiveRoom(room, tenant, { clock: sharedMediaClock(), prompts: new PromptCache(), providers, createVad: () => createVad(), logger: rootLogger, mixer: { speakingHangoverMs: 0 } });
}

describe('LiveRoom', () => {
  it('tells who came and went, mixes people for each other, and says when the last person left', async () => {
    const live = liveRoom();
    const changes: string[] = [];
    live.on('member', (m: MemberChange) => changes.push(`${m.change}:${m.participant.name}`));
    let empty = false;
    live.on('empty', () => (empty = true));
    const ana = new FakePersonAudio();
    const ben = new FakePersonAudio();
    live.addPerson({ participantId: 'p-ana', name: 'Ana', door: 'web' });
    live.addPerson({ participantId: 'p-ben', name: 'Ben', door: 'sip' });
    live.addPerson({ participantId: 'p-ben', name: 'Ben', door: 'sip' });
    live.attachAudio('p-ana', ana);
    live.attachAudio('p-ben', ben);
    expect(live.view().map((p) => p.name)).toEqual(['Ana', 'Ben']);
    for (let i = 0; i < 10; i++) ana.emit('audio', new Int16Array(320).fill(1000));
    await pollUntil(() => ben.played.length, (n) => n >= 3, 2000, 20);
    expect(ben.played[0]![0]).toBe(1000);
    expect(ana.played.length).toBe(0);
    // Muted: heard by nobody.
    live.setMuted('p-ana', true);
    const before = ben.played.length;
    for (let i = 0; i < 5; i++) ana.emit('audio', new Int16Array(320).fill(1000));
    await new Promise((r) => setTimeout(r, 200));
    expect(ben.played.length).toBe(before);
    live.removePerson('p-ana');
    expect(empty).toBe(false);
    live.removePerson('p-ben');
    expect(empty).toBe(true);
    expect(changes).toEqual(['joined:Ana', 'joined:Ben', 'left:Ana', 'left:Ben']);
    await live.close();
  });

  it('never lets two agents talk at once: the second greeting waits for the first', async () => {
    const live = liveRoom();
    const person = new FakePersonAudio();
    live.addPerson({ participantId: 'p-1', name: 'Ana', door: 'web' });
    live.attachAudio('p-1', person);
    const speaking = new Set<string>();
    let overlap = 0;
    const spoke = new Set<string>();
    live.on('event', (e) => {
      if (e.type !== 'speaking' || e.participantId.startsWith('p-')) return;
      if (e.speaking) {
        speaking.add(e.participantId);
        spoke.add(e.participantId);
        if (speaking.size > 1) overlap++;
      } else speaking.delete(e.participantId);
    });
    await Promise.all([
      live.addAgent({ agentId: 'a-amy', name: 'Amy', description: 'Amy.', greeting: 'Hello there, I am Amy, and I plan trips.', createdAt: '' }),
      live.addAgent({ agentId: 'a-bob', name: 'Bob', description: 'Bob.', greeting: 'Hi, Bob here, I book hotels.', createdAt: '' }),
    ]);
    await pollUntil(() => spoke.size, (n) => n === 2, 15_000, 50);
    await pollUntil(() => speaking.size, (n) => n === 0, 15_000, 50);
    expect(overlap).toBe(0);
    expect(live.view().filter((p) => p.kind === 'agent').map((p) => p.name).sort()).toEqual(['Amy', 'Bob']);
    await live.close();
  }, 40_000);
});
