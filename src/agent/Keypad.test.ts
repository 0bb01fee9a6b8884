import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Keypad } from './Keypad.js';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

function keypad(ms = 2000) {
  const entries: string[] = [];
  return { pad: new Keypad(ms, (d) => entries.push(d)), entries };
}

describe('Keypad', () => {
  it('submits the digits at once on #, without the #', () => {
    const { pad, entries } = keypad();
    pad.press('1');
    pad.press('5');
    expect(entries).toEqual([]);
    pad.press('#');
    expect(entries).toEqual(['15']);
    vi.advanceTimersByTime(5000);
    expect(entries).toEqual(['15']);
  });

  it('submits after the inter-digit pause, each press restarting it', () => {
    const { pad, entries } = keypad(2000);
    pad.press('4');
    vi.advanceTimersByTime(1500);
    pad.press('2');
    vi.advanceTimersByTime(1999);
    expect(entries).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(entries).toEqual(['42']);
  });

  it('starts each entry afresh and never submits an empty one', () => {
    const { pad, entries } = keypad();
    pad.press('#');
    pad.press('7');
    pad.press('#');
    pad.press('8');
    pad.press('#');
    expect(entries).toEqual(['7', '8']);
  });

  it('drops the entry under way when closed', () => {
    const { pad, entries } = keypad();
    pad.press('9');
    pad.close();
    vi.advanceTimersByTime(5000);
    pad.press('#');
    expect(entries).toEqual([]);
  });
});
