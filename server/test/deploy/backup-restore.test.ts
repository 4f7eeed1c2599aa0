/**
 * scripts/backup.sh → drop → scripts/restore.sh → verify, against real PostgreSQL, real gpg and
 * the real server: events are written through the running server for two organizations, the
 * database is backed up (encrypted to a gpg public key), dropped, restored into a fresh database
 * of the same name, and every organization's ledger is re-verified by `audit-admin
 * verify-ledger`. A tampered database must fail that verification after the same round trip.
 */
import { readFileSync, writeFileSync, copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  createThrowawayDatabase,
  dropDatabase,
  fetchOnce,
  postgresForTests,
  withClient,
  withDatabase,
} from './support/services';
import type { ThrowawayDatabase } from './support/services';
import { newApiKey, runServerCommand, startAuditServer } from './support/server';
import {
  REPO_ROOT,
  describeResult,
  freePort,
  makeTempDir,
  requireBinary,
  run,
  stopAll,
} from './support/tools';
import type { CommandResult } from './support/tools';
import { parseSignerKey } from '../../src/ledger';

jest.setTimeout(240_000);

const pg = postgresForTests();
if (pg.url === undefined) console.warn(`backup/restore: ${pg.reason}`);
const describeWithPostgres = pg.url === undefined ? describe.skip : describe;

