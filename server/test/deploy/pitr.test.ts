/**
 * Point-in-time recovery drill with the real tools (docs/disaster-recovery.md "Drill"): a private
 * PostgreSQL cluster archives its WAL with pgBackRest into an encrypted repository; the real
 * server ingests a first batch, pgBackRest takes a full backup, the server ingests a second batch,
 * the time is noted, a third batch follows; PostgreSQL is stopped and `scripts/restore.sh --to
 * <time>` restores it. Exactly the events acknowledged before the noted time must be back, and the
 * script must have verified every ledger with the server's verifier key.
 */
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseSignerKey } from '../../src/ledger';
import { postgresBinDir } from './support/postgres-image';
import { newApiKey, startAuditServer } from './support/server';
import { fetchOnce, withClient } from './support/services';
import { REPO_ROOT, describeResult, freePort, makeTempDir, requireBinary, run, stopAll, waitFor } from './support/tools';
import type { CommandResult } from './support/tools';

jest.setTimeout(300_000);

const bin = postgresBinDir();
const describeWithTools = bin === undefined ? describe.skip : describe;
if (bin === undefined) console.warn('pitr: no PostgreSQL server binaries under /usr/lib/postgresql');

/** uid/gid of the cluster owner: the postgres user as root (initdb refuses root), else ourselves. */
function clusterOwner(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  return { uid: Number(run('id', ['-u', 'postgres']).stdout.trim()), gid: Number(run('id', ['-g', 'postgres']).stdout.trim()) };
}

