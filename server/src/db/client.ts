/**
 * Driver selection (docs/architecture.md §2): node-postgres when a connection string is given, otherwise
 * PGlite (PostgreSQL in WASM) in a data directory or in memory. Both expose the same Drizzle API and
 * the same raw-SQL connection used by migrations and advisory locks.
 */
import path from 'node:path';
import fs from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite/vector';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import pg from 'pg';
import { acquireDataDirLock, type DataDirLock } from './data-dir-lock';
import { retryWhileUnavailable } from './errors';
import * as schema from './schema';

/** The Drizzle database every repository uses, whichever driver is underneath. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;
/** A Drizzle transaction handle. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/** One connection that raw SQL (migrations, advisory locks) can run on. */
export interface RawConnection {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<{ rows: R[] }>;
  /** Runs a script of several statements (simple-query protocol, no parameters). */
  exec(text: string): Promise<void>;
  release(): void;
}

/** Connection pool state at one moment (PostgreSQL only: PGlite has one in-process connection). */
export interface PoolStats {
  /** Connections open, idle or checked out. */
  total: number;
  idle: number;
  /** Callers waiting for a connection: the pool is saturated while this is above zero. */
  waiting: number;
  max: number;
}

/** Receives the duration of every query sent to PostgreSQL (the metrics of docs/operations.md). */
export interface DatabaseObserver {
  queryFinished(seconds: number, ok: boolean): void;
}

/** An open database: Drizzle for queries, raw connections for migrations, and lifecycle. */
export interface Database {
  readonly kind: 'postgres' | 'pglite';
  readonly db: Db;
  /** Pool state, or undefined on PGlite (and absent on test doubles). */
  poolStats?(): PoolStats | undefined;
  /** Borrows one connection (PGlite has exactly one; it is shared). */
  connect(): Promise<RawConnection>;
  ping(): Promise<void>;
  close(): Promise<void>;
  /** PGlite in a data directory: this process's lock on it (see data-dir-lock.ts). */
  readonly dataDirLock?: DataDirLock;
}

/** Options for {@link openDatabase}. */
export interface OpenDatabaseOptions {
  /** PostgreSQL connection string; when absent PGlite is used. */
  url?: string | undefined;
  /** PGlite data directory; absent = in memory. */
  dataDir?: string | undefined;
  poolMax?: number;
  /** Told the duration and outcome of every PostgreSQL query. */
  observer?: DatabaseObserver | undefined;
  /**
   * How long a new PostgreSQL connection is retried while the server refuses it (restart,
   * switchover: ECONNREFUSED, 57P03 "the database system is starting up") before the caller gets
   * the error; 0 (the default) fails at once. No statement has been sent then, so a retry is
   * always safe.
   */
  connectRetryMs?: number;
  /**
   * PGlite in memory only: start from this data directory, a tarball from PGlite's `dumpDataDir`,
   * instead of an empty one (PGlite then skips initdb). The server never sets it; tests open a
   * migrated copy with it (server/test/helpers/migrated-pglite.ts). Refused with `dataDir`.
   */
  loadDataDir?: Blob | undefined;
}

// Drizzle maps camelCase fields to snake_case columns everywhere through this one option.
const drizzleConfig = { schema, casing: 'snake_case' } as const;

/** Opens the database the configuration asks for. */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  if (options.url) return openPostgres(options.url, options.poolMax ?? 10, options.observer, options.connectRetryMs ?? 0);
  if (options.loadDataDir && options.dataDir) throw new Error('loadDataDir is for an in-memory database: not with dataDir');
  return openPglite(options.dataDir, options.loadDataDir);
}

function openPostgres(url: string, poolMax: number, observer: DatabaseObserver | undefined, connectRetryMs: number): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolMax,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
    application_name: 'smedrec-audit',
  });
  // A connection that PostgreSQL ends (restart, failover, pg_terminate_backend) must not crash the
  // process: pg-pool only listens for errors on idle clients, and a checked-out client emits
  // 'error' with no listener. The query in flight fails and is answered as an error; the pool
  // replaces the client.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
    if (observer) timeQueries(client, observer);
  });
  const connectOnce = pool.connect.bind(pool) as () => Promise<pg.PoolClient>;
  if (connectRetryMs > 0) retryConnections(pool, connectOnce, connectRetryMs);
  const db = drizzlePg({ client: pool, ...drizzleConfig }) as unknown as Db;
  return {
    kind: 'postgres',
    db,
    async connect() {
      const client = await pool.connect();
      return {
        query: async <R>(text: string, params?: unknown[]) => {
          const r = await client.query(text, params);
          return { rows: r.rows as R[] };
        },
        exec: async (text: string) => {
          await client.query(text);
        },
        release: () => client.release(),
      };
    },
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: poolMax }),
    async ping() {
      // Not retried: readiness must report an unavailable database at once.
      const client = await connectOnce();
      try {
        await client.query('SELECT 1');
        client.release();
      } catch (err) {
        client.release(err instanceof Error ? err : true);
        throw err;
      }
    },
    async close() {
      await pool.end();
    },
  };
}

