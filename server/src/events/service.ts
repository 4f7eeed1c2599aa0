/**
 * The event service: the one place that validates, appends and reads events. tRPC, REST and the
 * CLI are adapters over it.
 */
import { activeProducerKeys, listProducerKeys, registerProducerKey } from '../auth/producer-keys';
import type { Database } from '../db/client';
import { AppError, validationError, type FieldIssue } from '../errors';
import type { LedgerService } from '../tlog/service';
import { verifyProducerSignature } from '../ledger';
import { isStorableInstant } from '../util/safe-input';
import { uuidv7Time } from '../util/uuid';
import { encodeCursor } from './cursor';
import type { AppendOptions, IngestService, Placement } from './ingest';
import * as repo from './repository';
import type { BulkItem, EventInput, EventPage, EventQuery, EventRecord, EventStats, EventStatsInput, Receipt } from './schema';

/** Codes a failed bulk item can carry: the input's fault, or the server's. */
type ItemErrorCode = 'BAD_REQUEST' | 'UNAVAILABLE' | 'INTERNAL';

/** Result of one item of a bulk append (`R`: a full receipt, or a placement without proof). */
export type BulkItemResult<R extends Placement = Receipt> =
  | { index: number; ok: true; receipt: R }
  | { index: number; ok: false; error: { code: ItemErrorCode; message: string; issues: FieldIssue[] } };

/** Validates, appends and queries events of the caller's organization. */
export class EventService {
  constructor(
    private readonly database: Database,
    private readonly ingest: IngestService,
    private readonly ledger: LedgerService,
  ) {}

  /**
   * Checks producer signatures against the organization's unrevoked keys; returns the positions
   * of the inputs whose signature does not verify, with the reason.
   */
  private async checkSignatures(org: string, inputs: EventInput[]): Promise<Map<number, string>> {
    const bad = new Map<number, string>();
    const ids = [...new Set(inputs.flatMap((i) => (i.producerSignature ? [i.producerSignature.keyId] : [])))];
    if (ids.length === 0) return bad;
    const keys = await activeProducerKeys(this.database.db, org, ids);
    inputs.forEach((input, i) => {
      const ps = input.producerSignature;
      if (!ps) return;
      const key = keys.get(ps.keyId);
      if (!key) bad.set(i, `producer key ${ps.keyId} is not registered or was revoked`);
      else if (!verifyProducerSignature(input, ps.signature, key)) bad.set(i, 'producer signature does not verify');
    });
    return bad;
  }

  /** Registers a producer's Ed25519 public key for the organization. */
  registerProducerKey(org: string, name: string, publicKey: string) {
    return registerProducerKey(this.database.db, org, name, publicKey);
  }

  /** The organization's producer keys. */
  listProducerKeys(org: string) {
    return listProducerKeys(this.database.db, org);
  }

  /**
   * Appends one parsed event; resolves after COMMIT with its receipt. `inAppendTransaction` is a
   * change committed in the same transaction as the event (see {@link AppendOptions}).
   */
  async create(org: string, input: EventInput, options: Pick<AppendOptions, 'inAppendTransaction'> = {}): Promise<Receipt> {
    const bad = (await this.checkSignatures(org, [input])).get(0);
    if (bad !== undefined) throw new AppError('BAD_REQUEST', bad, [{ path: 'producerSignature', message: bad }]);
    return this.ingest.append(org, [input], options.inAppendTransaction ? { inAppendTransaction: options.inAppendTransaction } : {})[0]!;
  }

  /**
   * Appends 1–1000 items parsed one by one by the event schema. Valid ones are appended (in
   * order, in as few transactions as group commit allows), and every item gets its own answer:
   * a receipt, or the error of that item alone (its input's fault, or the server's). With
   * `{ proofs: false }` the receipts carry no inclusion proof (none is computed).
   */
  async bulkCreate(org: string, items: BulkItem[], options?: { proofs?: true }): Promise<BulkItemResult[]>;
  async bulkCreate(org: string, items: BulkItem[], options: { proofs?: boolean }): Promise<Array<BulkItemResult<Receipt | Placement>>>;
  async bulkCreate(org: string, items: BulkItem[], options: { proofs?: boolean } = {}): Promise<Array<BulkItemResult<Receipt | Placement>>> {
    type Result = BulkItemResult<Receipt | Placement>;
    const results: Result[] = new Array<Result>(items.length);
    const valid: Array<{ index: number; input: EventInput }> = [];
    items.forEach((item, index) => {
      if (item.ok) {
        valid.push({ index, input: item.input });
        return;
      }
      const err = validationError(item.issues);
      results[index] = { index, ok: false, error: { code: 'BAD_REQUEST', message: err.message, issues: err.issues } };
    });
    const badSignatures = await this.checkSignatures(org, valid.map((v) => v.input));
    for (const [i, message] of badSignatures) {
      const v = valid[i]!;
      results[v.index] = { index: v.index, ok: false, error: { code: 'BAD_REQUEST', message, issues: [{ path: 'producerSignature', message }] } };
    }
    const appending = valid.filter((_, i) => !badSignatures.has(i));
    const settled = await Promise.allSettled(this.ingest.append(org, appending.map((v) => v.input), { proofs: options.proofs ?? true }));
    const failures = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    // Nothing committed and the server is at fault: the whole request fails (retry it as a whole).
    if (failures.length === settled.length && failures.length > 0 && !isInputFault(failures[0]!.reason)) throw failures[0]!.reason;
    settled.forEach((s, i) => {
      const { index } = appending[i]!;
      if (s.status === 'fulfilled') results[index] = { index, ok: true, receipt: s.value };
      else results[index] = { index, ok: false, error: itemError(s.reason) };
    });
    return results;
  }

