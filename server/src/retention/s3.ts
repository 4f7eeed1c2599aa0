/**
 * Retention archives in an S3-compatible bucket (docs/privacy.md §6): AWS S3, MinIO, Ceph RGW.
 * Each object appears whole: a PutObject is atomic, and a multipart upload shows nothing under its
 * key until it is completed. Every request carries the SHA-256 of its bytes (`x-amz-checksum-sha256`)
 * and their MD5 (`Content-MD5`), so the store refuses bytes that changed in transit. The bundle is
 * uploaded first, then its `.sha256` line, then the manifest: a manifest's presence means the
 * bundle beside it is complete. A bundle larger than one part (16 MiB) goes up as a multipart
 * upload read from its file one part at a time, so memory stays at one part whatever its size.
 *
 * Errors name the bucket, the key and the S3 error code, never a credential or object contents.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
  type ServerSideEncryption,
} from '@aws-sdk/client-s3';
import type { ArchiveDestination, ArchiveManifest } from './archive';

const DAY_MS = 24 * 60 * 60 * 1000;
const MIB = 1024 * 1024;

/** Server-side encryption an archive is stored with. */
export type S3Encryption = 'AES256' | 'aws:kms' | 'aws:kms:dsse';

/** Options of {@link S3Destination}. */
export interface S3DestinationOptions {
  /** `s3://bucket` or `s3://bucket/prefix`. */
  url: string;
  region: string;
  /** Endpoint of an S3-compatible store (MinIO, Ceph); unset = AWS. */
  endpoint?: string;
  /** Path-style requests (`endpoint/bucket/key`), as most S3-compatible stores need. */
  forcePathStyle?: boolean;
  /** Server-side encryption; `kmsKeyId` with `aws:kms`/`aws:kms:dsse` (unset = the bucket's default key). */
  encryption?: S3Encryption;
  kmsKeyId?: string;
  /** S3 Object Lock: every object in COMPLIANCE mode until the archive's date plus this many days. */
  objectLockDays?: number;
  /** Static credentials; unset = the AWS SDK's default chain (environment, web identity, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Bundles larger than this go up as a multipart upload (default: the part size). */
  multipartThresholdBytes?: number;
  /** Part size of a multipart upload, hence the most of a bundle in memory (default 16 MiB; S3's minimum is 5 MiB). */
  partSizeBytes?: number;
}

/** A failed S3 request: names the bucket, the key and the S3 error code, nothing else. */
export class S3ArchiveError extends Error {
  constructor(
    readonly bucket: string,
    readonly key: string,
    readonly code: string,
  ) {
    super(`S3 archive upload failed: s3://${bucket}/${key}: ${code}`);
    this.name = 'S3ArchiveError';
  }
}

/** Parses `s3://bucket[/prefix]` (the prefix, when given, ends with one `/`); null when it is not one. */
export function parseS3Url(url: string): { bucket: string; prefix: string } | null {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (!m) return null;
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((s) => s === '.' || s === '..') || /\/\//.test(prefix)) return null;
  return { bucket: m[1]!, prefix: prefix === '' ? '' : `${prefix}/` };
}

/** The S3 error code of an SDK or network error (never its message, which may quote a request). */
function errorCode(err: unknown): string {
  const e = err as { name?: unknown; Code?: unknown; code?: unknown; message?: unknown; $metadata?: { httpStatusCode?: number } };
  if (typeof e.Code === 'string') return e.Code;
  if (typeof e.code === 'string') return e.code;
  // A socket error the SDK wrapped ("AWS SDK error wrapper for Error: connect ECONNREFUSED …",
  // when the error is not an Error of its realm): only the errno name is taken from the text.
  const errno = typeof e.message === 'string' ? /\b(E[A-Z][A-Z0-9_]{2,})\b/.exec(e.message) : null;
  if (errno) return errno[1]!;
  if (typeof e.name === 'string' && e.name !== 'Error' && e.name !== 'Unknown') return e.name;
  // An error without a body (a HEAD, a 5xx from a proxy) has only its status.
  return e.$metadata?.httpStatusCode ? `HTTP ${e.$metadata.httpStatusCode}` : 'Error';
}

/** An S3-compatible bucket (and prefix). */
export class S3Destination implements ArchiveDestination {
  readonly name: string;
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: S3Client;
  private readonly threshold: number;
  private readonly partSize: number;

