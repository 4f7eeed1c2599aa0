/**
 * A migrated, empty PGlite data directory for tests, built once and kept under os.tmpdir().
 *
 * A new in-memory PGlite runs initdb (a second WebAssembly instance) before it is ready: 7–14 s on
 * a busy two-core machine, against about 0.5 s for the migrations. Mutation runs pay that once per
 * test file per mutant. Opening PGlite from a tarball of a migrated data directory (its
 * `loadDataDir` option) skips initdb and the migrations; the first test that needs it builds the
 * tarball, later ones (other jest workers, Stryker's runners, later runs) read it.
 *
 * The file's name is a hash of everything the tarball's contents depend on: the migration files
 * (their whole text: comments inside function bodies are stored in the catalog), migrate.ts (it
 * creates schema_migrations), the PGlite version, the extensions loaded, and the UTC month
 * (migration 0003 creates the event partitions around the current month). It is written to a
 * temporary name and renamed, so a reader sees either no file or a whole one; two workers that
 * build it at once each rename a complete copy.
 *
 * Only the embedded backend: PostgreSQL tests create their own databases. server/test/db/
 * migrated-pglite.test.ts compares a database opened from the tarball with a freshly migrated one.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite, type Extensions } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite/vector';
import type { Database } from '../../src/db/client';
import { loadMigrations, migrate, type Migration } from '../../src/db/migrate';

const MIGRATE_SOURCE = path.resolve(__dirname, '../../src/db/migrate.ts');

/** What a migrated data directory's contents depend on. */
export interface DataDirKeyInputs {
  pgliteVersion: string;
  migrations: ReadonlyArray<Pick<Migration, 'version' | 'sql'>>;
  migrateSource: string;
  /** Names of the PGlite extensions loaded. */
  extensions: readonly string[];
  /** UTC month, YYYY-MM. */
  month: string;
}

/** The cache key (hex SHA-256) of a migrated data directory built from `inputs`. */
export function dataDirKey(inputs: DataDirKeyInputs): string {
  const h = createHash('sha256');
  const field = (name: string, value: string) => h.update(`${name}\0${value.length}\0${value}\0`);
  field('format', 'migrated-pglite/1');
  field('pglite', inputs.pgliteVersion);
  field('migrate.ts', inputs.migrateSource);
  field('extensions', [...inputs.extensions].sort().join(','));
  field('month', inputs.month);
  for (const m of inputs.migrations) field(`migration ${m.version}`, m.sql);
  return h.digest('hex');
}

/** The installed PGlite's version (its package.json is not exported, so it is read from disk). */
export function pgliteVersion(): string {
  let dir = path.dirname(require.resolve('@electric-sql/pglite'));
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === '@electric-sql/pglite' && pkg.version) return pkg.version;
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json of @electric-sql/pglite not found');
    dir = up;
  }
}

/** The key of this checkout's migrated data directory with `extensions` loaded, now. */
export function currentDataDirKey(extensions: Extensions = {}, now = new Date()): string {
  return dataDirKey({
    pgliteVersion: pgliteVersion(),
    migrations: loadMigrations(),
    migrateSource: fs.readFileSync(MIGRATE_SOURCE, 'utf8'),
    extensions: Object.keys(extensions),
    month: now.toISOString().slice(0, 7),
  });
}

/** The directory the tarballs are kept in. */
export function dataDirCacheDir(): string {
  return path.join(os.tmpdir(), 'smedrec-audit-pglite');
}

/** Writes `data` to `file` through a temporary file in the same directory and a rename. */
export function writeFileAtomically(file: string, data: Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    fs.writeFileSync(temp, data);
    fs.renameSync(temp, file);
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw err;
  }
}

/** `client` as the {@link Database} that `migrate` needs (raw connections only). */
function rawDatabase(client: PGlite): Database {
  return {
    kind: 'pglite',
    db: undefined as never,
    connect: () =>
      Promise.resolve({
        query: async <R>(text: string, params?: unknown[]) => ({ rows: (await client.query<R>(text, params)).rows }),
        exec: async (text: string) => {
          await client.exec(text);
        },
        release: () => undefined,
      }),
    ping: async () => {
      await client.query('SELECT 1');
    },
    close: () => client.close(),
  };
}

/** Runs initdb and the migrations in a new in-memory PGlite and returns its data directory. */
async function buildMigratedDataDir(extensions: Extensions): Promise<Uint8Array> {
  const client = new PGlite({ extensions });
  try {
    await client.waitReady;
    await migrate(rawDatabase(client));
    // Everything in the data files: the copy starts without replaying the migrations' WAL.
    await client.exec('CHECKPOINT');
    return new Uint8Array(await (await client.dumpDataDir('none')).arrayBuffer());
  } finally {
    await client.close();
  }
}

/**
 * A tarball of a migrated, empty data directory for PGlite with `extensions` loaded (open it with
 * the same extensions): read from the cache, or built and stored there first.
 */
export async function migratedDataDir(extensions: Extensions = {}, dir = dataDirCacheDir()): Promise<Blob> {
  const file = path.join(dir, `${currentDataDirKey(extensions)}.tar`);
  let data: Uint8Array;
  try {
    data = fs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    data = await buildMigratedDataDir(extensions);
    writeFileAtomically(file, data);
  }
  return new Blob([data]);
}

/**
 * The migrated data directory for `openDatabase({ loadDataDir })`: with the extensions that
 * openDatabase loads into PGlite (pgvector). migrated-pglite.test.ts fails if they differ.
 */
export function migratedServerDataDir(): Promise<Blob> {
  return migratedDataDir({ vector });
}
