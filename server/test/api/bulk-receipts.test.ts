/**
 * Bulk answers with `receipts: "compact"`: the checkpoint once, each receipt only the event's place
 * in the log. Every accepted event must still be provable against that checkpoint with the proofs
 * endpoint, an idempotent repeat must point at its first event, failed items keep their error, and
 * the default (`"full"`) answer is unchanged. REST and tRPC, on both backends.
 */
import { openCheckpoint, parseVerifierKey, verifyInclusion } from '../../src/ledger';
import { backends } from '../helpers/backends';
import { verifyReceipt } from '../helpers/receipts';
import { startTestServer, type TestServer } from '../helpers/server';

const b = (s: string) => Buffer.from(s, 'base64');

describe.each(backends())('bulk receipts on %s', (backend) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(backend);
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  const event = (i: number, extra: Record<string, unknown> = {}) => ({ action: 'data.read', status: 'success' as const, principalId: `bulk-${i}`, ...extra });

  /** Checks a compact answer: the checkpoint is signed and covers every accepted event, each provable. */
  async function checkCompact(body: any) {
    expect(body.receipts).toBe('compact');
    const opened = openCheckpoint(body.checkpoint.note, [parseVerifierKey(srv.verifierKey)]);
    expect(opened.checkpoint.origin).toBe(`test.audit/${srv.organizationId}`);
    expect(opened.checkpoint.size).toBe(body.checkpoint.treeSize);
    expect(opened.checkpoint.rootHash.toString('base64')).toBe(body.checkpoint.rootHash);
    for (const r of (body.results as Array<{ ok: boolean; receipt: any }>).filter((x) => x.ok)) {
      expect(Object.keys(r.receipt).sort()).toEqual(['duplicate', 'id', 'leafHash', 'leafIndex', 'recordedAt']);
      expect(r.receipt.leafIndex).toBeLessThan(body.checkpoint.treeSize);
      const proof = await srv.request('GET', `/api/v1/ledger/proofs/inclusion?leafIndex=${r.receipt.leafIndex}&treeSize=${body.checkpoint.treeSize}`);
      expect(proof.status).toBe(200);
      expect(proof.body.leafHash).toBe(r.receipt.leafHash);
      verifyInclusion(b(r.receipt.leafHash), r.receipt.leafIndex, body.checkpoint.treeSize, proof.body.hashes.map(b), opened.checkpoint.rootHash);
      const stored = await srv.request('GET', `/api/v1/events/${r.receipt.id}`);
      expect(stored.body.event).toMatchObject({ leafIndex: r.receipt.leafIndex, leafHash: r.receipt.leafHash, recordedAt: r.receipt.recordedAt });
    }
  }

  it('REST: a compact answer carries the checkpoint once and receipts that prove against it', async () => {
    const res = await srv.request('POST', '/api/v1/events/bulk', {
      receipts: 'compact',
      events: [event(1), { action: 'x' }, event(2, { idempotencyKey: 'compact-k1' }), event(3, { idempotencyKey: 'compact-k1' })],
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ accepted: 3, rejected: 1 });
    expect((res.body.results as Array<{ index: number }>).map((r) => r.index)).toEqual([0, 1, 2, 3]);
    expect(res.body.results[1]).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    // The repeat of an idempotency key points at the first event.
    expect(res.body.results[3].receipt).toEqual({ ...res.body.results[2].receipt, duplicate: true });
    expect(JSON.stringify(res.body)).not.toContain('inclusionProof');
    await checkCompact(res.body);

    // A later repeat of the key (an older leaf, read from storage) is covered too.
    const again = await srv.request('POST', '/api/v1/events/bulk', { receipts: 'compact', events: [event(4, { idempotencyKey: 'compact-k1' }), event(5)] });
    expect(again.body.results[0].receipt).toEqual({ ...res.body.results[2].receipt, duplicate: true });
    await checkCompact(again.body);
    // Only a repeat: nothing is appended, the answer still carries a checkpoint covering it.
    const only = await srv.request('POST', '/api/v1/events/bulk', { receipts: 'compact', events: [event(12, { idempotencyKey: 'compact-k1' })] });
    expect(only.body.results[0].receipt).toEqual({ ...res.body.results[2].receipt, duplicate: true });
    await checkCompact(only.body);
  });

  it('REST: the default and "full" answers carry a full receipt per event', async () => {
    for (const receipts of [undefined, 'full']) {
      const res = await srv.request('POST', '/api/v1/events/bulk', { ...(receipts ? { receipts } : {}), events: [event(6), event(7)] });
      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(['accepted', 'rejected', 'results']);
      for (const r of res.body.results) verifyReceipt(r.receipt, srv.verifierKey, `test.audit/${srv.organizationId}`);
    }
  });

  it('REST: an answer with nothing accepted has a null checkpoint; an unknown mode is a 400 naming the field', async () => {
    const none = await srv.request('POST', '/api/v1/events/bulk', { receipts: 'compact', events: [{ action: 'x' }] });
    expect(none.status).toBe(200);
    expect(none.body).toMatchObject({ accepted: 0, rejected: 1, receipts: 'compact', checkpoint: null });
    const bad = await srv.request('POST', '/api/v1/events/bulk', { receipts: 'tiny', events: [event(8)] });
    expect(bad.status).toBe(400);
    expect((bad.body.error.issues as Array<{ path: string }>).map((i) => i.path)).toContain('receipts');
  });

  it('tRPC: events.bulkCreate answers compact receipts the same way', async () => {
    const out = await srv.client().events.bulkCreate.mutate({ receipts: 'compact', events: [event(9), event(10)] });
    expect(out.accepted).toBe(2);
    await checkCompact(out);
    const full = await srv.client().events.bulkCreate.mutate({ events: [event(11)] });
    const first = full.results[0]!;
    if (!first.ok || !('inclusionProof' in first.receipt)) throw new Error('a full receipt was expected');
    verifyReceipt(first.receipt, srv.verifierKey, `test.audit/${srv.organizationId}`);
  });
});
