import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { newChildren, resources } from '../../bench/soak/measure.js';

/**
 * The soak's leak check is only as good as its counter: if `resources()` looks for a handle name Node
 * never reports, a leaked socket or child reads as zero and the check passes for ever. So the counter
 * is shown a real UDP socket and a real child process, and must see each come and go.
 */
describe('soak resources()', () => {
  it('counts an open UDP socket and a running child process, and sees both go once closed', async () => {
    const baseline = resources();

    const socket = createSocket('udp4');
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    await once(child, 'spawn');

    try {
      const open = resources();
      expect(open.udpSockets - baseline.udpSockets).toBe(1);
      expect(open.childProcessHandles - baseline.childProcessHandles).toBe(1);
      expect(newChildren(baseline, open).map((c) => c.pid)).toEqual([child.pid]);
    } finally {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      socket.close();
      await exited;
    }
    // A closed handle stays listed until libuv runs its close callback, a turn or two of the loop
    // later: polled, bounded, as the soak's own settledResources() does.
    let closed = resources();
    for (let i = 0; i < 100 && (closed.udpSockets > baseline.udpSockets || closed.childProcessHandles > baseline.childProcessHandles); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      closed = resources();
    }
    expect(closed.udpSockets).toBe(baseline.udpSockets);
    expect(closed.childProcessHandles).toBe(baseline.childProcessHandles);
    expect(newChildren(baseline, closed)).toEqual([]);
  });
});
