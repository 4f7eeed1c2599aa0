/**
 * A throw-away PostgreSQL database per run, so figures never depend on what an earlier run or
 * another agent left behind, and nothing of theirs is touched.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** A database created for this run. */
export interface BenchDatabase {
  name: string;
  /** Connection string of the new database. */
  url: string;
  /** `server_version` of the cluster. */
  serverVersion: string;
  /** The settings that matter most for insert speed, as one line. */
  settings: string;
  /** Drops the database (forcing out leftover sessions). */
  drop(): Promise<void>;
}

/**
 * Creates `audit_bench_<random>` on the cluster `adminUrl` points at. Refuses clusters that are
 * not on the loopback interface: a benchmark must never load a shared database.
 */
export function createBenchDatabase(adminUrl: string): Promise<BenchDatabase> {
  return benchDatabase(adminUrl, `audit_bench_${randomBytes(4).toString('hex')}`, true);
}

/**
 * An `audit_bench_*` database an earlier run kept (`--keep`), to measure over again without
 * filling it anew; its `drop()` drops it like any other.
 */
export function openBenchDatabase(adminUrl: string, name: string): Promise<BenchDatabase> {
  if (!/^audit_bench_[0-9a-f]{8}$/.test(name)) throw new Error(`not a benchmark database name: ${name}`);
  return benchDatabase(adminUrl, name, false);
}

async function benchDatabase(adminUrl: string, name: string, create: boolean): Promise<BenchDatabase> {
  const admin = new URL(adminUrl);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(admin.hostname)) {
    throw new Error(`refusing to benchmark against ${admin.hostname}: only a local PostgreSQL is allowed`);
  }
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  let serverVersion: string;
  let settings: string;
  try {
    if (create) await client.query(`CREATE DATABASE ${name}`); // name is [a-z0-9_] by construction
    serverVersion = ((await client.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version) ?? '?';
    const shown = await client.query<{ name: string; setting: string; unit: string | null }>(
      `SELECT name, setting, unit FROM pg_settings
        WHERE name IN ('shared_buffers', 'synchronous_commit', 'fsync', 'wal_level', 'max_wal_size')
        ORDER BY name`,
    );
    settings = shown.rows.map((r) => `${r.name}=${r.setting}${r.unit ?? ''}`).join(' ');
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    serverVersion,
    settings,
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`); // FORCE: PostgreSQL ≥ 13
      } finally {
        await c.end();
      }
    },
  };
}

/** PIDs of the PostgreSQL backends connected to `database`, other than `client`'s own session. */
export async function backendPids(client: pg.Client, database: string): Promise<number[]> {
  const r = await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database]);
  return r.rows.map((x) => x.pid);
}
