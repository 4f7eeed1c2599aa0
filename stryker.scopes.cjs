// Scopes of the mutation run (docs/mutation-testing.md): what is mutated and which tests judge it.
// Each scope runs on its own (MUTATION_SCOPE=<name> npm run test:mutation) so a run fits a shared
// two-core machine; the tests are the fast, in-process ones of that part of the core.
const scopes = {
  ledger: {
    // The score a scope must keep (docs/mutation/<scope>.json, checked by npm test): the ledger is
    // what auditors rely on, so it is held higher than the rest of the core.
    target: 85,
    mutate: ['server/src/ledger/**/*.ts', '!server/src/ledger/index.ts'],
    // The ledger imports nothing outside itself (a lint rule): type-checking it alone is enough.
    tsconfig: 'server/tsconfig.ledger.json',
    tests: [
      'server/test/ledger/commitment.test.ts',
      'server/test/ledger/compact-range.test.ts',
      // fast-commitment.ts is the ingest path's commitment; its test pins it to the reference.
      'server/test/ledger/fast-commitment.test.ts',
      'server/test/ledger/jcs.test.ts',
      'server/test/ledger/note.test.ts',
      'server/test/ledger/rfc6962-vectors.test.ts',
      'server/test/ledger/spec-vectors.test.ts',
      'server/test/ledger/tree.test.ts',
      'server/test/verify/bundle-verifier.test.ts',
      // Every record kind, malformed line and failure reason of the verifier, on in-memory bundles.
      'server/test/verify/bundle-verifier-records.test.ts',
    ],
  },
  ingest: {
    target: 75,
    // The mutated files and what they import, not the whole server and its tests (see auth).
    tsconfig: 'server/tsconfig.ingest.json',
    mutate: ['server/src/events/ingest.ts', 'server/src/events/commit-form.ts', 'server/src/tlog/log-writer.ts', 'server/src/tlog/repository.ts', 'server/src/events/repository.ts'],
    // In process over the embedded PGlite store, no HTTP server: each file opens one database. The
    // server tests of the same behaviour (ingest-prepare, append-isolation) start a server per file,
    // which per mutant would make a run take hours here; ingest-service.test.ts covers what they check.
    tests: [
      'server/test/events/commit-form.test.ts',
      'server/test/events/ingest-service.test.ts',
      'server/test/events/append-transaction.test.ts',
      'server/test/events/event-repository.test.ts',
      'server/test/tlog/tlog-repository.test.ts',
      'server/test/tlog/log-writer.test.ts',
    ],
  },
  auth: {
    target: 75,
    // The auth modules and what they import, not the whole server and its tests: with every
    // dependent in the program, type-checking each mutant (identity.ts pulls in the sign-in
    // library's types) took two thirds of the run's CPU.
    tsconfig: 'server/tsconfig.auth.json',
    mutate: ['server/src/auth/**/*.ts'],
    // In process, no audit server: pure functions directly, services over the embedded store (and
    // PostgreSQL/Redis when TEST_DATABASE_URL/TEST_REDIS_URL are set), sign-in through the library's
    // own handler on a bare HTTP server, OIDC against an issuer served by the test.
    tests: [
      'server/test/auth/permissions.test.ts',
      'server/test/auth/permission-checks.test.ts',
      'server/test/auth/api-key-service.test.ts',
      'server/test/auth/login-limiter.test.ts',
      'server/test/auth/session-store.test.ts',
      'server/test/auth/organizations-and-producer-keys.test.ts',
      'server/test/auth/oidc-verifier.test.ts',
      'server/test/auth/identity-service.test.ts',
    ],
  },
  manifests: {
    target: 75,
    tsconfig: 'manifests/tsconfig.json',
    mutate: ['manifests/src/server-pod.ts', 'manifests/src/workload-defaults.ts', 'manifests/src/restricted-namespace.ts', 'manifests/src/pod-network-policy.ts'],
    // The in-process tests of these modules. The others synthesize whole environments, start
    // Redis or PostgreSQL, or run external validators: seconds to minutes per mutant.
    tests: [
      // Every security default and helper, each in a small chart of its own, compared whole.
      'manifests/test/security-defaults.test.ts',
      // Environment, Secret volumes and mounts of each server role, option by option.
      'manifests/test/server-pod.test.ts',
      'manifests/test/audit-server.test.ts',
      'manifests/test/stateful-service.test.ts',
      // Not role-secrets.test.ts: it reads dist-k8s/, which the sandbox leaves out, and
      // server-pod.test.ts pins the same secrets per role key by key.
    ],
  },
};

/** The scope named `name` (default: ledger); throws on an unknown name. */
function scopeOf(name) {
  const key = name || 'ledger';
  const scope = scopes[key];
  if (!scope) throw new Error(`unknown MUTATION_SCOPE ${JSON.stringify(name)}; one of ${Object.keys(scopes).join(', ')}`);
  return { name: key, ...scope };
}

// The files a scope mutates, relative to `root`, sorted. Only the two forms the scopes use are
// understood, `dir/**/*.ts` and a file's path, each optionally negated with `!`; anything else
// throws rather than silently matching nothing.
function filesOf(scope, root) {
  const fs = require('node:fs');
  const path = require('node:path');
  const walk = (dir) =>
    fs.readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(`${dir}/${e.name}`) : e.name.endsWith('.ts') ? [`${dir}/${e.name}`] : [],
    );
  const expand = (pattern) => {
    const tree = /^([\w./-]+)\/\*\*\/\*\.ts$/.exec(pattern);
    if (tree) return walk(tree[1]);
    if (/^[\w./-]+\.ts$/.test(pattern)) return [pattern];
    throw new Error(`mutate pattern ${JSON.stringify(pattern)} of scope ${scope.name}: only dir/**/*.ts and file paths are understood`);
  };
  const chosen = new Set();
  for (const p of scope.mutate) {
    if (p.startsWith('!')) for (const f of expand(p.slice(1))) chosen.delete(f);
    else for (const f of expand(p)) chosen.add(f);
  }
  return [...chosen].sort();
}

module.exports = { scopes, scopeOf, filesOf };
