/**
 * Retention (docs/privacy.md §6): per organization and data classification, events older than
 * `archiveAfterDays` are archived as verifiable export bundles, archived events older than
 * `eraseAfterDays` lose their personal data (as a subject erasure does), and a monthly partition
 * whose every row is archived and erased is detached and dropped; tree nodes and checkpoints stay,
 * so every remaining event's proofs still verify. Legal holds stop erasure and drops for what they
 * cover. One run at a time across every process (a PostgreSQL advisory lock); every step is
 * appended to the log (`retention.archive`, `retention.erase`, `retention.partition.drop`).
 *
 * Crash safety: an archive is written to a temporary file, verified, stored whole in every
 * destination (a directory, an S3 bucket), and only then recorded (moving `archived_through`); a
 * crash or a failed destination before that leaves nothing recorded and the next run writes the
 * same objects again. Erasure is by batches of one transaction. A partition is
 * dropped only by a database function that checks, in the same transaction, that every row is
 * archived and erased.
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createGzip } from 'node:zlib';
import type { Database } from '../db/client';
import type { Append } from '../events/outbox';
import { exportBundle } from '../export/bundle-export';
import { checkpointAtOrBefore } from '../export/repository';
import { BundleVerifier, formatBundleRecord, type Verifier } from '../ledger';
import type { Logger } from '../observability/logger';
import { internalEvent, SYSTEM_REQUESTER } from '../privacy/events';
import type { PrivacyService } from '../privacy/service';
import { subjectHash } from '../privacy/pseudonyms';
import * as ledgerRepo from '../tlog/repository';
import type { ArchiveDestination, ArchiveManifest } from './archive';
import * as repo from './repository';

/** Data classifications a policy can name; `*` is every classification without a policy of its own. */
export const POLICY_CLASSES = ['PHI', 'CONFIDENTIAL', 'INTERNAL', 'PUBLIC', '*'] as const;
/** A policy's classification. */
export type PolicyClass = (typeof POLICY_CLASSES)[number];

/** A retention policy (days; null = never). */
export interface RetentionPolicy {
  dataClassification: PolicyClass;
  archiveAfterDays: number | null;
  eraseAfterDays: number | null;
  /** Whether it is the built-in default (no stored policy). */
  isDefault: boolean;
}

/** The built-in policies: PHI is kept six years (HIPAA §164.316(b)(2)(i)), archived after one. */
export const DEFAULT_POLICIES: ReadonlyArray<Omit<RetentionPolicy, 'isDefault'>> = [
  { dataClassification: 'PHI', archiveAfterDays: 365, eraseAfterDays: 2190 },
];

/** What one run did for one organization. */
export interface OrganizationRun {
  organizationId: string;
  archive: { start: number; end: number; events: number; object: string; sha256: string } | null;
  erased: number;
  skipped?: string;
}

/** What one run did. */
export interface RetentionReport {
  ran: boolean;
  /** Why it did not run (another run held the lock). */
  reason?: string;
  organizations: OrganizationRun[];
  droppedPartitions: Array<{ name: string; rows: number }>;
}

/** Options of {@link RetentionService}. */
export interface RetentionOptions {
  destinations: ArchiveDestination[];
  /** Keys an archive must verify against before it is recorded. */
  verifiers: Verifier[];
  /** The log origin of an organization. */
  originOf: (org: string) => string;
  /** Events per erasure batch. */
  batchSize: number;
  /** Detach and drop fully archived and erased monthly partitions. */
  dropPartitions: boolean;
}

// An arbitrary fixed 64-bit advisory lock key: "audit-retention".
const RETENTION_LOCK_KEY = 7_301_449_202;
const DAY_MS = 24 * 60 * 60 * 1000;

/** Runs retention. */
export class RetentionService {
  private running: Promise<RetentionReport> | null = null;

  constructor(
    private readonly database: Database,
    private readonly privacy: PrivacyService,
    private readonly append: Append,
    private readonly options: RetentionOptions,
    private readonly logger: Logger,
  ) {}

