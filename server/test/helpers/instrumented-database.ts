/**
 * A {@link Database} whose driver the test can hold at the edges of a transaction: what
 * `openDatabase` builds (PGlite in memory, or a node-postgres pool), wrapped at the driver level so
 * that every append transaction calls the test's hooks just before COMMIT is sent and just after
 * the driver acknowledged it, and every statement, inside a transaction or not, can be seen (and
 * delayed, or failed).
 * Nothing of the server's own code is replaced: the services run on it unchanged.
 */
import { PGlite, type Transaction as PgliteTransaction } from '@electric-sql/pglite';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import pg from 'pg';
import type { Database, Db, RawConnection } from '../../src/db/client';
import { migrate } from '../../src/db/migrate';
import * as schema from '../../src/db/schema';
import { createTestDatabase, type BackendName } from './backends';
import { migratedDataDir } from './migrated-pglite';

/** One statement run inside a transaction, as the driver was given it. */
export interface TxStatement {
  /** Which transaction of this database (1, 2, …, in the order they began). */
  tx: number;
  text: string;
  /** Runs a query on the same transaction (before the statement is sent). */
  query<R = Record<string, unknown>>(text: string): Promise<R[]>;
}

/** Hooks a test sets; each may return a promise to hold the driver there. */
export interface DriverHooks {
  /** A transaction was asked for (PGlite: it may now wait for the one connection). */
  transactionRequested?(tx: number): void;
  /** A transaction's callback finished; COMMIT is about to be sent. */
  beforeCommit?(tx: number): void | Promise<void>;
  /** The driver acknowledged COMMIT. */
  afterCommit?(tx: number): void;
  /** A statement of a transaction is about to be sent (not BEGIN/COMMIT/ROLLBACK). */
  beforeStatement?(statement: TxStatement): void | Promise<void>;
  /** A statement outside any transaction is about to be sent through the services' `db`. */
  beforeQuery?(text: string): void | Promise<void>;
}

/** An instrumented database and its hooks (replace them at any time). */
export interface InstrumentedDatabase {
  database: Database;
  hooks: DriverHooks;
  /** A raw query on a connection of its own (PostgreSQL: another session; PGlite: the only one). */
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
  close(): Promise<void>;
}

const drizzleConfig = { schema, casing: 'snake_case' } as const;

function textOf(q: unknown): string {
  if (typeof q === 'string') return q;
  if (q && typeof q === 'object' && 'text' in q) return String(q.text);
  return '';
}

/** Options for {@link openInstrumentedDatabase}. */
export interface InstrumentedDatabaseOptions {
  /**
   * PGlite: start from the cached migrated data directory (migrated-pglite.ts) instead of running
   * initdb and the migrations; `migrate` then finds nothing to apply. No effect on PostgreSQL.
   */
  fromMigratedCache?: boolean;
}

/** Opens a migrated, empty database on `backend` with driver hooks. */
export async function openInstrumentedDatabase(
  backend: BackendName,
  options: InstrumentedDatabaseOptions = {},
): Promise<InstrumentedDatabase> {
  const hooks: DriverHooks = {};
  let txCount = 0;
  const instrumented =
    backend === 'pglite'
      ? await openPglite(
          hooks,
          () => ++txCount,
          options.fromMigratedCache ? await migratedDataDir() : undefined,
        )
      : await openPostgres(hooks, () => ++txCount);
  await migrate(instrumented.database);
  return instrumented;
}

