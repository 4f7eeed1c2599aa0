// The test environment of mutation runs (jest.mutation.config.cjs): jest's node environment, plus
// one correction to how Stryker attributes coverage to tests.
//
// With per-test coverage, Stryker's jest plugin names the running test at `test_start` and clears
// the name at `test_done`. jest-circus sends `test_start` for a skipped test (a PostgreSQL variant
// without TEST_DATABASE_URL) but then `test_skip`, never `test_done`, so the skipped test's name
// stayed set: the next file's module loading and `beforeAll` hooks were counted as covered by a
// test that never runs. Those mutants were then "tested" by that skipped test alone and reported as
// surviving whatever the tests check (run 11 of the auth scope: 18 module-level constants, each
// killed when planted by hand). Clearing the name on `test_skip` and `test_todo` makes such code
// static again, as Stryker means it to be (docs/mutation-testing.md).
const { TestEnvironment } = require('jest-environment-node');

class MutationTestEnvironment extends TestEnvironment {
  // Stryker wraps this method and runs it before its own handling of each event.
  async handleTestEvent(event) {
    if (event.name !== 'test_skip' && event.name !== 'test_todo') return;
    const context = this.global[this.global.__strykerGlobalNamespace__ ?? '__stryker__'];
    if (context) context.currentTestId = undefined;
  }
}

module.exports = MutationTestEnvironment;
