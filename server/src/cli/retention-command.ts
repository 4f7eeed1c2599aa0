/**
 * `audit-admin retention run`: one retention pass (archive, erase, drop; docs/privacy.md §6) from
 * an operator's shell, the same pass the worker's `retention` task makes, under the same advisory
 * lock (a run already under way elsewhere makes this one a no-op, exit 1).
 *
 * A run appends its own audit events (`retention.archive`, `retention.erase`,
 * `retention.partition.drop`, HIPAA §164.312(b)), whose checkpoints are signed: the CLI signs
 * with the server's key only (AUDIT_SIGNING_KEY, or outside production the key file of the
 * embedded data directory), and refuses a key that is not the active one of the database, so it
 * never registers or rotates a key behind the servers' back. The caller opens the database (and
 * so refuses while a server holds the embedded data directory).
 */
import fs from 'node:fs';
import path from 'node:path';
import { openRedis, redisEndpointOf } from '../cache/redis';
import { ReadCache, RedisCacheStore } from '../cache/read-cache';
import type { Config } from '../config';
import type { Database } from '../db/client';
import { IngestService } from '../events/ingest';
import { EventService } from '../events/service';
import { parseSignerKey, type Signer } from '../ledger';
import type { Logger } from '../observability/logger';
import { createAnalytics, createPrivacyAndRetention, trustedVerifierKeys } from '../runtime';
import { listSigningKeys } from '../tlog/repository';
import { LedgerService } from '../tlog/service';

/** A usage mistake or a refusal before anything was done (exit 2). */
export class RetentionUsageError extends Error {}

/** The server's signing key, never a new one (loadSigner would create one where none exists). */
function serverSigner(config: Config): Signer {
  const file = path.resolve(config.AUDIT_DATA_DIR, 'signing-key');
  const text = config.AUDIT_SIGNING_KEY ?? (config.NODE_ENV !== 'production' && fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined);
  if (text === undefined) {
    throw new RetentionUsageError('retention run appends retention.* events and signs their checkpoints: set AUDIT_SIGNING_KEY (the servers\' key)');
  }
  try {
    return parseSignerKey(text.trim());
  } catch {
    // The parser's message could quote the key: name the variable only.
    throw new RetentionUsageError('AUDIT_SIGNING_KEY is not a signer key');
  }
}

/** Runs one retention command against `database`; resolves with the exit status. */
export async function retentionCommand(
  config: Config,
  database: Database,
  command: string | undefined,
  out: (s: string) => void,
  logger: Logger,
): Promise<number> {
  if (command !== 'run') throw new RetentionUsageError(`unknown command: retention ${command ?? ''}`);
  const signer = serverSigner(config);
  const keyId = signer.keyId.toString('hex');
  const active = (await listSigningKeys(database.db)).find((k) => k.keyId === keyId && k.notAfter === null);
  if (!active) {
    throw new RetentionUsageError(
      `the signing key ${signer.name}+${keyId} is not the active key of this database: retention run signs with the servers' key only (start a server with it first)`,
    );
  }
  if (!config.RETENTION_ARCHIVE_DIR && !config.RETENTION_ARCHIVE_S3_URL) {
    process.stderr.write('audit-admin: warning: neither RETENTION_ARCHIVE_DIR nor RETENTION_ARCHIVE_S3_URL is set: nothing is archived, hence nothing is erased or dropped\n');
  }

  // Erased batches make the servers' cached event reads unreachable: through Redis when they share
  // it; an in-process cache elsewhere expires within CACHE_TTL_SECONDS.
  const endpoint = redisEndpointOf(config);
  const redis = endpoint ? openRedis(endpoint) : null;
  redis?.on('error', () => undefined);
  let invalidationFailed = false;
  const cache = new ReadCache(
    redis ? new RedisCacheStore(redis) : null,
    { ttlSeconds: Math.max(config.CACHE_TTL_SECONDS, 1), prefix: config.CACHE_KEY_PREFIX },
    { hit: () => undefined, miss: () => undefined, error: () => (invalidationFailed = true) },
  );
  const ledger = new LedgerService(database, signer, config.AUDIT_LOG_ORIGIN);
  const ingest = new IngestService(database, ledger, { maxBatch: config.INGEST_MAX_BATCH, maxWaitMs: 0, retryMs: config.DATABASE_RETRY_MS });
  const events = new EventService(database, ingest, ledger);
  const { retention } = createPrivacyAndRetention(
    config,
    database,
    {
      append: (org, event, options) => events.create(org, event, options),
      originOf: (org) => ledger.originOf(org),
      cache,
      analytics: createAnalytics(config, database),
      verifiers: trustedVerifierKeys(config, signer),
    },
    logger,
  );
  try {
    const report = await retention.run();
    out(JSON.stringify(report, null, 2));
    if (invalidationFailed) {
      process.stderr.write(`audit-admin: warning: could not reach Redis; running servers may serve erased values from their cache for up to ${config.CACHE_TTL_SECONDS} s\n`);
    }
    if (!report.ran) {
      process.stderr.write(`audit-admin: nothing done: ${report.reason ?? 'not run'}\n`);
      return 1;
    }
    return 0;
  } finally {
    await ingest.drain();
    cache.close();
    redis?.disconnect();
  }
}
