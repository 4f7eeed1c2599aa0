/* eslint-disable @typescript-eslint/no-unsafe-return --
   tests walk synthesized manifest JSON, whose shape the assertions themselves check */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Testing } from 'cdk8s';
import { backupScript, initRolesScript, PgVectorDb } from '../src/pg-vector-db';
import type { PgVectorDbProps } from '../src/pg-vector-db';
import { validateManifests } from '../src/validate';
import { freePort, hasBinary, run } from './support/processes';
import { openDatabase } from '../../server/src/db/client';
import { ensurePartitions, loadMigrations, migrate } from '../../server/src/db/migrate';
import { postgresBinDir, startTempPostgres } from './support/postgres';
import type { TempPostgres } from './support/postgres';

function synth(props: PgVectorDbProps = {}): { objects: any[]; db: PgVectorDb } {
  const chart = Testing.chart();
  const db = new PgVectorDb(chart, 'Postgres', props);
  return { objects: Testing.synth(chart), db };
}
const get = (objects: any[], kind: string, name: string): any => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  return o;
};

describe('PgVectorDb', () => {
  const { objects, db } = synth({ electricEnabled: true });
  const sts = get(objects, 'StatefulSet', 'postgres');
  const pod = sts.spec.template.spec;
  const container = pod.containers[0];

  it('matches the snapshot', () => {
    expect(objects).toMatchSnapshot();
  });

  it('runs pgvector 0.8.6 on PostgreSQL 17 (an exact release tag) with its config file, pg_stat_statements preloaded and logical WAL', () => {
    expect(container.image).toBe('pgvector/pgvector:0.8.6-pg17');
    expect(container.args).toEqual(['postgres', '-c', 'config_file=/etc/postgresql/postgresql.conf']);
    const conf: string = get(objects, 'ConfigMap', 'postgres-config').data['postgresql.conf'];
    expect(conf.split('\n')).toEqual(
      expect.arrayContaining(["shared_preload_libraries = 'pg_stat_statements'", 'wal_level = logical']),
    );
  });

  it('claims its data volume with a volumeClaimTemplate and mounts /dev/shm as memory', () => {
    expect(sts.spec.volumeClaimTemplates[0].spec).toEqual({
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '20Gi' } },
    });
    expect(pod.volumes).toContainEqual({ name: 'shm', emptyDir: { sizeLimit: '256Mi', medium: 'Memory' } });
    expect(container.volumeMounts).toContainEqual({ name: 'shm', mountPath: '/dev/shm' });
  });

  it('takes every password from the Secret', () => {
    const secretEnv = container.env
      .filter((e: any) => e.valueFrom)
      .map((e: any) => [e.name, e.valueFrom.secretKeyRef.key]);
    expect(secretEnv).toEqual([
      ['POSTGRES_PASSWORD', 'superuser-password'],
      ['AUDIT_MIGRATOR_PASSWORD', 'migrator-password'],
      ['AUDIT_APP_PASSWORD', 'app-password'],
    ]);
    expect(get(objects, 'ConfigMap', 'postgres-initdb').data['10-audit-roles.sh']).not.toMatch(
      /PASSWORD '[^:]/,
    );
  });

  it('probes with pg_isready: liveness tolerates recovery, readiness needs a TCP client to be accepted', () => {
    expect(container.livenessProbe.exec.command).toEqual([
      'sh',
      '-c',
      'pg_isready --host=/var/run/postgresql --port=5432; test $? -ne 2',
    ]);
    expect(container.readinessProbe.exec.command).toEqual([
      'sh',
      '-c',
      'pg_isready --host=127.0.0.1 --port=5432 --username="$POSTGRES_USER" --dbname="$POSTGRES_DB"',
    ]);
  });

  it('exposes connection info', () => {
    expect([db.host, db.port, db.databaseName, db.migratorRole, db.appRole]).toEqual([
      'postgres.smedrec-audit.svc.cluster.local',
      5432,
      'audit',
      'audit_migrator',
      'audit_runtime',
    ]);
    expect(db.connectionUrl(db.appRole)).toBe(
      'postgresql://audit_runtime@postgres.smedrec-audit.svc.cluster.local:5432/audit',
    );
    expect(db.backupClaimName).toBe('postgres-backups');
  });

  it('backs up nightly with pg_dump to a PVC, never concurrently', () => {
    const cron = get(objects, 'CronJob', 'postgres-backup');
    expect(cron.spec).toMatchObject({
      schedule: '15 2 * * *',
      timeZone: 'Etc/UTC',
      concurrencyPolicy: 'Forbid',
    });
    const spec = cron.spec.jobTemplate.spec.template.spec;
    expect(spec.volumes[0]).toEqual({
      name: 'backups',
      persistentVolumeClaim: { claimName: 'postgres-backups' },
    });
    expect(spec.containers[0].command[2]).toContain('pg_dump --format=custom --compress=6');
  });

  it('admits the audit server, Electric and the backup job to 5432, nobody else', () => {
    const np = get(objects, 'NetworkPolicy', 'postgres').spec;
    expect(
      np.ingress[0].from.map(
        (p: any) =>
          p.podSelector.matchLabels['app.kubernetes.io/name'] +
          '/' +
          (p.podSelector.matchLabels['app.kubernetes.io/component'] ?? '*'),
      ),
    ).toEqual(['audit-server/*', 'electric/sync', 'postgres/backup']);
  });

  it('optionally runs ElectricSQL with its secrets referenced', () => {
    const electric = get(objects, 'Deployment', 'postgres-electric').spec.template.spec.containers[0];
    expect(electric.env.map((e: any) => e.valueFrom?.secretKeyRef.key ?? e.value)).toEqual([
      'electric-database-url',
      'electric-secret',
      '/var/lib/electric',
    ]);
    expect(synth().objects.some((o) => o.metadata.name === 'postgres-electric')).toBe(false);
  });

  it('passes the schema and every policy rule', () => {
    expect(validateManifests(objects)).toEqual([]);
  });

  it('fails when a role name is not a plain identifier', () => {
    expect(() => synth({ appRole: 'app; drop' })).toThrow(
      "invalid appRole: 'app; drop' (expected a lower-case sql identifier)",
    );
  });

  it('fails when the backup schedule is not a cron expression', () => {
    expect(() => synth({ backupSchedule: 'nightly' })).toThrow(
      "invalid backupSchedule: 'nightly' (expected five cron fields)",
    );
  });
});

