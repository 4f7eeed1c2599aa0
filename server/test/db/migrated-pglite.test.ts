/**
 * The cached migrated data directory (test/helpers/migrated-pglite.ts) opens a database with the
 * same schema as a freshly migrated one: the catalog read back object by object (schemas, tables
 * and partitions, columns, constraints, indexes, triggers, functions, views, sequences, types,
 * extensions, roles, grants, policies, settings), row counts of every table, and the migrations
 * table. Both PGlite variants the tests use: openDatabase's (pgvector loaded) and the instrumented
 * database's (no extension). And every input of the cache key changes it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { openDatabase, type RawConnection } from '../../src/db/client';
import { loadMigrations, migrate } from '../../src/db/migrate';
import { openInstrumentedDatabase } from '../helpers/instrumented-database';
import { currentDataDirKey, dataDirKey, migratedServerDataDir, pgliteVersion, writeFileAtomically, type DataDirKeyInputs } from '../helpers/migrated-pglite';

type Query = RawConnection['query'];

const USER_NAMESPACES = `n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'`;

/** Everything of the schema the catalog holds, in a stable order, and what the tables hold. */
async function catalogDump(query: Query): Promise<Record<string, unknown[]>> {
  const rows = async (text: string) => (await query(text)).rows;
  const dump: Record<string, unknown[]> = {
    schemas: await rows(`SELECT n.nspname, pg_get_userbyid(n.nspowner) AS owner, n.nspacl::text AS acl FROM pg_namespace n WHERE ${USER_NAMESPACES} ORDER BY 1`),
    relations: await rows(`
      SELECT n.nspname, c.relname, c.relkind, c.relpersistence, c.relispartition, c.relrowsecurity, c.relforcerowsecurity,
             pg_get_expr(c.relpartbound, c.oid) AS bound, pg_get_partkeydef(c.oid) AS partkey, c.reloptions::text AS options,
             c.relacl::text AS acl, pg_get_userbyid(c.relowner) AS owner, obj_description(c.oid, 'pg_class') AS comment
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE ${USER_NAMESPACES} ORDER BY 1, 2`),
    columns: await rows(`
      SELECT n.nspname, c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
             pg_get_expr(d.adbin, d.adrelid) AS default, a.attidentity, a.attgenerated, a.attcollation::regcollation::text AS collation,
             a.attacl::text AS acl
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE ${USER_NAMESPACES} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2, 3`),
    constraints: await rows(`
      SELECT n.nspname, c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid) AS def, k.condeferrable, k.condeferred
      FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE ${USER_NAMESPACES} ORDER BY 1, 2, 3`),
    indexes: await rows(`
      SELECT n.nspname, c.relname, pg_get_indexdef(i.indexrelid) AS def
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE ${USER_NAMESPACES} ORDER BY 1, 2`),
    triggers: await rows(`
      SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid) AS def, t.tgenabled
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE ${USER_NAMESPACES} AND NOT t.tgisinternal ORDER BY 1, 2`),
    functions: await rows(`
      SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid) AS args, pg_get_functiondef(p.oid) AS def,
             p.proacl::text AS acl, pg_get_userbyid(p.proowner) AS owner
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE ${USER_NAMESPACES} AND p.prokind <> 'a' ORDER BY 1, 2, 3`),
    views: await rows(`SELECT schemaname, viewname, definition FROM pg_views WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`),
    rules: await rows(`SELECT schemaname, tablename, rulename, definition FROM pg_rules WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3`),
    policies: await rows(`SELECT schemaname, tablename, policyname, permissive, roles::text, cmd, qual, with_check FROM pg_policies ORDER BY 1, 2, 3`),
    sequences: await rows(`SELECT schemaname, sequencename, data_type::text, start_value, increment_by, max_value, min_value, cycle, last_value FROM pg_sequences ORDER BY 1, 2`),
    types: await rows(`
      SELECT n.nspname, t.typname, t.typtype, format_type(t.typbasetype, t.typtypmod) AS base,
             (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) AS labels
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE ${USER_NAMESPACES} AND t.typtype IN ('e', 'd', 'r', 'm') ORDER BY 1, 2`),
    extensions: await rows(`SELECT extname, extversion FROM pg_extension ORDER BY 1`),
    eventTriggers: await rows(`SELECT evtname, evtevent, evtenabled FROM pg_event_trigger ORDER BY 1`),
    roles: await rows(`
      SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolbypassrls, rolconnlimit
      FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%' ORDER BY 1`),
    memberships: await rows(`
      SELECT r.rolname AS role, m.rolname AS member FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
      WHERE r.rolname NOT LIKE 'pg\\_%' ORDER BY 1, 2`),
    defaultPrivileges: await rows(`SELECT pg_get_userbyid(defaclrole) AS role, defaclobjtype, defaclacl::text AS acl FROM pg_default_acl ORDER BY 1, 2`),
    settings: await rows(`SELECT setdatabase, setrole, setconfig::text FROM pg_db_role_setting ORDER BY 1, 2`),
    migrations: await rows(`SELECT version, checksum FROM schema_migrations ORDER BY version`),
  };
  const tables = await rows(`
    SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE ${USER_NAMESPACES} AND c.relkind = 'r' ORDER BY 1`);
  dump.rowCounts = [];
  for (const { name } of tables as Array<{ name: string }>) {
    const [count] = (await query<{ n: number }>(`SELECT count(*)::int AS n FROM ${name}`)).rows;
    dump.rowCounts.push({ table: name, rows: count!.n });
  }
  return dump;
}

