import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const scripts = (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> }).scripts;
const benches = Object.entries(scripts).filter(([name]) => name.startsWith('bench:'));

/**
 * Every `npm run bench:*` ends its stdout with one JSON object that scripts read; its logs go to
 * stderr. Running every bench here would cost minutes, so each is checked for the import that routes
 * its logs, and one whole quick bench that starts the agent's loggers is run.
 */
describe('benchmarks', () => {
  it('has benches, each a tsx entry whose first import sends logs to stderr', () => {
    expect(benches.length).toBeGreaterThanOrEqual(6);
    for (const [name, command] of benches) {
      const file = /^tsx (bench\/[\w/.-]+\.ts)$/.exec(command)?.[1];
      expect(file, `${name}: ${command}`).toBeDefined();
      const firstImport = /^import .*$/m.exec(readFileSync(`${ROOT}${file!}`, 'utf8'))?.[0];
      expect(firstImport, name).toBe("import './support/logsToStderr.js';");
    }
  });

  it('bench:providers --quick prints logs to stderr and one JSON object as the last line of stdout', async () => {
    const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
      execFile('npx', ['tsx', 'bench/providers.ts', '--quick'], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'info', VITEST: '' }, timeout: 90_000 }, (err, stdout, stderr) =>
        err ? reject(err) : resolve({ stdout, stderr }),
      ),
    );
    const lines = stdout.trim().split('\n');
    const last = JSON.parse(lines.at(-1)!) as unknown;
    expect(typeof last === 'object' && last !== null && !Array.isArray(last)).toBe(true);
    expect(stdout).not.toMatch(/"level":\d+/);
    expect(stderr).toMatch(/"level":\d+/);
  }, 100_000);
});
