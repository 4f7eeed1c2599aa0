import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run } from './processes';

/** Directory holding initdb/pg_ctl/postgres of the newest installed PostgreSQL, if any. */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return undefined;
  const versions = fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb')));
  versions.sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : path.join(root, versions[0], 'bin');
}

/** A private PostgreSQL cluster in a temporary directory. */
export interface TempPostgres {
  readonly dir: string;
  readonly socketDir: string;
  readonly port: number;
  readonly bin: string;
  /** Runs a binary of the cluster's PostgreSQL as the cluster owner. */
  readonly exec: (binary: string, args: string[], env?: Record<string, string>) => ReturnType<typeof run>;
  readonly stop: () => void;
}

/**
 * initdb + pg_ctl start with the given postgresql.conf (appended to the generated one; `__SOCKET__`
 * stands for the socket directory). initdb
 * refuses to run as root, so as root the cluster belongs to the `postgres` user.
 */
export function startTempPostgres(bin: string, port: number, extraConf: string): TempPostgres {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgvector-db-'));
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? run('id', ['-u', 'postgres']).stdout.trim() : '';
  if (asRoot) fs.chownSync(dir, Number(owner), Number(run('id', ['-g', 'postgres']).stdout.trim()));
  const exec = (binary: string, args: string[], env: Record<string, string> = {}) =>
    asRoot
      ? run('runuser', ['-u', 'postgres', '--', 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), path.join(bin, binary), ...args], {}, dir)
      : run(path.join(bin, binary), args, env, dir);
  const data = path.join(dir, 'data');
  const init = exec('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  fs.appendFileSync(path.join(data, 'postgresql.conf'), `\n${extraConf.replace('__SOCKET__', `'${dir}'`)}\n`);
  const started = exec('pg_ctl', ['-D', data, '-l', path.join(dir, 'log'), '-w', 'start']);
  if (started.status !== 0) throw new Error(`pg_ctl start failed: ${started.stderr}\n${fs.existsSync(path.join(dir, 'log')) ? fs.readFileSync(path.join(dir, 'log'), 'utf8') : ''}`);
  return {
    dir,
    socketDir: dir,
    port,
    bin,
    exec,
    stop: () => {
      exec('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
