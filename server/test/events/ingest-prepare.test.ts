/**
 * Group commit computes every event's commitments before the event joins a batch: an event that
 * cannot be canonicalized (here one that bypassed the schema, as a future bug could) fails on its
 * own, and the events it would have shared a transaction with are committed.
 */
import type { EventInput } from '../../src/events/schema';
import { verifyReceipt } from '../helpers/receipts';
import { startTestServer, type TestServer } from '../helpers/server';

describe('ingest prepares events before batching', () => {
  let srv: TestServer;
  const logs: string[] = [];
  beforeAll(async () => {
    srv = await startTestServer('pglite', { INGEST_MAX_WAIT_MS: '50' }, { log: (line) => logs.push(line) });
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  it('fails only the event whose value cannot be canonicalized (RFC 8785 needs well-formed Unicode)', async () => {
    const good = (i: number) => ({ action: 'data.read', status: 'success', dataClassification: 'INTERNAL', principalId: `p-${i}` }) as EventInput;
    const bad = { action: 'data.read', status: 'success', dataClassification: 'INTERNAL', details: { note: '\ud800' } } as unknown as EventInput;
    const inputs = [good(0), good(1), bad, good(2), good(3)];
    const settled = await Promise.allSettled(srv.runtime.ingest.append(srv.organizationId, inputs));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    for (const s of settled) if (s.status === 'fulfilled') verifyReceipt(s.value, srv.verifierKey, `test.audit/${srv.organizationId}`);
    const leaves = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value.leafIndex] : [])).sort((a, b) => a - b);
    expect(leaves.at(-1)! - leaves[0]! + 1).toBe(4);
    // It failed before joining a batch: its own canonicalization error, and no transaction failed.
    expect((settled[2] as PromiseRejectedResult).reason).toBeInstanceOf(TypeError);
    expect(String((settled[2] as PromiseRejectedResult).reason)).toMatch(/lone surrogate/);
    expect(logs.filter((l) => l.includes('append failed'))).toEqual([]);
  });
});

describe('ingest shutdown', () => {
  it('drains at once after appends of which nothing joined a batch (an all-invalid bulk left a queue that drain waited on forever)', async () => {
    const srv = await startTestServer('pglite');
    let closed = false;
    try {
      const res = await srv.request('POST', '/api/v1/events/bulk', { events: [{ action: 'x' }, { status: 'nope' }] });
      expect(res.body).toMatchObject({ accepted: 0, rejected: 2 });
      // An append whose every event fails before batching leaves nothing queued either.
      await Promise.allSettled(srv.runtime.ingest.append(srv.organizationId, [{ action: 'a.b', status: 'success', details: { v: '\ud800' } } as never]));
    } finally {
      const deadline = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 20_000).unref());
      closed = (await Promise.race([srv.close().then(() => 'closed' as const), deadline])) === 'closed';
    }
    expect(closed).toBe(true);
  });
});
