/**
 * Configuration: defaults, one clear line per bad variable, production rules, and the README's
 * table kept in step with the schema.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { loadConfig } from '../../src/config';
import { withConfigTable } from '../../src/config-docs';

describe('configuration', () => {
  it('applies safe defaults to an empty environment', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ PORT: 3000, AUDIT_ROLE: 'all', AUDIT_DATA_DIR: './data', INGEST_MAX_BATCH: 1000, CORS_ORIGINS: [] });
    expect(c.DATABASE_URL).toBeUndefined();
  });

  it('treats empty strings as unset and parses lists and booleans', () => {
    const c = loadConfig({ PORT: '', CORS_ORIGINS: 'https://a.example, https://b.example', DATABASE_MIGRATE_ON_START: 'false' });
    expect(c.PORT).toBe(3000);
    expect(c.CORS_ORIGINS).toEqual(['https://a.example', 'https://b.example']);
    expect(c.DATABASE_MIGRATE_ON_START).toBe(false);
  });

  it.each([
    [{ PORT: 'eighty' }, /^invalid configuration: PORT: /],
    [{ DATABASE_URL: 'mysql://x' }, /^invalid configuration: DATABASE_URL: /],
    [{ AUDIT_ROLE: 'boss' }, /^invalid configuration: AUDIT_ROLE: /],
    [{ AUDIT_BOOTSTRAP_API_KEY: 'short' }, /^invalid configuration: AUDIT_BOOTSTRAP_API_KEY: at least 32 characters$/],
    [{ NODE_ENV: 'production' }, /^invalid configuration: AUDIT_SIGNING_KEY: required when NODE_ENV=production$/],
  ])('rejects %j with a line naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('stops the server at start-up with one line on stderr and exit 1', () => {
    const root = path.resolve(__dirname, '../../..');
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'server/src/main.ts'], {
      cwd: root,
      env: { PATH: process.env.PATH, PORT: '99999' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual(['invalid configuration: PORT: Too big: expected number to be <=65535']);
  });

  it('documents every variable in README.md exactly as the schema says', () => {
    const readme = fs.readFileSync(path.resolve(__dirname, '../../../README.md'), 'utf8');
    expect(readme).toBe(withConfigTable(readme));
  });
});
