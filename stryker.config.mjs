// Mutation testing of the core (docs/mutation-testing.md). Not part of `npm test`: run
//   MUTATION_SCOPE=ledger npm run test:mutation       (ledger | ingest | auth | manifests)
// Incremental: a rerun only tests mutants whose code or tests changed since the stored result.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { scopeOf } = require('./stryker.scopes.cjs');
const scope = scopeOf(process.env.MUTATION_SCOPE);
// MUTATION_RUN names a run, so two runs of one scope (different files) can go side by side with
// their own sandbox, incremental file and report.
const run = process.env.MUTATION_RUN ? `-${process.env.MUTATION_RUN}` : '';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'jest',
  jest: { projectType: 'custom', configFile: 'jest.mutation.config.cjs', enableFindRelatedTests: false },
  checkers: ['typescript'],
  tsconfigFile: scope.tsconfig,
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  mutate: scope.mutate,
  coverageAnalysis: 'perTest',
  // Static mutants (module-level constants) need every test of the scope per mutant, about 90 % of
  // the run time; they are reported as ignored and listed in docs/mutation-testing.md.
  ignoreStatic: true,
  // Jest's module sandbox allows dynamic imports only with this flag (as `npm run test:unit` runs
  // jest): PGlite (the ingest scope's database) loads its WebAssembly with one, and the auth scope
  // imports ESM-only libraries (better-auth, jose).
  testRunnerNodeArgs: ['--experimental-vm-modules', '--disable-warning=ExperimentalWarning'],
  concurrency: Number(process.env.MUTATION_CONCURRENCY ?? 2),
  timeoutMS: 20_000,
  // The initial (unmutated) run of the ledger scope's tests with per-test coverage took longer than
  // Stryker's default 5 minutes on a loaded two-core machine and aborted the whole run.
  dryRunTimeoutMinutes: 30,
  incremental: true,
  incrementalFile: `reports/mutation/${scope.name}/stryker-incremental${run}.json`,
  reporters: ['clear-text', 'progress-append-only', 'json'],
  jsonReporter: { fileName: `reports/mutation/${scope.name}/mutation${run}.json` },
  thresholds: { high: 90, low: 80, break: null },
  tempDirName: `.stryker-tmp/${scope.name}${run}`,
  // `/reports` (Stryker's own output) is anchored: a bare `reports` also left server/src/reports out
  // of the sandbox, so anything importing the report modules failed there. `/.stryker-tmp`: the
  // sandbox of another run going side by side is not part of this run's project.
  ignorePatterns: ['bench/out', 'coverage', '/reports', 'dist-k8s', 'data', '/.stryker-tmp'],
  cleanTempDir: true,
};
