import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { CallRecord } from '../../src/tenants/CallRecordStore.js';
import type { TenantInput } from '../../src/tenants/schema.js';

/**
 * What the barge-in tests of every door share: the tenant whose long greeting the caller interrupts,
 * the question it asks (a fixture recording), and what the call record must say afterwards.
 */
export const GREETING =
  "Hi, I'm Ava from Joe's Pizza. Tonight we have a special on our large pepperoni pizza, and every pasta dish comes with a free garlic bread. What can I do for you today?";
export const HOURS = 'We open at eleven in the morning today.';
export const BOOKING = 'Of course. We have tables for four at seven tonight.';
/** How pocketsphinx hears the fixture. */
export const CALLER_SAYS = 'what time do you open today';
export const CALLER_WAV = fileURLToPath(new URL('../fixtures/caller-open-today.wav', import.meta.url));
/** The agent is silent at the caller within this of the caller's first speech packet (the bench measures it). */
export const SILENT_WITHIN_MS = 1000;
/** How far into the greeting the caller starts talking. */
export const INTERRUPT_AFTER_MS = 1500;

/** The tenant: flite's slt voice, and intents for the question asked and one it does not ask. */
export function bargeInTenant(id: string): TenantInput {
  return {
    id,
    displayName: "Joe's Pizza",
    greeting: GREETING,
    voice: 'slt',
    intents: [
      { name: 'hours', phrases: [CALLER_SAYS, 'when do you open'], reply: HOURS },
      { name: 'booking', phrases: ['i would like to book a table for four people at seven', 'book a table'], reply: BOOKING },
    ],
  };
}

/**
 * The record of a call whose greeting the caller cut off with the question: the greeting ends where the
 * caller heard it end, and the caller's words, recognised, were answered by the intent they name (not
 * the fallback, not the greeting resumed).
 */
export function expectGreetingCutAndQuestionAnswered(record: CallRecord | undefined, door: CallRecord['door']): void {
  expect(record).toMatchObject({ door, outcome: 'caller-hangup' });
  const transcript = record!.transcript.map(({ role, text, turn, interrupted }) => ({ role, text, turn, interrupted }));
  expect(transcript).toEqual([
    { role: 'agent', text: expect.stringMatching(/…$/), turn: 0, interrupted: true },
    { role: 'caller', text: CALLER_SAYS, turn: 1, interrupted: undefined },
    { role: 'agent', text: HOURS, turn: 1, interrupted: undefined },
  ]);
  expect(GREETING.startsWith(transcript[0]!.text.replace(/…$/, ''))).toBe(true);
  expect(record!.bargeIns).toHaveLength(1);
}
