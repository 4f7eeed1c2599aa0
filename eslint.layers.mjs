// Folder layers of server/src (docs/architecture.md §1.2), enforced with no-restricted-imports.
// Separate from eslint.config.mjs so server/test/lint/layers.test.ts can lint code against exactly
// these rules.

/**
 * Lowest first: a folder may import its own layer and the ones before it, never one after it.
 * `ledger` is pure (its own, stricter rule in eslint.config.mjs). The shared foundation imports no
 * layer; the composition roots (runtime.ts, main.ts, index.ts, cli/) may import anything.
 */
export const LAYERS = ['ledger', 'tlog', 'auth', 'events', 'export', 'privacy', 'retention', 'reports', 'fhir', 'alerts', 'streams', 'analytics', 'audit', 'delivery', 'api', 'trpc', 'graphql', 'http'];
/** Shared by every layer; imports none of them. */
export const FOUNDATION = ['db', 'errors', 'util', 'observability', 'cache', 'jobs', 'config', 'config-docs'];
/** Wire everything together; nothing imports them. */
export const ROOTS = ['runtime', 'main', 'index', 'cli'];

/** Relative imports, from a file `prefix` levels below server/src, of the named top-level folders or modules. */
const pattern = (prefix, names, message) => ({ regex: `^${prefix}(?:${names.join('|')})(?:[/.]|$)`, message });
const UP = '(?:\\.\\./)+';

/** One flat-config block per layer, and one for the foundation. */
export const layerRules = [
  ...LAYERS.slice(1).map((layer, i) => ({
    files: [`server/src/${layer}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        pattern(UP, [...LAYERS.slice(i + 2), ...ROOTS], `server/src/${layer} may import only ${LAYERS.slice(0, i + 2).join(', ')} and the foundation (${FOUNDATION.join(', ')}): dependencies point down the layers`),
      ] }],
    },
  })),
  {
    files: FOUNDATION.map((f) => `server/src/${f}/**/*.ts`),
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        pattern(UP, [...LAYERS.slice(1), ...ROOTS], 'the shared foundation (db, errors, util, observability, cache, config) imports no layer above the ledger'),
      ] }],
    },
  },
  {
    // Foundation modules at the top of server/src import their neighbours as './x'.
    files: FOUNDATION.map((f) => `server/src/${f}.ts`),
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        pattern('\\./', [...LAYERS.slice(1), ...ROOTS], 'the shared foundation (db, errors, util, observability, cache, config) imports no layer above the ledger'),
      ] }],
    },
  },
];
