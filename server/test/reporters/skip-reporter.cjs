// Skipped tests are never silent. After a run this reporter lists every skipped test with its full
// name (a PostgreSQL block that cannot run says why in its name: "[skipped: TEST_DATABASE_URL is
// not set]"). When TEST_DATABASE_URL is set, as in CI, every backend must run: any skipped test
// fails the run. A focused run (a path or -t on the command line) skips tests on purpose and is
// only reported.
'use strict';

class SkipReporter {
  constructor(globalConfig) {
    this.globalConfig = globalConfig;
    this.error = undefined;
  }

  onRunComplete(_contexts, results) {
    const skipped = [];
    for (const file of results.testResults) {
      for (const t of file.testResults) {
        if (t.status === 'pending' || t.status === 'skipped' || t.status === 'todo') skipped.push(t.fullName);
      }
    }
    if (skipped.length === 0) return;
    const focused = Boolean(this.globalConfig.testNamePattern) || this.globalConfig.nonFlagArgs.length > 0;
    const strict = Boolean(process.env.TEST_DATABASE_URL) && !focused;
    const lines = skipped.slice(0, 200).map((name) => `  - ${name}`);
    if (skipped.length > 200) lines.push(`  … and ${skipped.length - 200} more`);
    process.stderr.write(`\n${skipped.length} test(s) skipped:\n${lines.join('\n')}\n`);
    if (strict) {
      this.error = new Error(`${skipped.length} test(s) skipped although TEST_DATABASE_URL is set: every test must run here`);
      process.stderr.write(`\n${this.error.message}\n`);
    }
  }

  getLastError() {
    return this.error;
  }
}

module.exports = SkipReporter;
