#!/usr/bin/env node
// Summarizes a Stryker JSON report (mutation-testing-report-schema) as Markdown: the score per file
// and every mutant that was not detected, with its line and replacement, so survivors can be listed
// in docs/mutation-testing.md and each one killed or explained.
//
//   node scripts/mutation-report.mjs reports/mutation/ledger/mutation.json
//   node scripts/mutation-report.mjs run-a.json run-b.json   # one Stryker run per file: combined
//
// With several reports, a file's results come from the last report that has the file.
//
// Score as Stryker computes it: detected (killed + timed out) ÷ (detected + survived + no coverage);
// ignored mutants, compile errors and runtime errors are not valid mutants and count nowhere.
import { readFileSync } from 'node:fs';

const DETECTED = new Set(['Killed', 'Timeout']);
const UNDETECTED = new Set(['Survived', 'NoCoverage']);

function usage() {
  console.error('usage: node scripts/mutation-report.mjs <stryker mutation.json> [more reports…]');
  process.exit(2);
}

/** One line of source, trimmed and cut to `max` characters, safe inside a Markdown table cell. */
function cell(text, max = 70) {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  const cut = oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
  return '`' + cut.replace(/`/g, "'").replace(/\|/g, '\\|') + '`';
}

function percent(detected, valid) {
  return valid === 0 ? 'n/a' : `${((100 * detected) / valid).toFixed(1)} %`;
}

const paths = process.argv.slice(2);
if (paths.length === 0) usage();
const byFile = {};
for (const path of paths) Object.assign(byFile, JSON.parse(readFileSync(path, 'utf8')).files);
const files = Object.entries(byFile).sort(([a], [b]) => a.localeCompare(b));

const rows = [];
const undetected = [];
const total = { detected: 0, timeout: 0, undetected: 0, ignored: 0, invalid: 0 };
for (const [file, { source, mutants }] of files) {
  const lines = source.split('\n');
  const count = { detected: 0, timeout: 0, undetected: 0, ignored: 0, invalid: 0 };
  for (const m of mutants) {
    if (DETECTED.has(m.status)) {
      count.detected += 1;
      if (m.status === 'Timeout') count.timeout += 1;
    } else if (UNDETECTED.has(m.status)) {
      count.undetected += 1;
      const line = m.location.start.line;
      undetected.push({ file, line, column: m.location.start.column, status: m.status, mutator: m.mutatorName, original: lines[line - 1] ?? '', replacement: m.replacement ?? '' });
    } else if (m.status === 'Ignored') count.ignored += 1;
    else count.invalid += 1;
  }
  for (const k of Object.keys(total)) total[k] += count[k];
  rows.push(`| \`${file}\` | ${count.detected + count.undetected} | ${count.detected} (${count.timeout}) | ${count.undetected} | ${count.ignored} | ${count.invalid} | ${percent(count.detected, count.detected + count.undetected)} |`);
}

const out = [];
out.push('| file | valid mutants | detected (timed out) | undetected | ignored (static) | not compiling / runtime error | score |');
out.push('| --- | --- | --- | --- | --- | --- | --- |');
out.push(...rows);
out.push(`| **all** | ${total.detected + total.undetected} | ${total.detected} (${total.timeout}) | ${total.undetected} | ${total.ignored} | ${total.invalid} | **${percent(total.detected, total.detected + total.undetected)}** |`);
out.push('');
out.push(`Undetected mutants (${undetected.length}):`);
out.push('');
out.push('| where | status | mutator | original line | replacement |');
out.push('| --- | --- | --- | --- | --- |');
undetected.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
for (const u of undetected) {
  out.push(`| \`${u.file}:${u.line}:${u.column}\` | ${u.status} | ${u.mutator} | ${cell(u.original)} | ${cell(u.replacement, 50)} |`);
}
console.log(out.join('\n'));