// The generated postgresql.conf, init script, probes, backup and documented restore under a
// real PostgreSQL (Debian's 15 here; the image runs 17, whose settings are the same).
const bin = postgresBinDir();
const describePg =
  bin && hasBinary('psql') && hasBinary('pg_dump') && hasBinary('pg_restore') && hasBinary('pg_isready')
    ? describe
    : describe.skip;
describePg('PgVectorDb under PostgreSQL', () => {
  const { objects } = synth();
  const conf: string = objects.find((o) => o.metadata.name === 'postgres-config').data['postgresql.conf'];
  const container = objects.find((o) => o.kind === 'StatefulSet').spec.template.spec.containers[0];
  let pg: TempPostgres;
  let env: Record<string, string>;
  const psql = (sql: string, db = 'audit') =>
    run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At', '-d', db, '-c', sql], env);
  let vectorAvailable = false;

  beforeAll(async () => {
    const port = await freePort();
    pg = startTempPostgres(
      bin!,
      port,
      conf
        .replace("listen_addresses = '*'", "listen_addresses = '127.0.0.1'")
        .replace('port = 5432', `port = ${port}`)
        .replace("unix_socket_directories = '/var/run/postgresql'", 'unix_socket_directories = __SOCKET__'),
    );
    env = { PGHOST: pg.socketDir, PGPORT: String(port), PGUSER: 'postgres' };
    expect(run('createdb', ['audit'], env).status).toBe(0);
    vectorAvailable =
      psql("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'").stdout.trim() === '1';
    let script = initRolesScript('audit_migrator', 'audit_runtime');
    // Debian's PostgreSQL has no pgvector package (docs/architecture.md §10); everything else runs as is.
    // The line must be there (production creates the extension); only here is it left out.
    expect(script).toContain('CREATE EXTENSION IF NOT EXISTS vector;\n');
    if (!vectorAvailable) script = script.replace('CREATE EXTENSION IF NOT EXISTS vector;\n', '');
    const init = run('sh', ['-c', script], {
      ...env,
      POSTGRES_USER: 'postgres',
      POSTGRES_DB: 'audit',
      AUDIT_MIGRATOR_PASSWORD: "migr'ator pw",
      AUDIT_APP_PASSWORD: 'runtime-pw-7d1f',
    });
    expect(init.stderr).toBe('');
    expect(init.status).toBe(0);
  }, 180_000);

  afterAll(() => pg?.stop());

  it('starts with the generated postgresql.conf: pg_stat_statements preloaded, logical WAL', () => {
    expect(psql('SHOW shared_preload_libraries').stdout.trim()).toBe('pg_stat_statements');
    expect(psql('SHOW wal_level').stdout.trim()).toBe('logical');
    expect(psql('SHOW password_encryption').stdout.trim()).toBe('scram-sha-256');
  });

  it('creates both roles with SCRAM passwords from the environment, and the extensions', () => {
    expect(
      psql(
        "SELECT rolname FROM pg_authid WHERE rolname LIKE 'audit_%' AND rolpassword LIKE 'SCRAM-SHA-256$%' ORDER BY 1",
      ).stdout.trim(),
    ).toBe('audit_migrator\naudit_runtime');
    const extensions = psql('SELECT extname FROM pg_extension ORDER BY 1').stdout.trim().split('\n');
    expect(extensions).toEqual(
      expect.arrayContaining(['pg_stat_statements', ...(vectorAvailable ? ['vector'] : [])]),
    );
  });

  it("runs the server's migrations as the migrator, which then owns every table", async () => {
    // The server's own migration runner (what the migrate Job runs), connected as the migrator.
    const database = await openDatabase({
      url: `postgres://audit_migrator@127.0.0.1:${pg.port}/audit`,
      poolMax: 2,
    });
    try {
      const applied = await migrate(database);
      expect(applied).toEqual(loadMigrations().map((m) => m.version));
      // The migrations keep 3 months ahead; 12 ahead adds the 9 months after those.
      expect(await ensurePartitions(database, 12)).toBe(9);
    } finally {
      await database.close();
    }
    expect(
      psql(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner <> 'audit_migrator'",
      ).stdout.trim(),
    ).toBe('0');
    expect(
      psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'audit'").stdout.trim(),
    ).toBe('audit_migrator');
  });

  it('leaves the runtime role exactly the grants of the server migrations: read and append, no DDL, no delete', () => {
    const asRuntime = (sql: string) => psql(`SET ROLE audit_runtime; ${sql}`);
    const org = '0190a1b2-0000-7000-8000-000000000001';
    expect(
      asRuntime(
        `INSERT INTO organizations (id, name) VALUES ('${org}', 'acme'); SELECT name FROM organizations`,
      ).stdout.trim(),
    ).toBe('acme');
    for (const sql of [
      'DELETE FROM organizations',
      `UPDATE organizations SET name = 'x'`,
      'TRUNCATE organizations',
      'CREATE TABLE other (id int)',
      'ALTER TABLE events DISABLE TRIGGER ALL',
      'DROP TABLE ledger_nodes',
      "CREATE TABLE events_y2099m01 PARTITION OF events FOR VALUES FROM ('2099-01-01') TO ('2099-02-01')",
    ]) {
      const r = asRuntime(sql);
      expect({ sql, status: r.status, denied: /permission denied|must be owner/.test(r.stderr) }).toEqual({
        sql,
        status: 1,
        denied: true,
      });
    }
  });

  it('lets the runtime role (the worker) keep partitions ahead only through the bounded upkeep function', () => {
    const asRuntime = (sql: string) => psql(`SET ROLE audit_runtime; ${sql}`);
    const ok = asRuntime('SELECT audit_ensure_event_partitions(24)');
    expect({ status: ok.status, stderr: ok.stderr }).toEqual({ status: 0, stderr: '' });
    // 12 months ahead exist (the migrator's upkeep above): 24 ahead adds exactly the next 12.
    expect(Number(ok.stdout.trim())).toBe(12);
    expect(asRuntime('SELECT audit_ensure_event_partitions(24)').stdout.trim()).toBe('0');
    const tooFar = asRuntime('SELECT audit_ensure_event_partitions(1000)');
    expect(tooFar.status).toBe(1);
    expect(tooFar.stderr).toMatch(/months_ahead must be between 0 and 36/);
  });

  it('answers the liveness and readiness probes', () => {
    const relocate = (cmd: string) =>
      cmd
        .replace('--host=/var/run/postgresql', `--host=${pg.socketDir}`)
        .replaceAll('--port=5432', `--port=${pg.port}`);
    const probeEnv = { ...env, POSTGRES_USER: 'postgres', POSTGRES_DB: 'audit' };
    expect(run('sh', ['-c', relocate(container.livenessProbe.exec.command[2])], probeEnv).status).toBe(0);
    expect(run('sh', ['-c', relocate(container.readinessProbe.exec.command[2])], probeEnv).status).toBe(0);
  });

  it('backs up with the CronJob script, prunes old dumps, and restores with the documented pg_restore', () => {
    const backups = path.join(pg.dir, 'backups');
    fs.mkdirSync(backups);
    const old = path.join(backups, 'audit-20200101T000000Z.dump');
    fs.writeFileSync(old, 'old');
    const longAgo = new Date(Date.UTC(2020, 0, 1));
    fs.utimesSync(old, longAgo, longAgo);
    const r = run('sh', ['-c', backupScript(14).replaceAll('/backups', backups)], {
      ...env,
      PGDATABASE: 'audit',
      HOME: pg.dir,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const files = fs.readdirSync(backups);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^audit-\d{8}T\d{6}Z\.dump$/);
    expect(r.stdout).toContain(`backup written: ${path.join(backups, files[0]!)}`);

    // Restore procedure from manifests/README.md, into an empty database.
    expect(run('createdb', ['restored'], env).status).toBe(0);
    const restore = run(
      'pg_restore',
      ['--clean', '--if-exists', '--exit-on-error', '--dbname=restored', path.join(backups, files[0]!)],
      env,
    );
    expect(restore.stderr).toBe('');
    expect(psql('SELECT name FROM organizations', 'restored').stdout.trim()).toBe('acme');
    expect(
      psql("SELECT tableowner FROM pg_tables WHERE tablename = 'ledger_nodes'", 'restored').stdout.trim(),
    ).toBe('audit_migrator');
    // Grants survive the round trip: the runtime role can still append in the restored copy.
    expect(
      psql(
        "SET ROLE audit_runtime; SELECT has_table_privilege('organizations', 'INSERT')",
        'restored',
      ).stdout.trim(),
    ).toBe('t');
  });
});