  /** One event, optionally with its inclusion proof at the current tree size. */
  async getById(org: string, id: string, withProof: boolean) {
    const row = await this.findById(org, id);
    const event = repo.toRecord(row);
    if (!withProof) return { event };
    return { event, inclusionProof: await this.ledger.inclusionProof(org, row.leafIndex), checkpoint: await this.ledger.checkpoint(org) };
  }

  /** The leaf index of an event id (for proofs by id). */
  async leafIndexOf(org: string, id: string): Promise<number> {
    return (await this.findById(org, id)).leafIndex;
  }

  /**
   * The row of an event id, or a 404. Event ids are UUIDv7 of their recordedAt, which prunes the
   * partitions searched; an id whose time no event can have (past 9999, e.g.
   * `ffffffff-ffff-7fff-bfff-ffffffffffff`) cannot exist, so it is a 404 without a query.
   */
  private async findById(org: string, id: string): Promise<repo.EventRow> {
    const t = uuidv7Time(id);
    if (t !== null && !isStorableInstant(t)) throw new AppError('NOT_FOUND', `no event ${id}`);
    const row = await repo.findById(this.database.db, org, id, t === null ? null : new Date(t));
    if (!row) throw new AppError('NOT_FOUND', `no event ${id}`);
    return row;
  }

  /** A filtered page, keyset-paginated on (recordedAt, id). */
  async query(org: string, q: EventQuery): Promise<EventPage> {
    const rows = await repo.queryPage(this.database.db, org, q, q.cursor ?? null);
    const page = rows.slice(0, q.limit);
    const last = rows.length > q.limit ? page.at(-1)! : null;
    return { items: page.map(repo.toRecord), nextCursor: last ? encodeCursor(last.recordedAt, last.id) : null };
  }

  /** Counts grouped by action, status, classification, day or hour. */
  async stats(org: string, input: EventStatsInput): Promise<EventStats> {
    const groups = await repo.stats(this.database.db, org, input);
    return { groupBy: input.groupBy, total: groups.reduce((n, g) => n + g.count, 0), groups };
  }

  /** Leaves [start, end) with their committed form: values, salts and commitments per field. */
  async leaves(org: string, start: number, end: number) {
    const rows = await repo.findLeafRange(this.database.db, org, start, end);
    return rows.map((row) => {
      const values = repo.valuesOf(row);
      const fields: Record<string, { commitment: string; salt: string | null; value?: unknown }> = {};
      for (const [name, commitment] of Object.entries(row.commitments)) {
        const salt = row.salts[name] ?? null;
        fields[name] = salt === null ? { commitment, salt } : { commitment, salt, value: values[name as keyof typeof values] };
      }
      return {
        leafIndex: row.leafIndex,
        id: row.id,
        organizationId: row.organizationId,
        recordedAt: repo.toRecord(row).recordedAt,
        leafHash: row.leafHash.toString('base64'),
        fields,
      };
    });
  }
}

/** Re-exported for adapters. */
export type { EventRecord };

/** Whether a failed append was the input's fault (a 4xx), not the server's. */
function isInputFault(err: unknown): boolean {
  return err instanceof AppError && err.code === 'BAD_REQUEST';
}

/** The client-safe error of one failed bulk item; anything unexpected is an internal error. */
function itemError(err: unknown): { code: ItemErrorCode; message: string; issues: FieldIssue[] } {
  if (err instanceof AppError && (err.code === 'BAD_REQUEST' || err.code === 'UNAVAILABLE')) {
    return { code: err.code, message: err.message, issues: err.issues };
  }
  return { code: 'INTERNAL', message: 'internal error', issues: [] };
}