  /** The organization's effective policies (stored ones, then the defaults for the rest). */
  async policies(org: string): Promise<RetentionPolicy[]> {
    const stored = await repo.listPolicies(this.database.db, org);
    const out: RetentionPolicy[] = stored.map((p) => ({
      dataClassification: p.dataClassification as PolicyClass,
      archiveAfterDays: p.archiveAfterDays,
      eraseAfterDays: p.eraseAfterDays,
      isDefault: false,
    }));
    for (const d of DEFAULT_POLICIES)
      if (!out.some((p) => p.dataClassification === d.dataClassification))
        out.push({ ...d, isDefault: true });
    return out;
  }

  /**
   * Replaces the organization's policies in the transaction that appends
   * `retention.policies.update`: the change is stored exactly when its event is, and changes of one
   * organization are stored in the order of their events in the log.
   */
  async setPolicies(
    org: string,
    requester: { principalId: string; principalType: string; correlationId?: string },
    policies: Array<Omit<RetentionPolicy, 'isDefault'>>,
  ) {
    await this.append(
      org,
      internalEvent({
        action: 'retention.policies.update',
        status: 'success',
        principalId: requester.principalId,
        principalType: requester.principalType,
        targetResourceType: 'RetentionPolicy',
        targetResourceId: org,
        dataClassification: 'CONFIDENTIAL',
        ...(requester.correlationId ? { correlationId: requester.correlationId } : {}),
        details: { policies },
      }),
      { inAppendTransaction: (tx) => repo.replacePolicies(tx, org, policies, requester.principalId) },
    );
    return this.policies(org);
  }

  /** The organization's archives, newest first. */
  async archives(org: string, limit = 100) {
    return (await repo.listArchives(this.database.db, org, limit)).map((a) => ({
      id: a.id,
      start: a.startLeaf,
      end: a.endLeaf,
      events: a.events,
      destination: a.destination,
      object: a.objectName,
      sha256: a.sha256,
      bytes: a.bytes,
      createdAt: a.createdAt.toISOString(),
    }));
  }

  /** One run over every organization (one at a time per process, and across processes by lock). */
  run(now: Date = new Date()): Promise<RetentionReport> {
    this.running ??= this.locked(now).finally(() => (this.running = null));
    return this.running;
  }

