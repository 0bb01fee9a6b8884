import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MIN_ADMIN_TOKEN_CHARS } from '../http/adminApp.js';
import type { GatewayConfig } from './config.js';

/**
 * CALLGATE_ADMIN_TOKEN, else one made on first start and kept (mode 600) in the data folder, so a fresh
 * clone's admin API is protected without any setup and the token survives restarts. `file` is where it
 * is kept (printed at start; the token itself never is).
 */
export async function resolveAdminToken(config: Pick<GatewayConfig, 'adminToken' | 'dataDir'>): Promise<{ token: string; file: string | undefined }> {
  if (config.adminToken) return { token: config.adminToken, file: undefined };
  await mkdir(config.dataDir, { recursive: true });
  const file = join(config.dataDir, 'admin-token');
  const existing = await readFile(file, 'utf8').then(
    (t) => t.trim(),
    () => '',
  );
  if (existing.length >= MIN_ADMIN_TOKEN_CHARS) return { token: existing, file };
  const token = randomBytes(24).toString('base64url');
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  return { token, file };
}
