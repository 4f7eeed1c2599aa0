/**
 * Storage backends the suite runs against: always PGlite (the embedded default), and real
 * PostgreSQL (+ Redis) when TEST_DATABASE_URL (and TEST_REDIS_URL) are set — CI sets both.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export type BackendName = 'pglite' | 'postgres';

/** The backends available in this run. */
export function backends(): BackendName[] {
  return process.env.TEST_DATABASE_URL ? ['pglite', 'postgres'] : ['pglite'];
}

/** TEST_REDIS_URL, if set. */
export function testRedisUrl(): string | undefined {
  return process.env.TEST_REDIS_URL || undefined;
}

/** A fresh, empty PostgreSQL database on the TEST_DATABASE_URL server; `drop` removes it. */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const base = process.env.TEST_DATABASE_URL;
  if (!base) throw new Error('TEST_DATABASE_URL is not set');
  const name = `audit_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** Why the PostgreSQL variant does not run in this run, or null when it does. */
export function postgresSkipReason(): string | null {
  return process.env.TEST_DATABASE_URL ? null : 'TEST_DATABASE_URL is not set';
}

/**
 * `describe` once per backend. A backend that cannot run here is still declared, as a skipped
 * block whose name says why, so the run reports it (and the skip reporter fails CI on it) instead
 * of the block vanishing from the count. `title` may contain `%s` for the backend's name.
 */
export function describeEachBackend(title: string, fn: (backend: BackendName) => void): void {
  for (const backend of ['pglite', 'postgres'] as const) {
    const name = title.includes('%s') ? title.replace('%s', backend) : `${title} (${backend})`;
    const reason = backend === 'postgres' ? postgresSkipReason() : null;
    if (reason === null) describe(name, () => fn(backend));
    else describe.skip(`${name} [skipped: ${reason}]`, () => fn(backend));
  }
}

/** `describe` for a block that needs PostgreSQL, declared as skipped with the reason when it cannot run. */
export function describePostgres(title: string, fn: () => void): void {
  const reason = postgresSkipReason();
  if (reason === null) describe(title, fn);
  else describe.skip(`${title} [skipped: ${reason}]`, fn);
}

/** Why a block needing both PostgreSQL and Redis does not run in this run, or null when it does. */
export function postgresAndRedisSkipReason(): string | null {
  return postgresSkipReason() ?? (testRedisUrl() ? null : 'TEST_REDIS_URL is not set');
}

/** `describe` for a block that needs PostgreSQL and Redis, declared as skipped with the reason when it cannot run. */
export function describePostgresAndRedis(title: string, fn: () => void): void {
  const reason = postgresAndRedisSkipReason();
  if (reason === null) describe(title, fn);
  else describe.skip(`${title} [skipped: ${reason}]`, fn);
}
