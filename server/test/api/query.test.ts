/**
 * events.query filters and keyset pagination, events.stats, getById — over tRPC and REST.
 */
import type { EventInputBody } from '../../src/events/schema';
import { describeEachBackend } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';

describeEachBackend('queries on %s', (backend) => {
  let srv: TestServer;
  const ids: string[] = [];
  beforeAll(async () => {
    srv = await startTestServer(backend);
    const events: EventInputBody[] = Array.from({ length: 45 }, (_, i) => ({
      action: i % 3 === 0 ? 'data.read' : i % 3 === 1 ? 'data.write' : 'auth.login',
      status: i % 5 === 0 ? 'failure' : 'success',
      principalId: `user-${i % 4}`,
      patientId: i % 2 === 0 ? 'patient-even' : 'patient-odd',
      targetResourceType: i % 2 === 0 ? 'Patient' : 'Observation',
      targetResourceId: `res-${i % 6}`,
      dataClassification: i % 4 === 0 ? 'PHI' : 'INTERNAL',
      correlationId: `corr-${i % 9}`,
    }));
    // Several batches so recordedAt differs between groups and ties exist within a batch.
    for (let k = 0; k < events.length; k += 15) {
      const res = await srv.client().events.bulkCreate.mutate({ events: events.slice(k, k + 15) });
      for (const r of res.results) if (r.ok) ids.push(r.receipt.id);
      await new Promise((r) => setTimeout(r, 5));
    }
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  async function all(q: Record<string, unknown>, limit = 7) {
    const seen: Array<{ id: string; recordedAt: string; leafIndex: number }> = [];
    let cursor: string | undefined;
    for (let i = 0; i < 100; i++) {
      const page = await srv.client().events.query.query({ ...q, limit, cursor });
      seen.push(...page.items);
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    return seen;
  }

  it('pages through every event exactly once, newest first by default', async () => {
    const rows = await all({});
    expect(rows).toHaveLength(45);
    expect(new Set(rows.map((r) => r.id)).size).toBe(45);
    const keys = rows.map((r) => `${r.recordedAt}|${r.id}`);
    expect(keys).toEqual([...keys].sort().reverse());
  });

  it('pages ascending with ties on recordedAt broken by id', async () => {
    const rows = await all({ sort: 'asc' }, 4);
    expect(rows.map((r) => r.id)).toEqual([...ids].sort((a, b) => (a < b ? -1 : 1)));
  });

  it.each([
    [{ actions: ['data.read'] }, 15],
    [{ statuses: ['failure'] }, 9],
    [{ principalIds: ['user-1', 'user-2'] }, 22],
    [{ patientIds: ['patient-even'] }, 23],
    [{ targetResourceTypes: ['Observation'] }, 22],
    [{ targetResourceIds: ['res-0'] }, 8],
    [{ dataClassifications: ['PHI'] }, 12],
    [{ correlationIds: ['corr-0'] }, 5],
    [{ actions: ['data.read'], statuses: ['failure'] }, 3],
  ])('filters %j', async (filter, expected) => {
    expect(await all(filter)).toHaveLength(expected);
  });

  it('filters by date range (from inclusive, to exclusive)', async () => {
    const rows = await all({ sort: 'asc' });
    const mid = rows[20]!.recordedAt;
    const before = await all({ dateRange: { to: mid } });
    const after = await all({ dateRange: { from: mid } });
    expect(before.length + after.length).toBe(45);
    expect(before.every((r) => r.recordedAt < mid)).toBe(true);
  });

  it('mirrors the query over REST with comma-separated lists', async () => {
    const res = await srv.request(
      'GET',
      '/api/v1/events?actions=data.read,data.write&statuses=success&limit=100',
    );
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(
      await all({ actions: ['data.read', 'data.write'], statuses: ['success'] }).then((r) => r.length),
    );
  });

  it('rejects a forged cursor and an out-of-range limit with the field named', async () => {
    const bad = await srv.request('GET', '/api/v1/events?cursor=Zm9v');
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues[0].path).toBe('cursor');
    const big = await srv.request('GET', '/api/v1/events?limit=5000');
    expect(big.status).toBe(400);
    expect(big.body.error.issues[0].path).toBe('limit');
  });

  it('counts by action, status, classification, day and hour', async () => {
    const byAction = await srv.client().events.stats.query({ groupBy: 'action' });
    expect(byAction.total).toBe(45);
    expect(byAction.groups).toEqual([
      { key: 'auth.login', count: 15 },
      { key: 'data.read', count: 15 },
      { key: 'data.write', count: 15 },
    ]);
    const byStatus = await srv.request('GET', '/api/v1/events/stats?groupBy=status');
    expect(byStatus.body.groups).toEqual([
      { key: 'failure', count: 9 },
      { key: 'success', count: 36 },
    ]);
    const byClass = await srv.client().events.stats.query({ groupBy: 'dataClassification' });
    expect(byClass.groups.find((g) => g.key === 'PHI')!.count).toBe(12);
    const byDay = await srv.client().events.stats.query({ groupBy: 'day' });
    const days = new Set((await all({})).map((r) => r.recordedAt.slice(0, 10)));
    expect(byDay.groups.map((g) => g.key)).toEqual([...days].sort());
    expect(byDay.total).toBe(45);
    const byHour = await srv.client().events.stats.query({ groupBy: 'hour' });
    expect(byHour.groups.reduce((n, g) => n + g.count, 0)).toBe(45);
    expect(byHour.groups[0]!.key).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:00Z$/);
  });

  it('returns 404 for an unknown event id', async () => {
    const res = await srv.request('GET', '/api/v1/events/01900000-0000-7000-8000-000000000000');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
  });
});
