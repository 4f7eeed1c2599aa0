/**
 * The ledger outbox (docs/jobs.md "Ledger outbox", migration 0017). Every append signs a
 * checkpoint, so a process without the signing key (a worker given only verifier keys) cannot
 * append. Such a process records its events here instead — {@link outboxAppend}, which has the
 * signature of a direct append, so the services that append (retention, erasure, alerts) have one
 * code path — and a process that holds the key drains the rows ({@link OutboxDrainer}): each event
 * goes through the normal ingest path (same schema, same group commit, same receipts) and its row is
 * deleted in the append's own transaction (the ingest's `inAppendTransaction` hook), so a crash at
 * any point neither loses an event nor appends one twice.
 *
 * Drainers claim rows with `SELECT … FOR UPDATE SKIP LOCKED` for a bounded time, so concurrent
 * drainers take disjoint rows; a drainer deletes only a row it still holds, in the append
 * transaction, which is what makes a row append at most once even when a claim expired and another
 * drainer took the row over. A row whose event can never be appended (it fails validation, or the
 * database refuses its values) is set aside with an error code and no longer blocks the queue.
 *
 * No event value reaches a log line: logs name row ids, organizations, sources and codes only.
 */
import { randomUUID } from 'node:crypto';
import { and, eq, isNotNull, isNull, sql, type SQL } from 'drizzle-orm';
import type { Database, Db, Tx } from '../db/client';
import { ledgerOutbox } from '../db/schema';
import { AppError } from '../errors';
import type { Logger } from '../observability/logger';
import type { AppendOptions } from './ingest';
import type { EventInput, EventInputSchema } from './schema';

type Conn = Db | Tx;

/** What an appender may commit together with the event's record (see {@link AppendOptions}). */
export type RecordWith = Pick<AppendOptions, 'inAppendTransaction'>;

/**
 * Appends one event to an organization's log, or records it for a process that can: either way,
 * `options.inAppendTransaction` commits in the same transaction as the event's record (the append,
 * or the outbox row). A wrapper must pass `options` on: the services record states through it (an
 * erasure's completion, a retention archive), which would otherwise never be stored.
 */
export type Append = (org: string, event: EventInput, options?: RecordWith) => Promise<unknown>;

/** What {@link outboxAppend} answers: the event is recorded, not yet in the log. */
export interface Enqueued {
  queued: true;
  /** The outbox row; null when a row with the same idempotency key was pending already. */
  id: number | null;
}

/**
 * The {@link Append} of a process without the signing key: one transaction that inserts the outbox
 * row (`source` = `<process>:<action's first segment>`, e.g. `worker:retention`) and runs
 * `inAppendTransaction`. An event with an idempotency key that is pending already is not recorded
 * twice (and one that was drained already is a duplicate at append: the ingest's idempotency keys).
 */
export function outboxAppend(database: Database, process: string, enqueued?: () => void): Append {
  return async (org, event, options = {}): Promise<Enqueued> => {
    const source = `${process}:${event.action.split('.', 1)[0]}`;
    const id = await database.db.transaction(async (tx) => {
      const rows = await tx
        .insert(ledgerOutbox)
        .values({ organizationId: org, source, event: toJson(event), dedupeKey: event.idempotencyKey ?? null })
        .onConflictDoNothing({ target: [ledgerOutbox.organizationId, ledgerOutbox.dedupeKey] })
        .returning({ id: ledgerOutbox.id });
      await options.inAppendTransaction?.(tx);
      return rows[0]?.id ?? null;
    });
    enqueued?.();
    return { queued: true, id };
  };
}

/** The event as stored: its JSON form (undefined fields left out). */
function toJson(event: EventInput): Record<string, unknown> {
  return JSON.parse(JSON.stringify(event)) as Record<string, unknown>;
}