async function openPglite(
  hooks: DriverHooks,
  nextTx: () => number,
  loadDataDir: Blob | undefined,
): Promise<InstrumentedDatabase> {
  const client = new PGlite(loadDataDir ? { loadDataDir } : {});
  await client.waitReady;
  const wrapTx = (tx: PgliteTransaction, n: number): PgliteTransaction =>
    new Proxy(tx, {
      get(target, prop) {
        if (prop === 'query') {
          return async (text: string, params?: unknown[], opts?: unknown) => {
            await hooks.beforeStatement?.({
              tx: n,
              text,
              query: async <R>(t: string) => (await target.query<R>(t)).rows,
            });
            return target.query(text, params as never, opts as never);
          };
        }
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  // PGlite sends BEGIN and COMMIT itself around the callback: the hooks wrap the callback.
  const driver = new Proxy(client, {
    get(target, prop) {
      if (prop === 'query') {
        return async (text: string, params?: unknown[], opts?: unknown) => {
          await hooks.beforeQuery?.(text);
          return target.query(text, params as never, opts as never);
        };
      }
      if (prop === 'transaction') {
        return async <T>(callback: (tx: PgliteTransaction) => Promise<T>): Promise<T> => {
          const n = nextTx();
          hooks.transactionRequested?.(n);
          const result = await target.transaction(async (tx) => {
            const out = await callback(wrapTx(tx, n));
            await hooks.beforeCommit?.(n);
            return out;
          });
          hooks.afterCommit?.(n);
          return result;
        };
      }
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  const db = drizzlePglite({ client: driver, ...drizzleConfig }) as unknown as Db;
  const raw: RawConnection = {
    query: async <R>(text: string, params?: unknown[]) => ({
      rows: (await client.query<R>(text, params)).rows,
    }),
    exec: async (text: string) => {
      await client.exec(text);
    },
    release: () => undefined,
  };
  const database: Database = {
    kind: 'pglite',
    db,
    connect: () => Promise.resolve(raw),
    ping: async () => {
      await client.query('SELECT 1');
    },
    close: () => client.close(),
  };
  return {
    database,
    hooks,
    query: async <R>(text: string, params?: unknown[]) => (await client.query<R>(text, params)).rows,
    close: () => client.close(),
  };
}

async function openPostgres(hooks: DriverHooks, nextTx: () => number): Promise<InstrumentedDatabase> {
  const test = await createTestDatabase();
  // Drizzle's node-postgres session treats a client whose class name contains "Pool" as a pool:
  // it takes a client for a transaction and sends `begin` … `commit` on it, where the hooks go.
  const pool = new pg.Pool({ connectionString: test.url, max: 6 });
  pool.on('error', () => undefined);
  class HookedPool {
    async query(...args: unknown[]): Promise<pg.QueryResult> {
      await hooks.beforeQuery?.(textOf(args[0]));
      return (pool.query as (...a: unknown[]) => Promise<pg.QueryResult>)(...args);
    }
    async connect(): Promise<pg.PoolClient> {
      const client = await pool.connect();
      let n = 0;
      const original = client.query.bind(client) as (...a: unknown[]) => Promise<pg.QueryResult>;
      const hooked = async (...args: unknown[]): Promise<pg.QueryResult> => {
        const text = textOf(args[0]).trim().toLowerCase();
        if (text.startsWith('begin')) {
          n = nextTx();
          hooks.transactionRequested?.(n);
          return original(...args);
        }
        if (n === 0) return original(...args);
        const tx = n;
        if (text === 'commit') {
          await hooks.beforeCommit?.(tx);
          const r = await original(...args);
          n = 0;
          hooks.afterCommit?.(tx);
          return r;
        }
        if (text === 'rollback') {
          n = 0;
          return original(...args);
        }
        await hooks.beforeStatement?.({
          tx,
          text: textOf(args[0]),
          query: async <R>(t: string) => (await original(t)).rows as R[],
        });
        return original(...args);
      };
      (client as unknown as { query: typeof hooked }).query = hooked;
      // A pooled client is reused: undo the wrapper when it goes back.
      const release = client.release.bind(client);
      client.release = (err?: Error | boolean) => {
        (client as unknown as { query: typeof original }).query = original;
        n = 0;
        return release(err);
      };
      return client;
    }
  }
  const db = drizzlePg({ client: new HookedPool() as unknown as pg.Pool, ...drizzleConfig }) as unknown as Db;
  const plain = new pg.Pool({ connectionString: test.url, max: 2 });
  plain.on('error', () => undefined);
  const database: Database = {
    kind: 'postgres',
    db,
    async connect() {
      const c = await plain.connect();
      return {
        query: async <R>(text: string, params?: unknown[]) => ({
          rows: (await c.query(text, params)).rows as R[],
        }),
        exec: async (text: string) => {
          await c.query(text);
        },
        release: () => c.release(),
      };
    },
    ping: async () => {
      await plain.query('SELECT 1');
    },
    close: async () => {
      await pool.end();
      await plain.end();
    },
  };
  return {
    database,
    hooks,
    query: async <R>(text: string, params?: unknown[]) => (await plain.query(text, params)).rows as R[],
    close: async () => {
      await database.close();
      await test.drop();
    },
  };
}
