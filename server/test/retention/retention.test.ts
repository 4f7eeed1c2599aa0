/**
 * Retention (docs/privacy.md §6), on each backend: events of last month are archived by a run as a
 * gzip NDJSON bundle with a SHA-256 manifest that `audit-verify bundle` accepts; archived events
 * past eraseAfterDays lose their personal data except what a legal hold covers; the month's
 * partition is dropped only once every row is archived and erased; afterwards inclusion and
 * consistency proofs of the remaining events, the export and the self-audit still verify.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { openCheckpoint, parseVerifierKey, verifyConsistency, verifyInclusion } from '../../src/ledger';
import { describeEachBackend } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';
import { auditVerifyBundle, exportNdjson, verifyNdjson } from '../privacy/helpers';

jest.setTimeout(300_000);

const TIMERS = [
  'hrtime',
  'nextTick',
  'performance',
  'queueMicrotask',
  'setImmediate',
  'clearImmediate',
  'setInterval',
  'clearInterval',
  'setTimeout',
  'clearTimeout',
] as const;

describeEachBackend('retention on %s', (backend) => {
  let srv: TestServer;
  let dir: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-archive-test-'));
    srv = await startTestServer(backend, {
      RETENTION_ARCHIVE_DIR: dir,
      RETENTION_INTERVAL_MS: '0',
      INGEST_MAX_WAIT_MS: '0',
      AUDIT_SELF_AUDIT_INTERVAL_MS: '0',
    });
    // Last month: only the server's clock moves back (timers stay real).
    const now = new Date();
    const lastMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1, 12));
    jest.useFakeTimers({ doNotFake: [...TIMERS], now: lastMonth });
    try {
      const events = [
        ...Array.from({ length: 6 }, (_, i) => ({
          action: 'data.read',
          status: 'success',
          principalId: `dr-${i}`,
          patientId: 'patient-old-1',
          dataClassification: 'PHI',
          details: { i },
        })),
        ...Array.from({ length: 2 }, () => ({
          action: 'data.read',
          status: 'success',
          principalId: 'dr-h',
          patientId: 'patient-held-2',
          dataClassification: 'PHI',
        })),
        ...Array.from({ length: 3 }, () => ({
          action: 'config.change',
          status: 'success',
          principalId: 'ops-1',
          dataClassification: 'INTERNAL',
        })),
      ];
      expect((await srv.request('POST', '/api/v1/events/bulk', { events })).body.accepted).toBe(11);
    } finally {
      jest.useRealTimers();
    }
    const recent = Array.from({ length: 2 }, () => ({
      action: 'data.read',
      status: 'success',
      principalId: 'dr-new',
      patientId: 'patient-new-3',
      dataClassification: 'PHI',
    }));
    expect((await srv.request('POST', '/api/v1/events/bulk', { events: recent })).body.accepted).toBe(2);
  }, 300_000);
  afterAll(async () => {
    await srv?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('manages policies per classification, with the HIPAA default for PHI', async () => {
    const defaults = (await srv.request('GET', '/api/v1/retention/policies')).body.policies;
    expect(defaults).toEqual([
      { dataClassification: 'PHI', archiveAfterDays: 365, eraseAfterDays: 2190, isDefault: true },
    ]);
    const bad = await srv.request('PUT', '/api/v1/retention/policies', {
      policies: [{ dataClassification: 'PHI', archiveAfterDays: null, eraseAfterDays: 1 }],
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues.map((i: { path: string }) => i.path)).toContain(
      'policies[0].eraseAfterDays',
    );
    const put = await srv.request('PUT', '/api/v1/retention/policies', {
      policies: [
        { dataClassification: 'PHI', archiveAfterDays: 1, eraseAfterDays: 1 },
        { dataClassification: '*', archiveAfterDays: 1, eraseAfterDays: 1 },
      ],
    });
    expect(put.status).toBe(200);
    expect(put.body.policies).toHaveLength(2);
  });

  it('archives, erases outside the legal hold, and keeps the partition while a row is not erased', async () => {
    const hold = await srv.request('POST', '/api/v1/legal-holds', {
      scope: 'subject',
      patientId: 'patient-held-2',
      reason: 'case 5',
    });
    expect(hold.status).toBe(201);
    const first = await srv.runtime.services.retention!.run();
    expect(first.ran).toBe(true);
    const org = first.organizations.find((o) => o.organizationId === srv.organizationId)!;
    expect(org.archive).toMatchObject({ start: 0, end: 11, events: 11 });
    expect(org.erased).toBe(9);
    expect(first.droppedPartitions).toEqual([]);

    // The archive: gzip NDJSON whose SHA-256 the manifest and the .sha256 line state, and which verifies.
    const file = path.join(dir, org.archive!.object);
    const gz = fs.readFileSync(file);
    const manifest = JSON.parse(fs.readFileSync(file.replace(/\.ndjson\.gz$/, '.manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({
      format: 'smedrec-audit-archive/1',
      start: 0,
      end: 11,
      events: 11,
      sha256: createHash('sha256').update(gz).digest('hex'),
      bytes: gz.length,
    });
    expect(fs.readFileSync(`${file}.sha256`, 'utf8')).toBe(`${manifest.sha256}  ${path.basename(file)}\n`);
    const ndjson = gunzipSync(gz).toString('utf8');
    expect(createHash('sha256').update(ndjson).digest('hex')).toBe(manifest.ndjsonSha256);
    expect(ndjson).toContain('patient-old-1'); // the archive keeps what the database erases
    const cli = auditVerifyBundle(ndjson, srv.verifierKey);
    expect(cli.status).toBe(0);

    const old = (
      await srv.request('GET', '/api/v1/events?dataClassifications=PHI,INTERNAL&sort=asc&limit=20')
    ).body.items as Array<Record<string, unknown>>;
    expect(old.filter((e) => e.patientId === 'patient-old-1')).toEqual([]);
    expect(old.filter((e) => e.patientId === 'patient-held-2')).toHaveLength(2);
    expect(old.filter((e) => e.patientId === 'patient-new-3')).toHaveLength(2);
    const actions = (
      (await srv.request('GET', '/api/v1/events?actions=retention.archive,retention.erase&limit=10')).body
        .items as Array<{ action: string }>
    )
      .map((e) => e.action)
      .sort();
    expect(actions).toEqual(['retention.archive', 'retention.erase']);
    const archives = (await srv.request('GET', '/api/v1/retention/archives')).body.archives;
    expect(archives).toHaveLength(1);

    await srv.request('POST', `/api/v1/legal-holds/${hold.body.id}/release`);
  });

  it('drops the month once every row is archived and erased; every remaining proof still verifies', async () => {
    const key = parseVerifierKey(srv.verifierKey);
    const before = await srv.client().ledger.checkpoint.query();
    const second = await srv.runtime.services.retention!.run();
    expect(second.organizations.find((o) => o.organizationId === srv.organizationId)!.erased).toBe(2);
    expect(second.droppedPartitions).toHaveLength(1);
    expect(second.droppedPartitions[0]!.rows).toBe(11);

    const remaining = (await srv.request('GET', '/api/v1/events?patientIds=patient-new-3')).body
      .items as Array<{ id: string; leafIndex: number; leafHash: string }>;
    expect(remaining).toHaveLength(2);
    const latest = await srv.client().ledger.checkpoint.query();
    const { checkpoint } = openCheckpoint(latest.note, [key]);
    for (const e of remaining) {
      const proof = await srv
        .client()
        .ledger.inclusionProof.query({ eventId: e.id, treeSize: checkpoint.size });
      expect(() =>
        verifyInclusion(
          Buffer.from(e.leafHash, 'base64'),
          e.leafIndex,
          checkpoint.size,
          proof.hashes.map((h) => Buffer.from(h, 'base64')),
          checkpoint.rootHash,
        ),
      ).not.toThrow();
    }
    const consistency = await srv
      .client()
      .ledger.consistencyProof.query({ fromSize: before.treeSize, toSize: checkpoint.size });
    expect(() =>
      verifyConsistency(
        before.treeSize,
        checkpoint.size,
        consistency.hashes.map((h) => Buffer.from(h, 'base64')),
        Buffer.from(before.rootHash, 'base64'),
        checkpoint.rootHash,
      ),
    ).not.toThrow();
    const report = verifyNdjson(await exportNdjson(srv), srv.verifierKey);
    expect(report.failures).toEqual([]);
    expect(report.start).toBe(11);
    expect((await srv.runtime.selfAudit!.runOnce()).every((r) => r.ok)).toBe(true);
    expect(
      (await srv.request('GET', '/api/v1/events?actions=retention.partition.drop')).body.items,
    ).toHaveLength(1);
  });
});
