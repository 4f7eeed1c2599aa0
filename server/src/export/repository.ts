/**
 * Queries of the bundle export and the self-audit: events joined with their level-0 tree node
 * in leaf-index pages (as rows, or as text for the NDJSON lines of event-line.ts), checkpoint
 * pages, leaf ranges of a time window. Read-only.
 */
import { and, asc, eq, gt, gte, lt, lte, max, min, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { checkpoints, events, ledgerHeads, ledgerNodes, retentionState } from '../db/schema';
import type { EventLineRow } from './event-line';

/** An event row with the log's stored hash of its leaf (null when the tree node is missing). */
export type ExportEventRow = typeof events.$inferSelect & { nodeHash: Buffer | null };

/** Keyset position in leaf order: the last (leafIndex, id) already read. */
export interface LeafCursor {
  leafIndex: number;
  id: string;
}

/**
 * Events with leaf indexes in [from, to) after `after` in (leafIndex, id) order, at most `limit`.
 * Ordering by id too keeps paging exact when a (forged) row duplicates a leaf index.
 */
export async function eventPage(
  db: Db,
  org: string,
  from: number,
  to: number,
  after: LeafCursor | null,
  limit: number,
): Promise<ExportEventRow[]> {
  // The plain lower bound on leaf_index lets the (organization_id, leaf_index) index start the scan
  // at the cursor; the row comparison then only skips the rows of that one index already sent.
  const lower = after ? Math.max(from, after.leafIndex) : from;
  const where = [eq(events.organizationId, org), gte(events.leafIndex, lower), lt(events.leafIndex, to)];
  if (after) where.push(sql`(${events.leafIndex}, ${events.id}) > (${after.leafIndex}::bigint, ${after.id}::uuid)`);
  const rows = await db
    .select()
    .from(events)
    .where(and(...where))
    .orderBy(asc(events.leafIndex), asc(events.id))
    .limit(limit);
  if (rows.length === 0) return [];
  // The page's level-0 nodes by one index range scan, not a join: right after a bulk load the
  // planner's statistics are stale and a join plan can rescan the nodes once per event row.
  const lo = rows[0]!.leafIndex;
  const hi = rows[rows.length - 1]!.leafIndex;
  const nodes = await db
    .select({ index: ledgerNodes.index, hash: ledgerNodes.hash })
    .from(ledgerNodes)
    .where(and(eq(ledgerNodes.organizationId, org), eq(ledgerNodes.level, 0), gte(ledgerNodes.index, lo), lte(ledgerNodes.index, hi)));
  const byIndex = new Map(nodes.map((n) => [n.index, n.hash]));
  return rows.map((r) => ({ ...r, nodeHash: byIndex.get(r.leafIndex) ?? null }));
}

/** The rows a raw statement returned (node-postgres and PGlite both answer `{ rows }`). */
function rowsOf<R>(result: unknown): R[] {
  return (result as { rows: R[] }).rows;
}

/**
 * The page {@link eventPage} reads, as text for event-line.ts: every column cast to text (so both
 * drivers hand over the same strings and nothing is parsed twice), `recorded_at` and `timestamp`
 * as epoch milliseconds (both columns hold milliseconds: timestamptz(3)), the level-0 node's hash already in standard base64 (one line: PostgreSQL breaks
 * base64 after 76 characters, and ledger_nodes holds 32-byte hashes only, 44 characters, by its
 * CHECK). The node is looked up per row by its primary key, a plan that does not depend on the
 * statistics (see eventPage).
 */
export async function eventLinePage(
  db: Db,
  org: string,
  from: number,
  to: number,
  after: LeafCursor | null,
  limit: number,
): Promise<EventLineRow[]> {
  const lower = after ? Math.max(from, after.leafIndex) : from;
  const afterCursor = after ? sql`AND (e.leaf_index, e.id) > (${after.leafIndex}::bigint, ${after.id}::uuid)` : sql``;
  return rowsOf<EventLineRow>(
    await db.execute(sql`
      SELECT e.leaf_index::text AS "leafIndex", e.id::text AS "id",
             (extract(epoch FROM e.recorded_at) * 1000)::bigint::text AS "recordedAtMs",
             (SELECT encode(n.hash, 'base64') FROM ledger_nodes n
               WHERE n.organization_id = e.organization_id AND n.level = 0 AND n.idx = e.leaf_index) AS "leafHash",
             e.commitments::text AS "commitments", e.salts::text AS "salts",
             e.producer_key_id AS "producerKeyId", e.producer_signature AS "producerSignature",
             (extract(epoch FROM e.timestamp) * 1000)::bigint::text AS "timestamp", e.action AS "action", e.status AS "status",
             e.principal_id AS "principalId", e.principal_type AS "principalType",
             e.target_resource_type AS "targetResourceType", e.target_resource_id AS "targetResourceId",
             e.patient_id AS "patientId", e.outcome_description AS "outcomeDescription",
             e.data_classification AS "dataClassification", e.correlation_id AS "correlationId",
             e.session_context::text AS "sessionContext", e.retention_policy AS "retentionPolicy",
             e.event_version AS "eventVersion", e.details::text AS "details", e.idempotency_key AS "idempotencyKey"
        FROM events e
       WHERE e.organization_id = ${org}::uuid AND e.leaf_index >= ${lower} AND e.leaf_index < ${to} ${afterCursor}
       ORDER BY e.leaf_index, e.id
       LIMIT ${limit}`),
  );
}

/** A stored checkpoint as exported. */
export interface ExportCheckpointRow {
  treeSize: number;
  note: string;
  createdAt: Date;
}

/** Checkpoints with sizes in (after, to], oldest first, at most `limit`. */
export async function checkpointPage(db: Db, org: string, after: number, to: number, limit: number): Promise<ExportCheckpointRow[]> {
  return db
    .select({ treeSize: checkpoints.treeSize, note: checkpoints.note, createdAt: checkpoints.createdAt })
    .from(checkpoints)
    .where(and(eq(checkpoints.organizationId, org), gt(checkpoints.treeSize, after), lte(checkpoints.treeSize, to)))
    .orderBy(asc(checkpoints.treeSize))
    .limit(limit);
}

/** The largest checkpoint size ≤ `size` (0 when none). */
export async function checkpointAtOrBefore(db: Db, org: string, size: number): Promise<number> {
  const rows = await db
    .select({ s: max(checkpoints.treeSize) })
    .from(checkpoints)
    .where(and(eq(checkpoints.organizationId, org), lte(checkpoints.treeSize, size)));
  return Number(rows[0]?.s ?? 0);
}

/** The smallest checkpoint size ≥ `size`, or null. */
export async function checkpointAtOrAfter(db: Db, org: string, size: number): Promise<number | null> {
  const rows = await db
    .select({ s: min(checkpoints.treeSize) })
    .from(checkpoints)
    .where(and(eq(checkpoints.organizationId, org), gte(checkpoints.treeSize, size)));
  const s = rows[0]?.s;
  return s === null || s === undefined ? null : Number(s);
}

/** Leaf range [start, end) of the events recorded in [from, to) (null bounds = open). */
export async function leafRangeOfTimes(db: Db, org: string, from: Date | null, to: Date | null): Promise<{ start: number; end: number } | null> {
  const where = [eq(events.organizationId, org)];
  if (from) where.push(gte(events.recordedAt, from));
  if (to) where.push(lt(events.recordedAt, to));
  const rows = await db
    .select({ lo: sql<string | null>`min(${events.leafIndex})`, hi: sql<string | null>`max(${events.leafIndex})` })
    .from(events)
    .where(and(...where));
  const r = rows[0];
  if (!r || r.lo === null || r.hi === null) return null;
  return { start: Number(r.lo), end: Number(r.hi) + 1 };
}

/** The head's size and the largest signed checkpoint size (0 when none), read in one statement; null without a head. */
export async function headAndLatestCheckpoint(db: Db, org: string): Promise<{ size: number; latest: number } | null> {
  const rows = await db
    .select({
      size: ledgerHeads.size,
      latest: sql<string | null>`(SELECT max(${checkpoints.treeSize}) FROM ${checkpoints} WHERE ${checkpoints.organizationId} = ${org}::uuid)`,
    })
    .from(ledgerHeads)
    .where(eq(ledgerHeads.organizationId, org));
  const row = rows[0];
  return row ? { size: Number(row.size), latest: Number(row.latest ?? 0) } : null;
}

/**
 * The first leaf that may still exist: leaves below it may be gone with a dropped partition
 * (retention, docs/privacy.md §6); their tree nodes stay, so an export starts there with a frontier.
 */
export async function droppedThrough(db: Db, org: string): Promise<number> {
  const rows = await db.select({ d: retentionState.droppedThrough }).from(retentionState).where(eq(retentionState.organizationId, org));
  return rows[0]?.d ?? 0;
}