/** Checks that the dump is not empty where it must not be, so an equality of two empty dumps cannot pass. */
function expectMigratedSchema(dump: Record<string, unknown[]>): void {
  expect(dump.migrations).toEqual(loadMigrations().map((m) => ({ version: m.version, checksum: m.checksum })));
  const relations = (dump.relations as Array<{ relname: string }>).map((r) => r.relname);
  expect(relations).toEqual(expect.arrayContaining(['events', 'events_default', 'ledger_heads', 'ledger_nodes', 'schema_migrations']));
  expect(dump.triggers!.length).toBeGreaterThan(10);
  expect(dump.functions!.length).toBeGreaterThan(5);
  expect(dump.indexes!.length).toBeGreaterThan(20);
}

describe('migrated PGlite data directory from the cache', () => {
  it('opens with openDatabase the same schema as a freshly migrated database, pgvector included', async () => {
    const fresh = await openDatabase({});
    let freshDump: Record<string, unknown[]>;
    try {
      await migrate(fresh);
      const conn = await fresh.connect();
      freshDump = await catalogDump(conn.query.bind(conn));
    } finally {
      await fresh.close();
    }
    const cached = await openDatabase({ loadDataDir: await migratedServerDataDir() });
    try {
      expect(await migrate(cached)).toEqual([]);
      const conn = await cached.connect();
      const cachedDump = await catalogDump(conn.query.bind(conn));
      expectMigratedSchema(cachedDump);
      expect((cachedDump.extensions as Array<{ extname: string }>).map((e) => e.extname)).toContain('vector');
      expect(cachedDump).toEqual(freshDump);
    } finally {
      await cached.close();
    }
  }, 180_000);

  it('opens in the instrumented database the same schema as a freshly migrated PGlite without extensions', async () => {
    const fresh = new PGlite();
    let freshDump: Record<string, unknown[]>;
    try {
      const raw: RawConnection = {
        query: async <R>(text: string, params?: unknown[]) => ({ rows: (await fresh.query<R>(text, params)).rows }),
        exec: async (text: string) => {
          await fresh.exec(text);
        },
        release: () => undefined,
      };
      await migrate({ kind: 'pglite', db: undefined as never, connect: () => Promise.resolve(raw), ping: async () => undefined, close: () => fresh.close() });
      freshDump = await catalogDump(raw.query);
    } finally {
      await fresh.close();
    }
    const idb = await openInstrumentedDatabase('pglite', { fromMigratedCache: true });
    try {
      const cachedDump = await catalogDump(async <R>(text: string) => ({ rows: await idb.query<R>(text) }));
      expectMigratedSchema(cachedDump);
      expect((cachedDump.extensions as Array<{ extname: string }>).map((e) => e.extname)).not.toContain('vector');
      expect(cachedDump).toEqual(freshDump);
    } finally {
      await idb.close();
    }
  }, 180_000);

  it('refuses a data directory to load together with a data directory path', async () => {
    await expect(openDatabase({ dataDir: path.join(os.tmpdir(), 'unused'), loadDataDir: new Blob([]) })).rejects.toThrow(
      'loadDataDir is for an in-memory database: not with dataDir',
    );
  });
});

