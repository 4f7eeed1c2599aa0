/**
 * A real S3-protocol server for the archive tests: s3rver (its filesystem store; it knows the
 * access key id `S3RVER` and refuses others, but does not check V4 signatures) in this process on
 * a free port. Its
 * handler sits behind a plain HTTP server that records each request's method, path and headers
 * (never bodies), which is how tests see what the store was sent — checksums, encryption and
 * Object Lock headers — including the ones s3rver itself ignores; it can also leave chosen requests
 * unanswered, to place a kill while an upload is in flight.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';

/** One request as the store received it. */
export interface S3Request {
  method: string;
  /** Path and query, e.g. `/archive/prefix/key?uploads`. */
  url: string;
  headers: http.IncomingHttpHeaders;
}

/** A running test store. */
export interface TestS3 {
  /** `http://127.0.0.1:<port>` (path-style requests). */
  endpoint: string;
  /** Requests received, oldest first. */
  requests: S3Request[];
  /** Environment that points the server's archive at `s3://<bucket>/<prefix>` of this store. */
  env(bucket: string, prefix?: string): Record<string, string>;
  /** A client of the store. */
  client: S3Client;
  /** Keys under a prefix, sorted. */
  keys(bucket: string, prefix?: string): Promise<string[]>;
  /** An object's bytes. */
  get(bucket: string, key: string): Promise<Buffer>;
  /**
   * Parks every request `matches` accepts from now on, unanswered (a store that does not answer),
   * until `release()`; resolves when the first one arrives.
   */
  hold(matches: (r: S3Request) => boolean): Promise<S3Request>;
  /** Ends the parking: parked requests are dropped (their connections closed), later ones served. */
  release(): void;
  close(): Promise<void>;
}

export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** Starts s3rver with `buckets` created (others answer NoSuchBucket until created). */
export async function startTestS3(buckets: string[] = []): Promise<TestS3> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'test-s3-'));
  const s3rver = new S3rver({ directory: dir, silent: true, vhostBuckets: false, configureBuckets: buckets.map((name) => ({ name })) });
  await s3rver.configureBuckets();
  const handle = s3rver.callback();
  const requests: S3Request[] = [];
  let parking: { matches: (r: S3Request) => boolean; arrived: (r: S3Request) => void } | null = null;
  const parked: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    const r: S3Request = { method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers } };
    requests.push(r);
    if (parking?.matches(r)) {
      parked.push(res);
      parking.arrived(r);
      return;
    }
    handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    endpoint,
    requests,
    client,
    env: (bucket, prefix = '') => ({
      RETENTION_ARCHIVE_S3_URL: `s3://${bucket}${prefix ? `/${prefix}` : ''}`,
      RETENTION_ARCHIVE_S3_REGION: 'us-east-1',
      RETENTION_ARCHIVE_S3_ENDPOINT: endpoint,
      RETENTION_ARCHIVE_S3_FORCE_PATH_STYLE: 'true',
      RETENTION_ARCHIVE_S3_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      RETENTION_ARCHIVE_S3_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
    }),
    async keys(bucket, prefix = '') {
      const out: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        for (const o of page.Contents ?? []) out.push(o.Key!);
        token = page.NextContinuationToken;
      } while (token);
      return out.sort();
    },
    async get(bucket, key) {
      const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await res.Body!.transformToByteArray());
    },
    hold(matches) {
      return new Promise<S3Request>((arrived) => (parking = { matches, arrived }));
    },
    release() {
      parking = null;
      for (const res of parked.splice(0)) res.destroy();
    },
    async close() {
      client.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
