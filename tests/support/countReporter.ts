import { JsonReporter } from 'vitest/reporters';
import type { TestModule } from 'vitest/node';

/**
 * vitest's JSON report (what .ci/run counts from, via scripts/test-summary.mjs), then one plain line,
 * `N passed, N failed, N skipped`: the last line of `npm test` says how many tests ran. Reporters end
 * concurrently, so the line is printed here, after the report is written, rather than by a reporter of
 * its own. A file that failed without a failing test (an import that threw, a beforeAll) counts once.
 */
export class CountReporter extends JsonReporter {
  constructor() {
    super({});
  }

  override async onTestRunEnd(testModules: ReadonlyArray<TestModule>, ...rest: unknown[]): Promise<void> {
    await super.onTestRunEnd(testModules as TestModule[]);
    const unhandledErrors = (rest[0] as ReadonlyArray<unknown> | undefined) ?? [];
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const module of testModules) {
      let moduleFailures = 0;
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') moduleFailures++;
        else skipped++;
      }
      failed += moduleFailures > 0 ? moduleFailures : module.state() === 'failed' ? 1 : 0;
    }
    failed += unhandledErrors.length;
    process.stdout.write(`${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
