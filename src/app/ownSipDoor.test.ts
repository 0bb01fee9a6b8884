import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ownSipDoor } from './ownSipDoor.js';

/** Whether CALLGATE_SIP's door can open: drachtio-server and rtpengine found, or the one line saying which is missing. */
describe('ownSipDoor', () => {
  let dir = '';
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  const fake = async (name: string): Promise<string> => {
    dir ||= await mkdtemp(join(tmpdir(), 'callgate-own-sip-'));
    const path = join(dir, name);
    await writeFile(path, '#!/bin/sh\n');
    await chmod(path, 0o755);
    return path;
  };
  const sip = { sipServer: { address: '127.0.0.1', port: 5060 }, rtpengineNgPort: undefined };

  it('is nothing when no door was asked for; the binary when drachtio and rtpengine are there', async () => {
    const drachtio = await fake('drachtio');
    await fake('rtpengine');
    expect(ownSipDoor({ sipServer: undefined, rtpengineNgPort: undefined }, { PATH: dir })).toBeUndefined();
    expect(ownSipDoor(sip, { PATH: dir })).toEqual({ binary: drachtio });
  });

  it('names what is missing: drachtio-server (where to get it), or rtpengine (unless RTPENGINE_NG_PORT names one)', async () => {
    const drachtio = await fake('drachtio');
    expect(ownSipDoor(sip, { DRACHTIO_BIN: join(dir, 'none'), PATH: dir })).toEqual({ missing: expect.stringMatching(/^drachtio-server not found at DRACHTIO_BIN=/) });
    expect(ownSipDoor(sip, { DRACHTIO_BIN: drachtio, PATH: '/nonexistent' })).toEqual({ missing: expect.stringMatching(/^rtpengine not found on PATH.*rtpengine-daemon/) });
    expect(ownSipDoor({ ...sip, rtpengineNgPort: 22222 }, { DRACHTIO_BIN: drachtio, PATH: '/nonexistent' })).toEqual({ binary: drachtio });
  });
});