describe('cache key of the migrated data directory', () => {
  const base: DataDirKeyInputs = {
    pgliteVersion: '0.4.6',
    migrations: [
      { version: '0001_a', sql: 'CREATE TABLE a (x int);' },
      { version: '0002_b', sql: 'CREATE TABLE b (y int);' },
    ],
    migrateSource: 'migrate.ts',
    extensions: ['vector'],
    month: '2026-12',
  };

  it('is the same for the same inputs, and for extensions named in another order', () => {
    expect(dataDirKey(base)).toMatch(/^[0-9a-f]{64}$/);
    expect(dataDirKey({ ...base, migrations: base.migrations.map((m) => ({ ...m })) })).toBe(dataDirKey(base));
    expect(dataDirKey({ ...base, extensions: ['b', 'a'] })).toBe(dataDirKey({ ...base, extensions: ['a', 'b'] }));
  });

  it('changes with any change of the migration set', () => {
    const [a, b] = base.migrations;
    const variants: Array<DataDirKeyInputs['migrations']> = [
      [a!, { ...b!, sql: 'CREATE TABLE b (y bigint);' }],
      // A comment is part of the key: inside a function body it is stored in the catalog.
      [a!, { ...b!, sql: `${b!.sql}\n-- note` }],
      [a!, { ...b!, version: '0002_c' }],
      [a!],
      [a!, b!, { version: '0003_c', sql: 'CREATE TABLE c (z int);' }],
      [b!, a!],
      // Where one file ends and the next begins is part of the key.
      [{ ...a!, sql: a!.sql + b!.sql }, { ...b!, sql: '' }],
    ];
    const keys = variants.map((migrations) => dataDirKey({ ...base, migrations }));
    expect(new Set([dataDirKey(base), ...keys]).size).toBe(variants.length + 1);
  });

  it('changes with the PGlite version, migrate.ts, the extensions and the month', () => {
    const keys = [
      dataDirKey(base),
      dataDirKey({ ...base, pgliteVersion: '0.4.7' }),
      dataDirKey({ ...base, migrateSource: 'migrate.ts changed' }),
      dataDirKey({ ...base, extensions: [] }),
      dataDirKey({ ...base, month: '2027-01' }),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("is computed from this checkout's migrations and the installed PGlite", () => {
    expect(pgliteVersion()).toMatch(/^\d+\.\d+\.\d+/);
    const december = new Date('2026-12-31T23:59:59Z');
    expect(currentDataDirKey({}, december)).toBe(currentDataDirKey({}, new Date('2026-12-01T00:00:00Z')));
    expect(currentDataDirKey({}, december)).not.toBe(currentDataDirKey({}, new Date('2027-01-01T00:00:00Z')));
  });
});

describe('writeFileAtomically', () => {
  it('leaves the whole file under its name and no temporary file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atomic-'));
    try {
      const file = path.join(dir, 'sub', 'key.tar');
      writeFileAtomically(file, Buffer.from('first'));
      writeFileAtomically(file, Buffer.from('second, longer'));
      expect(fs.readFileSync(file, 'utf8')).toBe('second, longer');
      expect(fs.readdirSync(path.dirname(file))).toEqual(['key.tar']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('removes its temporary file when the rename fails and leaves the target alone', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atomic-'));
    try {
      // A directory in the way: the rename fails.
      const file = path.join(dir, 'key.tar');
      fs.mkdirSync(path.join(file, 'inside'), { recursive: true });
      expect(() => writeFileAtomically(file, Buffer.from('data'))).toThrow();
      expect(fs.readdirSync(dir)).toEqual(['key.tar']);
      expect(fs.readdirSync(file)).toEqual(['inside']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
