/**
 * PostgreSQL ending a connection that is in use (restart, failover, pg_terminate_backend) fails
 * the query in flight but never crashes the process; the pool reconnects.
 */
import { openDatabase } from '../../src/db/client';
import { createTestDatabase, describePostgres } from '../helpers/backends';

describePostgres('PostgreSQL connection loss', () => {
  it('survives the server terminating a checked-out connection', async () => {
    const db = await createTestDatabase();
    const database = await openDatabase({ url: db.url, poolMax: 2 });
    const admin = await openDatabase({ url: db.url, poolMax: 1 });
    try {
      const victim = await database.connect();
      const { rows } = await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      // Checked out and idle (as inside a transaction between statements): no query is there to
      // receive the error, so the client emits it as an event.
      const killer = await admin.connect();
      await killer.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
      killer.release();
      await new Promise((r) => setTimeout(r, 300));
      await expect(victim.query('SELECT 1')).rejects.toThrow();
      victim.release();
      await new Promise((r) => setTimeout(r, 100));
      await expect(database.ping()).resolves.toBeUndefined();
    } finally {
      await database.close();
      await admin.close();
      await db.drop();
    }
  });
});