describeWithTools('point-in-time recovery with pgBackRest on a private PostgreSQL cluster', () => {
  const temp = makeTempDir('pitr');
  const owner = clusterOwner();
  const dir = (name: string, mode = 0o700): string => {
    const d = join(temp.dir, name);
    mkdirSync(d, { recursive: true });
    if (owner.uid !== undefined) chownSync(d, owner.uid, owner.gid!);
    chmodSync(d, mode);
    return d;
  };
  const env = (): Record<string, string> => ({ PATH: `${bin!}:${process.env.PATH ?? '/usr/bin:/bin'}`, HOME: join(temp.dir, 'home') });
  /** Runs a command as the cluster owner. */
  const asOwner = (command: string, args: string[], extraEnv: Record<string, string> = {}, timeoutMs = 180_000): CommandResult =>
    run(command, args, { env: { ...env(), ...extraEnv }, ...owner, timeoutMs, cwd: REPO_ROOT });
  const must = (label: string, r: CommandResult): CommandResult => {
    if (r.status !== 0) throw new Error(describeResult(label, r));
    return r;
  };

  let port: number;
  let data: string;
  let conf: string;
  let url: string;
  let serverData: string;
  let target: string;
  const acknowledged: Record<'before' | 'after', string[]> = { before: [], after: [] };

  beforeAll(async () => {
    requireBinary('pgbackrest');
    requireBinary('psql', 'postgresql-client');
    chmodSync(temp.dir, 0o755);
    dir('home');
    dir('logs');
    data = dir('data');
    const socket = dir('run', 0o775);
    const repo = dir('repo', 0o750);
    port = await freePort();
    url = `postgres://postgres@127.0.0.1:${port}/audit`;

    // pgBackRest: an encrypted repository (the passphrase lives only in this 0600 file), two
    // full backups kept, WAL pushed by archive_command as each segment fills or archive_timeout passes.
    conf = join(dir('pgbackrest'), 'pgbackrest.conf');
    writeFileSync(
      conf,
      [
        '[global]',
        `repo1-path=${repo}`,
        'repo1-cipher-type=aes-256-cbc',
        `repo1-cipher-pass=${randomBytes(24).toString('base64url')}`,
        'repo1-retention-full=2',
        `log-path=${dir('pgbackrest-log')}`,
        `lock-path=${dir('pgbackrest-lock')}`,
        'log-level-console=warn',
        'log-level-file=info',
        'start-fast=y',
        '',
        '[audit]',
        `pg1-path=${data}`,
        `pg1-port=${port}`,
        `pg1-socket-path=${socket}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    if (owner.uid !== undefined) chownSync(conf, owner.uid, owner.gid!);

    must('initdb', asOwner(join(bin!, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']));
    writeFileSync(
      join(data, 'postgresql.conf'),
      [
        readFileSync(join(data, 'postgresql.conf'), 'utf8'),
        `port = ${port}`,
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${socket}'`,
        'wal_level = replica',
        'archive_mode = on',
        `archive_command = 'pgbackrest --config=${conf} --stanza=audit archive-push %p'`,
        'archive_timeout = 60',
        'max_wal_senders = 3',
        '',
      ].join('\n'),
    );
    must('pg_ctl start', asOwner(join(bin!, 'pg_ctl'), ['-D', data, '-l', join(temp.dir, 'logs', 'postgres.log'), '-w', 'start']));
    must('createdb', asOwner('psql', ['-h', socket, '-p', String(port), '-U', 'postgres', '-X', '-c', 'CREATE DATABASE audit']));
    must('stanza-create', asOwner('pgbackrest', [`--config=${conf}`, '--stanza=audit', 'stanza-create']));
    must('check', asOwner('pgbackrest', [`--config=${conf}`, '--stanza=audit', 'check']));

    const apiKey = newApiKey();
    serverData = join(temp.dir, 'server-data');
    const server = await startAuditServer('pitr-source', await freePort(), {
      NODE_ENV: 'test',
      DATABASE_URL: url,
      AUDIT_BOOTSTRAP_API_KEY: apiKey,
      AUDIT_DATA_DIR: serverData,
      RATE_LIMIT_PER_MINUTE: '0',
    });
    const ingest = async (batch: string, n: number): Promise<string[]> => {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        const principalId = `${batch}-${i}`;
        const response = await fetchOnce({
          port: server.port,
          path: '/api/v1/events',
          method: 'POST',
          headers: { authorization: `Bearer ${apiKey}` },
          body: JSON.stringify({ action: 'record.read', status: 'success', principalId, details: { batch } }),
        });
        if (response.status !== 201) throw new Error(`${principalId}: ${response.status} ${response.body}`);
        ids.push(principalId);
      }
      return ids;
    };

    acknowledged.before.push(...(await ingest('before-backup', 15)));
    must('full backup', asOwner('pgbackrest', [`--config=${conf}`, '--stanza=audit', '--type=full', 'backup'], {}, 240_000));
    acknowledged.before.push(...(await ingest('after-backup', 15)));
    // pgBackRest restores from a backup whose stop time (whole seconds) is before the target; on a
    // fast machine the batch above can finish within the backup's last second, so let the clock
    // pass that second before noting the target.
    const info = JSON.parse(must('pgbackrest info', asOwner('pgbackrest', [`--config=${conf}`, '--stanza=audit', '--output=json', 'info'])).stdout) as Array<{
      backup: Array<{ timestamp: { stop: number } }>;
    }>;
    const backupStop = Math.max(...info[0]!.backup.map((b) => b.timestamp.stop));
    await waitFor("the database clock to pass the backup's stop second", () =>
      withClient(url, async (c) => ((await c.query<{ later: boolean }>('SELECT clock_timestamp() >= to_timestamp($1) AS later', [backupStop + 1])).rows[0]!.later ? true : undefined)),
    );
    // The noted time, from the database's clock (the clock commit timestamps come from). Every
    // event acknowledged so far committed before it; the next batch starts only once the clock has
    // moved past it, so all of its commits are later.
    target = await withClient(url, async (c) => {
      const r = await c.query<{ t: string }>(`SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS t`);
      return r.rows[0]!.t;
    });
    await waitFor('the database clock to pass the noted time', () =>
      withClient(url, async (c) => ((await c.query<{ later: boolean }>(`SELECT clock_timestamp() > $1::timestamptz AS later`, [target])).rows[0]!.later ? true : undefined)),
    );
    acknowledged.after.push(...(await ingest('after-target', 15)));
    await server.process.stop();
    // Make sure the WAL holding the last batch is archived, then lose the server.
    must('switch wal + check', asOwner('pgbackrest', [`--config=${conf}`, '--stanza=audit', 'check']));
    must('pg_ctl stop', asOwner(join(bin!, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop']));
  });

  afterAll(async () => {
    await stopAll();
    if (data) asOwner(join(bin!, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
    temp.remove();
  });

  it('refuses to restore under a running server', () => {
    must('pg_ctl start', asOwner(join(bin!, 'pg_ctl'), ['-D', data, '-l', join(temp.dir, 'logs', 'postgres.log'), '-w', 'start']));
    try {
      const r = asOwner('bash', [join(REPO_ROOT, 'scripts', 'restore.sh'), '--to', target, '--pgdata', data, '--config', conf, '--pg-bin', bin!, '--no-verify']);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`PostgreSQL is running on '${data}': stop it before a restore`);
    } finally {
      must('pg_ctl stop', asOwner(join(bin!, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop']));
    }
  });

  it('restores to the noted time: exactly the events acknowledged before it, ledger verified', async () => {
    const verifierKey = parseSignerKey(readFileSync(join(serverData, 'signing-key'), 'utf8').trim()).verifierKey;
    const r = asOwner(
      'bash',
      [join(REPO_ROOT, 'scripts', 'restore.sh'), '--to', target, '--pgdata', data, '--config', conf, '--start', '--pg-bin', bin!, '--log', join(temp.dir, 'logs', 'restored.log'), '-d', url, '--key', verifierKey],
      { NODE_ENV: 'test', AUDIT_DATA_DIR: dir('verify-data'), AUDIT_ADMIN: `${process.execPath} --import tsx ${join(REPO_ROOT, 'server', 'src', 'cli', 'admin.ts')}` },
      240_000,
    );
    expect(describeResult('restore.sh --to', r)).toMatch(/exited 0/);
    expect(r.stderr).toContain(`restored to ${target}; ledger verified`);
    const present = await withClient(url, async (c) => (await c.query<{ p: string }>('SELECT principal_id AS p FROM events')).rows.map((row) => row.p));
    expect(present.sort()).toEqual([...acknowledged.before].sort());
    expect(acknowledged.after).toHaveLength(15);
  });
});
