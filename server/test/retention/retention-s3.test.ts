/**
 * Retention archives to an S3-compatible bucket (docs/privacy.md §6), on each backend, against a
 * real S3-protocol server (s3rver in process) and a directory at once: while the bucket is missing
 * a run fails naming the bucket, key and S3 error code, and nothing is recorded, erased or dropped;
 * once the bucket exists the next run stores the archive in both destinations, records it, then
 * erases; the objects downloaded from the bucket verify with `audit-verify bundle` and match the
 * manifest's SHA-256 and the directory's copy; a further run uploads nothing and records nothing.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { describeEachBackend } from '../helpers/backends';
import { startTestS3, type TestS3 } from '../helpers/s3';
import { startTestServer, type TestServer } from '../helpers/server';
import { atLastMonth, auditVerifyBundle } from '../privacy/helpers';

jest.setTimeout(300_000);

describeEachBackend('retention archives to S3 and a directory on %s', (backend) => {
  let s3: TestS3;
  let srv: TestServer;
  let dir: string;
  // One bucket per backend run: both variants may share a store, never a bucket.
  const bucket = `archive-${backend}`;
  const prefix = 'audit/prod';
  const patients = async () =>
    ((await srv.request('GET', '/api/v1/events?patientIds=patient-s3-old&limit=20')).body.items as unknown[]).length;

  beforeAll(async () => {
    s3 = await startTestS3(); // no bucket yet: the first run fails with NoSuchBucket
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'retention-s3-'));
    srv = await startTestServer(backend, {
      ...s3.env(bucket, prefix),
      RETENTION_ARCHIVE_DIR: dir,
      RETENTION_ARCHIVE_S3_SSE: 'AES256',
      RETENTION_ARCHIVE_S3_OBJECT_LOCK_DAYS: '2190',
      RETENTION_INTERVAL_MS: '0',
      INGEST_MAX_WAIT_MS: '0',
      AUDIT_SELF_AUDIT_INTERVAL_MS: '0',
    });
    await atLastMonth(async () => {
      const events = Array.from({ length: 7 }, (_, i) => ({
        action: 'data.read',
        status: 'success',
        principalId: `dr-s3-${i}`,
        patientId: 'patient-s3-old',
        dataClassification: 'PHI',
        details: { visit: i },
      }));
      expect((await srv.request('POST', '/api/v1/events/bulk', { events })).body.accepted).toBe(7);
    });
    const put = await srv.request('PUT', '/api/v1/retention/policies', {
      policies: [
        { dataClassification: 'PHI', archiveAfterDays: 1, eraseAfterDays: 1 },
        { dataClassification: '*', archiveAfterDays: 1, eraseAfterDays: 1 },
      ],
    });
    expect(put.status).toBe(200);
  });
  afterAll(async () => {
    await srv?.close();
    await s3?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('fails while the bucket is missing: the error names bucket, key and code; nothing recorded, erased or dropped', async () => {
    const key = `${prefix}/${srv.organizationId}/000000000000-000000000007.ndjson.gz`;
    await expect(srv.runtime.services.retention!.run()).rejects.toThrow(
      `S3 archive upload failed: s3://${bucket}/${key}: NoSuchBucket`,
    );
    expect((await srv.request('GET', '/api/v1/retention/archives')).body.archives).toEqual([]);
    expect(await patients()).toBe(7);
    expect((await srv.request('GET', '/api/v1/events?actions=retention.archive,retention.erase,retention.partition.drop')).body.items).toEqual([]);
    // The lock was released: a run after the failure runs (and fails the same way) instead of finding it held.
    await expect(srv.runtime.services.retention!.run()).rejects.toThrow('NoSuchBucket');
  });

  it('once the bucket exists, the next run stores the archive in both places, records it, then erases', async () => {
    await s3.client.send(new CreateBucketCommand({ Bucket: bucket }));
    const from = s3.requests.length;
    const run = await srv.runtime.services.retention!.run();
    const org = run.organizations.find((o) => o.organizationId === srv.organizationId)!;
    expect(org.archive).toMatchObject({ start: 0, end: 7, events: 7 });
    expect(org.erased).toBe(7);
    expect(await patients()).toBe(0);

    // Exactly the three objects, the manifest last.
    const base = `${prefix}/${srv.organizationId}/000000000000-000000000007`;
    expect(await s3.keys(bucket)).toEqual([`${base}.manifest.json`, `${base}.ndjson.gz`, `${base}.ndjson.gz.sha256`]);
    const writes = s3.requests.slice(from).filter((r) => r.method === 'PUT').map((r) => r.url.split('?')[0]);
    expect(writes).toEqual([`/${bucket}/${base}.ndjson.gz`, `/${bucket}/${base}.ndjson.gz.sha256`, `/${bucket}/${base}.manifest.json`]);

    // Downloaded from the bucket, the archive checks as an auditor checks it.
    const gz = await s3.get(bucket, `${base}.ndjson.gz`);
    const manifest = JSON.parse((await s3.get(bucket, `${base}.manifest.json`)).toString('utf8'));
    expect(manifest).toMatchObject({ format: 'smedrec-audit-archive/1', organizationId: srv.organizationId, start: 0, end: 7, events: 7, bytes: gz.length });
    expect(createHash('sha256').update(gz).digest('hex')).toBe(manifest.sha256);
    expect((await s3.get(bucket, `${base}.ndjson.gz.sha256`)).toString()).toBe(`${manifest.sha256}  000000000000-000000000007.ndjson.gz\n`);
    const ndjson = gunzipSync(gz).toString('utf8');
    expect(createHash('sha256').update(ndjson).digest('hex')).toBe(manifest.ndjsonSha256);
    expect(ndjson).toContain('patient-s3-old'); // the archive keeps what the database erased
    const verified = auditVerifyBundle(ndjson, srv.verifierKey);
    expect(verified.stderr).toBe('');
    expect(verified.status).toBe(0);

    // The directory holds the same bytes; the record names both destinations.
    const local = path.join(dir, srv.organizationId, '000000000000-000000000007');
    expect(fs.readFileSync(`${local}.ndjson.gz`).equals(gz)).toBe(true);
    expect(JSON.parse(fs.readFileSync(`${local}.manifest.json`, 'utf8'))).toEqual(manifest);
    const archives = (await srv.request('GET', '/api/v1/retention/archives')).body.archives;
    expect(archives).toEqual([expect.objectContaining({ start: 0, end: 7, events: 7, sha256: manifest.sha256, destination: `dir:${dir} s3://${bucket}/${prefix}/` })]);
    const logged = (await srv.request('GET', '/api/v1/events?actions=retention.archive')).body.items;
    expect(logged).toHaveLength(1);
    expect(logged[0].details.destinations).toEqual([`dir:${dir}`, `s3://${bucket}/${prefix}/`]);

    // What the store was sent besides the bytes: encryption and an Object Lock until the archive date + 2190 days.
    const bundlePut = s3.requests.slice(from).find((r) => r.method === 'PUT' && r.url.startsWith(`/${bucket}/${base}.ndjson.gz?`))!;
    expect(bundlePut.headers).toMatchObject({
      'x-amz-server-side-encryption': 'AES256',
      'x-amz-object-lock-mode': 'COMPLIANCE',
      'x-amz-checksum-sha256': Buffer.from(manifest.sha256, 'hex').toString('base64'),
    });
    expect(Date.parse(bundlePut.headers['x-amz-object-lock-retain-until-date'] as string)).toBe(Date.parse(manifest.createdAt) + 2190 * 86_400_000);
  });

  it('a further run uploads nothing and records nothing', async () => {
    const from = s3.requests.length;
    const again = await srv.runtime.services.retention!.run();
    expect(again.organizations.find((o) => o.organizationId === srv.organizationId)).toMatchObject({ archive: null, erased: 0 });
    expect(s3.requests.slice(from).filter((r) => r.method === 'PUT' || r.method === 'POST')).toEqual([]);
    expect(await s3.keys(bucket)).toHaveLength(3);
    expect((await srv.request('GET', '/api/v1/retention/archives')).body.archives).toHaveLength(1);
  });
});
