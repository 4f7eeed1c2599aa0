/**
 * The folder layering of server/src (eslint.layers.mjs, docs/architecture.md §1.2) holds:
 * an upward import fails lint, the same import downward passes. `npm run lint` applies the same
 * blocks to the real tree.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(__dirname, '../../..');

/*
 * ESLint and the .mjs rule module are loaded in a child process (jest's CommonJS runtime cannot
 * import ES modules); one process lints every case and prints the messages per case as JSON.
 */
const LINTER = `
const path = require('node:path');
const { ESLint } = require('eslint');
const tseslint = require('typescript-eslint');
(async () => {
  const { layerRules } = await import(path.resolve('eslint.layers.mjs'));
  const eslint = new ESLint({ overrideConfigFile: true, overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } }, ...layerRules] });
  const cases = JSON.parse(process.argv[1]);
  const out = [];
  for (const [file, code] of cases) {
    const [r] = await eslint.lintText(code + '\\nexport {};\\n', { filePath: path.resolve(file) });
    out.push(r.messages.map((m) => m.ruleId + ': ' + m.message));
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
`;

function lintAll(cases: Array<[string, string]>): string[][] {
  return JSON.parse(execFileSync(process.execPath, ['-e', LINTER, JSON.stringify(cases)], { cwd: root, encoding: 'utf8' })) as string[][];
}

/** A new file in a folder of server/src (the file need not exist: ESLint lints the text). */
const at = (folder: string): string => ['server', 'src', folder, 'new.ts'].join('/');

const UPWARD: Array<[string, string]> = [
  [at('tlog'), "import { valuesOf } from '../events/repository';"],
  [at('tlog'), "import { exportBundle } from '../export/bundle-export';"],
  [at('tlog'), "import { recentAlerts } from '../audit/repository';"],
  [at('events'), "import { SelfAuditor } from '../audit/self-audit';"],
  [at('auth'), "import type { EventService } from '../events/service';"],
  [at('export'), "import { SelfAuditor } from '../audit/self-audit';"],
  [at('trpc'), "import { stateOf } from '../http/middleware';"],
  [at('trpc/routers'), "import { createApp } from '../../http/app';"],
  [at('api'), "import { appRouter } from '../trpc/routers';"],
  [at('http'), "import { startRuntime } from '../runtime';"],
  [at('db'), "import { LedgerService } from '../tlog/service';"],
  [at('observability'), "import type { Services } from '../api/context';"],
  ['server/src/config.ts', "import { IngestService } from './events/ingest';"],
];
const DOWNWARD: Array<[string, string]> = [
  [at('events'), "import { LogWriter } from '../tlog/log-writer';"],
  [at('events'), "import { activeProducerKeys } from '../auth/producer-keys';"],
  [at('audit'), "import { exportBundle } from '../export/bundle-export';"],
  [at('http'), "import { appRouter } from '../trpc/routers';"],
  [at('trpc/routers'), "import { operations } from '../../api/operations';"],
  [at('trpc/routers'), "import { router } from '../trpc';"],
  [at('tlog'), "import type { Tx } from '../db/client';"],
  ['server/src/runtime.ts', "import { createApp } from './http/app';"],
  [at('db/schema'), "import { events } from './events';"],
];

describe('folder layers', () => {
  let results: string[][];
  beforeAll(() => {
    results = lintAll([...UPWARD, ...DOWNWARD]);
  }, 180_000);

  it.each(UPWARD.map((c, i) => [...c, i] as const))('%s may not %s', (_file, _code, i) => {
    const messages = results[i]!;
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(/^no-restricted-imports: .*(dependencies point down the layers|imports no layer)/);
  });

  it.each(DOWNWARD.map((c, i) => [...c, UPWARD.length + i] as const))('%s may %s', (_file, _code, i) => {
    expect(results[i]).toEqual([]);
  });
});
