/**
 * Erasure of a data subject (docs/privacy.md "Erasure"): every personal field of every event of
 * the organization that names the subject loses its value and its salt; commitments, leaves, tree
 * nodes and checkpoints stay, so every proof still verifies and a verifier reports the fields as
 * erased. The request is appended to the log (`privacy.erase`) with the subject replaced by its
 * keyed hash, is refused (409) while a legal hold covers the subject, and runs in bounded
 * batches, each one transaction, under a lease: a crash leaves a running request that any process
 * resumes (`resumePending`), and repeating an erasure changes nothing.
 *
 * The subject's identifier is held in the request row only while it runs; nothing here logs it,
 * puts it in an error message, or appends it to the log.
 */
import { randomUUID } from 'node:crypto';
import type { Database, Tx } from '../db/client';
import { AppError } from '../errors';
import { eraseSetAsideNaming, pendingNaming, type Append } from '../events/outbox';
import type { Logger } from '../observability/logger';
import type { LegalHoldService } from './holds';
import type { PrivacyKeyring } from './keys';
import { pseudonymOf, subjectHash } from './pseudonyms';
import * as repo from './repository';
import { internalEvent, type Requester } from './events';

/** The default personal fields (erased in every event that names the subject). */
export const DEFAULT_PERSONAL_FIELDS: readonly repo.ErasableField[] = [
  'principalId',
  'patientId',
  'sessionContext',
  'outcomeDescription',
  'details',
];

/** One committed batch of an erasure, as hooks see it. */
export interface ErasedBatch {
  organizationId: string;
  /** The erasure request (or `retention` for a retention run). */
  erasureId: string;
  /** Ids of the events erased by this batch. */
  eventIds: string[];
}

/**
 * Hooks of modules that keep copies or derivatives of event values (caches, search indexes,
 * embeddings): register them with {@link ErasureService.onErased}.
 */
export interface ErasureHooks {
  /**
   * Runs inside the batch's transaction after its events were erased: delete derived rows with
   * `tx` (never another connection: PGlite has one). A throw rolls the batch back; it is retried.
   */
  inTransaction?(batch: ErasedBatch, tx: Tx): Promise<void>;
  /** Runs after the batch committed (cache invalidation). Should not throw; a throw is logged. */
  afterCommit?(batch: ErasedBatch): Promise<void>;
  /**
   * Runs once every event of a subject erasure is erased, in the transaction that forgets the
   * subject's pseudonyms (before the erasure is completed): replace the subject's identifier in
   * derived rows by `pseudonym` (its pseudonym with the active key) with `tx`. Must be idempotent:
   * a crash before completion runs it again.
   */
  subjectErased?(subject: { organizationId: string; value: string; pseudonym: string }, tx: Tx): Promise<void>;
}

/** An erasure request as the API shows it (never the subject). */
export interface ErasureInfo {
  id: string;
  subjectField: repo.IdentifierField;
  /** Hex HMAC-SHA256 of the subject with the organization's privacy key of `keyVersion`. */
  subjectHash: string;
  keyVersion: number;
  fields: string[];
  reason: string;
  state: 'running' | 'completed';
  requestedBy: string;
  requestedAt: string;
  completedAt: string | null;
  eventsErased: number;
  batches: number;
}

/** Options of {@link ErasureService}. */
export interface ErasureOptions {
  /** Events per batch (one transaction each). */
  batchSize: number;
  /** How long a process owns a request it works on before another may take over. */
  leaseMs: number;
  /** How long a request waits for its erasure before answering with the running state. */
  waitMs: number;
}

/**
 * Appends one event to an organization's log (the event service), or, in a process without the
 * signing key, records it in the ledger outbox for one that has it (docs/jobs.md).
 */
export type { Append };

/** Erases subjects. */
export class ErasureService {
  private readonly hooks: ErasureHooks[] = [];
  private readonly owner = randomUUID();
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(
    private readonly database: Database,
    private readonly keyring: PrivacyKeyring,
    private readonly holds: LegalHoldService,
    private readonly append: Append,
    private readonly options: ErasureOptions,
    private readonly logger: Logger,
  ) {}

  /** Registers hooks called for every committed batch (see {@link ErasureHooks}). */
  onErased(hooks: ErasureHooks): void {
    this.hooks.push(hooks);
  }

  /** The organization's personal fields (configured, or the default list). */
  async personalFields(org: string): Promise<repo.ErasableField[]> {
    const configured = await repo.personalFields(this.database.db, org);
    return (configured ?? [...DEFAULT_PERSONAL_FIELDS]).filter(
      (f): f is repo.ErasableField => f in repo.ERASABLE_COLUMNS,
    );
  }

