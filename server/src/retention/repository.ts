/**
 * Queries of retention (migration 0012): policies, per-organization state, archives, the events a
 * retention erasure takes, and the monthly partitions of events. The only module of
 * server/src/retention that talks to the database.
 */
import { asc, desc, eq, sql } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import { organizations, retentionArchives, retentionPolicies, retentionState } from '../db/schema';

type Conn = Db | Tx;

function rowsOf<R>(result: unknown): R[] {
  return (result as { rows: R[] }).rows;
}

/** A stored policy. */
export type PolicyRow = typeof retentionPolicies.$inferSelect;

/** The organization's policies. */
export function listPolicies(db: Conn, org: string): Promise<PolicyRow[]> {
  return db
    .select()
    .from(retentionPolicies)
    .where(eq(retentionPolicies.organizationId, org))
    .orderBy(asc(retentionPolicies.dataClassification));
}

/**
 * Replaces the organization's policies with `policies`, inside `tx` (the transaction that appends
 * the `retention.policies.update` event, so the change and its audit event commit together).
 */
export async function replacePolicies(
  tx: Tx,
  org: string,
  policies: Array<{
    dataClassification: string;
    archiveAfterDays: number | null;
    eraseAfterDays: number | null;
  }>,
  by: string,
): Promise<void> {
  // One replacement per organization at a time. Two at once (two replicas, or a process recording
  // through the outbox) would each delete what they see and insert the same keys, and the later
  // would fail with 23505 once the earlier committed; behind this lock it deletes the earlier's
  // rows instead. (An append already holds the organization's head row; the outbox path does not.)
  await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${`retention_policies:${org}`}, 0))`);
  await tx.delete(retentionPolicies).where(eq(retentionPolicies.organizationId, org));
  if (policies.length > 0)
    await tx
      .insert(retentionPolicies)
      .values(policies.map((p) => ({ organizationId: org, ...p, updatedBy: by })));
}

/** Archived and dropped bounds of an organization (0 when it has no state yet). */
export async function readState(
  db: Conn,
  org: string,
): Promise<{ archivedThrough: number; droppedThrough: number }> {
  const rows = await db.select().from(retentionState).where(eq(retentionState.organizationId, org));
  return { archivedThrough: rows[0]?.archivedThrough ?? 0, droppedThrough: rows[0]?.droppedThrough ?? 0 };
}

/** Records an archive and moves archived_through forward to its end, in one transaction. */
export async function recordArchive(db: Conn, row: typeof retentionArchives.$inferInsert): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.insert(retentionArchives).values(row);
    await tx
      .insert(retentionState)
      .values({ organizationId: row.organizationId, archivedThrough: row.endLeaf })
      .onConflictDoUpdate({
        target: retentionState.organizationId,
        set: {
          archivedThrough: sql`greatest(${retentionState.archivedThrough}, excluded.archived_through)`,
          updatedAt: new Date(),
        },
      });
  });
}

/** A recorded archive. */
export type ArchiveRow = typeof retentionArchives.$inferSelect;

/** The organization's archives, newest first. */
export function listArchives(db: Conn, org: string, limit: number): Promise<ArchiveRow[]> {
  return db
    .select()
    .from(retentionArchives)
    .where(eq(retentionArchives.organizationId, org))
    .orderBy(desc(retentionArchives.endLeaf))
    .limit(limit);
}

/** Every organization id. */
export async function organizationIds(db: Conn): Promise<string[]> {
  return (
    await db.select({ id: organizations.id }).from(organizations).orderBy(asc(organizations.createdAt))
  ).map((r) => r.id);
}

/** The first leaf index of `org` recorded at or after `time`, or null when none is. */
export async function firstLeafAtOrAfter(db: Conn, org: string, time: Date): Promise<number | null> {
  const rows = rowsOf<{ i: string | number | null }>(
    await db.execute(
      sql`SELECT min(leaf_index) AS i FROM events WHERE organization_id = ${org} AND recorded_at >= ${time.toISOString()}::timestamptz`,
    ),
  );
  const i = rows[0]?.i;
  return i === null || i === undefined ? null : Number(i);
}

/** One event a retention erasure may take, with its identifiers (to check subject holds). */
export interface EraseCandidate {
  id: string;
  leafIndex: number;
  identifiers: string[];
}

/**
 * Events of `org` that still hold personal data (or were never marked erased), recorded before
 * `cutoff`, archived (leaf below `archivedThrough`), of the classifications `classes` (or, with
 * `otherThan`, of every classification but those), outside `heldRanges`, after leaf `after`.
 */
export async function eraseCandidates(
  db: Conn,
  org: string,
  q: {
    classes: string[] | null;
    otherThan: string[];
    cutoff: Date;
    archivedThrough: number;
    heldRanges: Array<{ from: Date | null; to: Date | null }>;
    personalFields: string[];
    after: number;
    limit: number;
  },
): Promise<EraseCandidate[]> {
  const where = [
    sql`organization_id = ${org}`,
    sql`leaf_index > ${q.after}`,
    sql`leaf_index < ${q.archivedThrough}`,
    sql`recorded_at < ${q.cutoff.toISOString()}::timestamptz`,
    sql`(erased_at IS NULL OR salts ?| ${sql.param(q.personalFields)}::text[])`,
  ];
  if (q.classes) where.push(sql`coalesce(data_classification, '') = ANY(${sql.param(q.classes)}::text[])`);
  if (q.otherThan.length > 0)
    where.push(sql`NOT (coalesce(data_classification, '') = ANY(${sql.param(q.otherThan)}::text[]))`);
  for (const r of q.heldRanges) {
    where.push(
      sql`NOT (recorded_at >= ${(r.from ?? new Date(-8.64e15)).toISOString()}::timestamptz AND recorded_at < ${(r.to ?? new Date(8.64e15)).toISOString()}::timestamptz)`,
    );
  }
  const rows = rowsOf<{
    id: string;
    leaf_index: string | number;
    p: string | null;
    u: string | null;
    t: string | null;
    c: string | null;
  }>(
    await db.execute(sql`
      SELECT id, leaf_index, patient_id AS p, principal_id AS u, target_resource_id AS t, correlation_id AS c FROM events
       WHERE ${sql.join(where, sql` AND `)}
       ORDER BY leaf_index LIMIT ${q.limit}`),
  );
  return rows.map((r) => ({
    id: r.id,
    leafIndex: Number(r.leaf_index),
    identifiers: [r.p, r.u, r.t, r.c].filter((v): v is string => v !== null),
  }));
}

/** Monthly partitions of events, oldest first, with their bounds. */
export async function monthlyPartitions(db: Conn): Promise<Array<{ name: string; from: Date; to: Date }>> {
  const rows = rowsOf<{ name: string; bound: string }>(
    await db.execute(sql`
      SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = 'events'::regclass AND c.relname ~ '^events_y[0-9]{4}m[0-9]{2}$'
       ORDER BY c.relname`),
  );
  return rows.map((r) => {
    const m = /FROM \('([^']+)'\) TO \('([^']+)'\)/.exec(r.bound);
    return { name: r.name, from: new Date(m![1]!), to: new Date(m![2]!) };
  });
}

/** Organizations with rows in a partition. */
export async function organizationsIn(db: Conn, partition: string): Promise<string[]> {
  if (!/^events_y[0-9]{4}m[0-9]{2}$/.test(partition)) throw new Error('not a monthly partition');
  return rowsOf<{ o: string }>(
    await db.execute(sql.raw(`SELECT DISTINCT organization_id AS o FROM ${partition}`)),
  ).map((r) => r.o);
}

/** Whether a partition can be dropped now (every row archived and erased); the drop function checks again. */
export async function partitionDroppable(
  db: Conn,
  partition: string,
): Promise<{ rows: number; blocked: number }> {
  if (!/^events_y[0-9]{4}m[0-9]{2}$/.test(partition)) throw new Error('not a monthly partition');
  const r = rowsOf<{ n: string | number; b: string | number }>(
    await db.execute(
      sql.raw(`SELECT count(*) AS n, count(*) FILTER (WHERE e.erased_at IS NULL OR s.organization_id IS NULL OR e.leaf_index >= s.archived_through) AS b
                 FROM ${partition} e LEFT JOIN retention_state s ON s.organization_id = e.organization_id`),
    ),
  );
  return { rows: Number(r[0]?.n ?? 0), blocked: Number(r[0]?.b ?? 0) };
}

/** Detaches and drops a partition through the guarded function of migration 0012; returns its row count. */
export async function dropPartition(db: Conn, partition: string): Promise<number> {
  const rows = rowsOf<{ n: string | number }>(
    await db.execute(sql`SELECT audit_drop_event_partition(${partition}) AS n`),
  );
  return Number(rows[0]?.n ?? 0);
}
