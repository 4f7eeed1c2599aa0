import type { Config } from 'jest';

// One jest config, one project per workspace (ARCHITECTURE §2). TypeScript is transpiled by SWC
// for speed; `tsc --noEmit` in `npm test` does the type checking.
const transform: Config['transform'] = {
  '^.+\\.tsx?$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }],
};

const config: Config = {
  maxWorkers: 2,
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
