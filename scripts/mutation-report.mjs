#!/usr/bin/env node
// Summarizes a Stryker JSON report (mutation-testing-report-schema) as Markdown: the score per file
// and every mutant that was not detected, with its line and replacement, so survivors can be listed
// in docs/mutation-testing.md and each one killed or explained.
//
//   node scripts/mutation-report.mjs reports/mutation/ledger/mutation.json
//   node scripts/mutation-report.mjs run-a.json run-b.json   # one Stryker run per file: combined
//
// With several reports, a file's results come from the last report that has the file.
import { createRequire } from 'node:module';

const { classify, combine, percent, readReports, undetectedOf } = createRequire(import.meta.url)('./mutation-results.cjs');

/** One line of source, trimmed and cut to `max` characters, safe inside a Markdown table cell. */
function cell(text, max = 70) {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  const cut = oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
  return '`' + cut.replace(/`/g, "'").replace(/\|/g, '\\|') + '`';
}

const paths = process.argv.slice(2);
if (paths.length === 0) {
  console.error('usage: node scripts/mutation-report.mjs <stryker mutation.json> [more reports…]');
  process.exit(2);
}
const files = Object.entries(combine(readReports(paths)).files).sort(([a], [b]) => a.localeCompare(b));

const rows = [];
const undetected = [];
const total = { detected: 0, timeout: 0, undetected: 0, ignored: 0, invalid: 0 };
for (const [file, result] of files) {
  const { count, undetected: missed } = classify(file, result);
  undetected.push(...missed);
  const valid = count.detected + undetectedOf(count);
  for (const k of Object.keys(total)) total[k] += k === 'undetected' ? undetectedOf(count) : count[k];
  rows.push(`| \`${file}\` | ${valid} | ${count.detected} (${count.timeout}) | ${undetectedOf(count)} | ${count.ignored} | ${count.invalid} | ${percent(count.detected, valid)} |`);
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
