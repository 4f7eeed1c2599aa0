/**
 * The committed mutation records (docs/mutation/<scope>.json) describe the code as it is and meet
 * their targets: a change to a mutated file or to a test that judges it fails here until the scope
 * is run again and the record rewritten (docs/mutation-testing.md). The checker is first shown to
 * catch each kind of problem on a planted record, then run on every scope.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { recordProblems, type MutationRecord, type Scope } from './mutation-record';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const load = createRequire(__filename);
const { scopes, scopeOf, filesOf } = load(path.join(REPO_ROOT, 'stryker.scopes.cjs')) as {
  scopes: Record<string, unknown>;
  scopeOf: (name: string) => Scope & { mutate: string[] };
  filesOf: (scope: Scope, root: string) => string[];
};
interface Report {
  config?: { mutate?: string[] };
  files: Record<string, { source: string; mutants: { status: string; mutatorName?: string; replacement?: string; location: { start: { line: number; column: number } } }[] }>;
  testFiles?: Record<string, { source?: string; tests: unknown[] }>;
}
const { buildRecord } = load(path.join(REPO_ROOT, 'scripts', 'mutation-results.cjs')) as {
  buildRecord: (
    scope: Scope & { mutate: string[] },
    scopeFiles: string[],
    reports: { path: string; report: Report }[],
    read: (file: string) => string | undefined,
  ) => { record: MutationRecord; problems: string[] };
};

const sha = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

describe('the mutation record checker', () => {
  const scope: Scope = { name: 'demo', target: 75, tests: ['t/a.test.ts'] };
  const tree = new Map([
    ['src/a.ts', 'export const a = 1;\n'],
    ['src/b.ts', 'export const b = 2;\n'],
    ['t/a.test.ts', "it('a', () => {});\n"],
  ]);
  const file = (text: string, counts: Partial<MutationRecord['files'][string]> = {}) => ({
    sha256: sha(text),
    detected: 8,
    timedOut: 1,
    survived: 1,
    noCoverage: 1,
    ignored: 0,
    invalid: 3,
    undetected: ['1:14 Survived NumericLiteral → 0', '1:1 NoCoverage BlockStatement → {}'],
    ...counts,
  });
  const good = (): MutationRecord => ({
    scope: 'demo',
    target: 75,
    score: 80,
    valid: 20,
    detected: 16,
    timedOut: 2,
    survived: 2,
    noCoverage: 2,
    ignored: 0,
    invalid: 6,
    files: { 'src/a.ts': file(tree.get('src/a.ts')!), 'src/b.ts': file(tree.get('src/b.ts')!) },
    tests: { 't/a.test.ts': sha(tree.get('t/a.test.ts')!) },
  });
  const check = (record: MutationRecord, files = tree, mutated = ['src/a.ts', 'src/b.ts']) => recordProblems(record, scope, mutated, (f) => files.get(f));
  const refresh = 'rerun it (MUTATION_SCOPE=demo npm run test:mutation) and write the record (node scripts/mutation-record.mjs demo reports/mutation/demo/mutation.json)';

  it('accepts a record of the current code that meets the target', () => {
    expect(check(good())).toEqual([]);
  });

  it('names a mutated file or a test file that changed since the run', () => {
    const changed = new Map(tree);
    changed.set('src/b.ts', 'export const b = 3;\n');
    changed.set('t/a.test.ts', "it.skip('a', () => {});\n");
    expect(check(good(), changed)).toEqual([`src/b.ts changed since the recorded mutation run: ${refresh}`, `t/a.test.ts changed since the recorded mutation run: ${refresh}`]);
    changed.delete('src/b.ts');
    expect(check(good(), changed)[0]).toBe(`src/b.ts changed since the recorded mutation run: ${refresh}`);
  });

  it('names a file added to or removed from the scope, and tests that are not the recorded ones', () => {
    expect(check(good(), tree, ['src/a.ts', 'src/b.ts', 'src/c.ts'])).toEqual([`src/c.ts is mutated by the scope but not in the record: ${refresh}`]);
    expect(check(good(), tree, ['src/a.ts'])).toEqual([`src/b.ts is in the record but no longer mutated by the scope: ${refresh}`]);
    const record = good();
    record.tests = {};
    expect(check(record)).toEqual([`the scope's tests are not the recorded ones (recorded: ): ${refresh}`]);
  });

  it('refuses totals, lists or a score that the files do not give', () => {
    const record = good();
    record.detected = 17;
    record.valid = 21;
    expect(check(record)).toEqual([
      "the record's detected (17) is not the sum of its files' (16)",
      "the record's valid count (21) is not detected + survived + no coverage (20)",
    ]);
    const inflated = good();
    inflated.score = 80.1;
    expect(check(inflated)).toEqual(["the record's score (80.1 %) is not what its counts give (80 %)"]);
    const unlisted = good();
    unlisted.files['src/a.ts']!.undetected = [];
    expect(check(unlisted)).toEqual(['src/a.ts: 0 undetected mutants listed, 2 counted']);
    const timeouts = good();
    timeouts.files['src/a.ts']!.timedOut = 9;
    timeouts.timedOut = 10;
    expect(check(timeouts)).toEqual(['src/a.ts: more mutants timed out (9) than detected (8)']);
  });

  it('fails a score below the target, rounded down', () => {
    const record = good();
    record.files['src/b.ts'] = file(tree.get('src/b.ts')!, { detected: 7, survived: 2, undetected: ['1:14 Survived NumericLiteral → 0', '1:1 Survived X → y', '1:1 NoCoverage Y → z'] });
    Object.assign(record, { detected: 15, survived: 3, valid: 20, score: 75 });
    expect(check(record)).toEqual([]);
    record.files['src/b.ts'] = file(tree.get('src/b.ts')!, { detected: 6, survived: 3, undetected: ['a', 'b', 'c', 'd'] });
    Object.assign(record, { detected: 14, survived: 4, valid: 20, score: 70 });
    expect(check(record)).toEqual(['scope demo scores 70 %, below its target of 75 %']);
    // 2 of 3 is 66.66… %: recorded as 66.6, never rounded up to 66.7.
    const third: MutationRecord = { ...good(), files: { 'src/a.ts': file(tree.get('src/a.ts')!, { detected: 2, timedOut: 0, survived: 1, noCoverage: 0, undetected: ['x'] }) } };
    Object.assign(third, { detected: 2, timedOut: 0, survived: 1, noCoverage: 0, invalid: 3, valid: 3, score: 66.6 });
    expect(check(third, tree, ['src/a.ts'])).toEqual(['scope demo scores 66.6 %, below its target of 75 %']);
  });

  it('refuses a record of another scope or target', () => {
    expect(check({ ...good(), scope: 'other', target: 50 })).toEqual(['the record is of scope "other", not demo', "the record's target is 50 %, the scope's 75 %"]);
  });
});

describe('writing a record (scripts/mutation-record.mjs)', () => {
  const scope = { name: 'demo', target: 75, mutate: ['src/**/*.ts'], tests: ['t/a.test.ts'] };
  const tree = new Map([
    ['src/a.ts', 'const a = 1;\nconst b = a + 1;\n'],
    ['src/empty.ts', 'export type T = number;\n'],
    ['t/a.test.ts', "it('a', () => {});\n"],
  ]);
  const read = (f: string) => tree.get(f);
  const at = (line: number, column: number) => ({ start: { line, column } });
  const report = (over: Partial<Report> = {}): Report => ({
    config: { mutate: ['src/**/*.ts'] },
    files: {
      'src/a.ts': {
        source: tree.get('src/a.ts')!,
        mutants: [
          { status: 'Killed', location: at(1, 11) },
          { status: 'Timeout', location: at(2, 11) },
          { status: 'Survived', mutatorName: 'ArithmeticOperator', replacement: 'a - 1', location: at(2, 11) },
          { status: 'NoCoverage', mutatorName: 'NumericLiteral', replacement: '0', location: at(1, 11) },
          { status: 'Killed', location: at(2, 15) },
          { status: 'Killed', location: at(1, 7) },
          { status: 'Killed', location: at(1, 1) },
          { status: 'Ignored', location: at(1, 1) },
          { status: 'CompileError', location: at(1, 1) },
          { status: 'RuntimeError', location: at(1, 1) },
        ],
      },
    },
    testFiles: { 't/a.test.ts': { source: tree.get('t/a.test.ts')!, tests: [] } },
    ...over,
  });
  const build = (reports: Report[]) => buildRecord(scope, ['src/a.ts', 'src/empty.ts'], reports.map((r, i) => ({ path: `r${i}.json`, report: r })), read);

  it('counts each status, lists the undetected mutants and passes its own check', () => {
    const { record, problems } = build([report()]);
    expect(problems).toEqual([]);
    expect(record.files['src/a.ts']).toEqual({
      sha256: sha(tree.get('src/a.ts')!),
      detected: 5,
      timedOut: 1,
      survived: 1,
      noCoverage: 1,
      ignored: 1,
      invalid: 2,
      undetected: ['1:11 NoCoverage NumericLiteral → 0', '2:11 Survived ArithmeticOperator → a - 1'],
    });
    // The file with nothing to mutate is recorded empty, since the run was of the whole scope.
    expect(record.files['src/empty.ts']).toMatchObject({ sha256: sha(tree.get('src/empty.ts')!), detected: 0, undetected: [] });
    expect(record).toMatchObject({ valid: 7, detected: 5, score: 71.4, tests: { 't/a.test.ts': sha(tree.get('t/a.test.ts')!) } });
    expect(recordProblems(record, scope, ['src/a.ts', 'src/empty.ts'], read)).toEqual(['scope demo scores 71.4 %, below its target of 75 %']);
  });

  it('refuses a run of some lines, another version of a file, another scope, and what no report covers', () => {
    const stale = report({ config: { mutate: ['src/a.ts:2-2'] } });
    stale.files['src/a.ts']!.source = 'const a = 2;\n';
    stale.files['src/other.ts'] = { source: '', mutants: [] };
    stale.testFiles = { 't/a.test.ts': { source: 'old', tests: [] } };
    expect(build([stale]).problems).toEqual([
      'r0.json: a run of some lines only (src/a.ts:2-2); record whole files',
      'src/other.ts (in r0.json) is not a file of scope demo',
      'src/a.ts: r0.json tested another version of it than the working tree holds',
      'src/empty.ts: in no report (run it, or the whole scope)',
      't/a.test.ts: r0.json ran another version of it than the working tree holds',
    ]);
    expect(build([report({ testFiles: {} })]).problems).toEqual(['t/a.test.ts: no report lists this test file (was it part of the runs?)']);
  });

  it('takes each file from the last report that has it', () => {
    const earlier = report();
    earlier.files['src/a.ts']!.source = 'old';
    const later = report({ config: { mutate: ['src/a.ts'] } });
    later.files['src/a.ts']!.mutants = [{ status: 'Killed', location: at(1, 1) }];
    const { record, problems } = build([earlier, later]);
    expect(problems).toEqual([]);
    expect(record).toMatchObject({ valid: 1, detected: 1, score: 100 });
  });
});

