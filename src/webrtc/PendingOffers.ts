/**
 * Offers answered but not yet connected, per client address. A connecting browser needs one (two with
 * a retry); a script posting offers it never connects must not pile up peers, ports and records. Past
 * `perAddress`, the address's oldest pending offer is given up on (its `evict` runs) to make room:
 * refusing the newest instead would let a few ghost offers lock out the real call that follows them
 * from the same address (an office behind one NAT, or the attacker's victim on a shared address).
 * Bounded: past `maxAddresses` every further address shares one queue.
 */
export class PendingOffers {
  private readonly queues = new Map<string, { readonly evict: () => void }[]>();

  constructor(
    private readonly perAddress: number,
    private readonly maxAddresses = 10_000,
  ) {}

  /** Counts an offer from `address`; `evict` is called if a newer offer pushes it out. The returned leave() is idempotent. */
  enter(address: string, evict: () => void): () => void {
    const key = this.queues.has(address) || this.queues.size < this.maxAddresses ? address : '(many)';
    const queue = this.queues.get(key) ?? [];
    this.queues.set(key, queue);
    const entry = { evict };
    queue.push(entry);
    while (queue.length > this.perAddress) {
      const oldest = queue.shift();
      oldest?.evict();
    }
    return () => {
      const at = queue.indexOf(entry);
      if (at >= 0) queue.splice(at, 1);
      if (queue.length === 0 && this.queues.get(key) === queue) this.queues.delete(key);
    };
  }

  /** Offers still connecting from `address`. */
  count(address: string): number {
    return this.queues.get(address)?.length ?? 0;
  }
}
