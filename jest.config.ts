import type { Config } from 'jest';

// One jest config, one project per workspace (docs/architecture.md §1.1). TypeScript is transpiled by SWC
// for speed; `tsc --noEmit` in `npm test` does the type checking.
const transform: Config['transform'] = {
  '^.+\\.tsx?$': [
    '@swc/jest',
    { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs', ignoreDynamic: true } },
  ],
};

const config: Config = {
  maxWorkers: 2,
  // Integration tests start real servers (PGlite boots in seconds) on a 2-core machine that may be
  // busy (several suites at once: a PGlite server can take over a minute to start); no test asserts
  // on time, so a generous ceiling only catches hangs.
  testTimeout: 180_000,
  // A worker whose memory is above this after a test file is replaced by a fresh one. Memory a
  // file leaves behind (embedded PGlite instances, WebAssembly memories) otherwise adds up in a
  // long-lived worker: one reached 8.5 GB and was killed by the kernel's OOM killer.
  workerIdleMemoryLimit: '2GB',
  // Every skipped test is listed; with TEST_DATABASE_URL set (CI) a skipped test fails the run.
  reporters: ['default', '<rootDir>/server/test/reporters/skip-reporter.cjs'],
  projects: [
    {
      displayName: 'server',
      rootDir: '<rootDir>/server',
      testMatch: ['<rootDir>/test/**/*.test.ts'],
      testEnvironment: 'node',
      transform,
    },
    {
      displayName: 'manifests',
      rootDir: '<rootDir>/manifests',
      testMatch: ['<rootDir>/test/**/*.test.ts'],
      testEnvironment: 'node',
      transform,
    },
  ],
};

export default config;
