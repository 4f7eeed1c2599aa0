/**
 * SIGTERM drains (docs/architecture.md §3): every request the server had taken when the signal
 * came is answered (its append committed, 201), none is cut. A barrier in PostgreSQL makes "had
 * taken" certain: the test holds the head row lock of every organization, so each request's append
 * transaction waits inside the database until every one of them is seen waiting there; only then
 * is the signal sent, and the lock released once the server has stopped accepting connections.
 * Every request's outcome is counted, a network error included.
 */
import net from 'node:net';
import pg from 'pg';
import { ApiKeyService } from '../../src/auth/api-keys';
import { createOrganization } from '../../src/auth/organizations';
import { openDatabase, type Database } from '../../src/db/client';
import { generateSignerKey } from '../../src/ledger';
import { createTestDatabase, describePostgres } from '../helpers/backends';
import { killServer, spawnServer, type ServerProcess } from '../helpers/process';
import { TEST_ADMIN_KEY } from '../helpers/server';

jest.setTimeout(400_000);

/** Polls until `condition` holds; a hang fails with `what` (no assertion on time). */
async function waitFor(what: string, condition: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** True when nothing listens on the server's port any more. */
function refusesConnections(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/** What became of one request: its HTTP status, or the network error that ended it. */
async function outcome(url: string, key: string, body: unknown): Promise<string> {
  try {
    const res = await fetch(`${url}/api/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    await res.arrayBuffer();
    return `HTTP ${res.status}`;
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return `network error: ${cause?.code ?? cause?.message ?? String(err)}`;
  }
}

describePostgres('SIGTERM drain on PostgreSQL', () => {
  const ORGS = 6;
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let database: Database;
  let server: ServerProcess | null = null;
  const keys: string[] = [];
  const orgs: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await spawnServer({
      DATABASE_URL: db.url,
      DATABASE_POOL_MAX: String(ORGS + 4),
      AUDIT_SIGNING_KEY: generateSignerKey('drain.audit').signerKey,
      AUDIT_LOG_ORIGIN: 'drain.audit',
      AUDIT_BOOTSTRAP_API_KEY: TEST_ADMIN_KEY,
      AUDIT_SELF_AUDIT_INTERVAL_MS: '0',
      INGEST_MAX_WAIT_MS: '0',
      RATE_LIMIT_PER_MINUTE: '0',
    });
    database = await openDatabase({ url: db.url, poolMax: 2 });
    const apiKeys = new ApiKeyService(database);
    for (let i = 0; i < ORGS; i++) {
      const org = await createOrganization(database, `drain-${i}`);
      orgs.push(org.id);
      keys.push((await apiKeys.create(org.id, 'producer', 'producer')).key);
    }
  });
  afterAll(async () => {
    if (server) await killServer(server, 'SIGKILL');
    await database?.close();
    await db?.drop();
  });

  it('answers every request it had taken when SIGTERM came (each append committed), cuts none, and exits 0', async () => {
    const barrier = new pg.Client({ connectionString: db.url });
    await barrier.connect();
    const observer = new pg.Client({ connectionString: db.url });
    await observer.connect();
    let released = false;
    try {
      await barrier.query('BEGIN');
      await barrier.query('SELECT 1 FROM ledger_heads WHERE organization_id = ANY($1::uuid[]) FOR UPDATE', [
        orgs,
      ]);
      const requests = keys.map((key, i) =>
        outcome(server!.url, key, { action: 'drain.append', status: 'success', correlationId: `drain-${i}` }),
      );
      // Every append transaction is inside PostgreSQL, waiting for its organization's head.
      // (Read outside the barrier's transaction, which would see one snapshot of the statistics.)
      await waitFor(`${ORGS} append transactions waiting for the head locks`, async () => {
        const { rows } = await observer.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'smedrec-audit' AND wait_event_type = 'Lock'`,
        );
        return rows[0]!.n === ORGS;
      });
      server!.child.kill('SIGTERM');
      await waitFor('the server to stop accepting connections', () => refusesConnections(server!.url));
      const late = await outcome(server!.url, keys[0]!, { action: 'drain.late', status: 'success' });
      await barrier.query('ROLLBACK');
      released = true;

      const outcomes = await Promise.all(requests);
      expect(outcomes).toEqual(Array.from({ length: ORGS }, () => 'HTTP 201'));
      expect(late).toBe('network error: ECONNREFUSED');
      expect(await server!.exited).toEqual({ code: 0, signal: null });
      const { rows } = await barrier.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM events WHERE action = 'drain.append' AND organization_id = ANY($1::uuid[])`,
        [orgs],
      );
      expect(rows[0]!.n).toBe(ORGS);
    } finally {
      if (!released) await barrier.query('ROLLBACK').catch(() => undefined);
      await barrier.end();
      await observer.end();
    }
  });
});
