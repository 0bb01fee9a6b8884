import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loggerTo } from '../log.js';
import { resolveAdminToken } from './adminToken.js';

/** The admin token kept in the data folder: its file is 0600 whatever was there before (issue 24). */
let dir: string;
const modeOf = async (file: string) => (await stat(file)).mode & 0o777;

function capture(): { lines: Record<string, unknown>[]; logger: ReturnType<typeof loggerTo> } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: loggerTo(sink, 'warn') };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'callgate-admin-token-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('resolveAdminToken', () => {
  it('makes a token in a 0600 file on first start, and reads it back after', async () => {
    const dataDir = join(dir, 'fresh');
    const { token, file } = await resolveAdminToken({ adminToken: undefined, dataDir });
    expect(token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(await modeOf(file!)).toBe(0o600);
    expect((await resolveAdminToken({ adminToken: undefined, dataDir })).token).toBe(token);
    // No temporary file is left beside it.
    expect(await readdir(dataDir)).toEqual(['admin-token']);
  });

  it('writes a new token into a 0600 file even when a world-readable file (0644) was there', async () => {
    const dataDir = join(dir, 'loose');
    const { file } = await resolveAdminToken({ adminToken: undefined, dataDir });
    // Too short to be kept: a new token is written where a 0644 file stands.
    await writeFile(file!, 'short\n');
    await chmod(file!, 0o644);
    const { token } = await resolveAdminToken({ adminToken: undefined, dataDir });
    expect((await readFile(file!, 'utf8')).trim()).toBe(token);
    expect(await modeOf(file!)).toBe(0o600);
  });

  it('warns at start about a kept token file others can read, and narrows it to 0600', async () => {
    const dataDir = join(dir, 'readable');
    const first = await resolveAdminToken({ adminToken: undefined, dataDir });
    await chmod(first.file!, 0o644);
    const { lines, logger } = capture();
    const again = await resolveAdminToken({ adminToken: undefined, dataDir }, logger);
    expect(again.token).toBe(first.token);
    expect(await modeOf(first.file!)).toBe(0o600);
    expect(lines).toEqual([expect.objectContaining({ level: 40, file: first.file, mode: '644', msg: expect.stringContaining('readable by other users') })]);
    expect(JSON.stringify(lines)).not.toContain(first.token);
    // A private file says nothing.
    const quiet = capture();
    await resolveAdminToken({ adminToken: undefined, dataDir }, quiet.logger);
    expect(quiet.lines).toEqual([]);
  });

  it('uses CALLGATE_ADMIN_TOKEN when set, and touches no file', async () => {
    const dataDir = join(dir, 'env');
    expect(await resolveAdminToken({ adminToken: 'x'.repeat(32), dataDir })).toEqual({ token: 'x'.repeat(32), file: undefined });
    await expect(stat(dataDir)).rejects.toThrow();
  });
});
