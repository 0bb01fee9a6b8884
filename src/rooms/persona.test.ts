import { describe, expect, it } from 'vitest';
import { nameFromDescription } from '../tenants/RoomStore.js';
import { addressedTo, decideTurn, looksLikeQuestion, roomAgentConfig } from './persona.js';
import type { Tenant } from '../tenants/schema.js';

describe('room personas', () => {
  it('takes the name a description gives', () => {
    expect(nameFromDescription('Max, a cheerful travel agent who books trains.')).toBe('Max');
    expect(nameFromDescription('You are Nora, a calm hotel expert.')).toBe('Nora');
    expect(nameFromDescription('A note taker named Quill who summarises.')).toBe('Quill');
    expect(nameFromDescription('a helpful assistant')).toBe('Assistant');
  });

  it('finds who a turn addresses, by whole words, any case', () => {
    expect(addressedTo('max what do you think', ['Max', 'Nora'])).toEqual(['Max']);
    expect(addressedTo('Ask Nora and Max.', ['Max', 'Nora'])).toEqual(['Max', 'Nora']);
    expect(addressedTo('the maximum is four', ['Max'])).toEqual([]);
    expect(addressedTo('hi Mary Ann', ['Mary Ann'])).toEqual(['Mary Ann']);
  });

  it('tells a question from a statement without a question mark', () => {
    expect(looksLikeQuestion('what time is the train')).toBe(true);
    expect(looksLikeQuestion('Is it raining?')).toBe(true);
    expect(looksLikeQuestion('I will book the hotel')).toBe(false);
  });

  it('decides who answers a turn under each room policy', () => {
    const base = { agents: ['Max', 'Nora'], agent: 'Max', isHost: true };
    expect(decideTurn({ ...base, policy: 'addressed', text: 'Max, book it' })).toBe('answer');
    expect(decideTurn({ ...base, policy: 'addressed', text: 'Nora, book it' })).toBe('silent');
    expect(decideTurn({ ...base, agent: 'Nora', isHost: false, policy: 'addressed', text: 'nora book it' })).toBe('answer');
    expect(decideTurn({ ...base, policy: 'addressed', text: 'I think we should go' })).toBe('silent');
    expect(decideTurn({ ...base, policy: 'addressed', text: 'when does the train leave' })).toBe('if-unclaimed');
    expect(decideTurn({ ...base, isHost: false, agent: 'Nora', policy: 'addressed', text: 'when does the train leave' })).toBe('silent');
    expect(decideTurn({ ...base, policy: 'always', text: 'I think we should go' })).toBe('answer');
    expect(decideTurn({ ...base, isHost: false, agent: 'Nora', policy: 'always', text: 'I think we should go' })).toBe('silent');
    expect(decideTurn({ ...base, policy: 'never', text: 'Max, book it' })).toBe('silent');
  });

  it("gives an agent its own name, greeting and persona on top of the tenant's agent, with no-input reprompts off", () => {
    const tenant = { id: 't', displayName: 'Acme Travel', agentName: 'Ava', maxConcurrentCalls: 5 } as Tenant;
    const room = { roomId: 'r', tenantId: 't', name: 'Trip', maxParticipants: 8, respond: 'addressed' as const, createdAt: '' };
    const { config, variables } = roomAgentConfig(tenant, room, { agentId: 'a-1', name: 'Max', description: 'Books trains.', voice: 'rms', createdAt: '' });
    expect(config.greeting).toBe("Hi, I'm Max.");
    expect(config.systemPrompt).toContain('You are Max');
    expect(config.systemPrompt).toContain('Books trains.');
    expect(config.voice).toBe('rms');
    expect(config.turn.maxReprompts).toBe(0);
    expect(config.turn.noInputMs).toBeGreaterThan(3600_000);
    expect(variables['agentName']).toBe('Max');
  });
});
