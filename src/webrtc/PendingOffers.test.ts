import { describe, expect, it } from 'vitest';
import { PendingOffers } from './PendingOffers.js';

describe('PendingOffers', () => {
  it('keeps at most perAddress per address: the newest pushes out the oldest; other addresses are untouched', () => {
    const pending = new PendingOffers(2);
    const evicted: string[] = [];
    pending.enter('a', () => evicted.push('a1'));
    const leaveA2 = pending.enter('a', () => evicted.push('a2'));
    pending.enter('b', () => evicted.push('b1'));
    pending.enter('a', () => evicted.push('a3'));
    expect(evicted).toEqual(['a1']);
    expect(pending.count('a')).toBe(2);
    leaveA2();
    leaveA2();
    expect(pending.count('a')).toBe(1);
    pending.enter('a', () => evicted.push('a4'));
    expect(evicted).toEqual(['a1']);
    expect(pending.count('b')).toBe(1);
  });

  it('forgets an address once its offers have left, and shares one queue past maxAddresses', () => {
    const pending = new PendingOffers(1, 2);
    const leave = pending.enter('a', () => undefined);
    leave();
    expect(pending.count('a')).toBe(0);
    const evicted: string[] = [];
    pending.enter('b', () => evicted.push('b'));
    pending.enter('c', () => evicted.push('c'));
    pending.enter('d', () => evicted.push('d'));
    pending.enter('e', () => evicted.push('e'));
    expect(evicted).toEqual(['d']);
  });
});
