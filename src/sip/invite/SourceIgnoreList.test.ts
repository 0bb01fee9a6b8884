import { describe, expect, it } from 'vitest';
import { SourceIgnoreList } from './SourceIgnoreList.js';

describe('SourceIgnoreList', () => {
  it('ignores a source at its 100th refusal within a minute, for the cool-down, then hears it again', () => {
    const list = new SourceIgnoreList({}, () => 0);
    for (let i = 1; i < 100; i++) expect(list.refused('192.0.2.1', i)).toBe(false);
    expect(list.isIgnored('192.0.2.1', 100)).toBe(false);
    expect(list.refused('192.0.2.1', 100)).toBe(true);
    expect(list.isIgnored('192.0.2.1', 101)).toBe(true);
    expect(list.isIgnored('192.0.2.2', 101)).toBe(false);
    // Ten minutes later it is heard again, with a fresh count.
    expect(list.isIgnored('192.0.2.1', 100 + 599_999)).toBe(true);
    expect(list.isIgnored('192.0.2.1', 100 + 600_000)).toBe(false);
    expect(list.refused('192.0.2.1', 100 + 600_001)).toBe(false);
  });

  it('does not add up refusals spread wider than the window', () => {
    const list = new SourceIgnoreList({ refusals: 3, windowMs: 1000 }, () => 0);
    expect(list.refused('a', 0)).toBe(false);
    expect(list.refused('a', 500)).toBe(false);
    expect(list.refused('a', 1000)).toBe(false); // a new window starts
    expect(list.refused('a', 1500)).toBe(false);
    expect(list.refused('a', 1999)).toBe(true);
  });

  it('stays within maxSources entries however many addresses refusals come from', () => {
    const list = new SourceIgnoreList({ refusals: 2, maxSources: 50 }, () => 0);
    for (let i = 0; i < 10_000; i++) {
      list.refused(`10.0.${i >> 8}.${i & 255}`, i);
      list.refused(`10.0.${i >> 8}.${i & 255}`, i);
    }
    expect(list.size).toBe(50);
    // The most recent stay; the oldest were dropped.
    expect(list.isIgnored('10.0.39.15', 10_000)).toBe(true);
    expect(list.isIgnored('10.0.0.0', 10_000)).toBe(false);
  });

  it('never ignores with a cool-down of 0, and forgives on request', () => {
    const off = new SourceIgnoreList({ refusals: 1, ignoreMs: 0 }, () => 0);
    expect(off.refused('a', 1)).toBe(false);
    expect(off.isIgnored('a', 2)).toBe(false);
    const list = new SourceIgnoreList({ refusals: 1 }, () => 0);
    expect(list.refused('a', 1)).toBe(true);
    list.forgive('a');
    expect(list.isIgnored('a', 2)).toBe(false);
  });
});
