/**
 * The folder layering of server/src (eslint.layers.mjs, docs/architecture.md "Layout") holds:
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

const UPWARD: Array<[string, string]> = [
  ['server/src/tlog/new.ts', "import { valuesOf } from '../events/repository';"],
  ['server/src/tlog/new.ts', "import { exportBundle } from '../export/bundle-export';"],
  ['server/src/tlog/new.ts', "import { recentAlerts } from '../audit/repository';"],
  ['server/src/events/new.ts', "import { SelfAuditor } from '../audit/self-audit';"],
  ['server/src/auth/new.ts', "import type { EventService } from '../events/service';"],
  ['server/src/export/new.ts', "import { SelfAuditor } from '../audit/self-audit';"],
  ['server/src/trpc/new.ts', "import { stateOf } from '../http/middleware';"],
  ['server/src/trpc/routers/new.ts', "import { createApp } from '../../http/app';"],
  ['server/src/api/new.ts', "import { appRouter } from '../trpc/routers';"],
  ['server/src/http/new.ts', "import { startRuntime } from '../runtime';"],
  ['server/src/db/new.ts', "import { LedgerService } from '../tlog/service';"],
  ['server/src/observability/new.ts', "import type { Services } from '../api/context';"],
  ['server/src/config.ts', "import { IngestService } from './events/ingest';"],
];
const DOWNWARD: Array<[string, string]> = [
  ['server/src/events/new.ts', "import { LogWriter } from '../tlog/log-writer';"],
  ['server/src/events/new.ts', "import { activeProducerKeys } from '../auth/producer-keys';"],
  ['server/src/audit/new.ts', "import { exportBundle } from '../export/bundle-export';"],
  ['server/src/http/new.ts', "import { appRouter } from '../trpc/routers';"],
  ['server/src/trpc/routers/new.ts', "import { operations } from '../../api/operations';"],
  ['server/src/trpc/routers/new.ts', "import { router } from '../trpc';"],
  ['server/src/tlog/new.ts', "import type { Tx } from '../db/client';"],
  ['server/src/runtime.ts', "import { createApp } from './http/app';"],
  ['server/src/db/schema/new.ts', "import { events } from './events';"],
];

describe('folder layers', () => {
  let results: string[][];
  beforeAll(() => {
    results = lintAll([...UPWARD, ...DOWNWARD]);
  }, 60_000);

  it.each(UPWARD.map((c, i) => [...c, i] as const))('%s may not %s', (_file, _code, i) => {
    const messages = results[i]!;
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(/^no-restricted-imports: .*(dependencies point down the layers|imports no layer)/);
  });

  it.each(DOWNWARD.map((c, i) => [...c, UPWARD.length + i] as const))('%s may %s', (_file, _code, i) => {
    expect(results[i]).toEqual([]);
  });
});
