/**
 * The event service: the one place that validates, appends and reads events. tRPC, REST and the
 * CLI are adapters over it.
 */
import { z } from 'zod';
import { activeProducerKeys, listProducerKeys, registerProducerKey } from '../audit/producer-keys';
import type { Database } from '../db/client';
import { AppError, validationError } from '../errors';
import type { LedgerService } from '../tlog/service';
import { verifyProducerSignature } from '../ledger';
import { uuidv7Time } from '../util/uuid';
import type { IngestService } from './ingest';
import { checkEventLimits, type EventLimits } from './limits';
import * as repo from './repository';
import {
  eventInputSchema,
  type EventInput,
  type EventPage,
  type EventQuery,
  type EventRecord,
  type EventStats,
  type EventStatsInput,
  type Receipt,
} from './schema';

/** Result of one item of a bulk append. */
export type BulkItemResult =
  | { index: number; ok: true; receipt: Receipt }
  | { index: number; ok: false; error: { code: 'BAD_REQUEST'; message: string; issues: Array<{ path: string; message: string }> } };

const cursorSchema = z.tuple([z.iso.datetime(), z.uuid()]);

function encodeCursor(row: repo.EventRow): string {
  return Buffer.from(JSON.stringify([row.recordedAt.toISOString(), row.id])).toString('base64url');
}

function decodeCursor(cursor: string): repo.Cursor {
  try {
    const [at, id] = cursorSchema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
    return { recordedAt: new Date(at), id };
  } catch {
    throw new AppError('BAD_REQUEST', 'cursor is not one this server issued', [{ path: 'cursor', message: 'invalid cursor' }]);
  }
}

/** Validates, appends and queries events of the caller's organization. */
export class EventService {
  constructor(
    private readonly database: Database,
    private readonly ingest: IngestService,
    private readonly ledger: LedgerService,
    private readonly limits: EventLimits,
  ) {}

  /** Schema + configurable limits; throws a 400 naming every offending path (prefixed by `prefix`). */
  validate(raw: unknown, prefix: Array<string | number> = []): EventInput {
    const parsed = eventInputSchema.safeParse(raw);
    if (!parsed.success) {
      throw validationError(parsed.error.issues.map((i) => ({ ...i, path: [...prefix, ...i.path] })));
    }
    const issues = checkEventLimits(parsed.data, this.limits);
    if (issues.length > 0) throw validationError(issues.map((i) => ({ path: [...prefix, ...i.path], message: i.message })));
    if (parsed.data.producerSignature) {
      // A signed event must be sent in committed form, so verifiers can rebuild the signed bytes.
      const sent = raw as Record<string, unknown>;
      const bad: Array<{ path: Array<string | number>; message: string }> = [];
      if (typeof sent.timestamp !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(sent.timestamp)) {
        bad.push({ path: [...prefix, 'timestamp'], message: 'a signed event needs timestamp in RFC 3339 UTC with milliseconds and Z' });
      }
      if (sent.dataClassification === undefined) bad.push({ path: [...prefix, 'dataClassification'], message: 'a signed event needs an explicit dataClassification' });
      if (bad.length > 0) throw validationError(bad);
    }
    return parsed.data;
  }

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

  /** Appends one event; resolves after COMMIT with its receipt. */
  async create(org: string, raw: unknown): Promise<Receipt> {
    const input = this.validate(raw);
    const bad = (await this.checkSignatures(org, [input])).get(0);
    if (bad !== undefined) throw new AppError('BAD_REQUEST', bad, [{ path: 'producerSignature', message: bad }]);
    const [receipt] = await this.ingest.append(org, [input]);
    return receipt!;
  }

  /**
   * Appends 1–1000 events. Each item is validated on its own: valid ones are appended (in order,
   * in as few transactions as group commit allows), invalid ones are reported with their index.
   */
  async bulkCreate(org: string, raws: unknown[]): Promise<BulkItemResult[]> {
    const results: BulkItemResult[] = new Array<BulkItemResult>(raws.length);
    let valid: Array<{ index: number; input: EventInput }> = [];
    raws.forEach((raw, index) => {
      try {
        valid.push({ index, input: this.validate(raw) });
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        results[index] = { index, ok: false, error: { code: 'BAD_REQUEST', message: err.message, issues: err.issues } };
      }
    });
    const badSignatures = await this.checkSignatures(org, valid.map((v) => v.input));
    if (badSignatures.size > 0) {
      for (const [i, message] of badSignatures) {
        const v = valid[i]!;
        results[v.index] = { index: v.index, ok: false, error: { code: 'BAD_REQUEST', message, issues: [{ path: 'producerSignature', message }] } };
      }
      valid = valid.filter((_, i) => !badSignatures.has(i));
    }
    const receipts = await this.ingest.append(org, valid.map((v) => v.input));
    valid.forEach((v, i) => (results[v.index] = { index: v.index, ok: true, receipt: receipts[i]! }));
    return results;
  }

  /** One event, optionally with its inclusion proof at the current tree size. */
  async getById(org: string, id: string, withProof: boolean) {
    const t = uuidv7Time(id);
    const row = await repo.findById(this.database.db, org, id, t === null ? null : new Date(t));
    if (!row) throw new AppError('NOT_FOUND', `no event ${id}`);
    const event = repo.toRecord(row);
    if (!withProof) return { event };
    return { event, inclusionProof: await this.ledger.inclusionProof(org, row.leafIndex), checkpoint: await this.ledger.checkpoint(org) };
  }

  /** The leaf index of an event id (for proofs by id). */
  async leafIndexOf(org: string, id: string): Promise<number> {
    const t = uuidv7Time(id);
    const row = await repo.findById(this.database.db, org, id, t === null ? null : new Date(t));
    if (!row) throw new AppError('NOT_FOUND', `no event ${id}`);
    return row.leafIndex;
  }

  /** A filtered page, keyset-paginated on (recordedAt, id). */
  async query(org: string, q: EventQuery): Promise<EventPage> {
    const rows = await repo.queryPage(this.database.db, org, q, q.cursor ? decodeCursor(q.cursor) : null);
    const page = rows.slice(0, q.limit);
    const more = rows.length > q.limit;
    return { items: page.map(repo.toRecord), nextCursor: more ? encodeCursor(page.at(-1)!) : null };
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
