/**
 * A private PostgreSQL cluster (initdb under the system temp directory, a port the kernel picked)
 * for tests that restart or stop the database: the shared test cluster must never be restarted.
 * As root the cluster belongs to the `postgres` user (initdb refuses to run as root).
 */
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { postgresBinDir } from '../../deploy/support/postgres-image';
import { withClient } from '../../deploy/support/services';
import { describeResult, freePort, makeTempDir, run, type CommandResult } from '../../deploy/support/tools';

/** A running private cluster. */
export interface PrivatePostgres {
  readonly port: number;
  /** `postgres://postgres@127.0.0.1:<port>/<database>` (trust authentication on loopback). */
  url(database?: string): string;
  /**
   * `pg_ctl restart -m <mode> -w`, run asynchronously (the event loop keeps serving an in-process
   * server meanwhile): every connection is ended, the server is back when it resolves.
   */
  restart(mode: 'fast' | 'immediate'): Promise<void>;
  /** `pg_ctl stop -m <mode> -w` (asynchronously, as restart). */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** `pg_ctl start -w` (asynchronously, as restart). */
  start(): Promise<void>;
  /** The server log so far (for failure messages). */
  log(): string;
  /** Stops the cluster (immediate) and removes its directory. */
  remove(): void;
}

/** The uid/gid the cluster runs as: the postgres user as root, else ourselves. */
function owner(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  return { uid: Number(run('id', ['-u', 'postgres']).stdout.trim()), gid: Number(run('id', ['-g', 'postgres']).stdout.trim()) };
}

/** initdb + start a cluster with database `audit`; throws (naming the package) without PostgreSQL. */
export async function startPrivatePostgres(label: string): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  if (bin === undefined) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql: apt-get install -y postgresql');
  const temp = makeTempDir(label);
  const who = owner();
  chmodSync(temp.dir, 0o755);
  const dir = (name: string): string => {
    const d = join(temp.dir, name);
    mkdirSync(d, { recursive: true });
    if (who.uid !== undefined) chownSync(d, who.uid, who.gid!);
    chmodSync(d, 0o700);
    return d;
  };
  const data = dir('data');
  const socket = dir('run');
  const logFile = join(dir('logs'), 'postgres.log');
  const port = await freePort();
  const asOwner = (binary: string, args: string[]): CommandResult =>
    run(join(bin, binary), args, { env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` }, ...who, timeoutMs: 180_000, cwd: temp.dir });
  const must = (what: string, r: CommandResult): void => {
    if (r.status !== 0) throw new Error(`${describeResult(what, r)}\n${readLog()}`);
  };
  const readLog = (): string => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  must('initdb', asOwner('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']));
  writeFileSync(
    join(data, 'postgresql.conf'),
    [readFileSync(join(data, 'postgresql.conf'), 'utf8'), `port = ${port}`, "listen_addresses = '127.0.0.1'", `unix_socket_directories = '${socket}'`, 'fsync = off', ''].join('\n'),
  );
  const pgCtl = (args: string[]): CommandResult => asOwner('pg_ctl', ['-D', data, '-l', logFile, '-w', '-t', '180', ...args]);
  const pgCtlAsync = (args: string[]): Promise<CommandResult> =>
    new Promise((resolve, reject) => {
      execFile(
        join(bin, 'pg_ctl'),
        ['-D', data, '-l', logFile, '-w', '-t', '180', ...args],
        { env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` }, ...who, cwd: temp.dir, timeout: 200_000 },
        (error, stdout, stderr) => {
          if (error && typeof error.code !== 'number') reject(new Error(`pg_ctl could not run: ${error.message}`));
          else resolve({ status: error ? (error.code as number) : 0, stdout, stderr });
        },
      );
    });
  must('pg_ctl start', pgCtl(['start']));
  const url = (database = 'audit') => `postgres://postgres@127.0.0.1:${port}/${database}`;
  await withClient(url('postgres'), (c) => c.query('CREATE DATABASE audit'));
  let running = true;
  return {
    port,
    url,
    restart: async (mode) => must(`pg_ctl restart -m ${mode}`, await pgCtlAsync(['-m', mode, 'restart'])),
    stop: async (mode = 'fast') => {
      must(`pg_ctl stop -m ${mode}`, await pgCtlAsync(['-m', mode, 'stop']));
      running = false;
    },
    start: async () => {
      must('pg_ctl start', await pgCtlAsync(['start']));
      running = true;
    },
    log: readLog,
    remove: () => {
      if (running) pgCtl(['-m', 'immediate', 'stop']);
      temp.remove();
    },
  };
}
