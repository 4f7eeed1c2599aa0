/**
 * Configuration: defaults, one clear line per bad variable, production rules, and the README's
 * table kept in step with the schema.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { FILE_VARIABLES, loadConfig, ROLE_SECRETS } from '../../src/config';
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
    [{ NODE_ENV: 'production' }, /^invalid configuration: AUDIT_SIGNING_KEY: required when NODE_ENV=production and AUDIT_ROLE=all$/],
    [{ NODE_ENV: 'production', AUDIT_ROLE: 'api' }, /^invalid configuration: AUDIT_SIGNING_KEY: required when NODE_ENV=production and AUDIT_ROLE=api$/],
    [{ NODE_ENV: 'production', AUDIT_ROLE: 'worker' }, /^invalid configuration: AUDIT_VERIFIER_KEY: required when NODE_ENV=production and AUDIT_ROLE=worker/],
    [{ RETENTION_ARCHIVE_S3_URL: 'https://archive.example/x' }, /^invalid configuration: RETENTION_ARCHIVE_S3_URL: s3:\/\/bucket or s3:\/\/bucket\/prefix/],
    [{ RETENTION_ARCHIVE_S3_URL: 's3://Archive' }, /^invalid configuration: RETENTION_ARCHIVE_S3_URL: /],
    [{ RETENTION_ARCHIVE_S3_URL: 's3://archive/a//b', RETENTION_ARCHIVE_S3_REGION: 'eu-central-1' }, /^invalid configuration: RETENTION_ARCHIVE_S3_URL: the prefix has an empty, `.` or `..` segment$/],
    [{ RETENTION_ARCHIVE_S3_URL: 's3://archive/a/../b', RETENTION_ARCHIVE_S3_REGION: 'eu-central-1' }, /^invalid configuration: RETENTION_ARCHIVE_S3_URL: the prefix has/],
    [{ RETENTION_ARCHIVE_S3_URL: 's3://archive/audit' }, /^invalid configuration: RETENTION_ARCHIVE_S3_REGION: required with RETENTION_ARCHIVE_S3_URL/],
    [{ RETENTION_ARCHIVE_S3_REGION: 'eu-central-1' }, /^invalid configuration: RETENTION_ARCHIVE_S3_REGION: set without RETENTION_ARCHIVE_S3_URL$/],
    [{ RETENTION_ARCHIVE_S3_OBJECT_LOCK_DAYS: '30' }, /^invalid configuration: RETENTION_ARCHIVE_S3_OBJECT_LOCK_DAYS: set without RETENTION_ARCHIVE_S3_URL$/],
    [{ RETENTION_ARCHIVE_S3_URL: 's3://archive', RETENTION_ARCHIVE_S3_REGION: 'us-east-1', RETENTION_ARCHIVE_S3_ENDPOINT: 'minio:9000' }, /^invalid configuration: RETENTION_ARCHIVE_S3_ENDPOINT: /],
    [{ RETENTION_ARCHIVE_S3_URL: 's3://archive', RETENTION_ARCHIVE_S3_REGION: 'us-east-1', RETENTION_ARCHIVE_S3_SSE: 'kms' }, /^invalid configuration: RETENTION_ARCHIVE_S3_SSE: /],
    [{ RETENTION_ARCHIVE_S3_URL: 's3://archive', RETENTION_ARCHIVE_S3_REGION: 'us-east-1', RETENTION_ARCHIVE_S3_KMS_KEY_ID: 'alias/a' }, /^invalid configuration: RETENTION_ARCHIVE_S3_KMS_KEY_ID: needs RETENTION_ARCHIVE_S3_SSE=aws:kms or aws:kms:dsse$/],
    [{ RETENTION_ARCHIVE_S3_URL: 's3://archive', RETENTION_ARCHIVE_S3_REGION: 'us-east-1', RETENTION_ARCHIVE_S3_OBJECT_LOCK_DAYS: '0' }, /^invalid configuration: RETENTION_ARCHIVE_S3_OBJECT_LOCK_DAYS: /],
    [{ RETENTION_ARCHIVE_S3_URL: 's3://archive', RETENTION_ARCHIVE_S3_REGION: 'us-east-1', RETENTION_ARCHIVE_S3_ACCESS_KEY_ID: 'AKIAEXAMPLE' }, /^invalid configuration: RETENTION_ARCHIVE_S3_ACCESS_KEY_ID and RETENTION_ARCHIVE_S3_SECRET_ACCESS_KEY: set both or neither$/],
  ])('rejects %j with a line naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('reads the archive bucket settings (docs/privacy.md §6)', () => {
    const c = loadConfig({
      RETENTION_ARCHIVE_S3_URL: 's3://audit-archive/prod/eu',
      RETENTION_ARCHIVE_S3_REGION: 'eu-central-1',
      RETENTION_ARCHIVE_S3_ENDPOINT: 'https://minio.storage:9000',
      RETENTION_ARCHIVE_S3_FORCE_PATH_STYLE: 'true',
      RETENTION_ARCHIVE_S3_SSE: 'aws:kms',
      RETENTION_ARCHIVE_S3_KMS_KEY_ID: 'arn:aws:kms:eu-central-1:111122223333:key/abc',
      RETENTION_ARCHIVE_S3_OBJECT_LOCK_DAYS: '2190',
    });
    expect(c).toMatchObject({ RETENTION_ARCHIVE_S3_FORCE_PATH_STYLE: true, RETENTION_ARCHIVE_S3_OBJECT_LOCK_DAYS: 2190, RETENTION_ARCHIVE_S3_SSE: 'aws:kms' });
    expect(loadConfig({}).RETENTION_ARCHIVE_S3_FORCE_PATH_STYLE).toBe(false);
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

  describe('secrets per role', () => {
    it('migrate needs only the database in production', () => {
      const c = loadConfig({ NODE_ENV: 'production', AUDIT_ROLE: 'migrate', DATABASE_URL: 'postgres://m@db/audit' });
      expect(c.AUDIT_SIGNING_KEY).toBeUndefined();
      expect(c.AUDIT_BOOTSTRAP_API_KEY).toBeUndefined();
    });

    it('a production worker needs a verifier key, never the signing key', () => {
      expect(loadConfig({ NODE_ENV: 'production', AUDIT_ROLE: 'worker', AUDIT_VERIFIER_KEY: 'k+01020304+AQ==' }).AUDIT_SIGNING_KEY).toBeUndefined();
      expect(loadConfig({ NODE_ENV: 'production', AUDIT_ROLE: 'worker', AUDIT_TRUSTED_VERIFIER_KEYS: 'k+01020304+AQ==' }).AUDIT_TRUSTED_VERIFIER_KEYS).toHaveLength(1);
    });

    it('ROLE_SECRETS assigns every secret variable to a role, and each role starts in production with its own alone', () => {
      expect(new Set(Object.values(ROLE_SECRETS).flat())).toEqual(new Set(FILE_VARIABLES));
      const standIn: Record<string, string> = {
        DATABASE_URL: 'postgres://u@db/audit',
        REDIS_URL: 'redis://redis:6379',
        AUDIT_SIGNING_KEY: 'PRIVATE+KEY+x',
        AUDIT_VERIFIER_KEY: 'k+01020304+AQ==',
        AUDIT_BOOTSTRAP_API_KEY: 'b'.repeat(40),
        AUDIT_TRUSTED_VERIFIER_KEYS: 'old+01020304+AQ==',
        AUDIT_WITNESS_URL: 'https://witness.example/add',
        AUTH_SECRET: 's'.repeat(40),
        INNGEST_SIGNING_KEY: 'signkey-prod-' + 'ab'.repeat(32),
        DELIVERY_SECRET_KEY: Buffer.alloc(32, 7).toString('base64'),
        RETENTION_ARCHIVE_S3_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
        RETENTION_ARCHIVE_S3_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      };
      for (const [role, names] of Object.entries(ROLE_SECRETS)) {
        const env = Object.fromEntries(names.map((n) => [n, standIn[n]]));
        expect(loadConfig({ NODE_ENV: 'production', AUDIT_ROLE: role, ...env }).AUDIT_ROLE).toBe(role);
      }
      // The worker's list holds no private key: it starts on the public one.
      expect(ROLE_SECRETS.worker).not.toContain('AUDIT_SIGNING_KEY');
    });

    it('the admin CLI (roleSecrets: false) needs no signing key in production', () => {
      expect(loadConfig({ NODE_ENV: 'production' }, { roleSecrets: false }).NODE_ENV).toBe('production');
    });
  });

  describe('<NAME>_FILE secrets', () => {
    let dir: string;
    beforeAll(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-config-'));
    });
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = (name: string, content: string) => {
      const p = path.join(dir, name);
      fs.writeFileSync(p, content, { mode: 0o600 });
      return p;
    };

    it.each(FILE_VARIABLES.map((v) => [v]))('%s can be given as a file, trailing newline trimmed', (name) => {
      const values: Record<string, string> = {
        DATABASE_URL: 'postgres://u:p%40ss@db.internal:5432/audit',
        REDIS_URL: 'redis://:pw@redis:6379/0',
        REDIS_SENTINEL_PASSWORD: 'sentinel-pw',
        AUDIT_SIGNING_KEY: 'PRIVATE+KEY+test.audit+01020304+AQ==',
        AUDIT_VERIFIER_KEY: 'test.audit+01020304+AQ==',
        AUDIT_BOOTSTRAP_API_KEY: 'sak_' + 'x'.repeat(40),
        AUDIT_TRUSTED_VERIFIER_KEYS: 'old+01020304+AQ==',
        AUDIT_WITNESS_URL: 'https://witness.example/add',
        AUTH_SECRET: 's'.repeat(40),
        INNGEST_SIGNING_KEY: 'signkey-prod-' + 'ab'.repeat(32),
        DELIVERY_SECRET_KEY: Buffer.alloc(32, 7).toString('base64'),
        RETENTION_ARCHIVE_S3_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
        RETENTION_ARCHIVE_S3_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      };
      // The archive bucket's key id and secret come as a pair: the other one plainly.
      const pair = ['RETENTION_ARCHIVE_S3_ACCESS_KEY_ID', 'RETENTION_ARCHIVE_S3_SECRET_ACCESS_KEY'];
      const partner = pair.includes(name) ? Object.fromEntries(pair.filter((p) => p !== name).map((p) => [p, values[p]])) : {};
      const c = loadConfig({ ...partner, [`${name}_FILE`]: file(name, `${values[name]}\n`) });
      const got = c[name];
      expect(Array.isArray(got) ? got.join(',') : got).toBe(values[name]);
      // CRLF too, and only one newline is trimmed.
      expect(loadConfig({ AUDIT_BOOTSTRAP_API_KEY_FILE: file('crlf', `${'y'.repeat(40)}\r\n`) }).AUDIT_BOOTSTRAP_API_KEY).toBe('y'.repeat(40));
    });

    it('refuses both forms at once, naming the variable', () => {
      expect(() => loadConfig({ DATABASE_URL: 'postgres://a@b/c', DATABASE_URL_FILE: file('db', 'postgres://a@b/c') })).toThrow(
        /^invalid configuration: DATABASE_URL_FILE: set either DATABASE_URL or DATABASE_URL_FILE, not both$/,
      );
    });

    it('a missing or unreadable file is one line naming the variable, never the content', () => {
      expect(() => loadConfig({ AUDIT_SIGNING_KEY_FILE: path.join(dir, 'absent') })).toThrow(
        new RegExp(`^invalid configuration: AUDIT_SIGNING_KEY_FILE: cannot read ${path.join(dir, 'absent').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(ENOENT\\)$`),
      );
      expect(() => loadConfig({ REDIS_URL_FILE: dir })).toThrow(/^invalid configuration: REDIS_URL_FILE: cannot read .* \(EISDIR\)$/);
      // A value read from a file is validated like the plain variable.
      expect(() => loadConfig({ AUDIT_BOOTSTRAP_API_KEY_FILE: file('short', 'short\n') })).toThrow(/^invalid configuration: AUDIT_BOOTSTRAP_API_KEY: at least 32 characters$/);
    });

    it('a worker started from files alone trusts the verifier key file', () => {
      const c = loadConfig({ NODE_ENV: 'production', AUDIT_ROLE: 'worker', AUDIT_VERIFIER_KEY_FILE: file('vk', 'test.audit+01020304+AQ==\n') });
      expect(c.AUDIT_VERIFIER_KEY).toBe('test.audit+01020304+AQ==');
    });
  });
});
