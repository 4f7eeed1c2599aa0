/**
 * A private PostgreSQL cluster for benchmarks that must stop, restart or reconfigure the database
 * (never the machine's shared one): `initdb` under the system temp directory, its own port and
 * socket directory, trust authentication on 127.0.0.1 only. As root, every PostgreSQL command
 * runs as the `postgres` user (the server refuses to run as root).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The newest PostgreSQL server binaries installed (Debian layout), or throws. */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const bin = (fs.existsSync(root) ? fs.readdirSync(root) : [])
    .filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a))
    .map((v) => path.join(root, v, 'bin'))[0];
  if (!bin) throw new Error(`no PostgreSQL server binaries under ${root}`);
  return bin;
}

/** A running private cluster. */
export interface PrivateCluster {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string;
  readonly port: number;
  /** The cluster's root directory (data, socket and logs below it). */
  readonly dir: string;
  /** `pg_ctl restart -m <mode>`; resolves once it accepts connections again. */
  restart(mode: 'fast' | 'immediate'): void;
  /** Stops the cluster (immediate) and removes its files. */
  destroy(): void;
}

/** Starts a private cluster on `port` with extra `postgresql.conf` lines. */
export function startPrivateCluster(port: number, settings: string[] = [], prefix = 'bench-pg-'): PrivateCluster {
  const bin = postgresBinDir();
  const owner =
    process.getuid?.() === 0
      ? { uid: Number(run('id', ['-u', 'postgres'], {}).trim()), gid: Number(run('id', ['-g', 'postgres'], {}).trim()) }
      : {};
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  const mkdir = (name: string, mode = 0o700): string => {
    const d = path.join(dir, name);
    fs.mkdirSync(d, { recursive: true });
    if (owner.uid !== undefined) fs.chownSync(d, owner.uid, owner.gid);
    fs.chmodSync(d, mode);
    return d;
  };
  const data = mkdir('data');
  const socket = mkdir('run', 0o775);
  const log = path.join(mkdir('logs'), 'postgresql.log');
  const pg = (cmd: string, args: string[]) => run(path.join(bin, cmd), args, owner);
  pg('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  fs.appendFileSync(
    path.join(data, 'postgresql.conf'),
    [`port = ${port}`, "listen_addresses = '127.0.0.1'", `unix_socket_directories = '${socket}'`, ...settings, ''].join('\n'),
  );
  pg('pg_ctl', ['-D', data, '-l', log, '-w', 'start']);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir,
    restart: (mode) => void pg('pg_ctl', ['-D', data, '-l', log, '-m', mode, '-w', 'restart']),
    destroy: () => {
      if (fs.existsSync(path.join(data, 'postmaster.pid'))) spawnSync(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], owner);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function run(cmd: string, args: string[], owner: { uid?: number; gid?: number }): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...owner, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: os.tmpdir() } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${String(r.status)}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}
