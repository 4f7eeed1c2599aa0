/**
 * `npm run bench:pitr`: what point-in-time recovery with pgBackRest costs and promises, on a
 * private PostgreSQL cluster (initdb under the system temp dir, its own port; never the shared
 * server). One run prints:
 *
 *  1. idle baseline: WAL archive exposure with no writes (what archive_timeout alone gives),
 *  2. steady load (`--rate` rows/s for `--load-seconds`): the exposure sampled every second — the
 *     age of the oldest WAL not yet in the repository, i.e. the data lost if the primary and its
 *     disk vanished at that instant (the RPO) — and the archiver's CPU time per archived segment,
 *     from /proc/<archiver pid>/stat (its own and its reaped archive-push children's),
 *  3. restore: a table filled to `--rows` rows of about the size of an event row (~600 bytes,
 *     multi-row INSERTs, not the audit server: the restore cost depends on bytes, not on the
 *     ledger), a full backup, then `pgbackrest restore` into a new data directory and recovery to
 *     the end of the archive: wall time and CPU seconds of the restore, per GiB.
 *
 * It never fails on a figure; it exits non-zero only when something breaks.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { formatTable, num, section } from './lib/report';
import { freePort } from './lib/server-process';
import { nowMs, summarize } from './lib/stats';

const HELP = `Usage: npm run bench:pitr -- [options]

  --rows N           rows in the restored database (default 1000000)
  --rate N           rows per second during the steady load (default 2000)
  --load-seconds N   length of the steady load (default 120)
  --idle-seconds N   length of the idle baseline (default 20)
  --quick            --rows 50000 --load-seconds 30 --idle-seconds 10
`;

const CLOCK_TICKS_PER_SECOND = 100;
const WAL_SEGMENT_BYTES = 16 * 1024 * 1024;

const { values } = parseArgs({
  options: {
    rows: { type: 'string' },
    rate: { type: 'string' },
    'load-seconds': { type: 'string' },
    'idle-seconds': { type: 'string' },
    quick: { type: 'boolean' },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const quick = values.quick ?? false;
const ROWS = Number(values.rows ?? (quick ? 50_000 : 1_000_000));
const RATE = Number(values.rate ?? 2000);
const LOAD_SECONDS = Number(values['load-seconds'] ?? (quick ? 30 : 120));
const IDLE_SECONDS = Number(values['idle-seconds'] ?? (quick ? 10 : 20));

const bin = fs
  .readdirSync('/usr/lib/postgresql')
  .filter((v) => fs.existsSync(`/usr/lib/postgresql/${v}/bin/initdb`))
  .sort((a, b) => Number(b) - Number(a))
  .map((v) => `/usr/lib/postgresql/${v}/bin`)[0];
if (!bin) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql');
const asRoot = process.getuid?.() === 0;
const owner = asRoot ? { uid: Number(sh('id', ['-u', 'postgres'])), gid: Number(sh('id', ['-g', 'postgres'])) } : {};

function sh(cmd: string, args: string[], opts: { asOwner?: boolean } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...(opts.asOwner ? owner : {}), env: { PATH: `${bin!}:${process.env.PATH ?? '/usr/bin:/bin'}`, HOME: os.tmpdir() }, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout.trim();
}
const asOwner = (cmd: string, args: string[]) => sh(cmd, args, { asOwner: true });

/** CPU seconds of a process including its reaped children (/proc/pid/stat fields 14–17). */
function cpuWithChildren(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  return (f[11]! + f[12]! + f[13]! + f[14]!) / CLOCK_TICKS_PER_SECOND;
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-pitr-'));
const mkdir = (name: string, mode = 0o700): string => {
  const d = path.join(root, name);
  fs.mkdirSync(d, { recursive: true });
  if (owner.uid !== undefined) fs.chownSync(d, owner.uid, owner.gid);
  fs.chmodSync(d, mode);
  return d;
};

async function main(): Promise<void> {
  fs.chmodSync(root, 0o755);
  const data = mkdir('data');
  const socket = mkdir('run', 0o775);
  const logs = mkdir('logs');
  const port = await freePort();
  const conf = path.join(mkdir('pgbackrest'), 'pgbackrest.conf');
  fs.writeFileSync(
    conf,
    [
      '[global]',
      `repo1-path=${mkdir('repo', 0o750)}`,
      'repo1-cipher-type=aes-256-cbc',
      `repo1-cipher-pass=${randomBytes(24).toString('base64url')}`,
      'repo1-retention-full=2',
      `log-path=${mkdir('pgbackrest-log')}`,
      `lock-path=${mkdir('pgbackrest-lock')}`,
      'log-level-console=warn',
      'start-fast=y',
      'process-max=2',
      '',
      '[audit]',
      `pg1-path=${data}`,
      `pg1-port=${port}`,
      `pg1-socket-path=${socket}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  if (owner.uid !== undefined) fs.chownSync(conf, owner.uid, owner.gid);
  const pgb = (...args: string[]) => asOwner('pgbackrest', [`--config=${conf}`, '--stanza=audit', ...args]);

  asOwner(path.join(bin!, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const settings = [
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${socket}'`,
    'wal_level = replica',
    'archive_mode = on',
    `archive_command = 'pgbackrest --config=${conf} --stanza=audit archive-push %p'`,
    'archive_timeout = 60',
    'max_wal_size = 1GB',
  ];
  fs.appendFileSync(path.join(data, 'postgresql.conf'), `\n${settings.join('\n')}\n`);
  asOwner(path.join(bin!, 'pg_ctl'), ['-D', data, '-l', path.join(logs, 'primary.log'), '-w', 'start']);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    pgb('stanza-create');
    pgb('check');
    await client.query('CREATE TABLE bench_rows (id bigserial PRIMARY KEY, organization_id uuid NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now(), payload jsonb NOT NULL)');
    const archiverPid = Number((await client.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE backend_type = 'archiver'`)).rows[0]!.pid);

    /** One sample: the exposure (s) and the archived segment count. */
    const history: { t: number; lsn: bigint }[] = [];
    const sample = async () => {
      const r = (
        await client.query<{ lsn: string; last: string | null; archived: string; now: string }>(
          `SELECT pg_current_wal_lsn()::text AS lsn, last_archived_wal AS last, archived_count::text AS archived, extract(epoch FROM clock_timestamp())::text AS now FROM pg_stat_archiver`,
        )
      ).rows[0]!;
      const [hi, lo] = r.lsn.split('/').map((h) => BigInt(`0x${h}`));
      const lsn = (hi! << 32n) + lo!;
      const t = Number(r.now);
      history.push({ t, lsn });
      // The first byte not yet archived: the start of the segment after the last archived one.
      let firstUnarchived = 0n;
      if (r.last) {
        const seg = BigInt(`0x${r.last.slice(8, 16)}`) * 0x100000000n / BigInt(WAL_SEGMENT_BYTES) + BigInt(`0x${r.last.slice(16, 24)}`);
        firstUnarchived = (seg + 1n) * BigInt(WAL_SEGMENT_BYTES);
      }
      // Exposure: how long ago that byte was written (the first sample at or past it).
      const written = history.find((h) => h.lsn > firstUnarchived);
      const exposure = lsn <= firstUnarchived || !written ? 0 : t - written.t;
      return { exposure, archived: Number(r.archived) };
    };

    const payload = JSON.stringify({ action: 'record.read', status: 'success', details: { note: 'x'.repeat(420) } });
    const insert = async (n: number) => {
      const rows: string[] = [];
      const params: string[] = [];
      for (let i = 0; i < n; i++) {
        rows.push(`(gen_random_uuid(), $${i + 1}::jsonb)`);
        params.push(payload);
      }
      await client.query(`INSERT INTO bench_rows (organization_id, payload) VALUES ${rows.join(',')}`, params);
    };

    const phase = async (seconds: number, rowsPerSecond: number) => {
      const exposures: number[] = [];
      const cpu0 = cpuWithChildren(archiverPid);
      const archived0 = (await sample()).archived;
      const start = nowMs();
      let written = 0;
      for (let s = 0; s < seconds; s++) {
        for (let tick = 0; tick < 10; tick++) {
          const due = Math.floor(((s * 10 + tick + 1) * rowsPerSecond) / 10) - written;
          if (due > 0) {
            await insert(due);
            written += due;
          }
          const wait = start + (s * 1000 + (tick + 1) * 100) - nowMs();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
        exposures.push((await sample()).exposure * 1000);
      }
      const archived = (await sample()).archived - archived0;
      return { exposure: summarize(exposures), archived, cpu: cpuWithChildren(archiverPid) - cpu0, written };
    };

    section(`idle baseline (${IDLE_SECONDS} s, no writes)`);
    const idle = await phase(IDLE_SECONDS, 0);
    section(`steady load (${num(RATE)} rows/s for ${LOAD_SECONDS} s)`);
    const load = await phase(LOAD_SECONDS, RATE);
    const rowsOf = (p: typeof idle) => [
      num(p.written),
      (p.exposure.p50 / 1000).toFixed(1),
      (p.exposure.p95 / 1000).toFixed(1),
      (p.exposure.max / 1000).toFixed(1),
      num(p.archived),
      p.archived > 0 ? `${((p.cpu * 1000) / p.archived).toFixed(0)} ms` : '—',
    ];
    console.log(
      formatTable(
        ['phase', 'rows', 'exposure p50 s', 'p95 s', 'max s', 'segments archived', 'archiver CPU/segment'],
        [
          ['idle', ...rowsOf(idle)],
          ['steady load', ...rowsOf(load)],
        ],
      ),
    );

    section(`restore (${num(ROWS)} rows)`);
    for (let done = load.written; done < ROWS; done += 1000) await insert(Math.min(1000, ROWS - done));
    const size = Number((await client.query<{ b: string }>(`SELECT pg_database_size('postgres')::text AS b`)).rows[0]!.b);
    let t = nowMs();
    pgb('--type=full', 'backup');
    const backupSeconds = (nowMs() - t) / 1000;
    await insert(1000);
    pgb('check');
    await client.end();
    asOwner(path.join(bin!, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop']);

    const restored = mkdir('restored');
    t = nowMs();
    // `times` prints the CPU time of the shell's children: pgbackrest restore (and its workers).
    const out = asOwner('bash', ['-c', `pgbackrest --config=${conf} --stanza=audit --pg1-path=${restored} restore && times`]);
    const restoreSeconds = (nowMs() - t) / 1000;
    const cpuLine = out.split('\n').filter((l) => /m[\d.]+s/.test(l)).pop() ?? '0m0s 0m0s';
    const cpuSeconds = [...cpuLine.matchAll(/(\d+)m([\d.]+)s/g)].reduce((sum, m) => sum + Number(m[1]) * 60 + Number(m[2]), 0);
    t = nowMs();
    asOwner(path.join(bin!, 'pg_ctl'), ['-D', restored, '-l', path.join(logs, 'restored.log'), '-w', '-t', '3600', 'start']);
    const restoredClient = new pg.Client({ connectionString: url });
    await restoredClient.connect();
    while ((await restoredClient.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r) await new Promise((r) => setTimeout(r, 200));
    const recoverySeconds = (nowMs() - t) / 1000;
    const count = Number((await restoredClient.query<{ n: string }>('SELECT count(*)::text AS n FROM bench_rows')).rows[0]!.n);
    await restoredClient.end();
    asOwner(path.join(bin!, 'pg_ctl'), ['-D', restored, '-m', 'fast', '-w', 'stop']);
    if (count < ROWS) throw new Error(`restored ${count} rows, expected at least ${ROWS}`);
    const gib = size / 1024 ** 3;
    console.log(
      formatTable(
        ['step', 'wall s', 'CPU s', 'CPU s / GiB'],
        [
          [`full backup (${(size / 1024 ** 2).toFixed(0)} MiB database)`, backupSeconds.toFixed(1), '—', '—'],
          ['pgbackrest restore', restoreSeconds.toFixed(1), cpuSeconds.toFixed(1), (cpuSeconds / gib).toFixed(1)],
          ['start + WAL replay to the end of the archive', recoverySeconds.toFixed(1), '—', '—'],
        ],
      ),
    );
    console.log(`\nrestored rows: ${num(count)}; restore-to-ready ${(restoreSeconds + recoverySeconds).toFixed(1)} s`);
  } finally {
    await client.end().catch(() => undefined);
    for (const d of ['data', 'restored']) {
      if (fs.existsSync(path.join(root, d, 'postmaster.pid'))) spawnSync(path.join(bin!, 'pg_ctl'), ['-D', path.join(root, d), '-m', 'immediate', '-w', 'stop'], { ...owner });
    }
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
