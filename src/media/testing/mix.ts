/** `frame` plus `gain` × `other` (same length), clipped: a new frame. An echo path mixes with it. */
export function mixInto(frame: Int16Array, other: Int16Array, gain: number): Int16Array {
  const out = new Int16Array(frame.length);
  for (let i = 0; i < frame.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round(frame[i]! + gain * (other[i] ?? 0))));
  return out;
}
