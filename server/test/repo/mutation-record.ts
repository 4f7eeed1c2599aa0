/**
 * Checks of a committed mutation record (docs/mutation/<scope>.json, written by
 * scripts/mutation-record.mjs): the record must describe the code as it is, and its score must
 * meet the scope's target. Pure: the caller reads the files.
 */
import { createRequire } from 'node:module';
import path from 'node:path';

/** How many of a file's (or a scope's) mutants ended in each state. */
export interface Counts {
  detected: number;
  timedOut: number;
  survived: number;
  noCoverage: number;
  ignored: number;
  invalid: number;
}

export interface FileResult extends Counts {
  sha256: string;
  undetected: string[];
}

export interface MutationRecord extends Counts {
  scope: string;
  target: number;
  score: number;
  valid: number;
  files: Record<string, FileResult>;
  tests: Record<string, string>;
}

export interface Scope {
  name: string;
  target: number;
  tests: string[];
}

// The same hash and rounding as the script that writes records.
const { sha256, scoreOf } = createRequire(__filename)(path.resolve(__dirname, '..', '..', '..', 'scripts', 'mutation-results.cjs')) as {
  sha256: (text: string) => string;
  scoreOf: (detected: number, valid: number) => number;
};

/**
 * What is wrong with `record` for `scope`, whose mutated files are `mutated` and whose file contents
 * are read with `read` (undefined for a file that does not exist). Empty when the record is current
 * and meets the target.
 */
export function recordProblems(record: MutationRecord, scope: Scope, mutated: string[], read: (file: string) => string | undefined): string[] {
  const problems: string[] = [];
  const refresh = `rerun it (MUTATION_SCOPE=${scope.name} npm run test:mutation) and write the record (node scripts/mutation-record.mjs ${scope.name} reports/mutation/${scope.name}/mutation.json)`;
  if (record.scope !== scope.name) problems.push(`the record is of scope ${JSON.stringify(record.scope)}, not ${scope.name}`);
  if (record.target !== scope.target) problems.push(`the record's target is ${record.target} %, the scope's ${scope.target} %`);

  const recorded = Object.keys(record.files).sort();
  for (const file of mutated.filter((f) => !recorded.includes(f))) problems.push(`${file} is mutated by the scope but not in the record: ${refresh}`);
  for (const file of recorded.filter((f) => !mutated.includes(f))) problems.push(`${file} is in the record but no longer mutated by the scope: ${refresh}`);
  for (const file of recorded.filter((f) => mutated.includes(f))) {
    const text = read(file);
    if (text === undefined || sha256(text) !== record.files[file]!.sha256) problems.push(`${file} changed since the recorded mutation run: ${refresh}`);
  }

  const testsRecorded = Object.keys(record.tests).sort();
  const testsNow = [...scope.tests].sort();
  if (JSON.stringify(testsRecorded) !== JSON.stringify(testsNow)) problems.push(`the scope's tests are not the recorded ones (recorded: ${testsRecorded.join(', ')}): ${refresh}`);
  for (const test of testsRecorded.filter((t) => testsNow.includes(t))) {
    const text = read(test);
    if (text === undefined || sha256(text) !== record.tests[test]) problems.push(`${test} changed since the recorded mutation run: ${refresh}`);
  }

  // The totals must be the files' sums, and the score what they give, rounded down.
  const sum = (key: keyof Counts) => Object.values(record.files).reduce((n, f) => n + f[key], 0);
  for (const key of ['detected', 'timedOut', 'survived', 'noCoverage', 'ignored', 'invalid'] as const) {
    if (record[key] !== sum(key)) problems.push(`the record's ${key} (${record[key]}) is not the sum of its files' (${sum(key)})`);
  }
  for (const [file, f] of Object.entries(record.files)) {
    if (f.undetected.length !== f.survived + f.noCoverage) problems.push(`${file}: ${f.undetected.length} undetected mutants listed, ${f.survived + f.noCoverage} counted`);
    if (f.timedOut > f.detected) problems.push(`${file}: more mutants timed out (${f.timedOut}) than detected (${f.detected})`);
  }
  const valid = sum('detected') + sum('survived') + sum('noCoverage');
  if (record.valid !== valid) problems.push(`the record's valid count (${record.valid}) is not detected + survived + no coverage (${valid})`);
  const score = scoreOf(sum('detected'), valid);
  if (record.score !== score) problems.push(`the record's score (${record.score} %) is not what its counts give (${score} %)`);
  if (score < scope.target) problems.push(`scope ${scope.name} scores ${score} %, below its target of ${scope.target} %`);
  return problems;
}
