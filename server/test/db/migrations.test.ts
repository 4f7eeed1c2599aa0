/**
 * Every migration applies to an empty database on PGlite and PostgreSQL, re-running is a no-op,
 * an edited migration is refused, the Drizzle schema matches the tables, partitions exist, and the
 * append-only triggers hold (erasure may only null values and drop salts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getTableColumns, getTableName } from 'drizzle-orm';
import { PgTable } from 'drizzle-orm/pg-core';
import { openDatabase, type Database } from '../../src/db/client';
import { currentSchemaVersion, expectedSchemaVersion, loadMigrations, migrate, migrationChecksum } from '../../src/db/migrate';
import * as schema from '../../src/db/schema';
import { describeEachBackend, createTestDatabase } from '../helpers/backends';

async function open(backend: string): Promise<{ database: Database; cleanup: () => Promise<void> }> {
  if (backend === 'pglite') {
    const database = await openDatabase({});
    return { database, cleanup: () => database.close() };
  }
  const db = await createTestDatabase();
  const database = await openDatabase({ url: db.url, poolMax: 4 });
  return {
    database,
    cleanup: async () => {
      await database.close();
      await db.drop();
    },
  };
}

async function q<R = Record<string, unknown>>(
  database: Database,
  text: string,
  params: unknown[] = [],
): Promise<R[]> {
  const c = await database.connect();
  try {
    return (await c.query<R>(text, params)).rows;
  } finally {
    c.release();
  }
}

describeEachBackend('migrations on %s', (backend) => {
  let database: Database;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ database, cleanup } = await open(backend));
  }, 180_000);
  afterAll(async () => {
    await cleanup();
  });

  it('applies every migration to an empty database, then nothing on a second run', async () => {
    expect(await currentSchemaVersion(database)).toBeNull();
    const applied = await migrate(database);
    expect(applied).toEqual(loadMigrations().map((m) => m.version));
    expect(await currentSchemaVersion(database)).toBe(expectedSchemaVersion());
    expect(await migrate(database)).toEqual([]);
  });

  it('refuses to run when an applied migration was edited', async () => {
    const edited = loadMigrations().map((m, i) => (i === 0 ? { ...m, checksum: 'x' } : m));
    await expect(migrate(database, edited)).rejects.toThrow(
      /0001_core_schema was changed after it was applied/,
    );
  });

  it('accepts a database migrated with byte checksums (the format before comments were left out) once, and upgrades it', async () => {
    const { createHash } = await import('node:crypto');
    const byBytes = (sql: string) => createHash('sha256').update(sql).digest('hex');
    const migrations = loadMigrations();
    // What such a database holds: 0001 as it was applied (before its comments were reworded), 0004 the hash of today's file.
    await q(database, 'UPDATE schema_migrations SET checksum = $1 WHERE version = $2', ['232ab4a48a45a01dd1724feca20613c3a760a124cf8ec8431ad06d627f9e3997', '0001_core_schema']);
    await q(database, 'UPDATE schema_migrations SET checksum = $1 WHERE version = $2', [byBytes(migrations[3]!.sql), migrations[3]!.version]);
    expect(await migrate(database)).toEqual([]);
    const rows = await q<{ version: string; checksum: string }>(database, 'SELECT version, checksum FROM schema_migrations ORDER BY version');
    expect(rows).toEqual(migrations.map((m) => ({ version: m.version, checksum: m.checksum })));
    // A byte checksum of some other text is still an edited migration.
    await q(database, 'UPDATE schema_migrations SET checksum = $1 WHERE version = $2', [byBytes('SELECT 1;\n'), '0001_core_schema']);
    await expect(migrate(database)).rejects.toThrow(/0001_core_schema was changed after it was applied/);
    await q(database, 'UPDATE schema_migrations SET checksum = $1 WHERE version = $2', [migrations[0]!.checksum, '0001_core_schema']);
  });

  it('has every column the Drizzle schema declares, with matching types', async () => {
    const cols = await q<{ table_name: string; column_name: string; udt_name: string }>(
      database,
      `SELECT table_name, column_name, udt_name FROM information_schema.columns WHERE table_schema = 'public'`,
    );
    const have = new Map(cols.map((c) => [`${c.table_name}.${c.column_name}`, c.udt_name]));
    const udt: Record<string, string> = {
      PgUUID: 'uuid',
      PgText: 'text',
      PgTimestamp: 'timestamptz',
      PgTimestampString: 'timestamptz',
      PgBigInt53: 'int8',
      PgJsonb: 'jsonb',
      PgSmallInt: 'int2',
      PgInteger: 'int4',
      PgArray: '_text', // text[] (the only array type in the schema)
      PgCustomColumn: 'bytea',
      PgBoolean: 'bool',
    };
    for (const table of Object.values(schema)) {
      if (!(table instanceof PgTable)) continue;
      for (const [key, col] of Object.entries(getTableColumns(table))) {
        const name = col.name === key ? key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase()) : col.name;
        const id = `${getTableName(table)}.${name}`;
        expect({ id, type: have.get(id) }).toEqual({ id, type: udt[col.columnType] });
      }
    }
  });

  it('creates monthly partitions around now and a DEFAULT partition', async () => {
    const parts = await q<{ name: string }>(
      database,
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass ORDER BY 1`,
    );
    const names = parts.map((p) => p.name);
    const now = new Date();
    const month = `events_y${now.getUTCFullYear()}m${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
    expect(names).toContain('events_default');
    expect(names).toContain(month);
    expect(names.length).toBeGreaterThanOrEqual(5);
  });

  describe('append-only triggers', () => {
    const org = '11111111-1111-4111-8111-111111111111';
    beforeAll(async () => {
      await q(database, `INSERT INTO organizations (id, name) VALUES ($1, 't')`, [org]);
      await q(
        database,
        `INSERT INTO ledger_heads (organization_id, size, root_hash, frontier) VALUES ($1, 1, '\\x00', '\\x')`,
        [org],
      );
      await q(database, `INSERT INTO ledger_nodes VALUES ($1, 0, 0, decode(repeat('ab', 32), 'hex'))`, [org]);
      await q(
        database,
        `INSERT INTO checkpoints (organization_id, tree_size, root_hash, note, key_id) VALUES ($1, 1, '\\x00', 'n', 'k')`,
        [org],
      );
      await q(
        database,
        `INSERT INTO events (organization_id, id, recorded_at, leaf_index, leaf_hash, action, status, patient_id, commitments, salts)
         VALUES ($1, '01900000-0000-7000-8000-000000000001', now(), 0, '\\x00', 'data.read', 'success', 'p1',
                 '{"action":"a","status":"s","patientId":"p"}', '{"action":"x","status":"y","patientId":"z"}')`,
        [org],
      );
    });

    it.each([
      ['UPDATE ledger_nodes SET hash = hash WHERE organization_id = $1', /append-only: UPDATE/],
      ['DELETE FROM ledger_nodes WHERE organization_id = $1', /append-only: DELETE/],
      ['DELETE FROM checkpoints WHERE organization_id = $1', /append-only: DELETE/],
      ['UPDATE checkpoints SET note = $1', /append-only: UPDATE/],
      ['DELETE FROM events WHERE organization_id = $1', /append-only: DELETE/],
      ['UPDATE events SET action = $1', /a value may only be set to NULL/],
      ['UPDATE events SET leaf_index = 5 WHERE organization_id = $1', /committed columns changed/],
      [`UPDATE events SET commitments = '{}' WHERE organization_id = $1`, /committed columns changed/],
      [
        `UPDATE events SET salts = '{"action":"other"}' WHERE organization_id = $1`,
        /salts may only be removed/,
      ],
      ['UPDATE ledger_heads SET size = 0 WHERE organization_id = $1', /may only grow/],
      ['DELETE FROM ledger_heads WHERE organization_id = $1', /append-only: DELETE/],
    ])('rejects %s', async (sql, message) => {
      await expect(q(database, sql, [org])).rejects.toThrow(message);
    });

    it('rejects TRUNCATE of a ledger table', async () => {
      await expect(q(database, 'TRUNCATE ledger_nodes')).rejects.toThrow(/append-only: TRUNCATE/);
    });

    it('allows erasure: nulling a value and removing its salt', async () => {
      await q(
        database,
        `UPDATE events SET patient_id = NULL, salts = salts - 'patientId', erased_at = now() WHERE organization_id = $1`,
        [org],
      );
      const [row] = await q<{
        patient_id: string | null;
        salts: Record<string, string>;
        commitments: Record<string, string>;
      }>(database, 'SELECT patient_id, salts, commitments FROM events WHERE organization_id = $1', [org]);
      expect(row!.patient_id).toBeNull();
      expect(row!.salts).toEqual({ action: 'x', status: 'y' });
      expect(row!.commitments.patientId).toBe('p'); // the commitment stays
    });
  });
});

describe('migration files', () => {
  it('are numbered, start with a comment saying why they exist, and are never empty', () => {
    const dir = path.resolve(__dirname, '../../migrations');
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.sql'));
    // Numbers are handed out ahead to work landing in parallel, so one may land before a lower
    // number does (a gap until then): unique and increasing, from 0001.
    const numbers = files.map((f) => Number(/^(\d{4})_/.exec(f)?.[1]));
    expect(numbers[0]).toBe(1);
    expect(numbers.every((n, i) => Number.isInteger(n) && (i === 0 || n > numbers[i - 1]!))).toBe(true);
    files.forEach((f) => {
      const sql = fs.readFileSync(path.join(dir, f), 'utf8');
      expect(sql.startsWith('--')).toBe(true);
      expect(sql.trim().length).toBeGreaterThan(50);
    });
    expect(os.EOL).toBe('\n');
  });
});

describe('migration checksums', () => {
  const sql = "-- 0042: a comment\nCREATE TABLE t (v text DEFAULT '-- not a comment');\n  -- indented comment\nCREATE INDEX i ON t (v); -- trailing\n";
  it('ignore whole-line comments and trailing whitespace', () => {
    expect(migrationChecksum(sql.replace('a comment', 'a reworded comment').replace('indented comment', 'other'))).toBe(migrationChecksum(sql));
    expect(migrationChecksum(sql.replace("comment');\n", "comment');  \t\n"))).toBe(migrationChecksum(sql));
    expect(migrationChecksum(sql)).toMatch(/^v2:[0-9a-f]{64}$/);
  });
  it('change with any statement, string or trailing comment on a code line', () => {
    for (const edited of [
      sql.replace('CREATE INDEX', 'CREATE UNIQUE INDEX'),
      sql.replace("'-- not a comment'", "'-- not a comment!'"),
      sql.replace('-- trailing', '-- trailing, reworded'),
      sql.replace('CREATE INDEX i ON t (v);', 'CREATE INDEX i ON t (v);\nDROP TABLE t;'),
    ])
      expect(migrationChecksum(edited)).not.toBe(migrationChecksum(sql));
  });
});
