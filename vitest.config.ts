import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'tests/**/*.test.ts'],
    // Media tests measure timing on a 2-core machine: running files one at a time keeps
    // them from stealing each other's CPU and turning timing checks into noise.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // The JSON report is what .ci/run counts from; the default reporter is what people read.
    reporters: ['default', 'json'],
    outputFile: { json: '.vitest-report.json' },
  },
});
