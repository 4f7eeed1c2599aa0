/**
 * The `postgres` service of compose/docker-compose.prod.yml on a private PostgreSQL cluster, set
 * up the way the official postgres image's entrypoint (docker-entrypoint.sh, which the pgvector
 * image inherits) sets up an empty data directory: read the `*_FILE` secrets, `initdb` with
 * POSTGRES_INITDB_ARGS and the superuser password, allow password logins from the network, start
 * a temporary server on the Unix socket only, create POSTGRES_DB, run the files mounted into
 * /docker-entrypoint-initdb.d/ (executable `*.sh` run, others sourced, `*.sql` through psql) as
 * the postgres user with the service's environment, stop it, and start the real server with the
 * service's command-line settings. Only container paths (data directory, socket directory, /tmp,
 * secrets, init files) and the port are mapped to this host, as in support/compose.ts.
 *
 * The machine's PostgreSQL binaries run it (PostgreSQL 15 here; the image is 17). As root, the
 * cluster belongs to the `postgres` user, as in the image (initdb refuses to run as root).
 */
import {
  accessSync,
  chmodSync,
  chownSync,
  constants,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { hostCommand, mounts, serviceSecrets } from './compose';
import type { ComposeModel } from './compose';
import { StopWaiting, describeResult, freePort, run, startProcess, waitFor } from './tools';
import type { CommandResult, ManagedProcess } from './tools';

const INITDB_DIR = '/docker-entrypoint-initdb.d';

/** Directory holding initdb/postgres of the newest installed PostgreSQL server. */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

/** A running cluster set up like the compose service. */
export interface ImagePostgres {
  readonly port: number;
  /** The Unix socket directory (the container's /var/run/postgresql). */
  readonly socketDir: string;
  /** POSTGRES_USER and POSTGRES_DB as the entrypoint resolved them. */
  readonly superuser: string;
  readonly database: string;
  /** Output of the init files, in order. */
  readonly initOutput: string;
  /** psql as the superuser over the socket (`-X -At -v ON_ERROR_STOP=1`). */
  psql(sql: string, database?: string): CommandResult;
  /** The healthcheck of the compose service, run on this host. */
  healthcheck(): CommandResult;
  stop(): Promise<void>;
}

interface Owner {
  readonly uid?: number;
  readonly gid?: number;
}

function postgresOwner(): Owner {
  if (process.getuid?.() !== 0) return {};
  return {
    uid: Number(run('id', ['-u', 'postgres']).stdout.trim()),
    gid: Number(run('id', ['-g', 'postgres']).stdout.trim()),
  };
}

function ownedDir(dir: string, owner: Owner, mode = 0o700): string {
  mkdirSync(dir, { recursive: true });
  if (owner.uid !== undefined) chownSync(dir, owner.uid, owner.gid!);
  chmodSync(dir, mode);
  return dir;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `VAR` from `VAR_FILE` when set (the image's `file_env`), the file's content without its last newline. */
function fileEnv(env: Record<string, string>, name: string, fallback: string): string {
  const file = env[`${name}_FILE`];
  if (env[name] !== undefined && file !== undefined) throw new Error(`both ${name} and ${name}_FILE are set`);
  delete env[`${name}_FILE`];
  const value = file !== undefined ? readFileSync(file, 'utf8').replace(/\n$/, '') : (env[name] ?? fallback);
  env[name] = value;
  return value;
}

/**
 * Initializes and starts the compose `postgres` service under `dir`. `initFileFor` may substitute
 * an init file (given its host path) — the test removes `CREATE EXTENSION vector` when the
 * machine's PostgreSQL has no pgvector — and returns the file to run.
 */
export async function startComposePostgres(
  model: ComposeModel,
  dir: string,
  initFileFor: (hostFile: string) => string = (f) => f,
): Promise<ImagePostgres> {
  const bin = postgresBinDir();
  if (bin === undefined)
    throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql: apt-get install -y postgresql');
  const owner = postgresOwner();
  const service = model.services.postgres;
  if (!service) throw new Error('no postgres service in the compose model');
  ownedDir(dir, owner, 0o711);
  const dataDir = ownedDir(join(dir, 'data'), owner);
  const socketDir = ownedDir(join(dir, 'run'), owner, 0o775);
  const tmpDir = ownedDir(join(dir, 'tmp'), owner);
  // Secrets and init files as the container sees them: readable by the postgres user (compose
  // bind-mounts the host files; here they are copied next to the cluster).
  const mounted = ownedDir(join(dir, 'mounted'), owner, 0o755);
  const overrides: Record<string, string> = {
    '/var/lib/postgresql/data': dataDir,
    '/var/run/postgresql': socketDir,
    '/tmp': tmpDir,
  };
  for (const secret of serviceSecrets(service)) {
    const source = model.secrets?.[secret.source]?.file;
    if (source === undefined) throw new Error(`secret ${secret.source} has no file`);
    const copy = join(mounted, `secret-${secret.source}`);
    copyFileSync(source, copy);
    chmodSync(copy, 0o444);
    overrides[secret.path] = copy;
  }
  const initFiles = mounts(service)
    .filter((m) => m.target.startsWith(`${INITDB_DIR}/`))
    .sort((a, b) => basename(a.target).localeCompare(basename(b.target)));
  for (const file of initFiles) {
    const copy = join(mounted, basename(file.target));
    copyFileSync(initFileFor(file.source), copy);
    chmodSync(copy, isExecutable(file.source) ? 0o555 : 0o444);
    overrides[file.target] = copy;
  }
  const command = hostCommand(model, 'postgres', overrides);
  const env: Record<string, string> = { ...command.env };
  const superuser = fileEnv(env, 'POSTGRES_USER', 'postgres');
  const password = fileEnv(env, 'POSTGRES_PASSWORD', '');
  const database = fileEnv(env, 'POSTGRES_DB', superuser);
  const initdbArgs = fileEnv(env, 'POSTGRES_INITDB_ARGS', '');
  if (password === '') throw new Error('POSTGRES_PASSWORD is empty: the image refuses to initialize');
  const [program, ...serverArgs] = command.argv;
  if (program !== 'postgres') throw new Error(`the postgres service runs ${String(program)}, not postgres`);

  const path = `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`;
  const asPostgres = (
    binary: string,
    args: string[],
    extraEnv: Record<string, string> = {},
    input?: string,
  ) =>
    run(binary, args, {
      env: { PATH: path, ...extraEnv },
      cwd: dir,
      ...owner,
      ...(input !== undefined ? { input } : {}),
    });
  const must = (label: string, result: CommandResult) => {
    if (result.status !== 0) throw new Error(describeResult(label, result));
    return result;
  };

  // docker_init_database_dir: initdb with the superuser's password from a file.
  const pwfile = join(tmpDir, 'pwfile');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (owner.uid !== undefined) chownSync(pwfile, owner.uid, owner.gid!);
  must(
    'initdb',
    asPostgres(join(bin, 'initdb'), [
      `--username=${superuser}`,
      `--pwfile=${pwfile}`,
      ...initdbArgs.split(/\s+/).filter((a) => a !== ''),
      '--no-sync',
      '-D',
      dataDir,
    ]),
  );
  run('rm', ['-f', pwfile]);
  // pg_setup_hba_conf: password logins from any address, with the server's password hashing.
  writeFileSync(join(dataDir, 'pg_hba.conf'), '\nhost all all all scram-sha-256\n', { flag: 'a' });

  const port = await freePort();
  const socketEnv = { PGHOST: socketDir, PGPORT: String(port) };
  const startServer = async (name: string, listen: string): Promise<ManagedProcess> => {
    const proc = startProcess(
      name,
      join(bin, 'postgres'),
      [
        '-D',
        dataDir,
        ...serverArgs,
        '-c',
        `listen_addresses=${listen}`,
        '-p',
        String(port),
        '-c',
        `unix_socket_directories=${socketDir}`,
      ],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, cwd: dir, ...owner },
    );
    await waitFor(
      `${name} on ${listen === '' ? 'its socket' : listen}`,
      () => {
        if (proc.hasExited()) throw new StopWaiting(`${name} exited during start-up`);
        const host = listen === '' ? socketDir : listen;
        return run(join(bin, 'pg_isready'), ['-q', '-h', host, '-p', String(port)]).status === 0
          ? true
          : undefined;
      },
      { intervalMs: 100, timeoutMs: 120_000, describe: () => proc.output() },
    );
    return proc;
  };
  const stopServer = async (proc: ManagedProcess) => {
    // SIGINT = fast shutdown (what `pg_ctl -m fast stop` sends).
    proc.child.kill('SIGINT');
    await proc.exited;
  };

  // docker_temp_server_start: the socket only, so no client connects before initialization ends.
  const temporary = await startServer('postgres (initialization)', '');
  const psqlEnv = { ...socketEnv, PGPASSWORD: password };
  const psql = (sql: string, db = database) =>
    asPostgres(
      'psql',
      ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-U', superuser, '-d', db, '-c', sql],
      psqlEnv,
    );
  let initOutput = '';
  try {
    // docker_setup_db
    if (database !== 'postgres') {
      must(
        'CREATE DATABASE',
        asPostgres(
          'psql',
          ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-U', superuser, '-d', 'postgres', '-v', `db=${database}`],
          psqlEnv,
          'CREATE DATABASE :"db";\n',
        ),
      );
    }
    // docker_process_init_files, with the container's environment as the entrypoint exports it.
    const initEnv = { PATH: path, ...env, ...psqlEnv, PGDATA: dataDir };
    for (const file of initFiles) {
      const hostFile = overrides[file.target]!;
      let result: CommandResult;
      if (file.target.endsWith('.sh')) {
        result = isExecutable(hostFile)
          ? run(hostFile, [], { env: initEnv, cwd: dir, ...owner })
          : run('sh', ['-c', '. "$0"', hostFile], { env: initEnv, cwd: dir, ...owner });
      } else if (file.target.endsWith('.sql')) {
        result = run(
          'psql',
          ['-X', '-v', 'ON_ERROR_STOP=1', '-U', superuser, '-d', database, '-f', hostFile],
          { env: initEnv, cwd: dir, ...owner },
        );
      } else {
        throw new Error(`${file.target}: the image ignores files other than *.sh, *.sql`);
      }
      initOutput += `--- ${basename(file.target)} ---\n${result.stdout}${result.stderr}`;
      must(`${basename(file.target)} (docker-entrypoint-initdb.d)`, result);
    }
  } finally {
    await stopServer(temporary);
  }

  const server = await startServer('postgres', '127.0.0.1');
  const healthcheck = (): CommandResult => {
    const test = (service.healthcheck?.test ?? []) as string[];
    if (test[0] !== 'CMD-SHELL' || test[1] === undefined)
      throw new Error('the postgres healthcheck is not a CMD-SHELL test');
    // The container's variables, and PGPORT: in the container the server is on the default port.
    return run('sh', ['-c', test[1].replaceAll('$$', '$')], {
      env: { PATH: path, ...env, PGPORT: String(port) },
    });
  };
  return {
    port,
    socketDir,
    superuser,
    database,
    initOutput,
    psql,
    healthcheck,
    stop: () => stopServer(server),
  };
}
