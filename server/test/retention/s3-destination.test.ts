/**
 * The S3 archive destination against a real S3-protocol server (s3rver, in process): what it
 * uploads and in which order, with which checksum, encryption and Object Lock headers; a bundle
 * above the multipart threshold goes up in parts and comes back byte for byte; a store that cannot
 * be reached, a wrong bucket or wrong credentials fail with an error naming the bucket, the key and
 * the S3 error code, and nothing else. The retention runs that use it are in retention-s3.test.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { ArchiveManifest } from '../../src/retention/archive';
import { parseS3Url, S3ArchiveError, S3Destination, type S3DestinationOptions } from '../../src/retention/s3';
import { S3RVER_CREDENTIALS, startTestS3, type TestS3 } from '../helpers/s3';

jest.setTimeout(120_000);

const MIB = 1024 * 1024;

describe('S3 archive destination', () => {
  let s3: TestS3;
  let dir: string;
  const destinations: S3Destination[] = [];
  const destination = (options: Partial<S3DestinationOptions> = {}) => {
    const d = new S3Destination({ url: 's3://archive/audit/prod', region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: S3RVER_CREDENTIALS, ...options });
    destinations.push(d);
    return d;
  };
  /** A file of `bytes` random bytes and the manifest a retention run would write for it. */
  const bundle = (name: string, bytes: number): { file: string; manifest: ArchiveManifest } => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, randomBytes(bytes));
    const sha256 = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    const object = `org-1/${name}.ndjson.gz`;
    return {
      file,
      manifest: { format: 'smedrec-audit-archive/1', organizationId: 'org-1', start: 0, end: 10, events: 10, object, sha256, bytes, ndjsonSha256: sha256, checkpoint: null, createdAt: '2026-01-02T03:04:05.000Z' },
    };
  };
  /** The writes since request `from`, with `line` = method and path (the SDK's `x-id` query parameter left out). */
  const puts = (from: number) =>
    s3.requests
      .slice(from)
      .filter((r) => r.method === 'PUT' || r.method === 'POST')
      .map((r) => ({ ...r, line: `${r.method} ${r.url.replace(/[?&]x-id=[^&]*/, '').replace('?uploads=', '?uploads').replace(/uploadId=[^&]+/, 'uploadId=…')}` }));

  beforeAll(async () => {
    s3 = await startTestS3(['archive']);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 's3-destination-'));
  });
  afterAll(async () => {
    for (const d of destinations) d.close();
    await s3?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('parses s3://bucket[/prefix]', () => {
    expect(parseS3Url('s3://archive')).toEqual({ bucket: 'archive', prefix: '' });
    expect(parseS3Url('s3://archive/')).toEqual({ bucket: 'archive', prefix: '' });
    expect(parseS3Url('s3://my.archive-1/audit/prod/')).toEqual({ bucket: 'my.archive-1', prefix: 'audit/prod/' });
    for (const bad of ['archive', 'https://archive/x', 's3://Archive', 's3://a', 's3://archive/a//b', 's3://archive/a/../b']) expect(parseS3Url(bad)).toBeNull();
  });

  it('uploads bundle, .sha256 line and manifest (last), each with its SHA-256 and MD5, encryption and Object Lock', async () => {
    const d = destination({ encryption: 'aws:kms', kmsKeyId: 'alias/audit-archive', objectLockDays: 2190 });
    const { file, manifest } = bundle('000000000000-000000000010', 300_000);
    const from = s3.requests.length;
    await d.put(manifest.object, file, manifest);

    const keys = ['org-1/000000000000-000000000010.ndjson.gz', 'org-1/000000000000-000000000010.ndjson.gz.sha256', 'org-1/000000000000-000000000010.manifest.json'];
    const sent = puts(from);
    expect(sent.map((r) => r.line)).toEqual(keys.map((k) => `PUT /archive/audit/prod/${k}`));
    const stored = await Promise.all(keys.map((k) => s3.get('archive', `audit/prod/${k}`)));
    expect(stored[0]!.equals(fs.readFileSync(file))).toBe(true);
    expect(stored[1]!.toString()).toBe(`${manifest.sha256}  000000000000-000000000010.ndjson.gz\n`);
    expect(JSON.parse(stored[2]!.toString())).toEqual(manifest);
    const retainUntil = new Date(Date.parse(manifest.createdAt) + 2190 * 24 * 3600 * 1000).toISOString();
    sent.forEach((r, i) => {
      expect(r.headers).toMatchObject({
        'x-amz-checksum-sha256': createHash('sha256').update(stored[i]!).digest('base64'),
        'content-md5': createHash('md5').update(stored[i]!).digest('base64'),
        'content-length': String(stored[i]!.length),
        'x-amz-server-side-encryption': 'aws:kms',
        'x-amz-server-side-encryption-aws-kms-key-id': 'alias/audit-archive',
        'x-amz-object-lock-mode': 'COMPLIANCE',
      });
      expect(new Date(r.headers['x-amz-object-lock-retain-until-date'] as string).toISOString()).toBe(retainUntil);
      // Plain bytes, not the aws-chunked encoding the SDK's default checksum mode would use.
      expect(r.headers['content-encoding']).toBeUndefined();
    });
  });

  it('sends AES256 without a key id, and no lock or encryption headers unless configured', async () => {
    const { file, manifest } = bundle('000000000010-000000000020', 1000);
    let from = s3.requests.length;
    await destination({ encryption: 'AES256', kmsKeyId: 'ignored' }).put(manifest.object, file, manifest);
    for (const r of puts(from)) {
      expect(r.headers['x-amz-server-side-encryption']).toBe('AES256');
      expect(r.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBeUndefined();
    }
    from = s3.requests.length;
    await destination().put(manifest.object, file, manifest);
    for (const r of puts(from)) expect(Object.keys(r.headers).filter((h) => /encryption|object-lock/.test(h))).toEqual([]);
  });

  it('streams a bundle above the threshold as a multipart upload, each part with its checksum, and it comes back whole', async () => {
    const d = destination({ multipartThresholdBytes: 5 * MIB, partSizeBytes: 5 * MIB, objectLockDays: 30, encryption: 'AES256' });
    const { file, manifest } = bundle('000000000020-000000000030', 11 * MIB + 123);
    const from = s3.requests.length;
    await d.put(manifest.object, file, manifest);
    const sent = puts(from);
    const key = '/archive/audit/prod/org-1/000000000020-000000000030.ndjson.gz';
    expect(sent.map((r) => r.line)).toEqual([
      `POST ${key}?uploads`,
      `PUT ${key}?partNumber=1&uploadId=…`,
      `PUT ${key}?partNumber=2&uploadId=…`,
      `PUT ${key}?partNumber=3&uploadId=…`,
      `POST ${key}?uploadId=…`,
      `PUT ${key}.sha256`,
      'PUT /archive/audit/prod/org-1/000000000020-000000000030.manifest.json',
    ]);
    // Encryption and the lock are set when the upload is created; every part carries its checksums.
    expect(sent[0]!.headers).toMatchObject({ 'x-amz-checksum-algorithm': 'SHA256', 'x-amz-server-side-encryption': 'AES256', 'x-amz-object-lock-mode': 'COMPLIANCE' });
    const bytes = fs.readFileSync(file);
    sent.slice(1, 4).forEach((r, i) => {
      const part = bytes.subarray(i * 5 * MIB, Math.min((i + 1) * 5 * MIB, bytes.length));
      expect(r.headers['content-length']).toBe(String(part.length));
      expect(r.headers['x-amz-checksum-sha256']).toBe(createHash('sha256').update(part).digest('base64'));
      expect(r.headers['content-md5']).toBe(createHash('md5').update(part).digest('base64'));
    });
    const stored = await s3.get('archive', key.slice('/archive/'.length));
    expect(createHash('sha256').update(stored).digest('hex')).toBe(manifest.sha256);
  });

  it('fails naming the bucket, the key and the code: unreachable store, wrong bucket, wrong credentials', async () => {
    const { file, manifest } = bundle('000000000030-000000000040', 1000);
    const key = 'audit/prod/org-1/000000000030-000000000040.ndjson.gz';
    // A port that was free a moment ago: nothing listens there.
    const probe = http.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const secret = 'wrong-secret-value-xyz';
    const cases: Array<[Partial<S3DestinationOptions>, string]> = [
      [{ endpoint: `http://127.0.0.1:${port}` }, `S3 archive upload failed: s3://archive/${key}: ECONNREFUSED`],
      [{ url: 's3://no-such-bucket/audit/prod' }, `S3 archive upload failed: s3://no-such-bucket/${key}: NoSuchBucket`],
      // s3rver checks the access key id, not V4 signatures: a wrong key id stands for wrong credentials.
      [{ credentials: { accessKeyId: 'WRONG-KEY-ID', secretAccessKey: secret } }, `S3 archive upload failed: s3://archive/${key}: InvalidAccessKeyId`],
    ];
    for (const [options, message] of cases) {
      const err = await destination({ ...options }).put(manifest.object, file, manifest).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(S3ArchiveError);
      expect((err as Error).message).toBe(message);
      expect(JSON.stringify(err)).not.toContain(secret);
    }
    // Nothing of the failed uploads is stored under the archive's keys.
    expect(await s3.keys('archive', 'audit/prod/org-1/000000000030')).toEqual([]);
  });
});