  /** Sets the organization's personal fields. */
  async setPersonalFields(
    org: string,
    fields: repo.ErasableField[],
    by: string,
  ): Promise<repo.ErasableField[]> {
    await repo.setPersonalFields(this.database.db, org, [...new Set(fields)], by);
    return this.personalFields(org);
  }

  /**
   * Records and starts the erasure of `subject` (named by `subjectField`); answers once it is done
   * or after `waitMs` with its state. 409 when a legal hold covers the subject.
   */
  async request(
    org: string,
    requester: Requester,
    subjectField: repo.IdentifierField,
    subject: string,
    reason: string,
  ): Promise<ErasureInfo> {
    const hold = await this.holds.blocking(org, subject);
    if (hold) {
      throw new AppError(
        'CONFLICT',
        `legal hold ${hold.id} (${hold.scope}) covers this subject: erasure is refused until the hold is released`,
      );
    }
    const key = await this.keyring.activeKey(org);
    const fields = await this.personalFields(org);
    const id = randomUUID();
    const hash = subjectHash(key.secret, subject);
    // The request row commits with its `privacy.erase` event (the append's transaction, or the
    // ledger outbox row's): an erasure that happened is always in the log, or on its way to it.
    await this.append(
      org,
      internalEvent({
        action: 'privacy.erase',
        status: 'success',
        principalId: requester.principalId,
        principalType: requester.principalType,
        targetResourceType: 'ErasureRequest',
        targetResourceId: id,
        dataClassification: 'CONFIDENTIAL',
        ...(requester.correlationId ? { correlationId: requester.correlationId } : {}),
        idempotencyKey: `privacy.erase:${id}`,
        details: {
          erasureId: id,
          subjectField,
          subjectHash: hash,
          keyVersion: key.version,
          hash: 'HMAC-SHA256',
          fields,
          reason,
        },
      }),
      {
        inAppendTransaction: async (tx) =>
          void (await repo.insertErasure(tx, {
            organizationId: org,
            id,
            subjectField,
            subjectHash: hash,
            keyVersion: key.version,
            subjectValue: subject,
            fields,
            reason,
            state: 'running',
            requestedBy: requester.principalId,
          })),
      },
    );
    const done = this.run(org, id);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      done,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.waitMs))),
    ]);
    clearTimeout(timer);
    return (await this.get(org, id))!;
  }

  /** One request, or null. */
  async get(org: string, id: string): Promise<ErasureInfo | null> {
    const row = await repo.findErasure(this.database.db, org, id);
    return row ? toInfo(row) : null;
  }

  /** The organization's requests, newest first. */
  async list(org: string, limit: number): Promise<ErasureInfo[]> {
    return (await repo.listErasures(this.database.db, org, limit)).map(toInfo);
  }

  /**
   * Works on one request until it is complete (resolves; never rejects: a failure leaves it
   * running for {@link resumePending}, and is logged without values). One run per request per
   * process; across processes the lease decides.
   */
  run(org: string, id: string): Promise<void> {
    const k = `${org}/${id}`;
    const existing = this.inFlight.get(k);
    if (existing) return existing;
    const p = this.work(org, id)
      .catch((err: unknown) =>
        this.logger.error(
          { erasureId: id, code: (err as { code?: unknown }).code, name: (err as Error).name },
          'erasure batch failed; it will be resumed',
        ),
      )
      .finally(() => this.inFlight.delete(k));
    this.inFlight.set(k, p);
    return p;
  }

  /** Resumes every running request whose lease is free (after a crash, or a hold's release). */
  async resumePending(): Promise<number> {
    const pending = await repo.claimableErasures(this.database.db, 100);
    for (const r of pending) await this.run(r.organizationId, r.id);
    return pending.length;
  }

  /**
   * Erases the personal fields and every identifier of the given events in one transaction, with
   * the same hooks as a subject erasure (retention: events past their eraseAfterDays).
   */
  async eraseEvents(org: string, eventIds: string[], reason: string): Promise<number> {
    const fields = [...new Set<repo.ErasableField>([...(await this.personalFields(org)), ...repo.IDENTIFIER_FIELDS])];
    const batch = await this.database.db.transaction(async (tx) => {
      const ids = await repo.eraseEventsById(tx, org, eventIds, fields);
      const b: ErasedBatch = { organizationId: org, erasureId: reason, eventIds: ids };
      for (const h of this.hooks) await h.inTransaction?.(b, tx);
      return b;
    });
    for (const h of this.hooks) {
      await h.afterCommit?.(batch).catch((err: unknown) => this.logger.warn({ name: (err as Error).name }, 'erasure hook failed after commit'));
    }
    return batch.eventIds.length;
  }

  /** Waits for this process's runs to finish (shutdown). */
  async drain(): Promise<void> {
    await Promise.all([...this.inFlight.values()]);
  }

  private async work(org: string, id: string): Promise<void> {
    const db = this.database.db;
    const row = await repo.claimErasure(db, org, id, this.owner, this.options.leaseMs);
    if (!row || row.subjectValue === null) return;
    const subject = row.subjectValue;
    const fields = row.fields.filter((f): f is repo.ErasableField => f in repo.ERASABLE_COLUMNS);
    // Events recorded in the ledger outbox (docs/jobs.md) are not in the log yet: those that name
    // the subject are waited for (once appended, the passes below erase them like any other), and
    // set-aside ones, which will never be appended, lose their event now. Checked before the
    // passes, so an event appended after this check is in the log when they run.
    await eraseSetAsideNaming(db, org, subject);
    const waiting = await pendingNaming(db, org, subject);
    if (waiting > 0) {
      this.logger.info({ erasureId: id, pending: waiting }, 'erasure waits for ledger outbox events naming its subject to be appended');
      await repo.releaseErasure(db, org, id, this.owner);
      return;
    }
    const passes: repo.ErasurePass[] = [
      { kind: 'identifier', field: row.subjectField as repo.IdentifierField },
      ...repo.IDENTIFIER_FIELDS.filter((f) => f !== row.subjectField).map((field) => ({
        kind: 'identifier' as const,
        field,
      })),
      { kind: 'readInput' },
      { kind: 'alertSubject' },
    ];
    for (const pass of passes) {
      for (;;) {
        const hold = await this.holds.blocking(org, subject);
        if (hold) {
          // Placed after the request: stop here; the rest waits for the hold's release.
          this.logger.warn(
            { erasureId: id, holdId: hold.id },
            'erasure paused: a legal hold covers its subject',
          );
          await repo.releaseErasure(db, org, id, this.owner);
          return;
        }
        const batch = await db.transaction(async (tx) => {
          if (!(await repo.claimErasure(tx, org, id, this.owner, this.options.leaseMs)))
            throw new LeaseLostError();
          const ids = await repo.eraseBatch(tx, org, pass, subject, fields, this.options.batchSize);
          if (ids.length === 0) return null;
          await repo.recordBatch(tx, org, id, ids.length);
          const b: ErasedBatch = { organizationId: org, erasureId: id, eventIds: ids };
          for (const h of this.hooks) await h.inTransaction?.(b, tx);
          return b;
        });
        if (!batch) break;
        for (const h of this.hooks) {
          await h
            .afterCommit?.(batch)
            .catch((err: unknown) =>
              this.logger.warn(
                { erasureId: id, name: (err as Error).name },
                'erasure hook failed after commit',
              ),
            );
        }
        if (batch.eventIds.length < this.options.batchSize) break;
      }
    }
    const key = await this.keyring.activeKey(org);
    const pseudonym = pseudonymOf(key.secret, subject);
    await db.transaction(async (tx) => {
      for (const h of this.hooks) await h.subjectErased?.({ organizationId: org, value: subject, pseudonym }, tx);
      await repo.deletePseudonymsOf(tx, org, subject);
    });
    const done = (await repo.findErasure(db, org, id))!;
    // The event and the completed state commit together (the append's transaction, or the outbox
    // row's): a completed erasure is always in the log, or on its way to it.
    await this.append(
      org,
      internalEvent({
        action: 'privacy.erase.completed',
        status: 'success',
        principalId: done.requestedBy,
        targetResourceType: 'ErasureRequest',
        targetResourceId: id,
        dataClassification: 'CONFIDENTIAL',
        idempotencyKey: `privacy.erase.completed:${id}`,
        details: {
          erasureId: id,
          subjectHash: done.subjectHash,
          keyVersion: done.keyVersion,
          eventsErased: done.eventsErased,
          batches: done.batches,
        },
      }),
      { inAppendTransaction: async (tx) => void (await repo.completeErasure(tx, org, id)) },
    );
    for (const h of this.hooks) {
      await h.afterCommit?.({ organizationId: org, erasureId: id, eventIds: [] }).catch(() => undefined);
    }
  }
}

/** Another process took the request over (our lease expired). */
class LeaseLostError extends Error {
  constructor() {
    super('erasure lease lost');
    this.name = 'LeaseLostError';
  }
}

function toInfo(row: repo.ErasureRow): ErasureInfo {
  return {
    id: row.id,
    subjectField: row.subjectField as repo.IdentifierField,
    subjectHash: row.subjectHash,
    keyVersion: row.keyVersion,
    fields: row.fields,
    reason: row.reason,
    state: row.state,
    requestedBy: row.requestedBy,
    requestedAt: row.requestedAt.toISOString(),
    completedAt: row.completedAt ? row.completedAt.toISOString() : null,
    eventsErased: row.eventsErased,
    batches: row.batches,
  };
}