/**
 * Makes every connection the pool hands out (Drizzle's transactions use `pool.connect()`, and
 * pg-pool's own `pool.query` calls `this.connect(callback)`) wait while PostgreSQL refuses new
 * connections, within `budgetMs` (docs/operations.md "PostgreSQL restarts and failover").
 */
function retryConnections(pool: pg.Pool, connectOnce: () => Promise<pg.PoolClient>, budgetMs: number): void {
  const connect = (callback?: (err: Error | undefined, client?: pg.PoolClient, done?: (release?: unknown) => void) => void): Promise<pg.PoolClient> | undefined => {
    const connected = retryWhileUnavailable(connectOnce, { budgetMs });
    if (!callback) return connected;
    connected.then(
      (client) => callback(undefined, client, (release?: unknown) => client.release(release as Error | boolean | undefined)),
      // Passed on as it is: its code (ECONNREFUSED, 57P03 …) is what classifies it.
      (err: unknown) => callback(err as Error),
    );
    return undefined;
  };
  (pool as unknown as { connect: typeof connect }).connect = connect;
}

/**
 * Wraps one pooled client's `query` so that every call reports its duration and outcome: the
 * promise form (Drizzle's transactions and the raw connections) and the callback form (pg-pool's
 * `pool.query`, which Drizzle uses outside transactions). Stream forms (a Submittable) pass
 * through untimed. The caller still gets the original result, errors included.
 */
function timeQueries(client: pg.PoolClient, observer: DatabaseObserver): void {
  const original = client.query.bind(client) as (...args: unknown[]) => unknown;
  const timed = (...args: unknown[]): unknown => {
    const started = process.hrtime.bigint();
    const done = (ok: boolean) => observer.queryFinished(Number(process.hrtime.bigint() - started) / 1e9, ok);
    const callback = args[args.length - 1];
    if (typeof callback === 'function') {
      args[args.length - 1] = (err: unknown, res: unknown) => {
        done(!err);
        (callback as (e: unknown, r: unknown) => void)(err, res);
      };
      return original(...args);
    }
    const result = original(...args);
    if (result instanceof Promise) {
      result.then(
        () => done(true),
        () => done(false),
      );
    }
    return result;
  };
  (client as unknown as { query: typeof timed }).query = timed;
}

async function openPglite(dataDir: string | undefined, loadDataDir: Blob | undefined): Promise<Database> {
  if (dataDir) fs.mkdirSync(path.resolve(dataDir), { recursive: true });
  // Refuses (DataDirInUseError) before PGlite touches a directory another process has open.
  const lock = dataDir ? acquireDataDirLock(dataDir) : undefined;
  let client: PGlite;
  try {
    // pgvector ships with PGlite: loaded here, created by migration 0016 (behaviour analytics).
    const options = { extensions: { vector }, ...(loadDataDir ? { loadDataDir } : {}) };
    client = dataDir ? new PGlite(path.resolve(dataDir), options) : new PGlite(options);
    await client.waitReady;
  } catch (err) {
    lock?.release();
    throw err;
  }
  const db = drizzlePglite({ client, ...drizzleConfig }) as unknown as Db;
  return {
    kind: 'pglite',
    db,
    ...(lock ? { dataDirLock: lock } : {}),
    connect() {
      return Promise.resolve({
        query: async <R>(text: string, params?: unknown[]) => {
          const r = await client.query<R>(text, params);
          return { rows: r.rows };
        },
        exec: async (text: string) => {
          await client.exec(text);
        },
        release: () => undefined,
      });
    },
    poolStats: () => undefined,
    async ping() {
      await client.query('SELECT 1');
    },
    async close() {
      try {
        await client.close();
      } finally {
        lock?.release();
      }
    },
  };
}
