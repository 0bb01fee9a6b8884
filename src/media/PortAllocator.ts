import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { CallgateError, MediaError } from '../errors.js';

export interface PortRange {
  /** Lowest port to use (rounded up to even: RTP ports are even by convention, RFC 3550 §11). */
  readonly min: number;
  readonly max: number;
}

/**
 * Hands out UDP sockets bound to even ports of a range. Ports are taken round-robin rather than lowest
 * first, so a port a call just released is not handed to the next call at once: stray packets still in
 * flight for the old call would otherwise reach the new one.
 */
export class PortAllocator {
  private readonly inUse = new Set<number>();
  private cursor: number;
  private readonly first: number;
  private readonly count: number;

  constructor(readonly range: PortRange) {
    const first = range.min + (range.min % 2);
    if (!Number.isInteger(range.min) || !Number.isInteger(range.max) || first < 1024 || range.max > 65535 || first > range.max) {
      throw new CallgateError('CG_PORT_RANGE_INVALID', `${range.min}-${range.max}`);
    }
    this.first = first;
    this.count = Math.floor((range.max - first) / 2) + 1;
    this.cursor = 0;
  }

  /** Binds a socket on `address` to the next free even port; CG_PORT_RANGE_EXHAUSTED when none is free. */
  async bind(address: string): Promise<{ socket: dgram.Socket; port: number }> {
    const family = isIP(address);
    if (family === 0) throw new CallgateError('CG_CONFIG_INVALID', `bind address ${address} is not an IP address`);
    for (let tried = 0; tried < this.count; tried++) {
      const port = this.first + 2 * this.cursor;
      this.cursor = (this.cursor + 1) % this.count;
      if (this.inUse.has(port)) continue;
      const socket = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4' });
      const bound = await new Promise<boolean>((resolve) => {
        const onError = (): void => resolve(false);
        socket.once('error', onError);
        socket.bind({ port, address, exclusive: true }, () => {
          socket.off('error', onError);
          resolve(true);
        });
      });
      if (bound) {
        this.inUse.add(port);
        return { socket, port };
      }
      socket.close();
    }
    throw new MediaError('CG_PORT_RANGE_EXHAUSTED', `${this.range.min}-${this.range.max} on ${address}`);
  }

  release(port: number): void {
    this.inUse.delete(port);
  }

  get used(): number {
    return this.inUse.size;
  }
}

const shared = new Map<string, PortAllocator>();

/** One allocator per range per process, so every endpoint of the process shares the same bookkeeping. */
export function portAllocatorFor(range: PortRange): PortAllocator {
  const key = `${range.min}-${range.max}`;
  let allocator = shared.get(key);
  if (!allocator) {
    allocator = new PortAllocator(range);
    shared.set(key, allocator);
  }
  return allocator;
}
