import { defineConfig } from 'vitest/config';
import { CountReporter } from './tests/support/countReporter.js';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'tests/**/*.test.ts'],
    // Media tests measure timing on a 2-core machine: running files one at a time keeps
    // them from stealing each other's CPU and turning timing checks into noise.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // The default reporter is what people read; CountReporter writes vitest's JSON report (what
    // .ci/run counts from) and then the run's last line, `N passed, N failed, N skipped`.
    reporters: ['default', new CountReporter()],
    outputFile: { json: '.vitest-report.json' },
  },
});