  constructor(private readonly options: S3DestinationOptions) {
    const parsed = parseS3Url(options.url);
    if (!parsed) throw new Error('RETENTION_ARCHIVE_S3_URL: expected s3://bucket[/prefix]');
    this.bucket = parsed.bucket;
    this.prefix = parsed.prefix;
    this.name = `s3://${this.bucket}/${this.prefix}`;
    this.partSize = Math.max(options.partSizeBytes ?? 16 * MIB, 5 * MIB);
    this.threshold = options.multipartThresholdBytes ?? this.partSize;
    this.client = new S3Client({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      forcePathStyle: options.forcePathStyle ?? false,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      // Every request already carries our own SHA-256 (and MD5). With the SDK's default
      // (WHEN_SUPPORTED) a body without one is sent `aws-chunked` with a trailing CRC32, which
      // stores that do not speak that encoding (s3rver, older S3-compatible servers) keep as the
      // object's content, framing included: WHEN_REQUIRED sends the plain bytes.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  /** The key of an object of the archive. */
  key(object: string): string {
    return `${this.prefix}${object}`;
  }

  /** Encryption and Object Lock headers every object of one archive gets. */
  private common(manifest: ArchiveManifest) {
    const o = this.options;
    return {
      ...(o.encryption ? { ServerSideEncryption: o.encryption as ServerSideEncryption } : {}),
      ...(o.encryption && o.encryption !== 'AES256' && o.kmsKeyId ? { SSEKMSKeyId: o.kmsKeyId } : {}),
      ...(o.objectLockDays
        ? {
            ObjectLockMode: 'COMPLIANCE' as const,
            ObjectLockRetainUntilDate: new Date(Date.parse(manifest.createdAt) + o.objectLockDays * DAY_MS),
          }
        : {}),
    };
  }

  async put(object: string, file: string, manifest: ArchiveManifest): Promise<void> {
    const bundleKey = this.key(object);
    const size = (await fs.promises.stat(file)).size;
    if (size > this.threshold) await this.putMultipart(bundleKey, file, size, manifest);
    // At most the threshold (a part's size by default) in memory; a Buffer body, unlike a stream,
    // lets the SDK retry a request that failed on the way.
    else await this.putBytes(bundleKey, await fs.promises.readFile(file), 'application/gzip', manifest);
    await this.putBytes(`${bundleKey}.sha256`, Buffer.from(`${manifest.sha256}  ${path.posix.basename(object)}\n`), 'text/plain', manifest);
    await this.putBytes(
      this.key(object.replace(/\.ndjson\.gz$/, '.manifest.json')),
      Buffer.from(JSON.stringify(manifest, null, 2) + '\n'),
      'application/json',
      manifest,
    );
  }

  private async putBytes(key: string, body: Buffer, type: string, manifest: ArchiveManifest): Promise<void> {
    await this.send(key, () =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentLength: body.length,
          ContentType: type,
          ChecksumSHA256: createHash('sha256').update(body).digest('base64'),
          ContentMD5: createHash('md5').update(body).digest('base64'),
          ...this.common(manifest),
        }),
      ),
    );
  }

  /** A multipart upload, one part in memory at a time; aborted on failure so no part lingers. */
  private async putMultipart(key: string, file: string, size: number, manifest: ArchiveManifest): Promise<void> {
    const created = await this.send(key, () =>
      this.client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          ContentType: 'application/gzip',
          ChecksumAlgorithm: 'SHA256',
          ...this.common(manifest),
        }),
      ),
    );
    const uploadId = created.UploadId;
    if (!uploadId) throw new S3ArchiveError(this.bucket, key, 'NoUploadId');
    try {
      const parts: CompletedPart[] = [];
      const handle = await fs.promises.open(file, 'r');
      // One buffer for every part, in turn: a part is sent (retries included) before the next is read.
      const part = Buffer.allocUnsafe(Math.min(this.partSize, size));
      try {
        for (let offset = 0, n = 1; offset < size; offset += this.partSize, n++) {
          const length = Math.min(this.partSize, size - offset);
          const buf = part.subarray(0, length);
          const { bytesRead } = await handle.read(buf, 0, length, offset);
          if (bytesRead !== length) throw new S3ArchiveError(this.bucket, key, 'ShortRead');
          const sha256 = createHash('sha256').update(buf).digest('base64');
          const res = await this.send(key, () =>
            this.client.send(
              new UploadPartCommand({
                Bucket: this.bucket,
                Key: key,
                UploadId: uploadId,
                PartNumber: n,
                Body: buf,
                ContentLength: length,
                ChecksumSHA256: sha256,
                ContentMD5: createHash('md5').update(buf).digest('base64'),
              }),
            ),
          );
          parts.push({ PartNumber: n, ETag: res.ETag, ChecksumSHA256: res.ChecksumSHA256 ?? sha256 });
        }
      } finally {
        await handle.close();
      }
      await this.send(key, () =>
        this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
          }),
        ),
      );
    } catch (err) {
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }))
        .catch(() => undefined); // a lifecycle rule removes what an abort could not (docs/privacy.md §6)
      throw err;
    }
  }

  /** Runs one request; an error becomes an {@link S3ArchiveError} naming the bucket, key and code. */
  private async send<T>(key: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (err) {
      if (err instanceof S3ArchiveError) throw err;
      throw new S3ArchiveError(this.bucket, key, errorCode(err));
    }
  }

  /** Closes the client's connections. */
  close(): void {
    this.client.destroy();
  }
}
