// Jest configuration for mutation testing (stryker.config.mjs): one project, the unit tests of the
// scope being mutated only (they run once per mutant), transpiled by SWC like the main config.
const { scopeOf } = require('./stryker.scopes.cjs');

const scope = scopeOf(process.env.MUTATION_SCOPE);

/** @type {import('jest').Config} */
module.exports = {
  rootDir: __dirname,
  // Absolute: Stryker loads the environment itself, from its own directory.
  testEnvironment: require('node:path').join(__dirname, 'jest.mutation.environment.cjs'),
  testMatch: scope.tests.map((t) => `<rootDir>/${t}`),
  transform: {
    // Dynamic imports stay imports (as in jest.config.ts): the sign-in library and jose are ESM-only.
    '^.+\\.tsx?$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs', ignoreDynamic: true } }],
  },
  testTimeout: 60_000,
};
