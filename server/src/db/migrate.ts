/**
 * Applies the SQL migrations in `server/migrations/` in file-name order, each in its own
 * transaction, under a PostgreSQL advisory lock so concurrent replicas (or a Kubernetes Job and a
 * pod) never apply one twice. A checksum per migration catches an edited, already-applied file.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Database } from './client';

// Same relative location from src/db and dist/db: server/migrations.
const MIGRATIONS_DIR = path.resolve(__dirname, '../../migrations');
// An arbitrary, fixed 64-bit key: "audit-migrations".
const MIGRATION_LOCK_KEY = 7_301_449_101;

/** One migration file. */
export interface Migration {
  version: string;
  sql: string;
  checksum: string;
}

/** Reads the migration files shipped with this build. */
export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return fs
    .readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => {
      const sql = fs.readFileSync(path.join(dir, f), 'utf8');
      return { version: f.replace(/\.sql$/, ''), sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

/** The schema version this build expects (the newest migration's name). */
export function expectedSchemaVersion(migrations = loadMigrations()): string {
  const last = migrations.at(-1);
  if (!last) throw new Error('no migrations found in ' + MIGRATIONS_DIR);
  return last.version;
}

/** Applies every pending migration; returns the versions applied now. */
export async function migrate(database: Database, migrations = loadMigrations()): Promise<string[]> {
  const conn = await database.connect();
  const applied: string[] = [];
  try {
    await conn.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await conn.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const { rows } = await conn.query<{ version: string; checksum: string }>(
        'SELECT version, checksum FROM schema_migrations',
      );
      const done = new Map(rows.map((r) => [r.version, r.checksum]));
      for (const m of migrations) {
        const previous = done.get(m.version);
        if (previous !== undefined) {
          if (previous !== m.checksum) {
            throw new Error(`migration ${m.version} was changed after it was applied (checksum mismatch)`);
          }
          continue;
        }
        await conn.exec('BEGIN');
        try {
          await conn.exec(m.sql);
          await conn.query('INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)', [m.version, m.checksum]);
          await conn.exec('COMMIT');
        } catch (err) {
          await conn.exec('ROLLBACK');
          throw new Error(`migration ${m.version} failed: ${(err as Error).message}`);
        }
        applied.push(m.version);
      }
    } finally {
      await conn.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    conn.release();
  }
  return applied;
}

/** The newest applied migration, or null before the first one. */
export async function currentSchemaVersion(database: Database): Promise<string | null> {
  const conn = await database.connect();
  try {
    // Two statements: a query naming a missing table fails at parse time, even in a CASE branch.
    const exists = await conn.query<{ t: string | null }>(`SELECT to_regclass('schema_migrations')::text AS t`);
    if (!exists.rows[0]?.t) return null;
    const { rows } = await conn.query<{ version: string | null }>('SELECT max(version) AS version FROM schema_migrations');
    return rows[0]?.version ?? null;
  } finally {
    conn.release();
  }
}

/** Creates the monthly event partitions ahead of time (the worker calls this daily). */
export async function ensurePartitions(database: Database, monthsAhead: number): Promise<number> {
  const conn = await database.connect();
  try {
    const { rows } = await conn.query<{ n: number }>('SELECT audit_ensure_event_partitions($1) AS n', [monthsAhead]);
    return Number(rows[0]?.n ?? 0);
  } finally {
    conn.release();
  }
}
