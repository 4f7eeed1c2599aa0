/**
 * The skip reporter of jest.config.ts: every skipped test is listed with its name (which carries
 * the reason for a PostgreSQL block that cannot run), and with TEST_DATABASE_URL set a full run
 * that skipped anything fails; a focused run (a path or a name pattern) is only reported.
 */
import { createRequire } from 'node:module';
import path from 'node:path';

interface Reporter {
  onRunComplete(contexts: unknown, results: unknown): void;
  getLastError(): Error | undefined;
}
type ReporterClass = new (config: { testNamePattern?: string; nonFlagArgs: string[] }) => Reporter;
const SkipReporter = createRequire(__filename)(
  path.resolve(__dirname, '../reporters/skip-reporter.cjs'),
) as ReporterClass;

const results = (statuses: string[]) => ({
  testResults: [
    {
      testResults: statuses.map((status, i) => ({
        status,
        fullName: `block [skipped: TEST_DATABASE_URL is not set] test ${i}`,
      })),
    },
  ],
});

describe('skip reporter', () => {
  const saved = process.env.TEST_DATABASE_URL;
  let written = '';
  let write: jest.SpyInstance;
  beforeEach(() => {
    written = '';
    write = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written += String(chunk);
      return true;
    });
  });
  afterEach(() => {
    write.mockRestore();
    if (saved === undefined) delete process.env.TEST_DATABASE_URL;
    else process.env.TEST_DATABASE_URL = saved;
  });

  it('fails a full run that skipped a test while TEST_DATABASE_URL is set, naming the test and its reason', () => {
    process.env.TEST_DATABASE_URL = 'postgres://example/test';
    const reporter = new SkipReporter({ nonFlagArgs: [] });
    reporter.onRunComplete(new Set(), results(['passed', 'pending', 'passed']));
    expect(reporter.getLastError()?.message).toMatch(/1 test\(s\) skipped although TEST_DATABASE_URL is set/);
    expect(written).toContain('block [skipped: TEST_DATABASE_URL is not set] test 1');
  });

  it('lists skipped tests without failing when TEST_DATABASE_URL is unset', () => {
    delete process.env.TEST_DATABASE_URL;
    const reporter = new SkipReporter({ nonFlagArgs: [] });
    reporter.onRunComplete(new Set(), results(['pending', 'todo']));
    expect(reporter.getLastError()).toBeUndefined();
    expect(written).toMatch(
      /2 test\(s\) skipped:\n {2}- block \[skipped: TEST_DATABASE_URL is not set\] test 0\n {2}- block/,
    );
  });

  it('only reports a focused run, and says nothing when nothing was skipped', () => {
    process.env.TEST_DATABASE_URL = 'postgres://example/test';
    const focused = new SkipReporter({ nonFlagArgs: ['server/test/api'] });
    focused.onRunComplete(new Set(), results(['pending']));
    expect(focused.getLastError()).toBeUndefined();
    const clean = new SkipReporter({ nonFlagArgs: [] });
    written = '';
    clean.onRunComplete(new Set(), results(['passed']));
    expect(clean.getLastError()).toBeUndefined();
    expect(written).toBe('');
  });
});
