#!/usr/bin/env node
// Plants one mutant by hand and runs the given tests on it: the check behind every "killed when
// planted" in docs/mutation-*.md, for a mutant Stryker reported as surviving although it could not
// have been live (see docs/mutation-testing.md, "Mutants Stryker never activated").
//
//   node scripts/plant-mutant.mjs <file>:<line> '<original>' '<replacement>' <test file>…
//
// <original> must occur exactly once on that line. Prints KILLED (some test failed) or SURVIVED
// (every test passed) and exits 0 either way. A suite that cannot even load (the planted code does
// not parse, or throws at import) proves nothing about the tests: that is BROKEN, exit 1. A run
// still going after PLANT_TIMEOUT_S seconds (default 600) is stopped and reported as TIMEOUT, which
// Stryker also counts as detected: a mutant that hangs the tests (a connection never given back
// keeps the pool from closing) does not pass them. Exits 2 on bad arguments. The file is restored
// afterwards, also when the run is interrupted.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const [where, original, replacement, ...tests] = process.argv.slice(2);
const fail = (message) => {
  console.error(`plant-mutant: ${message}`);
  process.exit(2);
};
const m = /^(.+):(\d+)$/.exec(where ?? '');
if (!m || original === undefined || replacement === undefined || tests.length === 0) fail("usage: plant-mutant.mjs <file>:<line> '<original>' '<replacement>' <test file>…");
const file = resolve(m[1]);
const lineNo = Number(m[2]);
const source = readFileSync(file, 'utf8');
const lines = source.split('\n');
const line = lines[lineNo - 1];
if (line === undefined) fail(`${m[1]} has no line ${lineNo}`);
const at = line.indexOf(original);
if (at < 0 || line.indexOf(original, at + 1) >= 0) fail(`'${original}' must occur exactly once on ${m[1]}:${lineNo}`);
lines[lineNo - 1] = line.slice(0, at) + replacement + line.slice(at + original.length);

const restore = () => writeFileSync(file, source);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    restore();
    process.exit(130);
  });
}
writeFileSync(file, lines.join('\n'));
let run;
try {
  // As `npm run test:unit` runs jest (the auth and ingest tests load ESM-only libraries).
  run = spawnSync(process.execPath, ['--experimental-vm-modules', '--disable-warning=ExperimentalWarning', 'node_modules/jest/bin/jest.js', '--ci', '--silent', ...tests], {
    encoding: 'utf8',
    env: process.env,
    timeout: Number(process.env.PLANT_TIMEOUT_S ?? 600) * 1000,
    killSignal: 'SIGKILL',
  });
} finally {
  restore();
}
const timedOut = run.error?.code === 'ETIMEDOUT';
if (run.error && !timedOut) fail(`jest did not run: ${run.error.message}`);
const failed = [...run.stderr.matchAll(/^\s*● (.+)$/gm)].map((x) => x[1]).filter((t) => !t.startsWith('Console'));
const broken = failed.includes('Test suite failed to run');
const verdict = timedOut ? 'TIMEOUT' : broken ? 'BROKEN' : run.status === 0 ? 'SURVIVED' : 'KILLED';
console.log(`${verdict} ${m[1]}:${lineNo} '${original}' -> '${replacement}'`);
for (const t of [...new Set(failed)]) console.log(`  failed: ${t}`);
if (broken) process.exitCode = 1;