describe("the scopes' mutated files (filesOf)", () => {
  it('expands each scope to files that exist, without the ones it excludes', () => {
    const ledger = readdirSync(path.join(REPO_ROOT, 'server/src/ledger'))
      .filter((f) => f.endsWith('.ts') && f !== 'index.ts')
      .map((f) => `server/src/ledger/${f}`)
      .sort();
    expect(ledger.length).toBeGreaterThan(10);
    expect(filesOf(scopeOf('ledger'), REPO_ROOT)).toEqual(ledger);
    for (const name of Object.keys(scopes)) {
      const files = filesOf(scopeOf(name), REPO_ROOT);
      expect(files.length).toBeGreaterThan(0);
      for (const f of files) expect([name, f, existsSync(path.join(REPO_ROOT, f))]).toEqual([name, f, true]);
    }
    expect(filesOf(scopeOf('ingest'), REPO_ROOT)).toEqual(['server/src/events/commit-form.ts', 'server/src/events/ingest.ts', 'server/src/events/repository.ts', 'server/src/tlog/log-writer.ts', 'server/src/tlog/repository.ts']);
  });

  it('refuses a pattern it does not understand instead of matching nothing', () => {
    expect(() => filesOf({ ...scopeOf('auth'), mutate: ['server/src/auth/*.ts'] } as Scope, REPO_ROOT)).toThrow(
      'mutate pattern "server/src/auth/*.ts" of scope auth: only dir/**/*.ts and file paths are understood',
    );
  });
});