describeWithPostgres('backup → drop → restore → verify against real PostgreSQL', () => {
  const temp = makeTempDir('backup');
  const gnupgHome = join(temp.dir, 'gnupg');
  const created: string[] = [];
  let source: ThrowawayDatabase;
  let fingerprint: string;
  let eventsWritten: Record<string, number>;

  /** Environment for the scripts: the admin CLI runs from source, gpg uses the test keyring. */
  const scriptEnv = (): Record<string, string> => ({
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    GNUPGHOME: gnupgHome,
    NODE_ENV: 'test',
    AUDIT_DATA_DIR: join(temp.dir, 'data'),
    AUDIT_ADMIN: `node --import tsx ${join(REPO_ROOT, 'server', 'src', 'cli', 'admin.ts')}`,
  });
  const script = (name: string, args: string[]): CommandResult =>
    run('bash', [join(REPO_ROOT, 'scripts', name), ...args], { env: scriptEnv(), timeoutMs: 180_000 });
  /** The verifier key of the key the source server generated: what the operator passes with --key. */
  const verifierKey = (): string => parseSignerKey(readFileSync(join(temp.dir, 'data', 'signing-key'), 'utf8').trim()).verifierKey;
  const countEvents = (url: string) =>
    withClient(url, async (c) => {
      const rows = await c.query<{ organization_id: string; n: string }>(
        'SELECT organization_id, count(*) AS n FROM events GROUP BY organization_id',
      );
      return Object.fromEntries(rows.rows.map((r) => [r.organization_id, Number(r.n)]));
    });

  beforeAll(async () => {
    for (const tool of ['pg_dump', 'pg_restore', 'psql']) requireBinary(tool, 'postgresql-client');
    requireBinary('gpg', 'gnupg');
    source = await createThrowawayDatabase(pg.url!, 'backup');
    created.push(source.name);

    // A backup operator's key pair in a throwaway keyring (no passphrase on the test key).
    mkdirSync(gnupgHome, { mode: 0o700 });
    const gen = run(
      'gpg',
      [
        '--batch',
        '--pinentry-mode',
        'loopback',
        '--passphrase',
        '',
        '--quick-generate-key',
        'Audit Backup Test <backup@test.invalid>',
        'future-default',
        'default',
        'never',
      ],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', GNUPGHOME: gnupgHome } },
    );
    if (gen.status !== 0) throw new Error(describeResult('gpg --quick-generate-key', gen));
    const listing = run('gpg', ['--batch', '--with-colons', '--list-keys'], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', GNUPGHOME: gnupgHome },
    });
    fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(listing.stdout)?.[1] ?? '';
    expect(fingerprint).toMatch(/^[0-9A-F]{40}$/);

    // Write events through the real server: the bootstrap organization plus a second one.
    const apiKey = newApiKey();
    const env = {
      NODE_ENV: 'test',
      DATABASE_URL: source.url,
      AUDIT_BOOTSTRAP_API_KEY: apiKey,
      AUDIT_DATA_DIR: join(temp.dir, 'data'),
      RATE_LIMIT_PER_MINUTE: '0',
    };
    const server = await startAuditServer('backup-source', await freePort(), env);
    const second = runServerCommand(env, {
      script: 'admin',
      args: ['organizations', 'create', '--name', 'second-clinic'],
    });
    if (second.status !== 0) throw new Error(describeResult('audit-admin organizations create', second));
    const secondKey = (JSON.parse(second.stdout) as { adminKey: string }).adminKey;
    for (const [key, count] of [
      [apiKey, 37],
      [secondKey, 11],
    ] as const) {
      for (let i = 0; i < count; i++) {
        const response = await fetchOnce({
          port: server.port,
          path: '/api/v1/events',
          method: 'POST',
          headers: { authorization: `Bearer ${key}` },
          body: JSON.stringify({
            action: 'record.read',
            status: 'success',
            principalId: `user-${i}`,
            details: { n: i },
          }),
        });
        if (response.status !== 201) throw new Error(`event ${i}: ${response.status} ${response.body}`);
      }
    }
    await server.process.stop();
    eventsWritten = await countEvents(source.url);
  });

  afterAll(async () => {
    await stopAll();
    for (const name of created) await dropDatabase(pg.url!, name).catch(() => undefined);
    temp.remove();
  });

  it('round-trips: backup (gpg public key), drop, restore with --create, ledger verified', async () => {
    expect(Object.values(eventsWritten).sort((a, b) => a - b)).toEqual([11, 37]);
    const file = join(temp.dir, 'backups', 'audit.dump.gz.gpg');

    const backup = script('backup.sh', ['-d', source.url, '-r', fingerprint, '-f', file]);
    expect(describeResult('backup.sh', backup)).toMatch(/^backup.sh exited 0/);
    expect(backup.stdout.trim()).toBe(file);

    // The file is an OpenPGP message for our key, not a readable dump.
    const bytes = readFileSync(file);
    expect(bytes.includes(Buffer.from('PGDMP'))).toBe(false);
    const packets = run('gpg', ['--batch', '--list-packets', '--list-only', file], { env: scriptEnv() });
    expect(`${packets.stdout}${packets.stderr}`).toMatch(/pubkey enc packet/);
    expect(readFileSync(`${file}.sha256`, 'utf8')).toMatch(/^[0-9a-f]{64} {2}audit\.dump\.gz\.gpg\n$/);

    await dropDatabase(pg.url!, source.name);

    const restore = script('restore.sh', ['-i', file, '-d', source.url, '--create', '--key', verifierKey()]);
    expect(describeResult('restore.sh', restore)).toMatch(/^restore.sh exited 0/);
    expect(restore.stderr).toContain('ledger verified');
    const report = JSON.parse(restore.stdout) as {
      ok: boolean;
      organizations: { organizationId: string; ok: boolean; size: number }[];
    };
    expect(report.ok).toBe(true);
    expect(
      report.organizations
        .map((o) => ({ id: o.organizationId, ok: o.ok, size: o.size }))
        .sort((a, b) => a.size - b.size),
    ).toEqual(
      Object.entries(eventsWritten)
        .map(([id, size]) => ({ id, ok: true, size }))
        .sort((a, b) => a.size - b.size),
    );
    expect(await countEvents(source.url)).toEqual(eventsWritten);
  });

  it('refuses to restore into a database that is not empty', () => {
    const file = join(temp.dir, 'backups', 'audit.dump.gz.gpg');
    // The previous test restored into source.name: it now holds the ledger.
    const again = script('restore.sh', ['-i', file, '-d', source.url]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/is not empty .*restore only into an empty database/);
  });

  it('refuses a backup whose checksum does not match', async () => {
    const original = join(temp.dir, 'backups', 'audit.dump.gz.gpg');
    const damaged = join(temp.dir, 'damaged', 'audit.dump.gz.gpg');
    mkdirSync(join(temp.dir, 'damaged'));
    copyFileSync(`${original}.sha256`, `${damaged}.sha256`);
    const bytes = readFileSync(original);
    const middle = bytes.length >> 1;
    bytes[middle] = bytes[middle]! ^ 0xff;
    writeFileSync(damaged, bytes);
    const target = await createThrowawayDatabase(pg.url!, 'damaged');
    created.push(target.name);
    const result = script('restore.sh', ['-i', damaged, '-d', target.url]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('checksum mismatch');
  });

  it('fails verification after restoring a database whose ledger was tampered with (passphrase backup)', async () => {
    // Alter one committed field behind the append-only triggers' back (replica mode skips them),
    // as an attacker with superuser access could, then take a backup of that database.
    const tampered = await createThrowawayDatabase(pg.url!, 'tampered');
    created.push(tampered.name);
    const passphrase = join(temp.dir, 'passphrase');
    writeFileSync(passphrase, `${newApiKey()}\n`, { mode: 0o600 });
    const clean = script('backup.sh', [
      '-d',
      source.url,
      '-p',
      passphrase,
      '-f',
      join(temp.dir, 'clean.dump.gz.gpg'),
    ]);
    expect(describeResult('backup.sh', clean)).toMatch(/exited 0/);
    const restoreClean = script('restore.sh', [
      '-i',
      join(temp.dir, 'clean.dump.gz.gpg'),
      '-p',
      passphrase,
      '-d',
      tampered.url,
      '--no-verify',
    ]);
    expect(describeResult('restore.sh --no-verify', restoreClean)).toMatch(/exited 0/);
    await withClient(tampered.url, async (c) => {
      await c.query("SET session_replication_role = 'replica'");
      const updated = await c.query(
        "UPDATE events SET commitments = jsonb_set(commitments, '{action}', to_jsonb(repeat('0', 64))) WHERE leaf_index = 5",
      );
      expect(updated.rowCount).toBeGreaterThan(0);
    });

    const file = join(temp.dir, 'tampered.dump.gz.gpg');
    const backup = script('backup.sh', ['-d', tampered.url, '-p', passphrase, '-f', file]);
    expect(describeResult('backup.sh', backup)).toMatch(/exited 0/);
    await dropDatabase(pg.url!, tampered.name);

    const restore = script('restore.sh', ['-i', file, '-p', passphrase, '-d', tampered.url, '--create', '--key', verifierKey()]);
    expect(restore.status).toBe(1);
    expect(restore.stderr).toContain('ledger verification FAILED');
    const report = JSON.parse(restore.stdout) as {
      ok: boolean;
      organizations: { ok: boolean; failure?: { leafIndex?: number } }[];
    };
    expect(report.ok).toBe(false);
    expect(report.organizations.filter((o) => !o.ok).map((o) => o.failure?.leafIndex)).toContain(5);
  });

  it('prints the exact pipeline with --dry-run, with the password moved out of the URL', () => {
    const url = withDatabase('postgres://audit:s3cr%40t@db.internal:5432/x', 'audit');
    const dry = script('backup.sh', [
      '-d',
      url,
      '-r',
      fingerprint,
      '-f',
      '/backups/a.dump.gz.gpg',
      '--dry-run',
    ]);
    expect(dry.status).toBe(0);
    expect(dry.stdout).toBe(
      [
        'mkdir -p /backups',
        `pg_dump --format=custom --compress=0 --dbname=postgres://audit@db.internal:5432/audit | gzip -9 | gpg --batch --yes --no-tty --output /backups/a.dump.gz.gpg.partial --trust-model always --encrypt --recipient ${fingerprint}`,
        'mv /backups/a.dump.gz.gpg.partial /backups/a.dump.gz.gpg',
        '(cd /backups && sha256sum a.dump.gz.gpg) > /backups/a.dump.gz.gpg.sha256',
        '',
      ].join('\n'),
    );
    expect(dry.stdout).not.toContain('s3cr');
    const dryRestore = script('restore.sh', [
      '-i',
      '/backups/a.dump.gz.gpg',
      '-d',
      url,
      '-p',
      '/run/secrets/pass',
      '--create',
      '--key',
      'test.audit+0badc0de+AQ==',
      '--key',
      'old+12345678+AQ==',
      '--dry-run',
    ]);
    expect(dryRestore.status).toBe(0);
    expect(dryRestore.stdout.split('\n')).toEqual([
      'psql --dbname=postgres://audit@db.internal:5432/postgres --no-psqlrc --quiet -v ON_ERROR_STOP=1 --command CREATE\\ DATABASE\\ \\"audit\\"',
      expect.stringMatching(
        /^psql --dbname=postgres:\/\/audit@db.internal:5432\/audit --no-psqlrc --tuples-only --no-align -v ON_ERROR_STOP=1 --command /,
      ),
      'gpg --batch --no-tty --decrypt --pinentry-mode loopback --passphrase-file /run/secrets/pass /backups/a.dump.gz.gpg | gzip -dc | pg_restore --dbname=postgres://audit@db.internal:5432/audit --no-owner --exit-on-error --single-transaction',
      `env DATABASE_URL=postgres://audit@db.internal:5432/audit node --import tsx ${join(REPO_ROOT, 'server', 'src', 'cli', 'admin.ts')} verify-ledger --key test.audit+0badc0de+AQ== --key old+12345678+AQ==`,
      '',
    ]);
  });
});
