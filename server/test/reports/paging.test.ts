/**
 * Reports read in bounded keyset pages: with a page of 4 rows, 25 events that share one recordedAt
 * (one group commit) and 5 more are each read exactly once, in (recordedAt, id) order, and never a
 * leaf at or past the checkpoint's tree size.
 */
import { scanReportEvents, reportPage } from '../../src/reports/repository';
import { describeEachBackend } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';

describeEachBackend('report paging on %s', (backend) => {
  let srv: TestServer;
  let ids: string[];
  beforeAll(async () => {
    srv = await startTestServer(backend);
    const events = Array.from({ length: 25 }, (_, i) => ({ action: 'data.read', status: 'success', patientId: 'p-page', principalId: `u-${i}` }));
    const bulk = await srv.request('POST', '/api/v1/events/bulk', { events });
    expect(bulk.status).toBe(200);
    ids = bulk.body.results.map((r: { receipt: { id: string } }) => r.receipt.id);
    for (let i = 0; i < 5; i++) ids.push((await srv.request('POST', '/api/v1/events', { action: 'data.read', status: 'success', patientId: 'p-page' })).body.id);
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  it('pages of 4 read every row once, in (recordedAt, id) order, ties included', async () => {
    const db = srv.runtime.database.db;
    const seen: Array<{ id: string; recordedAt: Date; leafIndex: number }> = [];
    for await (const r of scanReportEvents(db, { org: srv.organizationId, subject: { patientId: 'p-page' }, treeSize: 1_000_000, from: null, to: null, limit: 4, withDetails: false })) seen.push(r);
    expect(seen.map((r) => r.id).sort()).toEqual([...ids].sort());
    const keys = seen.map((r) => `${r.recordedAt.toISOString()}|${r.id}`);
    expect(keys).toEqual([...keys].sort());
    // The 25 of the bulk append share one recordedAt: the ties span several pages.
    expect(new Set(seen.slice(0, 25).map((r) => r.recordedAt.getTime())).size).toBe(1);
  });

  it('a page holds at most its limit and nothing at or past the tree size', async () => {
    const db = srv.runtime.database.db;
    const page = await reportPage(db, { org: srv.organizationId, subject: { patientId: 'p-page' }, treeSize: 10, from: null, to: null, after: null, limit: 4, withDetails: false });
    expect(page).toHaveLength(4);
    const all = [];
    for await (const r of scanReportEvents(db, { org: srv.organizationId, subject: { patientId: 'p-page' }, treeSize: 10, from: null, to: null, limit: 3, withDetails: false })) all.push(r);
    expect(all.map((r) => r.leafIndex).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});
