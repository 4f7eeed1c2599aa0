/**
 * Applies the SQL migrations in `server/migrations/` in file-name order, each in its own
 * transaction, under a PostgreSQL advisory lock so concurrent replicas (or a Kubernetes Job and a
 * pod) never apply one twice. A checksum per migration catches an edited, already-applied file:
 * it covers every statement, not the whole-line `--` comments, so a comment can be corrected
 * without making every existing database refuse to start.
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

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * The checksum of a migration (format `v2:`): SHA-256 of its text without whole-line `--`
 * comments and trailing whitespace. Any change to a statement — a character inside a string,
 * a function body's code, a trailing comment on a code line — changes it.
 */
export function migrationChecksum(sql: string): string {
  const statements = sql
    .split('\n')
    .filter((line) => !/^\s*--/.test(line))
    .map((line) => line.replace(/\s+$/, ''))
    .join('\n');
  return `v2:${sha256(statements)}`;
}

/**
 * Databases migrated before checksums left comments out hold SHA-256 of each file's exact bytes
 * (no `v2:` prefix). That value is still accepted, once, and replaced by the `v2:` checksum: for
 * an unchanged file it is the file's own hash; for these files, whose comments were reworded
 * afterwards (they cited a design document outside the repository), it is the hash of the
 * text as it was applied.
 */
const BYTE_CHECKSUMS_BEFORE_COMMENT_EDITS: Readonly<Record<string, string>> = {
  '0001_core_schema': '232ab4a48a45a01dd1724feca20613c3a760a124cf8ec8431ad06d627f9e3997',
  '0002_append_only_triggers': 'bfc8d5099805fd9b131862ad7f58c4ad5afba8547fee5879b3ce6b72d6d65385',
  '0003_partition_upkeep': '8169d430b5ac04f4695aa9daea858600a11f0a15b283d74d949ac580284a070a',
  '0005_producer_signatures': '367a51146d95193180535453809bdb12c1938cc45b170d01cfb6d35fea79d39a',
  '0006_partition_upkeep_as_runtime': 'ebbdcdd67955671e88bcdf09f9798a3f1ff100d6a48313560c52ad138c161a0e',
};

/** Whether `stored`, a checksum from before the `v2:` format, is the one `m` was applied with. */
function isByteChecksumOf(m: Migration, stored: string): boolean {
  return !stored.startsWith('v2:') && (stored === sha256(m.sql) || stored === BYTE_CHECKSUMS_BEFORE_COMMENT_EDITS[m.version]);
}

/** Reads the migration files shipped with this build. */
export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return fs
    .readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => {
      const sql = fs.readFileSync(path.join(dir, f), 'utf8');
      return { version: f.replace(/\.sql$/, ''), sql, checksum: migrationChecksum(sql) };
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
          if (previous === m.checksum) continue;
          if (!isByteChecksumOf(m, previous)) {
            throw new Error(`migration ${m.version} was changed after it was applied (checksum mismatch)`);
          }
          await conn.query('UPDATE schema_migrations SET checksum = $1 WHERE version = $2', [m.checksum, m.version]);
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
