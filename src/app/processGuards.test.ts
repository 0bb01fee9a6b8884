import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const guards = fileURLToPath(new URL('./processGuards.ts', import.meta.url));

/** Runs a small program in a child process (the guard changes process-wide behaviour). */
function run(install: boolean): { status: number | null; stdout: string } {
  const program = `
    import pino from 'pino';
    import { installProcessGuards } from ${JSON.stringify(guards)};
    const guard = ${install} ? installProcessGuards(pino()) : undefined;
    void Promise.reject(new Error('escaped from a call'));
    setTimeout(() => { console.log(JSON.stringify({ alive: true, count: guard?.unhandledRejections() })); }, 50);
  `;
  const out = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', program], { encoding: 'utf8', timeout: 20_000 });
  return { status: out.status, stdout: out.stdout };
}

describe('installProcessGuards', () => {
  it('keeps the process up after an unhandled rejection, logging and counting it', () => {
    const { status, stdout } = run(true);
    expect(status).toBe(0);
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => l['msg']?.toString().startsWith('unhandled promise rejection'))).toMatchObject({ level: 50, err: { message: 'escaped from a call' } });
    expect(lines.at(-1)).toEqual({ alive: true, count: 1 });
  });

  it('is what keeps it up: without it Node exits on the same rejection', () => {
    const { status, stdout } = run(false);
    expect(status).not.toBe(0);
    expect(stdout).not.toContain('alive');
  });
});
