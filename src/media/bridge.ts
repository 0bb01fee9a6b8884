import type { AudioLeg } from './AudioLeg.js';
import { PIPELINE_RATE } from './types.js';

/**
 * Joins two call legs: what one party says is played to the other, both ways, through each leg's own
 * codec (a browser's Opus to a phone's PCMU needs exactly this). Written here rather than asked of
 * rtpengine because one side may not be in rtpengine at all (the direct WebRTC door) and every leg
 * already decodes to the pipeline's PCM; the cost is one decode and encode per frame per direction.
 * Returns the function that separates them again.
 */
export function bridgeLegs(a: AudioLeg, b: AudioLeg): () => void {
  // A leg whose peer sends faster than the other drains builds a queue; past this, it is dropped so
  // the delay between the two people cannot grow without bound.
  const MAX_QUEUED_MS = 200;
  const toB = (frame: Int16Array): void => {
    if (b.queuedMs > MAX_QUEUED_MS) b.flush();
    b.play(frame);
  };
  const toA = (frame: Int16Array): void => {
    if (a.queuedMs > MAX_QUEUED_MS) a.flush();
    a.play(frame);
  };
  a.on('audio', toB);
  b.on('audio', toA);
  return () => {
    a.off('audio', toB);
    b.off('audio', toA);
  };
}

/**
 * Ringback for a caller waiting on a transfer: 440 + 480 Hz, 2 s on and 4 s off (the North American
 * cadence, which callers everywhere read as "ringing"), at about -20 dBFS, as 16 kHz PCM.
 */
export function ringbackCycle(): Int16Array {
  const on = 2 * PIPELINE_RATE;
  const cycle = new Int16Array(6 * PIPELINE_RATE);
  const amplitude = 0.07 * 32767;
  for (let i = 0; i < on; i++) {
    const t = i / PIPELINE_RATE;
    // 10 ms ramps at each end: no click when the tone starts and stops.
    const ramp = Math.min(1, i / 160, (on - i) / 160);
    cycle[i] = Math.round(ramp * amplitude * (Math.sin(2 * Math.PI * 440 * t) + Math.sin(2 * Math.PI * 480 * t)));
  }
  return cycle;
}

/** Plays ringback on `leg` until the returned function is called (which also drops what is queued). */
export function playRingback(leg: AudioLeg): () => void {
  const cycle = ringbackCycle();
  const cycleMs = (cycle.length / PIPELINE_RATE) * 1000;
  leg.play(cycle);
  const timer = setInterval(() => {
    // Keep one cycle queued ahead, no more.
    if (leg.queuedMs < cycleMs / 2) leg.play(cycle);
  }, 500);
  return () => {
    clearInterval(timer);
    leg.flush();
  };
}
