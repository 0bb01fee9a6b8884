import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isCi } from './tools.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs one test file in a vitest of its own, with `env` on top of this process's environment. */
function vitest(file: string, env: Record<string, string>): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      'npx',
      ['vitest', 'run', file, '--reporter=default'],
      { cwd: ROOT, env: { ...process.env, ...env }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    );
  });
}

describe('a test whose tool is missing', () => {
  it('reads CI the way CI systems set it', () => {
    expect(isCi({ CI: 'true' })).toBe(true);
    expect(isCi({ CI: '1' })).toBe(true);
    expect(isCi({ CI: 'false' })).toBe(false);
    expect(isCi({})).toBe(false);
  });

  // DRACHTIO_BIN set to a path that does not exist: the only place looked at, never a fallback.
  it('fails under CI=true, naming the tool', async () => {
    const { code, out } = await vitest('tests/sip/gateway.test.ts', { CI: 'true', DRACHTIO_BIN: '/nonexistent/drachtio' });
    expect(code).not.toBe(0);
    expect(out).toContain('drachtio-server not found at DRACHTIO_BIN=/nonexistent/drachtio');
    expect(out).toMatch(/1 failed/);
  }, 70_000);

  it('skips with the same line outside CI', async () => {
    const { code, out } = await vitest('tests/sip/gateway.test.ts', { CI: '', DRACHTIO_BIN: '/nonexistent/drachtio' });
    expect(code).toBe(0);
    expect(out).toContain('drachtio-server not found at DRACHTIO_BIN=/nonexistent/drachtio');
    expect(out).toMatch(/1 skipped/);
  }, 70_000);
});
