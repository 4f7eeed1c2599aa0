/**
 * `npm run bench:archive-s3 -- --mib N`: what uploading one retention archive to an S3-compatible
 * bucket costs in memory (docs/privacy.md §6): a file of N random MiB (default 200) goes up through
 * the server's S3Destination (multipart above one 16 MiB part, read one part at a time) to s3rver
 * in this process, and the resident set is sampled every 20 ms during the upload. The bytes read
 * back (hashed as a stream) must equal the file. One size per process, so one size's memory does
 * not inflate the next one's baseline. Prints figures, never fails on time or memory.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { S3Destination } from '../server/src/retention/s3';
import { startTestS3 } from '../server/test/helpers/s3';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { mib: { type: 'string' } } });
  const sizes = [Number(values.mib ?? '200')];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-archive-s3-'));
  const s3 = await startTestS3(['archive']);
  try {
    for (const mib of sizes) {
      const file = path.join(dir, `bundle-${mib}.bin`);
      const fd = fs.openSync(file, 'w');
      for (let i = 0; i < mib; i++) fs.writeSync(fd, randomBytes(1024 * 1024));
      fs.closeSync(fd);
      const d = new S3Destination({ url: 's3://archive/bench', region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
      const object = `org/${mib}.ndjson.gz`;
      const from = s3.requests.length;
      const base = process.memoryUsage().rss;
      let peak = base;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
      const started = process.hrtime.bigint();
      await d.put(object, file, { format: 'smedrec-audit-archive/1', organizationId: 'org', start: 0, end: 1, events: 1, object, sha256: '-', bytes: mib * 1024 * 1024, ndjsonSha256: '-', checkpoint: null, createdAt: new Date().toISOString() });
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      clearInterval(sampler);
      d.close();
      const parts = s3.requests.slice(from).filter((r) => r.url.includes('partNumber=')).length;
      const hash = async (stream: AsyncIterable<unknown>) => {
        const h = createHash('sha256');
        for await (const chunk of stream) h.update(chunk as Buffer);
        return h.digest('hex');
      };
      const stored = await s3.client.send(new GetObjectCommand({ Bucket: 'archive', Key: `bench/${object}` }));
      const same = (await hash(stored.Body as AsyncIterable<unknown>)) === (await hash(fs.createReadStream(file)));
      console.log(`${mib} MiB: ${parts} parts, RSS ${(base / 2 ** 20).toFixed(0)} -> peak ${(peak / 2 ** 20).toFixed(0)} MiB (+${((peak - base) / 2 ** 20).toFixed(0)}), ${seconds.toFixed(1)} s, bytes read back ${same ? 'equal' : 'DIFFER'}`);
      fs.rmSync(file);
    }
  } finally {
    await s3.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main();
