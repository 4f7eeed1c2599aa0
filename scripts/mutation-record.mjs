#!/usr/bin/env node
// Writes docs/mutation/<scope>.json, the committed record of a scope's mutation score, from the
// Stryker JSON reports of runs over the current code (docs/mutation-testing.md):
//
//   node scripts/mutation-record.mjs auth reports/mutation/auth/mutation.json
//   node scripts/mutation-record.mjs ingest run-a.json run-b.json   # one run per file, combined
//
// server/test/repo/mutation-record.test.ts fails when a recorded file changed since, or a score is
// below the scope's target. A record is refused when a report saw another version of a file than
// the working tree holds, when a run mutated only some lines, or when a file of the scope is in no
// report.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { scopeOf, filesOf } = require('../stryker.scopes.cjs');
const { buildRecord, readReports } = require('./mutation-results.cjs');

const [scopeName, ...paths] = process.argv.slice(2);
if (!scopeName || paths.length === 0) {
  console.error('usage: node scripts/mutation-record.mjs <scope> <stryker mutation.json> [more reports…]');
  process.exit(2);
}
const scope = scopeOf(scopeName);
const read = (file) => (existsSync(file) ? readFileSync(file, 'utf8') : undefined);
const { record, problems } = buildRecord(scope, filesOf(scope, '.'), readReports(paths), read);
if (problems.length > 0) {
  console.error(`not recorded:\n- ${problems.join('\n- ')}`);
  process.exit(1);
}
mkdirSync('docs/mutation', { recursive: true });
writeFileSync(`docs/mutation/${scope.name}.json`, `${JSON.stringify(record, null, 2)}\n`);
console.log(`docs/mutation/${scope.name}.json: ${record.detected} of ${record.valid} valid mutants detected, ${record.score} % (target ${scope.target} %)`);
if (record.score < scope.target) process.exitCode = 1;
