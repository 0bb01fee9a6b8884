import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeWith } from '../../tests/support/tools.js';
import { pollUntil } from '../util/testing/wait.js';
import { DrachtioServer, drachtioConfigXml, drachtioMissingLine, findDrachtio, type DrachtioExit } from './drachtioServer.js';

/**
 * The drachtio-server the gateway starts for `CALLGATE_SIP=1` (src/sip/drachtioServer.ts): where its
 * binary is looked for, the config it is given (the one docs/sip.md shows), and the real process: both
 * ports open, the secret nowhere but the config, a taken SIP port named, a death reported, nothing left.
 */
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'callgate-drachtio-test-'));
  dirs.push(d);
  return d;
}

describe('findDrachtio', () => {
  it('takes DRACHTIO_BIN and only it when set, else `drachtio` on PATH; says where to get one when missing', async () => {
    const dir = await tempDir();
    const bin = join(dir, 'drachtio');
    await writeFile(bin, '#!/bin/sh\n');
    await chmod(bin, 0o755);
    expect(findDrachtio({ DRACHTIO_BIN: bin, PATH: '' })).toBe(bin);
    // A wrong DRACHTIO_BIN is never replaced by another binary.
    expect(findDrachtio({ DRACHTIO_BIN: join(dir, 'nope'), PATH: dir })).toBeUndefined();
    expect(findDrachtio({ PATH: dir })).toBe(bin);
    expect(drachtioMissingLine({ DRACHTIO_BIN: '/x/drachtio' })).toMatch(/^drachtio-server not found at DRACHTIO_BIN=\/x\/drachtio/);
    const line = drachtioMissingLine({});
    expect(line).toContain('docker compose stack');
    expect(line).toContain('https://github.com/drachtio/drachtio-server');
    expect(line.split('\n')).toHaveLength(1);
  });
});

describe('drachtioConfigXml', () => {
  it('is the config docs/sip.md shows and explains, line for line', async () => {
    const xml = drachtioConfigXml({ adminAddress: '127.0.0.1', adminPort: 40123, secret: 'ADMIN-SECRET', sipAddress: '127.0.0.1', sipPort: 5060 });
    const doc = await readFile(new URL('../../docs/sip.md', import.meta.url), 'utf8');
    const shown = /```xml\n(<drachtio>[\s\S]*?<\/drachtio>\n)```/.exec(doc)?.[1];
    expect(shown, 'docs/sip.md has the generated config in an xml block').toBeDefined();
    expect(shown).toBe(xml);
    expect(drachtioConfigXml({ adminAddress: '127.0.0.1', adminPort: 1, secret: 's', sipAddress: '::1', sipPort: 5062 })).toContain('<contact>sip:[::1]:5062;transport=udp,tcp</contact>');
  });
});

describeWith(['drachtio'], 'DrachtioServer (a real drachtio-server)', () => {
  const binary = findDrachtio()!;
  const freePort = async (): Promise<number> => {
    const s = createServer().listen(0, '127.0.0.1');
    await once(s, 'listening');
    const { port } = s.address() as { port: number };
    await new Promise((r) => s.close(r));
    return port;
  };

  it('serves SIP on the address and port asked for, admin on loopback with a fresh secret; stop() leaves nothing', async () => {
    const sipPort = await freePort();
    const lines: string[] = [];
    const server = await DrachtioServer.start({ binary, sipAddress: '127.0.0.1', sipPort, onLog: (l) => lines.push(l) });
    const pid = server.pid!;
    try {
      expect(server.running).toBe(true);
      expect(server.secret.length).toBeGreaterThanOrEqual(24);
      const other = await DrachtioServer.start({ binary, sipAddress: '127.0.0.1', sipPort: await freePort() });
      expect(other.secret).not.toBe(server.secret);
      await other.stop();
      // Its config is in a private folder; the secret is in no log line.
      const conf = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')[2]!;
      expect(await readFile(conf, 'utf8')).toContain(`secret="${server.secret}"`);
      expect(lines.join('\n')).not.toContain(server.secret);
      expect(lines.some((l) => l.includes(`sip:127.0.0.1:${sipPort};transport=udp,tcp`))).toBe(true);
      await server.stop();
      expect(() => process.kill(pid, 0)).toThrow();
      expect(existsSync(dirname(conf))).toBe(false);
    } finally {
      await server.stop();
    }
  });

  it('names a SIP port that is taken, before drachtio would fail on it quietly (it exits 0)', async () => {
    const holder: Server = createServer().listen(0, '127.0.0.1');
    await once(holder, 'listening');
    const { port } = holder.address() as { port: number };
    try {
      await expect(DrachtioServer.start({ binary, sipAddress: '127.0.0.1', sipPort: port })).rejects.toMatchObject({
        code: 'CG_DRACHTIO_UNAVAILABLE',
        message: expect.stringContaining(`SIP port 127.0.0.1:${port}/tcp is in use`),
      });
    } finally {
      holder.close();
    }
  });

  it('reports a drachtio that dies on its own, with its last log lines; not one that was stopped', async () => {
    const server = await DrachtioServer.start({ binary, sipAddress: '127.0.0.1', sipPort: await freePort() });
    const exits: DrachtioExit[] = [];
    server.onExit((e) => exits.push(e));
    process.kill(server.pid!, 'SIGKILL');
    const seen = await pollUntil(() => exits.length, (n) => n > 0, 5000);
    expect(seen).toBe(1);
    expect(exits[0]).toMatchObject({ signal: 'SIGKILL' });
    expect(exits[0]!.log.length).toBeGreaterThan(0);
    await server.stop();

    const stopped = await DrachtioServer.start({ binary, sipAddress: '127.0.0.1', sipPort: await freePort() });
    const none: DrachtioExit[] = [];
    stopped.onExit((e) => none.push(e));
    await stopped.stop();
    await new Promise((r) => setTimeout(r, 100));
    expect(none).toEqual([]);
  });
});
