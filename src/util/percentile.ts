/** Nearest-rank percentile (q in 0..1) of an ascending array; 0 when empty. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Ascending copy, for `percentile`. */
export function sortedAscending(values: Iterable<number>): number[] {
  return [...values].sort((a, b) => a - b);
}