  private async locked(now: Date): Promise<RetentionReport> {
    const conn = await this.database.connect();
    try {
      const { rows } = await conn.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [
        RETENTION_LOCK_KEY,
      ]);
      if (!rows[0]?.ok)
        return {
          ran: false,
          reason: 'another retention run holds the lock',
          organizations: [],
          droppedPartitions: [],
        };
      try {
        const organizations: OrganizationRun[] = [];
        for (const org of await repo.organizationIds(this.database.db))
          organizations.push(await this.runOrganization(org, now));
        const droppedPartitions = this.options.dropPartitions ? await this.dropPartitions(now) : [];
        return { ran: true, organizations, droppedPartitions };
      } finally {
        await conn.query('SELECT pg_advisory_unlock($1)', [RETENTION_LOCK_KEY]);
      }
    } finally {
      conn.release();
    }
  }

  private async runOrganization(org: string, now: Date): Promise<OrganizationRun> {
    const policies = await this.policies(org);
    const out: OrganizationRun = { organizationId: org, archive: null, erased: 0 };
    const archiveDays = policies.map((p) => p.archiveAfterDays).filter((d): d is number => d !== null);
    if (archiveDays.length > 0 && this.options.destinations.length > 0) {
      out.archive = await this.archive(org, new Date(now.getTime() - Math.min(...archiveDays) * DAY_MS));
    }
    const holds = await this.privacy.holds.active(org);
    if (holds.some((h) => h.scope === 'organization')) {
      out.skipped = 'an organization legal hold stops retention erasure';
      return out;
    }
    out.erased = await this.erase(org, now, policies, holds);
    if (out.erased > 0) {
      await this.append(
        org,
        internalEvent({
          action: 'retention.erase',
          status: 'success',
          ...SYSTEM_REQUESTER,
          targetResourceType: 'AuditLog',
          targetResourceId: org,
          dataClassification: 'CONFIDENTIAL',
          details: { events: out.erased, policies: policies.map(({ isDefault: _d, ...p }) => p) },
        }),
      );
    }
    return out;
  }

  /** Archives the leaves from `archived_through` up to the last checkpoint before `cutoff`. */
  private async archive(org: string, cutoff: Date): Promise<OrganizationRun['archive']> {
    const db = this.database.db;
    const state = await repo.readState(db, org);
    const head = (await ledgerRepo.latestCheckpoint(db, org))?.treeSize ?? 0;
    const target = (await repo.firstLeafAtOrAfter(db, org, cutoff)) ?? head;
    const end = await checkpointAtOrBefore(db, org, target);
    if (end <= state.archivedThrough) return null;

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-archive-'));
    try {
      const file = path.join(dir, 'bundle.ndjson.gz');
      const gzHash = createHash('sha256');
      const rawHash = createHash('sha256');
      const verifier = new BundleVerifier({ verifiers: this.options.verifiers });
      const gzip = createGzip();
      const sink = fs.createWriteStream(file);
      const written = new Promise<void>((resolve, reject) => {
        sink.on('finish', resolve);
        sink.on('error', reject);
        gzip.on('error', reject);
      });
      gzip.on('data', (chunk: Buffer) => gzHash.update(chunk));
      gzip.pipe(sink);
      let bytes = 0;
      gzip.on('data', (chunk: Buffer) => (bytes += chunk.length));
      let start = state.archivedThrough;
      let realEnd = end;
      for await (const record of exportBundle(db, org, this.options.originOf(org), {
        start: state.archivedThrough,
        end,
      })) {
        if (record.type === 'header') {
          start = record.start;
          realEnd = record.end;
        }
        verifier.push(record);
        const line = formatBundleRecord(record) + '\n';
        rawHash.update(line);
        if (!gzip.write(line)) await new Promise<void>((resolve) => gzip.once('drain', resolve));
      }
      gzip.end();
      await written;
      const report = verifier.finish();
      if (!report.ok) {
        this.logger.error(
          { organizationId: org, start, end: realEnd, failures: report.failureCount },
          'archive does not verify: not recorded',
        );
        return null;
      }
      const object = `${org}/${String(start).padStart(12, '0')}-${String(realEnd).padStart(12, '0')}.ndjson.gz`;
      const manifest: ArchiveManifest = {
        format: 'smedrec-audit-archive/1',
        organizationId: org,
        start,
        end: realEnd,
        events: report.events,
        object,
        sha256: gzHash.digest('hex'),
        bytes,
        ndjsonSha256: rawHash.digest('hex'),
        checkpoint: report.latest
          ? { treeSize: report.latest.treeSize, rootHash: report.latest.rootHash }
          : null,
        createdAt: new Date().toISOString(),
      };
      // Every destination, one after the other: an archive is recorded (and its events may be
      // erased) only once each holds it whole. A failure fails the run; the next run writes the
      // same objects again.
      for (const d of this.options.destinations) {
        try {
          await d.put(object, file, manifest);
        } catch (err) {
          this.logger.error(
            { organizationId: org, start, end: realEnd, destination: d.name, error: err instanceof Error ? err.message : 'error' },
            'archive not stored: not recorded, nothing erased',
          );
          throw err;
        }
      }
      const id = randomUUID();
      // Recorded only now, and together with its `retention.archive` event (in the append's
      // transaction, or with the ledger outbox row in a process without the signing key):
      // archived_through moves past leaves that are stored, whole and verified, and never without
      // the event that says so.
      await this.append(
        org,
        internalEvent({
          action: 'retention.archive',
          status: 'success',
          ...SYSTEM_REQUESTER,
          targetResourceType: 'Archive',
          targetResourceId: id,
          dataClassification: 'CONFIDENTIAL',
          idempotencyKey: `retention.archive:${org}:${start}-${realEnd}`,
          details: {
            archiveId: id,
            start,
            end: realEnd,
            events: report.events,
            object,
            sha256: manifest.sha256,
            bytes,
            destinations: this.options.destinations.map((d) => d.name),
          },
        }),
        {
          inAppendTransaction: (tx) =>
            repo.recordArchive(tx, {
              organizationId: org,
              id,
              startLeaf: start,
              endLeaf: realEnd,
              events: report.events,
              destination: this.options.destinations.map((d) => d.name).join(' '),
              objectName: object,
              sha256: manifest.sha256,
              bytes,
            }),
        },
      );
      return { start, end: realEnd, events: report.events, object, sha256: manifest.sha256 };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Erases archived events past their policy's eraseAfterDays, outside legal holds. */
  private async erase(
    org: string,
    now: Date,
    policies: RetentionPolicy[],
    holds: Awaited<ReturnType<PrivacyService['holds']['active']>>,
  ): Promise<number> {
    const db = this.database.db;
    const { archivedThrough } = await repo.readState(db, org);
    if (archivedThrough === 0) return 0;
    const personal = [
      ...new Set([
        ...(await this.privacy.erasures.personalFields(org)),
        'patientId',
        'principalId',
        'targetResourceId',
        'correlationId',
      ]),
    ];
    const heldRanges = holds
      .filter((h) => h.scope === 'timeRange')
      .map((h) => ({ from: h.rangeFrom, to: h.rangeTo }));
    const subjectHolds = holds.filter((h) => h.scope === 'subject' && h.keyVersion !== null);
    const keys = new Map<number, Buffer>();
    for (const h of subjectHolds) {
      const k = await this.privacy.keyring.keyVersion(org, h.keyVersion!);
      if (k) keys.set(k.version, k.secret);
    }
    const held = (identifiers: string[]) =>
      subjectHolds.some((h) =>
        identifiers.some(
          (v) => keys.has(h.keyVersion!) && subjectHash(keys.get(h.keyVersion!)!, v) === h.subjectHash,
        ),
      );
    const specific = policies.filter((p) => p.dataClassification !== '*').map((p) => p.dataClassification);
    let total = 0;
    for (const p of policies) {
      if (p.eraseAfterDays === null) continue;
      const cutoff = new Date(now.getTime() - p.eraseAfterDays * DAY_MS);
      let after = -1;
      for (;;) {
        const batch = await repo.eraseCandidates(db, org, {
          classes: p.dataClassification === '*' ? null : [p.dataClassification],
          otherThan: p.dataClassification === '*' ? specific : [],
          cutoff,
          archivedThrough,
          heldRanges,
          personalFields: personal,
          after,
          limit: this.options.batchSize,
        });
        if (batch.length === 0) break;
        after = batch[batch.length - 1]!.leafIndex;
        const ids = batch.filter((c) => !held(c.identifiers)).map((c) => c.id);
        if (ids.length > 0) total += await this.privacy.erasures.eraseEvents(org, ids, 'retention');
        if (batch.length < this.options.batchSize) break;
      }
    }
    return total;
  }

  /** Drops monthly partitions before the current month, oldest first, while each is droppable. */
  private async dropPartitions(now: Date): Promise<Array<{ name: string; rows: number }>> {
    const db = this.database.db;
    const dropped: Array<{ name: string; rows: number }> = [];
    const thisMonth = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
    for (const part of await repo.monthlyPartitions(db)) {
      if (part.to.getTime() > thisMonth) break;
      const { rows, blocked } = await repo.partitionDroppable(db, part.name);
      if (rows === 0) continue; // an empty month costs nothing; keep it (new rows may still arrive)
      if (blocked > 0) break; // partitions go oldest first, so a remaining event's predecessors stay
      const orgs = await repo.organizationsIn(db, part.name);
      try {
        const n = await repo.dropPartition(db, part.name);
        dropped.push({ name: part.name, rows: n });
      } catch (err) {
        this.logger.warn(
          { partition: part.name, code: (err as { code?: unknown }).code },
          'partition not dropped',
        );
        break;
      }
      for (const org of orgs) {
        await this.append(
          org,
          internalEvent({
            action: 'retention.partition.drop',
            status: 'success',
            ...SYSTEM_REQUESTER,
            targetResourceType: 'Partition',
            targetResourceId: part.name,
            dataClassification: 'CONFIDENTIAL',
            details: { partition: part.name, from: part.from.toISOString(), to: part.to.toISOString() },
          }),
        );
      }
    }
    return dropped;
  }
}
