import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CallTimers } from './CallTimers.js';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

function timers() {
  const fired: string[] = [];
  return { t: new CallTimers(() => fired.push('no-input'), () => fired.push('time-limit')), fired };
}

describe('CallTimers', () => {
  it('fires no-input once its time has passed', () => {
    const { t, fired } = timers();
    t.armNoInput(1000);
    vi.advanceTimersByTime(999);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(['no-input']);
    vi.advanceTimersByTime(5000);
    expect(fired).toEqual(['no-input']);
  });

  it('restarts the no-input count when re-armed, and forgets it when cleared', () => {
    const { t, fired } = timers();
    t.armNoInput(1000);
    vi.advanceTimersByTime(800);
    t.armNoInput(1000);
    vi.advanceTimersByTime(800);
    expect(fired).toEqual([]);
    t.clearNoInput();
    vi.advanceTimersByTime(5000);
    expect(fired).toEqual([]);
  });

  it('fires the time limit whatever no-input does', () => {
    const { t, fired } = timers();
    t.startTimeLimit(3000);
    t.armNoInput(1000);
    t.clearNoInput();
    vi.advanceTimersByTime(3000);
    expect(fired).toEqual(['time-limit']);
  });

  it('fires nothing once closed, and arms nothing after', () => {
    const { t, fired } = timers();
    t.startTimeLimit(3000);
    t.armNoInput(1000);
    t.close();
    t.armNoInput(1000);
    t.startTimeLimit(1000);
    vi.advanceTimersByTime(10_000);
    expect(fired).toEqual([]);
  });
});
