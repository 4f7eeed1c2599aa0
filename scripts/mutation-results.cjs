// Reading Stryker JSON reports (mutation-testing-report-schema), shared by mutation-report.mjs (the
// Markdown summary) and mutation-record.mjs (the committed record that `npm test` checks, see
// server/test/repo/mutation-record.test.ts).
//
// Score as Stryker computes it: detected (killed + timed out) ÷ (detected + survived + no coverage);
// ignored mutants, compile errors and runtime errors are not valid mutants and count nowhere.
'use strict';
const { createHash } = require('node:crypto');
const { readFileSync } = require('node:fs');

const DETECTED = new Set(['Killed', 'Timeout']);
const UNDETECTED = new Set(['Survived', 'NoCoverage']);

/**
 * Several reports combined: a file's results come from the last report that has the file (one
 * Stryker run per file, or a later run of some files, replaces an earlier run's results for them).
 * `reports` are `{ path, report }` pairs, in order.
 */
function combine(reports) {
  const files = {};
  const testFiles = {};
  for (const { path, report } of reports) {
    if (!report || typeof report.files !== 'object') throw new Error(`${path}: not a Stryker JSON report (no "files")`);
    for (const [file, result] of Object.entries(report.files)) files[file] = { ...result, from: path };
    for (const [file, result] of Object.entries(report.testFiles ?? {})) testFiles[file] = { ...result, from: path };
  }
  return { files, testFiles };
}

function readReports(paths) {
  return paths.map((path) => ({ path, report: JSON.parse(readFileSync(path, 'utf8')) }));
}

/** Counts of one file's mutants, and its undetected ones with their line and replacement. */
function classify(file, { source, mutants }) {
  const lines = source.split('\n');
  const count = { detected: 0, timeout: 0, survived: 0, noCoverage: 0, ignored: 0, invalid: 0 };
  const undetected = [];
  for (const m of mutants) {
    if (DETECTED.has(m.status)) {
      count.detected += 1;
      if (m.status === 'Timeout') count.timeout += 1;
    } else if (UNDETECTED.has(m.status)) {
      if (m.status === 'Survived') count.survived += 1;
      else count.noCoverage += 1;
      const line = m.location.start.line;
      undetected.push({ file, line, column: m.location.start.column, status: m.status, mutator: m.mutatorName, original: lines[line - 1] ?? '', replacement: m.replacement ?? '' });
    } else if (m.status === 'Ignored') count.ignored += 1;
    else count.invalid += 1; // CompileError, RuntimeError
  }
  undetected.sort((a, b) => a.line - b.line || a.column - b.column);
  return { count, undetected };
}

const undetectedOf = (count) => count.survived + count.noCoverage;
const percent = (detected, valid) => (valid === 0 ? 'n/a' : `${((100 * detected) / valid).toFixed(1)} %`);
const sha256 = (text) => createHash('sha256').update(text, 'utf8').digest('hex');
/** A score rounded down to 0.1 %, so a record never claims more than was measured. */
const scoreOf = (detected, valid) => (valid === 0 ? 0 : Math.floor((1000 * detected) / valid) / 10);

/**
 * The record of `scope` (its name, target, mutate patterns and tests) from Stryker reports, with
 * `scopeFiles` the files its patterns match and `read(file)` the working tree's content (undefined
 * when absent). Returns `{ record, problems }`; a record with problems must not be written.
 */
function buildRecord(scope, scopeFiles, reports, read) {
  const problems = [];
  const { files, testFiles } = combine(reports);
  for (const { path, report } of reports) {
    const partial = (report.config?.mutate ?? []).filter((p) => /:\d+(-\d+)?$/.test(p));
    if (partial.length > 0) problems.push(`${path}: a run of some lines only (${partial.join(', ')}); record whole files`);
  }
  for (const file of Object.keys(files)) {
    if (!scopeFiles.includes(file)) problems.push(`${file} (in ${files[file].from}) is not a file of scope ${scope.name}`);
  }
  const record = { scope: scope.name, target: scope.target, score: 0, valid: 0, detected: 0, timedOut: 0, survived: 0, noCoverage: 0, ignored: 0, invalid: 0, files: {}, tests: {} };
  const wholeScopeRun = reports.some(({ report }) => JSON.stringify(report.config?.mutate) === JSON.stringify(scope.mutate));
  for (const file of scopeFiles) {
    const now = read(file);
    const result = files[file];
    if (!result) {
      // Stryker leaves out of its report a file in which it found nothing to mutate: such a file
      // is recorded with no mutants only when a run of the whole scope saw it.
      if (!wholeScopeRun) problems.push(`${file}: in no report (run it, or the whole scope)`);
      record.files[file] = { sha256: sha256(now ?? ''), detected: 0, timedOut: 0, survived: 0, noCoverage: 0, ignored: 0, invalid: 0, undetected: [] };
      continue;
    }
    if (result.source !== now) problems.push(`${file}: ${result.from} tested another version of it than the working tree holds`);
    const { count, undetected } = classify(file, result);
    record.files[file] = {
      sha256: sha256(result.source),
      detected: count.detected,
      timedOut: count.timeout,
      survived: count.survived,
      noCoverage: count.noCoverage,
      ignored: count.ignored,
      invalid: count.invalid,
      undetected: undetected.map((u) => `${u.line}:${u.column} ${u.status} ${u.mutator} → ${u.replacement.replace(/\s+/g, ' ').slice(0, 80)}`),
    };
    record.detected += count.detected;
    record.timedOut += count.timeout;
    record.survived += count.survived;
    record.noCoverage += count.noCoverage;
    record.ignored += count.ignored;
    record.invalid += count.invalid;
    record.valid += count.detected + undetectedOf(count);
  }
  for (const test of scope.tests) {
    const seen = testFiles[test];
    const now = read(test);
    if (!seen || typeof seen.source !== 'string') problems.push(`${test}: no report lists this test file (was it part of the runs?)`);
    else if (seen.source !== now) problems.push(`${test}: ${seen.from} ran another version of it than the working tree holds`);
    record.tests[test] = sha256(now ?? '');
  }
  record.score = scoreOf(record.detected, record.valid);
  return { record, problems };
}

module.exports = { combine, readReports, classify, undetectedOf, percent, sha256, scoreOf, buildRecord };
