import { defineConfig } from 'vitest/config';
import { CountReporter } from './tests/support/countReporter.js';

/**
 * Tests that measure timing (media pacing, the agent's turns, providers' latencies, rooms, the doors)
 * and every test that starts real processes run one file at a time: on a 2-core machine two of them at
 * once steal each other's CPU and turn timing checks into noise. Those that only talk to Redis or HTTP
 * run two files at a time first, which takes ~1 min off the suite.
 */
const timed = ['src/media/**/*.test.ts', 'src/agent/**/*.test.ts', 'src/providers/**/*.test.ts', 'src/rooms/**/*.test.ts', 'src/webrtc/**/*.test.ts', 'src/sip/rtpengine/**/*.test.ts', 'src/sip/drachtioServer.test.ts', 'src/cli/replay.test.ts'];

/** Under tests/, those that check no timing: the code's shape, fixtures, pages, the docs' commands, bench output's format, webhook redelivery. */
const untimed = ['tests/architecture/**/*.test.ts', 'tests/fixtures/**/*.test.ts', 'tests/bench/output.test.ts', 'tests/security/pages.test.ts', 'tests/security/metrics.test.ts', 'tests/app/docs-curl.test.ts', 'tests/app/quickstart-admin.test.ts', 'tests/app/webhooks-restart.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // The default reporter is what people read; CountReporter writes vitest's JSON report (what
    // .ci/run counts from) and then the run's last line, `N passed, N failed, N skipped`.
    reporters: ['default', new CountReporter()],
    outputFile: { json: '.vitest-report.json' },
    projects: [
      { extends: true, test: { name: 'unit', include: ['src/**/*.test.ts', ...untimed], exclude: timed, maxWorkers: 2, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'timed', include: [...timed, 'tests/**/*.test.ts'], exclude: untimed, fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
});