/** Outbox state at one moment (the metrics of docs/operations.md). */
export interface OutboxStats {
  /** Rows waiting to be appended. */
  pending: number;
  /** Age in seconds of the oldest waiting row (0 when none waits). */
  oldestAgeSeconds: number;
  /** Rows set aside (never appended; see docs/jobs.md). */
  setAside: number;
}

/** Counts pending and set-aside rows, and the age of the oldest pending one. */
export async function outboxStats(db: Conn): Promise<OutboxStats> {
  const rows = rowsOf<{ pending: number | string; oldest: number | string | null; set_aside: number | string }>(
    await db.execute(sql`SELECT count(*) FILTER (WHERE failed_at IS NULL) AS pending,
      extract(epoch FROM now() - min(created_at) FILTER (WHERE failed_at IS NULL)) AS oldest,
      count(*) FILTER (WHERE failed_at IS NOT NULL) AS set_aside
      FROM ledger_outbox`),
  );
  const r = rows[0]!;
  return { pending: Number(r.pending), oldestAgeSeconds: Math.max(0, Number(r.oldest ?? 0)), setAside: Number(r.set_aside) };
}

// ---------------------------------------------------------------------------------------------
// Erasure: pending rows are events not yet in the log, so they are erased like events once
// appended; a subject erasure waits for the pending rows that name its subject.

/** The same rule as the erasure of events: an identifier equal to the subject, or a read record listing it. */
function namesSubject(subject: string): SQL {
  return sql`(event ->> 'patientId' = ${subject} OR event ->> 'principalId' = ${subject}
    OR event ->> 'targetResourceId' = ${subject} OR event ->> 'correlationId' = ${subject}
    OR (event ->> 'action' IN ('audit.log.read', 'audit.log.export') AND (
      (event -> 'details' -> 'input' -> 'patientIds') ? ${subject} OR (event -> 'details' -> 'input' -> 'principalIds') ? ${subject}
      OR event -> 'details' -> 'input' ->> 'patientId' = ${subject} OR event -> 'details' -> 'input' ->> 'principalId' = ${subject})))`;
}

/** How many pending rows of `org` name `subject` (they must reach the log before it is erased). */
export async function pendingNaming(db: Conn, org: string, subject: string): Promise<number> {
  const rows = rowsOf<{ n: number | string }>(
    await db.execute(sql`SELECT count(*) AS n FROM ledger_outbox WHERE organization_id = ${org} AND failed_at IS NULL AND ${namesSubject(subject)}`),
  );
  return Number(rows[0]?.n ?? 0);
}

/**
 * Erases the set-aside rows of `org` that name `subject`: they will never be appended, so their
 * event is removed (the row stays, with its source, time and error code). Returns how many.
 */
export async function eraseSetAsideNaming(db: Conn, org: string, subject: string): Promise<number> {
  const rows = rowsOf<{ id: unknown }>(
    await db.execute(
      sql`UPDATE ledger_outbox SET event = NULL WHERE organization_id = ${org} AND failed_at IS NOT NULL AND event IS NOT NULL AND ${namesSubject(subject)} RETURNING id`,
    ),
  );
  return rows.length;
}

// ---------------------------------------------------------------------------------------------
// Draining

/** The event service as the drainer uses it (its `create`: signatures checked, group commit). */
export interface OutboxAppender {
  create(org: string, input: EventInput, options?: RecordWith): Promise<unknown>;
}

/** Tuning of {@link OutboxDrainer}. */
export interface OutboxDrainOptions {
  /** Rows claimed per round. */
  batchSize: number;
  /** How long a claim holds before another drainer may take the row over. */
  claimMs: number;
  /** Pause between rounds when the last one left nothing (0: {@link OutboxDrainer.start} does nothing). */
  intervalMs: number;
}

/** Told what the drainer did: counts and codes, never values. */
export interface OutboxObserver {
  drained(n: number): void;
  /** `reason`: `set_aside` (the row can never be appended), `retry` (left for a later round). */
  failed(reason: 'set_aside' | 'retry', n: number): void;
}

