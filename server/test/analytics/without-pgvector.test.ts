/**
 * On a PostgreSQL without the pgvector extension (Debian's PostgreSQL here has no package for it)
 * every migration still applies, the analytics operations answer 501 naming the extension on
 * REST, tRPC and GraphQL, the worker's catch-up does nothing, and the rest of the server works.
 */
import { MISSING_EXTENSION_MESSAGE } from '../../src/analytics/service';
import { describePostgres } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';

describePostgres('behaviour analytics on a PostgreSQL without pgvector', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer('postgres', { ANALYTICS_INTERVAL_MS: '0' });
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  it('is such a database: no vector extension, no analytics tables, migration 0016 applied', async () => {
    const conn = await srv.runtime.database.connect();
    try {
      const { rows } = await conn.query<{ ext: boolean; table: string | null; applied: boolean }>(
        `SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'vector') AS ext, to_regclass('event_embeddings')::text AS table,
                EXISTS (SELECT FROM schema_migrations WHERE version LIKE '0016_%') AS applied`,
      );
      expect(rows[0]).toEqual({ ext: false, table: null, applied: true });
    } finally {
      conn.release();
    }
  });

  it('answers 501 naming the extension on every analytics operation, and the rest keeps working', async () => {
    const created = await srv.request('POST', '/api/v1/events', { action: 'data.read', status: 'success', principalId: 'p-1' });
    expect(created.status).toBe(201);
    const id: string = created.body.id;
    for (const [method, path, body] of [
      ['GET', `/api/v1/analytics/events/${id}/similar`, undefined],
      ['GET', '/api/v1/analytics/principals/p-1/baseline', undefined],
      ['GET', '/api/v1/analytics/anomalies', undefined],
      ['GET', '/api/v1/analytics/settings', undefined],
      ['POST', '/api/v1/analytics/settings', { anomalyThreshold: 3 }],
    ] as const) {
      const res = await srv.request(method, path, body);
      expect({ path, status: res.status, code: res.body.error?.code }).toEqual({ path, status: 501, code: 'NOT_IMPLEMENTED' });
      expect(res.body.error.message).toBe(MISSING_EXTENSION_MESSAGE);
      expect(res.body.error.message).toMatch(/extension "vector" \(pgvector\)/);
    }
    await expect(srv.client().analytics.anomalies.query({})).rejects.toMatchObject({ data: { code: 'NOT_IMPLEMENTED', httpStatus: 501 } });
    const gql = await srv.request('POST', '/graphql', { query: `{ analyticsSimilar(id: "${id}") { eventId } }` });
    expect(gql.body.errors[0].message).toBe(MISSING_EXTENSION_MESSAGE);
    expect(gql.body.errors[0].extensions.code).toBe('NOT_IMPLEMENTED');
    // Everything else works.
    expect((await srv.request('GET', `/api/v1/events/${id}`)).status).toBe(200);
    expect((await srv.request('GET', '/ready', undefined, null)).status).toBe(200);
    expect(await srv.runtime.services.analytics.catchUp(null)).toEqual({ embedded: 0, organizations: 0, anomalies: 0, more: false });
    expect(await srv.runtime.services.analytics.deleteEmbeddings(srv.organizationId, [id])).toBe(0);
  });
});
