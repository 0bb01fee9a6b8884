// Prints the one line CI reads ("N passed, N failed, N skipped") from vitest's JSON report.
// A failed typecheck counts as one more failure so it can't hide behind green tests.
import { readFileSync } from 'node:fs';

const [reportPath = '.vitest-report.json', typecheckStatus = '0'] = process.argv.slice(2);
let report;
try {
  report = JSON.parse(readFileSync(reportPath, 'utf8'));
} catch (err) {
  console.log(`no test report at ${reportPath}: ${err.message}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const typecheckFailed = typecheckStatus !== '0' ? 1 : 0;
const passed = report.numPassedTests ?? 0;
// A file that failed without a failing test (an error in beforeAll, an import that threw) counts once;
// a file whose tests failed is already counted by them.
const brokenFiles = (report.testResults ?? []).filter(
  (f) => f.status === 'failed' && !(f.assertionResults ?? []).some((a) => a.status === 'failed'),
).length;
const failed = (report.numFailedTests ?? 0) + typecheckFailed + brokenFiles;
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
if (typecheckFailed) console.log('typecheck failed');
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