/**
 * Scopes with no record of the current code yet: each needs its Stryker run (docs/mutation-testing.md,
 * "The committed record"). A missing record is a named state here, never a silent pass, and a scope leaves
 * this list when its record is committed.
 */
const AWAITING_RUN: string[] = [];

describe('the committed records (docs/mutation/)', () => {
  const recordsDir = path.join(REPO_ROOT, 'docs', 'mutation');
  const recorded = existsSync(recordsDir) ? readdirSync(recordsDir).sort() : [];
  const read = (file: string) => (existsSync(path.join(REPO_ROOT, file)) ? readFileSync(path.join(REPO_ROOT, file), 'utf8') : undefined);

  it('are one per scope, for every scope but those awaiting a run', () => {
    const expected = Object.keys(scopes)
      .filter((name) => !AWAITING_RUN.includes(name))
      .map((name) => `${name}.json`)
      .sort();
    expect(recorded).toEqual(expected);
    for (const name of AWAITING_RUN) expect(Object.keys(scopes)).toContain(name);
  });

  it.each(Object.keys(scopes).filter((name) => !AWAITING_RUN.includes(name)))('of scope %s describe the current code and meet its target', (name) => {
    const scope = scopeOf(name);
    const record = JSON.parse(readFileSync(path.join(recordsDir, `${name}.json`), 'utf8')) as MutationRecord;
    expect(recordProblems(record, scope, filesOf(scope, REPO_ROOT), read)).toEqual([]);
  });
});
