/** Signed distance from `b` to `a` in 16-bit RTP sequence space (wraps at 65536): a − b in [−32768, 32767]. */
export function seqDiff(a: number, b: number): number {
  return ((((a - b) & 0xffff) + 0x8000) & 0xffff) - 0x8000;
}

/** Signed distance between two 32-bit RTP timestamps (wraps at 2^32). */
export function tsDiff(a: number, b: number): number {
  return (a - b) | 0;
}
