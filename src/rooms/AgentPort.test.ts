import { describe, expect, it } from 'vitest';
import { encodePrompt } from '../media/AudioLeg.js';
import { dbfs, tone } from '../media/signal.js';
import { AgentPort } from './AgentPort.js';

describe('AgentPort (an agent in a room, as its session sees a call)', () => {
  it('gives the mixer 20 ms at a time while it has the floor, with talkspurt and drain events', () => {
    let floor = true;
    const port = new AgentPort(() => floor);
    const events: string[] = [];
    port.on('talkspurt', () => events.push('talkspurt'));
    port.on('drain', () => events.push('drain'));
    port.play(new Int16Array(480).fill(100));
    expect(port.queuedMs).toBe(30);
    floor = false;
    expect(port.next()).toBeUndefined();
    floor = true;
    const first = port.next()!;
    expect(first.length).toBe(320);
    const second = port.next()!;
    expect(Array.from(second.subarray(0, 160)).every((v) => v === 100)).toBe(true);
    expect(Array.from(second.subarray(160)).every((v) => v === 0)).toBe(true);
    expect(port.next()).toBeUndefined();
    expect(events).toEqual(['talkspurt', 'drain']);
  });

  it('holds without losing anything, ducks by the gain asked, and flushes at once', () => {
    const port = new AgentPort(() => true);
    port.play(new Int16Array(960).fill(1000));
    port.hold(true);
    expect(port.next()).toBeUndefined();
    expect(port.queuedMs).toBe(60);
    port.hold(false);
    port.duck(-20);
    expect(port.next()![0]).toBe(100);
    port.duck(0);
    expect(port.next()![0]).toBe(1000);
    expect(port.flush()).toBe(20);
    expect(port.queuedMs).toBe(0);
  });

  it('plays the prompts made for calls (Opus) by decoding them', () => {
    const port = new AgentPort(() => true);
    const pcm = tone(440, 200, { amplitude: 8000 });
    port.playEncoded(encodePrompt(pcm, 'opus'));
    expect(port.queuedMs).toBeGreaterThanOrEqual(200);
    const frames: Int16Array[] = [];
    for (let f = port.next(); f; f = port.next()) frames.push(f);
    expect(Math.max(...frames.map((f) => dbfs(f)))).toBeGreaterThan(-20);
    port.close();
  });

  it('hands the room mix to the session as audio frames, silence as zeros, after the mixer tick', async () => {
    const port = new AgentPort(() => true);
    const heard: Int16Array[] = [];
    port.on('audio', (f) => heard.push(f));
    port.hear(undefined);
    port.hear(new Int16Array(320).fill(5));
    expect(heard).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(heard.map((f) => f[0])).toEqual([0, 5]);
  });
});
