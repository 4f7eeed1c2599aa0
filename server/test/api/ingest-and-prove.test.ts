/**
 * End-to-end: the official tRPC client and plain REST append events, and every receipt verifies
 * offline with nothing but the ledger module and the published key.
 */
import { TRPCClientError } from '@trpc/client';
import {
  leafHash as hashLeaf,
  leafBytes,
  openCheckpoint,
  parseVerifierKey,
  verifyCommittedField,
  verifyConsistency,
  verifyInclusion,
} from '../../src/ledger';
import { describeEachBackend } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';

const b = (s: string) => Buffer.from(s, 'base64');

describeEachBackend('ingestion and proofs on %s', (backend) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(backend);
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  function checkReceipt(r: {
    leafHash: string;
    leafIndex: number;
    treeSize: number;
    rootHash: string;
    checkpoint: string;
    inclusionProof: { hashes: string[] };
  }) {
    const opened = openCheckpoint(r.checkpoint, [parseVerifierKey(srv.verifierKey)]);
    expect(opened.checkpoint.origin).toBe(`test.audit/${srv.organizationId}`);
    expect(opened.checkpoint.size).toBe(r.treeSize);
    expect(opened.checkpoint.rootHash.toString('base64')).toBe(r.rootHash);
    verifyInclusion(
      b(r.leafHash),
      r.leafIndex,
      r.treeSize,
      r.inclusionProof.hashes.map(b),
      opened.checkpoint.rootHash,
    );
  }

  it('acknowledges a tRPC events.create with a receipt that verifies offline', async () => {
    const receipt = await srv.client().events.create.mutate({
      action: 'data.read',
      status: 'success',
      principalId: 'user-1',
      patientId: 'patient-9',
      dataClassification: 'PHI',
      sessionContext: { ipAddress: '10.1.2.3', userAgent: 'jest' },
      details: { fields: ['name', 'dob'], count: 2 },
    });
    expect(receipt.duplicate).toBe(false);
    expect(receipt.id).toMatch(/^[0-9a-f-]{36}$/);
    checkReceipt(receipt);
  });

  it('rebuilds the leaf from ledger.leaves values, salts and commitments', async () => {
    const receipt = await srv
      .client()
      .events.create.mutate({ action: 'record.update', status: 'attempt', details: { n: 1.5, s: 'é' } });
    const { leaves } = await srv
      .client()
      .ledger.leaves.query({ start: receipt.leafIndex, end: receipt.leafIndex + 1 });
    const leaf = leaves[0]!;
    const commitments: Record<string, string> = {};
    for (const [name, f] of Object.entries(leaf.fields)) {
      expect(verifyCommittedField(f)).toBe('ok');
      commitments[name] = f.commitment;
    }
    expect(Object.keys(leaf.fields).sort()).toEqual([
      'action',
      'dataClassification',
      'details',
      'status',
      'timestamp',
    ]);
    const rebuilt = hashLeaf(
      leafBytes({ org: srv.organizationId, id: leaf.id, recordedAt: leaf.recordedAt, fields: commitments }),
    );
    expect(rebuilt.toString('base64')).toBe(receipt.leafHash);
  });

  it('coalesces concurrent appends into contiguous leaves of one consistent tree', async () => {
    const client = srv.client(undefined, { batch: false });
    const before = await client.ledger.checkpoint.query();
    const receipts = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        client.events.create.mutate({ action: 'data.write', status: 'success', correlationId: `c-${i}` }),
      ),
    );
    const indexes = receipts.map((r) => r.leafIndex).sort((x, y) => x - y);
    expect(indexes).toEqual(Array.from({ length: 60 }, (_, i) => before.treeSize + i));
    receipts.forEach(checkReceipt);
    const after = await client.ledger.checkpoint.query();
    const proof = await client.ledger.consistencyProof.query({
      fromSize: before.treeSize,
      toSize: after.treeSize,
    });
    verifyConsistency(
      before.treeSize,
      after.treeSize,
      proof.hashes.map(b),
      b(before.rootHash),
      b(after.rootHash),
    );
    // Every receipt's checkpoint is a prefix of the final tree.
    for (const r of receipts) {
      const p = await client.ledger.consistencyProof.query({ fromSize: r.treeSize, toSize: after.treeSize });
      verifyConsistency(r.treeSize, after.treeSize, p.hashes.map(b), b(r.rootHash), b(after.rootHash));
    }
  });

  it('bulk-appends over REST with a per-item result and names the bad item’s fields', async () => {
    const res = await srv.request('POST', '/api/v1/events/bulk', {
      events: [
        { action: 'auth.login', status: 'success' },
        { action: 'nodots', status: 'maybe', extra: true },
        { action: 'auth.logout', status: 'success' },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.accepted).toBe(2);
    expect(res.body.rejected).toBe(1);
    const bad = res.body.results[1];
    expect(bad.ok).toBe(false);
    expect(bad.error.issues.map((i: { path: string }) => i.path).sort()).toEqual([
      'action',
      'extra',
      'status',
    ]);
    expect(res.body.results[2].receipt.leafIndex).toBe(res.body.results[0].receipt.leafIndex + 1);
    checkReceipt(res.body.results[0].receipt);
  });

  it('returns the original receipt for a repeated idempotency key, also within one batch', async () => {
    const client = srv.client();
    const first = await client.events.create.mutate({
      action: 'data.export',
      status: 'success',
      idempotencyKey: 'idem-1',
    });
    const again = await client.events.create.mutate({
      action: 'data.export',
      status: 'success',
      idempotencyKey: 'idem-1',
    });
    expect(again.duplicate).toBe(true);
    expect(again.id).toBe(first.id);
    expect(again.leafIndex).toBe(first.leafIndex);
    checkReceipt(again);
    const bulk = await client.events.bulkCreate.mutate({
      events: [
        { action: 'data.export', status: 'success', idempotencyKey: 'idem-2' },
        { action: 'data.export', status: 'success', idempotencyKey: 'idem-2' },
      ],
    });
    const [a, c] = bulk.results as Array<{ ok: true; receipt: { id: string; duplicate: boolean } }>;
    expect(c!.receipt.id).toBe(a!.receipt.id);
    expect(c!.receipt.duplicate).toBe(true);
  });

  it('serves inclusion proofs by event id at an older tree size', async () => {
    const client = srv.client();
    const r = await client.events.create.mutate({ action: 'data.read', status: 'success' });
    await client.events.create.mutate({ action: 'data.read', status: 'success' });
    const proof = await client.ledger.inclusionProof.query({ eventId: r.id, treeSize: r.treeSize });
    expect(proof.hashes).toEqual(r.inclusionProof.hashes);
    const cp = await client.ledger.checkpoint.query({ treeSize: r.treeSize });
    expect(cp.rootHash).toBe(r.rootHash);
    const got = await client.events.getById.query({ id: r.id, withProof: true });
    expect(got.event.leafIndex).toBe(r.leafIndex);
    const current = got.checkpoint!;
    verifyInclusion(
      b(r.leafHash),
      r.leafIndex,
      current.treeSize,
      got.inclusionProof!.hashes.map(b),
      b(current.rootHash),
    );
  });

  it('rejects a tRPC input that fails validation with the offending paths', async () => {
    const err = await srv
      .client()
      .events.create.mutate({
        action: 'data.read',
        status: 'success',
        sessionContext: { ipAddress: 'not-an-ip' },
      } as never)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TRPCClientError);
    const e = err as TRPCClientError<any>;
    expect(e.data.httpStatus).toBe(400);
    expect(e.data.issues.map((i: { path: string }) => i.path)).toContain('sessionContext.ipAddress');
    expect(JSON.stringify(e.shape)).not.toMatch(/at .*\.ts:\d+/); // no stack traces
  });

  it('publishes the signing key that verifies checkpoints', async () => {
    const { keys } = await srv.client().ledger.keys.query();
    const active = keys.find((k) => k.active)!;
    expect(active.verifierKey).toBe(srv.verifierKey);
    const rest = await srv.request('GET', '/api/v1/ledger/keys');
    expect(rest.body.keys).toEqual(keys);
  });
});
