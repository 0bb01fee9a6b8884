import { describe, expect, it } from 'vitest';
import { Mixer } from './Mixer.js';

const noClock = { subscribe: () => () => undefined };
const frame = (value: number): Int16Array => new Int16Array(320).fill(value);

function member(mixer: Mixer, id: string, opts: { human?: boolean; hears?: 'everyone' | 'humans'; pull?: () => Int16Array | undefined } = {}) {
  const got: (Int16Array | undefined)[] = [];
  const m = mixer.add({ id, human: opts.human ?? true, hears: opts.hears ?? 'everyone', ...(opts.pull ? { pull: opts.pull } : {}), deliver: (f) => got.push(f) });
  return { m, got };
}

describe('Mixer', () => {
  it('gives each member everyone else (mix-minus), never themself', () => {
    const mixer = new Mixer(noClock);
    const a = member(mixer, 'a');
    const b = member(mixer, 'b');
    const c = member(mixer, 'c');
    a.m.push(frame(100));
    b.m.push(frame(20));
    c.m.push(frame(3));
    mixer.tick();
    expect(a.got[0]![0]).toBe(23);
    expect(b.got[0]![0]).toBe(103);
    expect(c.got[0]![0]).toBe(120);
  });

  it('an agent hearing humans only does not hear another agent; humans hear agents', () => {
    const mixer = new Mixer(noClock);
    const human = member(mixer, 'h');
    const ann = member(mixer, 'ann', { human: false, hears: 'humans', pull: () => frame(1000) });
    const bob = member(mixer, 'bob', { human: false, hears: 'humans', pull: () => undefined });
    human.m.push(frame(7));
    mixer.tick();
    expect(human.got[0]![0]).toBe(1000);
    expect(ann.got[0]![0]).toBe(7);
    expect(bob.got[0]![0]).toBe(7);
  });

  it('a late member contributes silence that tick without delaying the others, then plays in order', () => {
    const mixer = new Mixer(noClock);
    const a = member(mixer, 'a');
    const late = member(mixer, 'late');
    a.m.push(frame(5));
    mixer.tick(); // nothing from `late` yet
    expect(late.got[0]![0]).toBe(5);
    expect(a.got[0]).toBeUndefined();
    late.m.push(frame(1));
    late.m.push(frame(2));
    mixer.tick();
    mixer.tick();
    expect(a.got.slice(1).map((f) => f?.[0])).toEqual([1, 2]);
  });

  it('bounds a member backlog: a burst beyond the queue drops the oldest frames', () => {
    const mixer = new Mixer(noClock, { maxQueuedFrames: 3 });
    const a = member(mixer, 'a');
    const b = member(mixer, 'b');
    for (let i = 1; i <= 6; i++) a.m.push(frame(i));
    mixer.tick();
    expect(b.got[0]![0]).toBe(4);
    expect(mixer.stats().droppedFrames).toBe(3);
  });

  it('trims a backlog that stands after a burst, quietest frame first, so no delay stays', () => {
    const mixer = new Mixer(noClock, { maxQueuedFrames: 5, refillFrames: 1, trimAfterMs: 40 });
    const a = member(mixer, 'a');
    const b = member(mixer, 'b');
    // A stall's burst (one frame nearly silent), then one frame per tick again.
    for (const v of [300, 400, 1, 500]) a.m.push(frame(v));
    for (let t = 0; t < 6; t++) {
      a.m.push(frame(1000 + t));
      mixer.tick();
    }
    const heard = b.got.map((f) => f?.[0]);
    // The quiet frame went first; then the standing backlog shrank to the refill level.
    expect(heard).not.toContain(1);
    expect(heard).toEqual([300, 400, 500, 1000, 1002, 1003]);
    expect(mixer.stats().trimmedFrames).toBe(3);
  });

  it('clips the sum instead of wrapping, and a muted member is not heard', () => {
    const mixer = new Mixer(noClock);
    const a = member(mixer, 'a');
    const b = member(mixer, 'b');
    const c = member(mixer, 'c');
    a.m.push(frame(30000));
    b.m.push(frame(30000));
    c.m.push(frame(9));
    c.m.muted = true;
    mixer.tick();
    expect(c.got[0]![0]).toBe(32767);
    expect(a.got[0]![0]).toBe(30000);
  });

  it('reports who is speaking, with a hangover', () => {
    const events: string[] = [];
    const mixer = new Mixer(noClock, { speakingHangoverMs: 0 }, (id, on) => events.push(`${id}:${on}`));
    const a = member(mixer, 'a');
    member(mixer, 'b');
    a.m.push(frame(3000));
    mixer.tick();
    mixer.tick();
    mixer.tick();
    expect(events).toEqual(['a:true', 'a:false']);
  });
});
