/**
 * The export bundle end to end: events appended through the API, exported over REST (NDJSON) and
 * tRPC (streamed), verified by nothing but the pure ledger module and the published key —
 * including erased fields, ranges, a pinned checkpoint and keys the auditor does not trust.
 */
import { createTRPCClient, httpBatchStreamLink } from '@trpc/client';
import {
  BundleVerifier,
  generateSignerKey,
  openCheckpoint,
  parseVerifierKey,
  type BundleRecord,
  type BundleReport,
} from '../../src/ledger';
import type { AppRouter } from '../../src/trpc/routers';
import { createOrganization } from '../../src/auth/organizations';
import { exportBundle } from '../../src/export/bundle-export';
import { describeEachBackend } from '../helpers/backends';
import { startTestServer, TEST_ADMIN_KEY, type TestServer } from '../helpers/server';

function verify(
  records: unknown[],
  key: string,
  extra: Partial<ConstructorParameters<typeof BundleVerifier>[0]> = {},
): BundleReport {
  const v = new BundleVerifier({ verifiers: [parseVerifierKey(key)], ...extra });
  for (const r of records) v.push(r);
  return v.finish();
}

describeEachBackend('bundle export on %s', (backend) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(backend, { INGEST_MAX_WAIT_MS: '0' });
    const client = srv.client(undefined, { batch: false });
    // Several transactions, so the bundle holds several checkpoints and consistency proofs.
    for (let batch = 0; batch < 5; batch++) {
      await client.events.bulkCreate.mutate({
        events: Array.from({ length: 3 + batch }, (_, i) => ({
          action: 'data.read',
          status: 'success' as const,
          principalId: `user-${batch}`,
          patientId: `patient-${batch}-${i}`,
          details: { batch, i, note: 'é ☃' },
        })),
      });
    }
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  async function exportRest(query = ''): Promise<unknown[]> {
    const res = await fetch(`${srv.url}/api/v1/ledger/export${query}`, {
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const text = await res.text();
    expect(text.endsWith('\n')).toBe(true);
    return text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as unknown);
  }

  it('exports every event over REST as NDJSON that verifies offline with the public key', async () => {
    const records = await exportRest();
    const report = verify(records, srv.verifierKey);
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.events).toBe(3 + 4 + 5 + 6 + 7);
    expect(report.checkpointsVerified).toBe(5);
    expect(report.consistencyProofsVerified).toBe(4);
    const latest = await srv.client().ledger.checkpoint.query();
    expect(report.latest?.treeSize).toBe(latest.treeSize);
    expect(report.latest?.rootHash).toBe(latest.rootHash);
    const types = records.map((r) => (r as BundleRecord).type);
    expect(types[0]).toBe('header');
    expect(types.at(-1)).toBe('end');
    expect(types.filter((t) => t === 'key')).toHaveLength(1);
  });

  it('pages of any size give the same bundle: checkpoint pages, their consistency proofs and event windows split anywhere', async () => {
    const org = srv.organizationId;
    const db = srv.runtime.database.db;
    const origin = srv.runtime.services.ledger.originOf(org);
    const collect = async (pageSize: number, range = {}) => {
      const out: BundleRecord[] = [];
      for await (const r of exportBundle(db, org, origin, range, { pageSize })) out.push(r.type === 'header' ? { ...r, exportedAt: '' } : r);
      return out;
    };
    const whole = await collect(1000);
    expect(verify(whole, srv.verifierKey).ok).toBe(true);
    for (const pageSize of [1, 2, 3, 7]) expect(await collect(pageSize)).toEqual(whole);
    // A range that starts after a checkpoint: the first page's proofs start from that checkpoint.
    const cps = whole.filter((r) => r.type === 'checkpoint').map((r) => r.treeSize);
    const ranged = await collect(1000, { start: cps[1], end: cps[3] });
    expect(verify(ranged, srv.verifierKey).ok).toBe(true);
    for (const pageSize of [1, 2]) expect(await collect(pageSize, { start: cps[1], end: cps[3] })).toEqual(ranged);
  });

  it('streams the same bundle through tRPC ledger.exportBundle with httpBatchStreamLink', async () => {
    const client = createTRPCClient<AppRouter>({
      links: [
        httpBatchStreamLink({
          url: `${srv.url}/trpc`,
          headers: () => ({ authorization: `Bearer ${TEST_ADMIN_KEY}` }),
        }),
      ],
    });
    const iterable = await client.ledger.exportBundle.query({});
    const records: unknown[] = [];
    for await (const r of iterable) records.push(r);
    const rest = await exportRest();
    // exportedAt differs between the two exports; everything else is the same bundle.
    const strip = (rs: unknown[]) => rs.map((r) => ({ ...(r as object), exportedAt: undefined }));
    expect(strip(records)).toEqual(strip(rest));
    expect(verify(records, srv.verifierKey).ok).toBe(true);
  });

  it('reports erased fields as erased, not as failures', async () => {
    const conn = await srv.runtime.database.connect();
    try {
      await conn.query(
        `UPDATE events SET patient_id = NULL, salts = salts - 'patientId', erased_at = now() WHERE organization_id = $1 AND leaf_index = 4`,
        [srv.organizationId],
      );
    } finally {
      conn.release();
    }
    const report = verify(await exportRest(), srv.verifierKey);
    expect(report.ok).toBe(true);
    expect(report.erasedFields).toBe(1);
    expect(report.erased).toEqual([{ leafIndex: 4, field: 'patientId' }]);
  });

  it('exports a leaf range widened to signed checkpoints, anchored by the frontier', async () => {
    const records = (await exportRest('?start=5&end=9')) as BundleRecord[];
    const header = records[0] as Extract<BundleRecord, { type: 'header' }>;
    // Checkpoints are at 3, 7, 12, 18, 25: [5, 9) widens to [3, 12).
    expect([header.start, header.end]).toEqual([3, 12]);
    expect(records.filter((r) => r.type === 'frontier')).toHaveLength(1);
    const report = verify(records, srv.verifierKey);
    expect(report.failures).toEqual([]);
    expect(report.events).toBe(9);
    // The log's latest checkpoint rides along (with its consistency proof), so a rollback would show.
    expect(report.latest?.treeSize).toBe(25);
  });

  it('fails when the auditor does not trust the signing key, naming the checkpoint', async () => {
    const stranger = generateSignerKey('someone.else').verifierKey;
    const report = verify(await exportRest(), stranger);
    expect(report.ok).toBe(false);
    expect(report.failures[0]).toMatchObject({ kind: 'checkpoint', treeSize: 3 });
  });

  it('checks a pinned checkpoint: the same log passes, a different root at that size fails', async () => {
    const records = await exportRest();
    const cp = await srv.client().ledger.checkpoint.query({ treeSize: 12 });
    const pinned = openCheckpoint(cp.note, [parseVerifierKey(srv.verifierKey)]).checkpoint;
    expect(verify(records, srv.verifierKey, { pinned }).ok).toBe(true);
    const forged = { ...pinned, rootHash: Buffer.alloc(32, 7) };
    const bad = verify(records, srv.verifierKey, { pinned: forged });
    expect(bad.ok).toBe(false);
    expect(bad.failures[0]).toMatchObject({ kind: 'checkpoint', treeSize: 12 });
    const future = { ...pinned, size: 1000 };
    const rolled = verify(records, srv.verifierKey, { pinned: future });
    expect(rolled.failures[0]?.reason).toMatch(/rolled back/);
  });

  it('refuses the export to a producer key (the bundle holds event values)', async () => {
    const { key } = await srv.client().apiKeys.create.mutate({ name: 'producer', role: 'producer' });
    const res = await fetch(`${srv.url}/api/v1/ledger/export`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(res.status).toBe(403);
    const unauth = await fetch(`${srv.url}/api/v1/ledger/export`);
    expect(unauth.status).toBe(401);
  });

  it('stays one consistent bundle when events are appended while it streams (the head it names is the latest checkpoint it carries)', async () => {
    const org = (await createOrganization(srv.runtime.database, 'appending while exported')).id;
    const key = (await srv.runtime.services.apiKeys.create(org, 'concurrent admin', 'admin')).key;
    const bulk = async (n: number) => {
      const events = Array.from({ length: n }, (_, i) => ({ action: 'data.read', status: 'success', principalId: `u-${i}` }));
      expect((await srv.request('POST', '/api/v1/events/bulk', { events }, key)).status).toBe(200);
    };
    await bulk(3);
    await bulk(3);
    // A range that ends before the latest checkpoint (6): the bundle carries that one too.
    const records = srv.runtime.services.exports.exportBundle(org, { start: 0, end: 2 });
    const first = await records.next();
    const header = first.value as Extract<BundleRecord, { type: 'header' }>;
    expect(header.headSize).toBe(6);
    await bulk(5); // commits the head 11 and its checkpoint while the export streams
    const all: unknown[] = [header];
    for await (const r of records) all.push(r);
    const report = verify(all, srv.verifierKey);
    expect(report.failures).toEqual([]);
    expect(report.latest?.treeSize).toBe(6);
  });
});