/** What one round did. */
export interface DrainResult {
  claimed: number;
  drained: number;
  setAside: number;
  retry: number;
}

/** The drainer lost its claim on a row (another drainer took it over): this append must not happen. */
export class OutboxClaimLost extends Error {
  constructor() {
    super('ledger outbox row no longer claimed by this drainer');
    this.name = 'OutboxClaimLost';
  }
}

interface ClaimedRow {
  id: number;
  organization_id: string;
  source: string;
  event: unknown;
  /** Claims so far, this one included. */
  attempts: number;
}

/**
 * Claims after which a row that keeps failing for a reason other than an unavailable database (an
 * internal error, say a failing trigger) is set aside (`failed`) rather than retried for ever.
 */
export const OUTBOX_MAX_ATTEMPTS = 10;

/** Drains the outbox through the normal ingest path (processes that hold the signing key). */
export class OutboxDrainer {
  private readonly owner = randomUUID();
  private running: Promise<DrainResult> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly database: Database,
    private readonly events: OutboxAppender,
    private readonly schema: EventInputSchema,
    private readonly options: OutboxDrainOptions,
    private readonly observer: OutboxObserver,
    private readonly logger: Logger,
  ) {}

  /** Drains every `intervalMs` (at once again after a full round) until {@link stop}. */
  start(): void {
    if (this.options.intervalMs === 0 || this.stopped) return;
    const tick = () => {
      this.timer = null;
      if (this.stopped) return;
      this.drainOnce().then(
        (r) => this.schedule(r.claimed >= this.options.batchSize ? 0 : this.options.intervalMs, tick),
        (err: unknown) => {
          // A code only: a database error's message can quote the row it failed on.
          this.logger.warn({ code: (err as { code?: unknown }).code, err: (err as Error)?.name }, 'ledger outbox drain failed; retrying');
          this.schedule(this.options.intervalMs, tick);
        },
      );
    };
    this.schedule(this.options.intervalMs, tick);
  }

  private schedule(ms: number, tick: () => void): void {
    if (this.stopped) return;
    this.timer = setTimeout(tick, ms);
    this.timer.unref();
  }

  /** Stops the timer and waits for the round in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  /** One round: claim up to `batchSize` rows, append them, delete them with their append (or joins the round in progress). */
  drainOnce(): Promise<DrainResult> {
    this.running ??= this.round().finally(() => (this.running = null));
    return this.running;
  }

  private async round(): Promise<DrainResult> {
    const rows = await this.claim();
    const result: DrainResult = { claimed: rows.length, drained: 0, setAside: 0, retry: 0 };
    if (rows.length === 0) return result;
    // All at once: the ingest's group commit puts an organization's rows into one transaction, in
    // row order (the order they were recorded in).
    const outcomes = await Promise.all(rows.map((row) => this.drainRow(row)));
    for (const o of outcomes) result[o] += 1;
    if (result.drained > 0) this.observer.drained(result.drained);
    if (result.setAside > 0) this.observer.failed('set_aside', result.setAside);
    if (result.retry > 0) this.observer.failed('retry', result.retry);
    return result;
  }

  private async drainRow(row: ClaimedRow): Promise<'drained' | 'setAside' | 'retry'> {
    const parsed = this.schema.safeParse(row.event);
    if (!parsed.success) {
      // Field paths only, never values.
      const paths = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || '(root)'))].slice(0, 5).join(',');
      return this.setAside(row, `invalid:${paths}`);
    }
    try {
      await this.events.create(row.organization_id, parsed.data, { inAppendTransaction: (tx) => this.deleteClaimed(tx, row.id) });
      return 'drained';
    } catch (err) {
      if (err instanceof AppError && err.code === 'BAD_REQUEST') return this.setAside(row, 'refused');
      const unavailable = err instanceof AppError && err.code === 'UNAVAILABLE';
      // (A lost claim also ends here, as an internal error of the append: setAside then changes nothing.)
      if (!unavailable && row.attempts >= OUTBOX_MAX_ATTEMPTS) return this.setAside(row, 'failed');
      // A database outage, or the claim was lost: left for a later round (or the drainer that took it).
      this.logger.warn({ outboxId: row.id, organizationId: row.organization_id, source: row.source, err: err instanceof AppError ? err.code : (err as Error)?.name }, 'ledger outbox row not appended yet; will retry');
      await this.release(row.id).catch(() => undefined);
      return 'retry';
    }
  }

  /** Claims up to `batchSize` pending rows whose claim is free or expired, oldest first. */
  private async claim(): Promise<ClaimedRow[]> {
    const rows = rowsOf<Omit<ClaimedRow, 'id' | 'attempts'> & { id: number | string; attempts: number | string }>(
      await this.database.db.execute(sql`
        UPDATE ledger_outbox o SET claimed_by = ${this.owner}, claimed_until = now() + ${`${this.options.claimMs} milliseconds`}::interval, attempts = o.attempts + 1
          FROM (SELECT id FROM ledger_outbox WHERE failed_at IS NULL AND (claimed_until IS NULL OR claimed_until < now())
                 ORDER BY id LIMIT ${this.options.batchSize} FOR UPDATE SKIP LOCKED) c
         WHERE o.id = c.id
        RETURNING o.id, o.organization_id, o.source, o.event, o.attempts`),
    );
    return rows.map((r) => ({ ...r, id: Number(r.id), attempts: Number(r.attempts) })).sort((a, b) => a.id - b.id);
  }

  /** In the append transaction: the row goes with its append, and only if this drainer still holds it. */
  private async deleteClaimed(tx: Tx, id: number): Promise<void> {
    const gone = await tx
      .delete(ledgerOutbox)
      .where(and(eq(ledgerOutbox.id, id), eq(ledgerOutbox.claimedBy, this.owner), isNull(ledgerOutbox.failedAt)))
      .returning({ id: ledgerOutbox.id });
    if (gone.length === 0) throw new OutboxClaimLost();
  }

  /** Sets a row this drainer still holds aside; 'retry' when it no longer holds it (nothing changed). */
  private async setAside(row: ClaimedRow, code: string): Promise<'setAside' | 'retry'> {
    const changed = await this.database.db
      .update(ledgerOutbox)
      .set({ failedAt: new Date(), errorCode: code, claimedBy: null, claimedUntil: null })
      .where(and(eq(ledgerOutbox.id, row.id), eq(ledgerOutbox.claimedBy, this.owner)))
      .returning({ id: ledgerOutbox.id });
    if (changed.length === 0) return 'retry';
    this.logger.error({ outboxId: row.id, organizationId: row.organization_id, source: row.source, code }, 'ledger outbox row set aside: its event cannot be appended');
    return 'setAside';
  }

  private async release(id: number): Promise<void> {
    await this.database.db
      .update(ledgerOutbox)
      .set({ claimedBy: null, claimedUntil: null })
      .where(and(eq(ledgerOutbox.id, id), eq(ledgerOutbox.claimedBy, this.owner)));
  }
}

/** Set-aside rows (operators: docs/jobs.md), oldest first, without their events. */
export function setAsideRows(db: Conn, limit = 100) {
  return db
    .select({ id: ledgerOutbox.id, organizationId: ledgerOutbox.organizationId, source: ledgerOutbox.source, createdAt: ledgerOutbox.createdAt, failedAt: ledgerOutbox.failedAt, errorCode: ledgerOutbox.errorCode })
    .from(ledgerOutbox)
    .where(isNotNull(ledgerOutbox.failedAt))
    .orderBy(ledgerOutbox.id)
    .limit(limit);
}

/** The rows a raw statement returned (node-postgres and PGlite both answer `{ rows }`). */
function rowsOf<R>(result: unknown): R[] {
  return (result as { rows: R[] }).rows;
}
