// Type-aware linting for the whole repository.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import { layerRules } from './eslint.layers.mjs';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', 'manifests/lib/**', 'dist-k8s/**', 'coverage/**', 'data/**', '**/*.js', '**/*.mjs', '**/*.cjs', '.stryker-tmp/**', 'reports/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'separate-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'read configuration through server/src/config.ts' }],
    },
  },
  {
    // The ledger is pure: auditors re-implement it, so it may use nothing but node:crypto (docs/architecture.md §1.2, docs/ledger-spec.md).
    files: ['server/src/ledger/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        // A regex, not a gitignore-style group: `ignore` never matches './x' against '!./*', which banned the ledger's own files.
        { regex: '^(?!node:crypto$|\\./[\\w-][\\w.-]*$|\\.\\./ledger/[\\w.-]+$)', message: 'server/src/ledger is pure: only node:crypto and its own modules' },
      ] }],
    },
  },
  ...layerRules,
  {
    // Tests, benchmarks, the config module and the manifests app may read the environment.
    files: ['server/src/config.ts', 'server/test/**/*.ts', 'manifests/**/*.ts', 'bench/**/*.ts', 'jest.config.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    files: ['server/test/**/*.ts', 'manifests/test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
);
