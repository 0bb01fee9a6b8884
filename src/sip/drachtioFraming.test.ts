import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import Srf from 'drachtio-srf';
import { describe, expect, it } from 'vitest';
import { pollUntil } from '../util/testing/wait.js';
import { drachtioFramingErrors, installDrachtioFramingGuard, type FramingError } from './drachtioFraming.js';

describe('drachtio framing guard', () => {
  it('a link that loses its framing is dropped and reconnected instead of throwing out of the socket handler', async () => {
    expect(installDrachtioFramingGuard()).toBe(true);
    expect(installDrachtioFramingGuard()).toBe(true); // idempotent
    const sockets: Socket[] = [];
    // A stand-in drachtio-server whose stream is broken from its first byte: no "<length>#" prefix,
    // which is what an oversized message interleaved with others looks like to drachtio-srf.
    const server = createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => undefined);
      socket.write('not-a-length#garbage');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const recovered: FramingError[] = [];
    const onRecovered = (e: FramingError): void => void recovered.push(e);
    drachtioFramingErrors.on('recovered', onRecovered);
    const srf = new Srf();
    srf.on('error', () => undefined);
    try {
      srf.connect({ host: '127.0.0.1', port, secret: 'x', reconnect: { retryMaxDelay: 200, maxAttempts: 3 } } as never);
      // Without the guard the first chunk is an uncaught exception (vitest fails the run on it).
      expect(await pollUntil(() => sockets.length, (n) => n >= 2, 5000)).toBeGreaterThanOrEqual(2);
      expect(recovered[0]).toMatchObject({ drachtio: `127.0.0.1:${port}` });
      expect(recovered[0]?.message).toMatch(/missing length specifier/);
    } finally {
      drachtioFramingErrors.off('recovered', onRecovered);
      // Never authenticated, so drachtio-srf has no socket to disconnect; maxAttempts ends its retries.
      for (const s of sockets) s.destroy();
      server.close();
    }
  });
});
