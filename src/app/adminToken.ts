import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { MIN_ADMIN_TOKEN_CHARS } from '../http/adminApp.js';
import { rootLogger } from '../log.js';
import type { GatewayConfig } from './config.js';

/** Owner read/write only: the token opens every tenant. */
export const ADMIN_TOKEN_FILE_MODE = 0o600;

/**
 * CALLGATE_ADMIN_TOKEN, else one made on first start and kept (mode 600) in the data folder, so a fresh
 * clone's admin API is protected without any setup and the token survives restarts. `file` is where it
 * is kept (printed at start; the token itself never is).
 *
 * The file is 0600 whatever was there before: a new token goes into a fresh 0600 file renamed over the
 * old one (writeFile's `mode` applies only when it creates the file, so writing into an existing 0644
 * file would leave the token world-readable), and an existing file readable by group or others is
 * logged and narrowed to 0600 at start.
 */
export async function resolveAdminToken(
  config: Pick<GatewayConfig, 'adminToken' | 'dataDir'>,
  log: Logger = rootLogger,
): Promise<{ token: string; file: string | undefined }> {
  if (config.adminToken) return { token: config.adminToken, file: undefined };
  await mkdir(config.dataDir, { recursive: true });
  const file = join(config.dataDir, 'admin-token');
  const existing = await readFile(file, 'utf8').then(
    (t) => t.trim(),
    () => '',
  );
  if (existing.length >= MIN_ADMIN_TOKEN_CHARS) {
    await narrowMode(file, log);
    return { token: existing, file };
  }
  const token = randomBytes(24).toString('base64url');
  await writePrivate(file, `${token}\n`);
  return { token, file };
}

/** Writes `data` to a new 0600 file beside `file`, then renames it over `file` (atomic on one file system). */
async function writePrivate(file: string, data: string): Promise<void> {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    // 'wx': never follow or reuse something already at the temporary name.
    await writeFile(temp, data, { mode: ADMIN_TOKEN_FILE_MODE, flag: 'wx' });
    // The mode given at creation is narrowed by the umask only; chmod makes it exactly 0600 regardless.
    await chmod(temp, ADMIN_TOKEN_FILE_MODE);
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/** Warns about, and removes, group and other permissions on the token file. */
async function narrowMode(file: string, log: Logger): Promise<void> {
  const mode = (await stat(file)).mode & 0o777;
  if ((mode & 0o077) === 0) return;
  const octal = mode.toString(8).padStart(3, '0');
  try {
    await chmod(file, ADMIN_TOKEN_FILE_MODE);
    log.warn({ file, mode: octal }, 'the admin token file was readable by other users; its mode is now 600 (consider the token exposed and delete the file to make a new one)');
  } catch (err) {
    log.warn({ file, mode: octal, err: (err as Error).message }, 'the admin token file is readable by other users and could not be made 600: fix its permissions');
  }
}
